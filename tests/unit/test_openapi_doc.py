"""docs/openapi.json is the document the daemon serves, and the document is valid OpenAPI."""

from __future__ import annotations

import sys
from pathlib import Path

import jsonschema
import schemathesis

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import build_openapi  # noqa: E402

from monitor.export.openapi import document  # noqa: E402
from monitor.export.params import ENDPOINTS  # noqa: E402


def test_the_shipped_copy_is_what_the_daemon_serves() -> None:
    committed = build_openapi.DOC.read_text(encoding="utf-8")
    assert committed == build_openapi.rendered(), "run: .venv/bin/python scripts/build_openapi.py"


def test_the_document_is_valid_openapi_and_lists_every_endpoint() -> None:
    schema = schemathesis.openapi.from_dict(document())
    schema.validate()
    assert set(ENDPOINTS) <= set(document()["paths"])
    for operation in document()["paths"].values():
        for response in operation["get"]["responses"].values():
            for content in response.get("content", {}).values():
                jsonschema.Draft202012Validator.check_schema(content["schema"])

"""The document the daemon serves at /api/v1/openapi.json is valid OpenAPI and lists every
endpoint (its copy in docs/openapi.json is checked by tests/unit/test_docs.py)."""

from __future__ import annotations

import jsonschema
import schemathesis

from monitor.export.openapi import document
from monitor.export.params import ENDPOINTS


def test_the_document_is_valid_openapi_and_lists_every_endpoint() -> None:
    schema = schemathesis.openapi.from_dict(document())
    schema.validate()
    assert set(ENDPOINTS) <= set(document()["paths"])
    for operation in document()["paths"].values():
        for response in operation["get"]["responses"].values():
            for content in response.get("content", {}).values():
                jsonschema.Draft202012Validator.check_schema(content["schema"])

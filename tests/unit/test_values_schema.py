"""The chart's values.schema.json `config` part is generated from the settings model
(scripts/build_values_schema.py; tests/unit/test_docs.py fails when it is stale): these
fail when the schema would refuse a config calmon accepts, or accept a secret."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import build_values_schema  # noqa: E402


def committed() -> dict:
    return json.loads(build_values_schema.SCHEMA.read_text())["properties"]["config"]


def test_every_settings_key_is_in_the_schema() -> None:
    from monitor.settings import Settings

    schema = committed()
    assert schema["additionalProperties"] is False
    for section, info in Settings.model_fields.items():
        model = info.annotation
        if isinstance(model, type) and hasattr(model, "model_fields"):
            node = schema["properties"][section]
            assert node["additionalProperties"] is False, section
            assert set(node["properties"]) == set(model.model_fields), section


@pytest.mark.parametrize(
    "config",
    [
        yaml.safe_load((ROOT / "config" / "calmon.example.yaml").read_text()),
        {"windows": [{"name": "2h", "length": "2h", "every": 90}], "ingest": {"retry_max": 1.5}},
        {"webhooks": {"r": {"url": "https://x/h", "timeout": "250ms"}}},
        {"alertmanager": {"urls": ["http://user@am:9093"]}},  # a user, no password
        {"reference": {"mode": "fixed", "start": "2026-01-01T00:00:00+01", "end": "2026-02-01"}},
    ],
)
def test_what_calmon_accepts_the_schema_accepts(config: dict) -> None:
    jsonschema.Draft7Validator(committed()).validate(config)


@pytest.mark.parametrize(
    ("config", "path"),
    [
        ({"store": {"url": "sqlite:///x.db"}}, ["store", "url"]),
        ({"kafka": {"ssl_password": "x"}}, ["kafka", "ssl_password"]),
        ({"webhooks": {"r": {"url": "https://u:p@x/h"}}}, ["webhooks", "r", "url"]),
        ({"http": {"external_url": "https://u:p@calmon"}}, ["http", "external_url"]),
        ({"ingest": {"label_horizon": "30 days"}}, ["ingest", "label_horizon"]),
        ({"ingest": {"label_horizon": True}}, ["ingest", "label_horizon"]),
        ({"windows": []}, ["windows"]),
    ],
)
def test_secrets_and_bad_values_are_refused(config: dict, path: list) -> None:
    errors = list(jsonschema.Draft7Validator(committed()).iter_errors(config))
    assert [list(e.absolute_path) for e in errors] == [path]

"""A per-class alert's webhook body: its class and that class's values, valid against
docs/webhook.schema.json; a series alert's body has neither."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import jsonschema

from monitor.alerts.webhooks import payload
from monitor.core.alerts import AlertState
from monitor.core.results import ClassResult, WindowResult
from monitor.core.series import SeriesWindow
from monitor.rules.engine import Transition
from monitor.rules.model import Rule

SCHEMA = json.loads((Path(__file__).parents[3] / "docs" / "webhook.schema.json").read_text())
AT = datetime(2026, 12, 7, tzinfo=UTC)
SERIES = SeriesWindow("intent", "v1", "__all__", "1h")


def test_a_per_class_alert_names_its_class_in_the_webhook_body() -> None:
    rule = Rule.model_validate(
        {"name": "Drift", "metric": "class_psi", "op": ">", "threshold": 0.2}
    )
    result = WindowResult(
        SERIES, AT, AT, AT, 100, 90, values={"top_label_ece": 0.02},
        classes={"tech": ClassResult(values={"class_psi": 0.4}), "sales": ClassResult()},
    )  # fmt: skip
    alert = AlertState("Drift", SERIES, "firing", 0, fired_ms=0, values={"class_psi": 0.4})
    body = payload(
        Transition("firing", replace(alert, class_name="tech"), rule, result), "http://x"
    )
    jsonschema.validate(body, SCHEMA)
    assert (body["class"], body["class_metrics"], body["metrics"]) == (
        "tech",
        {"class_psi": 0.4},
        {"top_label_ece": 0.02},
    )
    series_body = payload(Transition("firing", alert, rule, result), "http://x")
    jsonschema.validate(series_body, SCHEMA)
    assert "class" not in series_body and "class_metrics" not in series_body

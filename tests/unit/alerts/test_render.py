"""An alert's labels and annotations as Alertmanager and webhooks receive them."""

from __future__ import annotations

from datetime import UTC, datetime

from monitor.alerts.render import alert_labels, render
from monitor.core.results import WindowResult
from monitor.core.series import SeriesWindow
from monitor.rules.engine import evaluate_rules
from monitor.rules.model import Rule

EU = SeriesWindow("fraud", "v1", "region=eu", "24h")


def result(series: SeriesWindow, **values: float) -> WindowResult:
    at = datetime(2026, 11, 22, tzinfo=UTC)
    return WindowResult(series, at, at, at, predictions=1000, labelled=1000, values=values)


def test_annotations_render_values_and_mark_missing_ones() -> None:
    r = Rule.model_validate(
        {
            "name": "HighECE",
            "metric": "ece",
            "op": ">",
            "threshold": 0.05,
            "annotations": {
                "summary": "ECE {ece:.3f} on {model} {segment} ({window}); psi {psi_raw_score:.2f}"
            },
        }
    )
    _, (transition,) = evaluate_rules([r], [result(EU, ece=0.0812)], {}, 0)
    assert render(r.annotations["summary"], transition.alert, r) == (
        "ECE 0.081 on fraud region=eu (24h); psi n/a"
    )


def test_labels_are_the_rules_own_then_calmons() -> None:
    r = Rule.model_validate(
        {
            "name": "HighECE",
            "metric": "ece",
            "op": ">",
            "threshold": 0.05,
            "severity": "critical",
            "labels": {"team": "risk"},
        }
    )
    _, (transition,) = evaluate_rules([r], [result(EU, ece=0.0812)], {}, 0)
    assert alert_labels(transition.alert, r) == {
        "team": "risk",
        "alertname": "HighECE",
        "model": "fraud",
        "model_version": "v1",
        "segment": "region=eu",
        "window": "24h",
        "severity": "critical",
    }

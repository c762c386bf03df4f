"""An alert's labels and annotations as Alertmanager and webhooks receive them."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from monitor.alerts.render import alert_labels, render
from monitor.core.alerts import AlertState
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


# Format-spec characters, so random specs are often valid and often not.
SPEC_CHARS = "<>^=+- #0123456789,_.%bcdeEfFgGnosxX{}!ra"


@settings(max_examples=300, deadline=None)
@given(
    field=st.sampled_from(["ece", "model", "segment", "psi_raw_score", "window"]),
    conversion=st.sampled_from(["", "!r", "!s", "!a", "!x"]),
    spec=st.text(SPEC_CHARS, max_size=6),
    ece=st.one_of(st.none(), st.floats(allow_nan=False)),
)
def test_a_template_that_loads_renders_when_the_alert_fires(
    field: str, conversion: str, spec: str, ece: float | None
) -> None:
    template = "{" + field + conversion + (":" + spec if spec else "") + "}"
    try:
        r = Rule.model_validate(
            {
                "name": "A",
                "metric": "ece",
                "op": ">",
                "threshold": 0.05,
                "annotations": {"summary": template},
            }
        )
    except ValidationError:
        return  # refused at load: check-config names it
    values = {} if ece is None else {"ece": ece}
    alert = AlertState("A", EU, "firing", 0, fired_ms=0, values=values)
    render(r.annotations["summary"], alert, r)  # must not raise

"""A series with no events left in its window resolves its alerts (a pending one is
dropped); too few samples still keep the state, absence and volume rules keep theirs, and
series of models this evaluation did not cover (another replica's shards) are left alone."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from monitor.core.alerts import AlertState
from monitor.core.results import WindowResult
from monitor.core.series import SeriesWindow
from monitor.rules.engine import evaluate_rules
from monitor.rules.model import Rule

NOW = 1_800_000_000_000
V1 = SeriesWindow("fraud", "v1", "__all__", "1h")
V2 = SeriesWindow("fraud", "v2", "__all__", "1h")
EU = SeriesWindow("fraud", "v2", "region=eu", "1h")
OTHER_MODEL = SeriesWindow("churn", "v1", "__all__", "1h")

ECE = Rule.model_validate(
    {"name": "EceHigh", "metric": "ece", "op": ">", "threshold": 0.05, "min_samples": 500}
)
ABSENT = Rule.model_validate({"name": "NoLabels", "absence": {"stream": "labels", "for": "6h"}})
QUIET = Rule.model_validate(
    {"name": "LowVolume", "metric": "window_predictions", "op": "<", "threshold": 100}
)


def result(series: SeriesWindow, predictions: int, labelled: int, **values: Any) -> WindowResult:
    at = datetime(2026, 12, 1, tzinfo=UTC)
    return WindowResult(series, at, at, at, predictions, labelled, values=values)


def firing(rule: Rule, series: SeriesWindow, **values: float) -> dict[str, AlertState]:
    alert = AlertState(rule.name, series, "firing", NOW - 60_000, NOW - 60_000, values=values)
    return {alert.fingerprint: alert}


def test_an_empty_window_resolves_a_firing_alert_with_its_last_values() -> None:
    prior = firing(ECE, V1, ece=0.12)
    empty_v1 = result(V1, 0, 0, window_predictions=0)
    states, transitions = evaluate_rules(
        [ECE], [empty_v1, result(V2, 5000, 4000, ece=0.01)], prior, NOW
    )
    (transition,) = transitions
    assert (transition.kind, transition.no_data, transition.alert.series) == ("resolved", True, V1)
    (state,) = states.values()
    assert (state.state, state.resolved_ms, dict(state.values)) == ("resolved", NOW, {"ece": 0.12})
    # The next empty window changes nothing: it is resolved once.
    assert evaluate_rules([ECE], [empty_v1], states, NOW + 60_000) == (states, [])


def test_a_segment_value_the_window_did_not_see_resolves_its_alert() -> None:
    # Segment values without events in the window get no result at all.
    prior = firing(ECE, EU, ece=0.2)
    _, transitions = evaluate_rules([ECE], [result(V2, 5000, 4000, ece=0.01)], prior, NOW)
    (transition,) = transitions
    assert (transition.kind, transition.no_data, transition.result.series) == ("resolved", True, EU)
    # The result it resolved on is the segment's empty window, nothing of V2's.
    empty = transition.result
    assert (empty.predictions, empty.labelled, dict(empty.values)) == (0, 0, {})
    assert (empty.reliability_bins, empty.drift_bins, dict(empty.classes)) == ((), (), {})
    assert empty.reference is None


def test_a_pending_alert_of_an_empty_series_is_dropped() -> None:
    pending = AlertState(ECE.name, V1, "pending", NOW - 60_000, values={"ece": 0.2})
    states, transitions = evaluate_rules(
        [ECE], [result(V1, 0, 0)], {pending.fingerprint: pending}, NOW
    )
    assert states == {}
    (transition,) = transitions
    assert (transition.kind, transition.no_data, transition.alert) == ("cancelled", True, pending)
    assert (transition.rule, transition.result.series) == (ECE, V1)


def test_no_results_and_no_window_named_change_nothing() -> None:
    prior = firing(ECE, V1, ece=0.12)
    assert evaluate_rules([ECE], [], prior, NOW) == (prior, [])


def test_too_few_samples_is_no_evidence_and_keeps_the_alert_firing() -> None:
    prior = firing(ECE, V1, ece=0.12)
    # 300 labelled of 400 predictions: below min_samples, but the series has events.
    assert evaluate_rules([ECE], [result(V1, 400, 300, ece=0.01)], prior, NOW) == (prior, [])


def test_absence_and_volume_rules_keep_firing_on_an_empty_window() -> None:
    prior = {
        **firing(ABSENT, V1, seconds_since_last_label=90_000),
        **firing(QUIET, V1, window_predictions=0),
    }
    values = {"seconds_since_last_label": 93_600.0, "window_predictions": 0.0}
    states, transitions = evaluate_rules([ABSENT, QUIET], [result(V1, 0, 0, **values)], prior, NOW)
    assert transitions == []
    assert {state.state for state in states.values()} == {"firing"}


def test_models_not_evaluated_here_are_left_alone() -> None:
    # Another replica evaluates "churn" (its shard): no result here is no evidence.
    prior = firing(ECE, OTHER_MODEL, ece=0.2)
    assert evaluate_rules([ECE], [result(V2, 5000, 4000, ece=0.01)], prior, NOW) == (prior, [])
    # ...nor are other windows' alerts.
    prior_24h = firing(ECE, SeriesWindow("fraud", "v1", "__all__", "24h"), ece=0.2)
    assert evaluate_rules([ECE], [result(V1, 0, 0)], prior_24h, NOW) == (prior_24h, [])


def test_predictions_without_labels_yet_are_not_an_empty_window() -> None:
    # Labels arrive late: a window with predictions and no label yet keeps the alert.
    prior = firing(ECE, V1, ece=0.12)
    assert evaluate_rules([ECE], [result(V1, 800, 0)], prior, NOW) == (prior, [])


def test_every_alert_is_looked_at_whatever_comes_first() -> None:
    # Alerts skipped (another model's, a series with events) before the empty ones.
    prior = {
        **firing(ECE, OTHER_MODEL, ece=0.2),
        **firing(ECE, V2, ece=0.2),
        **firing(ECE, V1, ece=0.2),
        **firing(ECE, EU, ece=0.2),
    }
    results = [result(V1, 0, 0), result(V2, 400, 300)]
    states, transitions = evaluate_rules([ECE], results, prior, NOW)
    assert sorted((t.alert.series.segment, t.alert.series.model_version) for t in transitions) == [
        ("__all__", "v1"),
        ("region=eu", "v2"),
    ]
    still = {
        (s.series.model, s.series.model_version) for s in states.values() if s.state == "firing"
    }
    assert still == {("churn", "v1"), ("fraud", "v2")}


def test_a_retired_model_with_no_series_left_resolves_when_its_shard_was_evaluated() -> None:
    # "churn" stopped sending: the store has no series of it in the window, so the tick
    # gives it no result at all. The tick covered its shard (here: every model).
    prior = firing(ECE, OTHER_MODEL, ece=0.2)
    fraud_only = [result(V2, 5000, 4000, ece=0.01)]
    states, transitions = evaluate_rules(
        [ECE], fraud_only, prior, NOW, window="1h", covers=lambda model: model == "churn"
    )
    (transition,) = transitions
    assert (transition.kind, transition.no_data, transition.result.series) == (
        "resolved",
        True,
        OTHER_MODEL,
    )
    assert transition.result.window_end == fraud_only[0].window_end  # the tick's window
    (state,) = states.values()
    assert state.state == "resolved"
    # A covered model's alert resolves even when the tick had no result at all, and
    # only in the window evaluated.
    _, alone = evaluate_rules([ECE], [], prior, NOW, window="1h", covers=lambda model: True)
    assert [(t.kind, t.result.predictions, t.result.evaluated_at) for t in alone] == [
        ("resolved", 0, datetime.fromtimestamp(NOW / 1000, UTC))
    ]
    assert evaluate_rules([ECE], [], prior, NOW, window="24h", covers=lambda m: True) == (
        prior,
        [],
    )
    # A model outside the shards evaluated keeps its alert.
    assert evaluate_rules(
        [ECE], fraud_only, prior, NOW, window="1h", covers=lambda model: model == "fraud"
    ) == (prior, [])

"""The rule engine as a pure function, on hand-made results and a hand-written timeline."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from monitor.alerts.render import alert_labels, rendered_annotations
from monitor.core.alerts import AlertState
from monitor.core.results import ClassResult, WindowResult
from monitor.core.series import SeriesWindow
from monitor.rules.engine import evaluate_rules
from monitor.rules.model import Rule, load_rules

MIN = 60_000
EU = SeriesWindow("fraud", "v1", "region=eu", "24h")
US = SeriesWindow("fraud", "v1", "region=us", "24h")


def result(series: SeriesWindow, labelled: int = 1000, **values: float) -> WindowResult:
    at = datetime(2026, 11, 22, tzinfo=UTC)
    return WindowResult(series, at, at, at, predictions=labelled, labelled=labelled, values=values)


def rule(**spec: Any) -> Rule:
    return Rule.model_validate({"name": "HighECE", **spec})


ECE_RULE = rule(metric="ece", op=">", threshold=0.05, resolve_threshold=0.04, **{"for": "10m"})


def run(
    rules: list[Rule], timeline: list[tuple[int, list[WindowResult]]]
) -> tuple[dict[str, AlertState], list[tuple[int, str, str]]]:
    """Feed results minute by minute; return final state and (minute, kind, segment)."""
    states: dict[str, AlertState] = {}
    seen = []
    for minute, results in timeline:
        states, transitions = evaluate_rules(rules, results, states, minute * MIN)
        seen += [(minute, t.kind, t.alert.series.segment) for t in transitions]
    return states, seen


def test_fires_after_holding_for_the_duration_and_resolves_with_hysteresis() -> None:
    ece = [0.02, 0.06, 0.07, 0.06, 0.045, 0.06, 0.045, 0.039, 0.02]
    minutes = [0, 5, 10, 15, 20, 25, 30, 35, 40]
    states, seen = run(
        [ECE_RULE], [(m, [result(EU, ece=v)]) for m, v in zip(minutes, ece, strict=True)]
    )
    # pending at 5, firing at 15 (held 10 min), stays firing at 0.045 (> resolve 0.04),
    # resolves at 35 when ECE drops to 0.039.
    assert seen == [
        (5, "pending", "region=eu"),
        (15, "firing", "region=eu"),
        (35, "resolved", "region=eu"),
    ]
    (alert,) = states.values()
    assert alert.state == "resolved" and alert.fired_ms == 15 * MIN
    assert alert.resolved_ms == 35 * MIN and alert.values == {"ece": 0.039}


def test_a_pending_alert_that_stops_holding_is_cancelled_without_firing() -> None:
    states, seen = run([ECE_RULE], [(0, [result(EU, ece=0.06)]), (5, [result(EU, ece=0.03)])])
    assert seen == [(0, "pending", "region=eu"), (5, "cancelled", "region=eu")]
    assert states == {}


def test_without_for_it_fires_at_once_and_each_series_is_its_own_alert() -> None:
    r = rule(metric="ece", op=">", threshold=0.05)
    states, seen = run([r], [(0, [result(EU, ece=0.08), result(US, ece=0.01)])])
    assert seen == [(0, "firing", "region=eu")]
    assert len(states) == 1


def test_too_few_samples_or_a_missing_metric_is_no_evidence() -> None:
    r = rule(metric="ece", op=">", threshold=0.05, min_samples=500)
    timeline = [
        (0, [result(EU, ece=0.08)]),  # fires
        (1, [result(EU, labelled=100, ece=0.01)]),  # too few labels: stays firing
        (2, [result(EU)]),  # ECE insufficient (absent): stays firing
        (3, [result(EU, ece=0.01)]),  # resolves
        (4, [result(US, labelled=10, ece=0.9)]),  # never fires on noise
    ]
    _, seen = run([r], timeline)
    assert seen == [(0, "firing", "region=eu"), (3, "resolved", "region=eu")]


def test_the_prior_state_passed_back_does_not_fire_again() -> None:
    # The engine's half of a restart; the store's (the state read back by a new
    # daemon): tests/integration/alerts/test_alert_state_restart.py.
    r = rule(metric="ece", op=">", threshold=0.05)
    states, first = evaluate_rules([r], [result(EU, ece=0.08)], {}, 0)
    again, second = evaluate_rules([r], [result(EU, ece=0.09)], dict(states), MIN)
    assert [t.kind for t in first] == ["firing"] and second == []
    assert next(iter(again.values())).alert_id == next(iter(states.values())).alert_id


def test_selectors_exact_glob_and_regex() -> None:
    exact = rule(metric="ece", op=">", threshold=0.05, select={"segment": "region=eu"})
    glob = rule(metric="ece", op=">", threshold=0.05, select={"model": "fr*", "window": "2?h"})
    regex = rule(metric="ece", op=">", threshold=0.05, select={"segment": "re:region=(us|apac)"})
    results = [result(EU, ece=0.1), result(US, ece=0.1)]
    fired = {
        name: sorted(t.alert.series.segment for t in evaluate_rules([r], results, {}, 0)[1])
        for name, r in [("exact", exact), ("glob", glob), ("regex", regex)]
    }
    assert fired == {
        "exact": ["region=eu"],
        "glob": ["region=eu", "region=us"],
        "regex": ["region=us"],
    }
    # Regular expressions are anchored: "re:eu" does not match "region=eu".
    anchored = rule(metric="ece", op=">", threshold=0.05, select={"segment": "re:eu"})
    assert evaluate_rules([anchored], results, {}, 0)[1] == []


def test_ks_drift_needs_a_minimum_effect_size() -> None:
    r = rule(
        conditions=[
            {"metric": "ks_pvalue_raw_score", "op": "<", "threshold": 0.01},
            {"metric": "ks_statistic_raw_score", "op": ">", "threshold": 0.1},
        ]
    )
    tiny = result(EU, ks_pvalue_raw_score=1e-9, ks_statistic_raw_score=0.02)  # large n
    real = result(US, ks_pvalue_raw_score=1e-9, ks_statistic_raw_score=0.2)
    _, transitions = evaluate_rules([r], [tiny, real], {}, 0)
    assert [t.alert.series for t in transitions] == [US]
    assert transitions[0].alert.values == {
        "ks_pvalue_raw_score": 1e-9,
        "ks_statistic_raw_score": 0.2,
    }


def test_combined_rule_needs_every_condition() -> None:
    r = rule(
        conditions=[
            {"metric": "psi_raw_score", "op": ">", "threshold": 0.25},
            {"metric": "ece", "op": ">", "threshold": 0.05},
        ]
    )
    only_drift = result(EU, psi_raw_score=0.4, ece=0.02)
    both = result(US, psi_raw_score=0.4, ece=0.09)
    assert [t.alert.series for t in evaluate_rules([r], [only_drift, both], {}, 0)[1]] == [US]


def test_relative_rule_compares_with_another_window_of_the_same_series() -> None:
    r = rule(metric="ece", op=">", threshold=1.5, relative_to={"window": "7d"})
    week = {
        SeriesWindow("fraud", "v1", "region=eu", "7d"): result(
            SeriesWindow("fraud", "v1", "region=eu", "7d"), ece=0.02
        ),
        SeriesWindow("fraud", "v1", "region=us", "7d"): result(
            SeriesWindow("fraud", "v1", "region=us", "7d"), ece=0.04
        ),
    }
    results = [result(EU, ece=0.035), result(US, ece=0.05)]  # 1.75x and 1.25x
    _, transitions = evaluate_rules([r], results, {}, 0, other_windows=week)
    assert [t.alert.series for t in transitions] == [EU]
    assert transitions[0].alert.values["ece_ratio"] == pytest.approx(1.75)
    assert transitions[0].alert.values["ece_7d"] == 0.02


def test_absence_rule_fires_when_labels_stop() -> None:
    r = rule(absence={"stream": "labels", "for": "6h"})
    fresh = result(EU, seconds_since_last_label=600.0)
    stale = result(US, seconds_since_last_label=7 * 3600.0)
    assert [t.alert.series for t in evaluate_rules([r], [fresh, stale], {}, 0)[1]] == [US]


def test_shipped_drift_unmeasured_rules_wait_out_a_trailing_reference() -> None:
    shipped = Path(__file__).resolve().parents[3] / "alerts" / "calmon-rules.yaml"
    rules = [
        r
        for r in load_rules([shipped], webhooks=["recalibrate"])
        if r.name.endswith("DriftUnmeasured")
    ]
    fixed = SeriesWindow("fraud", "v2", "__all__", "24h")  # deployed after the fixed period
    trailing = SeriesWindow("fraud", "v3", "__all__", "24h")  # covered from hour 24 on
    no_raw = SeriesWindow("ctr", "v1", "__all__", "24h")  # sends probabilities only
    timeline = []
    for half_hours in range(0, 60):
        hour = half_hours / 2
        timeline.append(
            (
                half_hours * 30,
                [
                    result(
                        fixed,
                        drift_window_events_raw_score=5000.0,
                        drift_reference_events_raw_score=0.0,
                        drift_window_events_probability=5000.0,
                        drift_reference_events_probability=4000.0,
                    ),
                    result(
                        trailing,
                        drift_window_events_raw_score=5000.0,
                        drift_reference_events_raw_score=3000.0 if hour >= 24 else 0.0,
                    ),
                    result(
                        no_raw,
                        drift_window_events_raw_score=0.0,
                        drift_reference_events_raw_score=0.0,
                        drift_window_events_probability=5000.0,
                        drift_reference_events_probability=5000.0,
                    ),
                ],
            )
        )
    states: dict[str, AlertState] = {}
    seen = []
    for minute, results in timeline:
        states, transitions = evaluate_rules(rules, results, states, minute * MIN)
        seen += [
            (minute // 60, t.kind, t.rule.name, t.alert.series.model_version) for t in transitions
        ]
    assert seen == [
        (0, "pending", "RawScoreDriftUnmeasured", "v2"),
        (0, "pending", "RawScoreDriftUnmeasured", "v3"),
        (24, "cancelled", "RawScoreDriftUnmeasured", "v3"),
        (26, "firing", "RawScoreDriftUnmeasured", "v2"),
    ]


def _classes(labelled: int = 1000, **psi: float) -> WindowResult:
    base = result(EU, labelled, window_labelled=float(labelled))
    return replace(base, classes={k: ClassResult(values={"class_psi": v}) for k, v in psi.items()})


def test_a_rule_on_a_class_metric_is_one_alert_per_class() -> None:
    drift = rule(
        metric="class_psi",
        op=">",
        threshold=0.25,
        annotations={"summary": "{class} moved: {class_psi:.2f} on {segment}"},
    )
    states, transitions = evaluate_rules(
        [drift], [_classes(billing=0.05, tech=0.4, sales=0.3)], {}, 0
    )
    fired = sorted((t.kind, t.alert.class_name) for t in transitions)
    assert fired == [("firing", "sales"), ("firing", "tech")]
    assert len({s.fingerprint for s in states.values()}) == 2
    # Each class resolves on its own; a class missing from a result keeps its state.
    states, transitions = evaluate_rules([drift], [_classes(tech=0.1, billing=0.3)], states, MIN)
    assert sorted((t.kind, t.alert.class_name) for t in transitions) == [
        ("firing", "billing"),
        ("resolved", "tech"),
    ]
    assert {s.class_name: s.state for s in states.values()} == {
        "billing": "firing",
        "tech": "resolved",
        "sales": "firing",
    }
    billing = next(s for s in states.values() if s.class_name == "billing")
    assert alert_labels(billing, drift)["class"] == "billing"
    assert rendered_annotations(billing, drift) == {"summary": "billing moved: 0.30 on region=eu"}
    # A series rule is unchanged: one alert, no class.
    (alert,) = evaluate_rules([ECE_RULE], [result(EU, ece=0.1)], {}, 0)[0].values()
    assert alert.class_name is None and "class" not in alert_labels(alert, ECE_RULE)


def test_rules_and_check_config_accept_the_multiclass_metric_names(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        "rules:\n"
        "  - {name: Top, metric: top_label_ece, op: '>', threshold: 0.05}\n"
        "  - {name: Drift, metric: class_psi, op: '>', threshold: 0.2,\n"
        "     annotations: {summary: '{class}: {class_psi:.2f}'}}\n"
    )
    rules = load_rules([path])
    assert [r.per_class() for r in rules] == [False, True]
    assert rules[1].samples_needed_from() == "predictions"
    path.write_text("rules:\n  - {name: Typo, metric: class_pis, op: '>', threshold: 0.2}\n")
    with pytest.raises(ValueError, match="did you mean 'class_psi'"):
        load_rules([path])


def test_a_class_rule_tests_its_other_conditions_on_the_series() -> None:
    # class_psi is per class; window_labelled is the series': both must hold.
    busy = rule(
        conditions=[
            {"metric": "class_psi", "op": ">", "threshold": 0.25},
            {"metric": "window_labelled", "op": ">=", "threshold": 500},
        ]
    )
    fired = evaluate_rules([busy], [_classes(tech=0.4, sales=0.1)], {}, 0)[1]
    assert [(t.kind, t.alert.class_name) for t in fired] == [("firing", "tech")]
    assert evaluate_rules([busy], [_classes(100, tech=0.4)], {}, 0)[1] == []


def test_a_class_missing_from_the_other_window_is_no_evidence() -> None:
    # class_psi relative to the 7d window's: a class the 7d result lacks has no base.
    relative = rule(metric="class_psi", op=">", threshold=2.0, relative_to={"window": "7d"})
    week = replace(_classes(tech=0.1), series=replace(EU, window="7d"))
    other = {week.series: week}
    fired = evaluate_rules([relative], [_classes(tech=0.4, sales=0.9)], {}, 0, other_windows=other)[
        1
    ]
    assert [(t.kind, t.alert.class_name) for t in fired] == [("firing", "tech")]


def _counts(series: SeriesWindow, predictions: int, labelled: int, **values: float) -> WindowResult:
    return replace(result(series, **values), predictions=predictions, labelled=labelled)


def test_min_samples_counts_labels_for_calibration_and_predictions_for_drift() -> None:
    ece = rule(metric="ece", op=">", threshold=0.05, min_samples=500)
    psi = rule(name="Drift", metric="psi_raw_score", op=">", threshold=0.2, min_samples=500)
    # Many predictions, few labels yet: drift has evidence, calibration has none.
    early = _counts(EU, 5000, 400, ece=0.2, psi_raw_score=0.3)
    fired = evaluate_rules([ece, psi], [early], {}, 0)[1]
    assert [(t.rule.name, t.kind) for t in fired] == [("Drift", "firing")]
    # Exactly min_samples is enough.
    assert [t.kind for t in evaluate_rules([ece], [_counts(EU, 500, 500, ece=0.2)], {}, 0)[1]] == [
        "firing"
    ]
    assert evaluate_rules([psi], [_counts(EU, 499, 499, psi_raw_score=0.3)], {}, 0)[1] == []


def test_relative_to_a_window_without_a_base_is_no_evidence() -> None:
    relative = rule(metric="ece", op=">", threshold=2.0, relative_to={"window": "7d"})
    now = result(EU, ece=0.1)
    week = replace(result(EU, ece=0.0), series=replace(EU, window="7d"))
    assert evaluate_rules([relative], [now], {}, 0)[1] == []  # no 7d result
    assert evaluate_rules([relative], [now], {}, 0, other_windows={week.series: week})[1] == []
    week = replace(week, values={"ece": 0.02})
    (fired,) = evaluate_rules([relative], [now], {}, 0, other_windows={week.series: week})[1]
    assert fired.alert.values["ece_ratio"] == pytest.approx(5.0)


def test_an_alert_carries_the_values_of_its_latest_evidence() -> None:
    held = rule(metric="ece", op=">", threshold=0.05, **{"for": "10m"})
    states, _ = evaluate_rules([held], [result(EU, ece=0.06)], {}, 0)
    ((kind, values),) = [
        (t.kind, dict(t.alert.values))
        for t in evaluate_rules([held], [result(EU, ece=0.08)], states, 10 * MIN)[1]
    ]
    assert (kind, values) == ("firing", {"ece": 0.08})  # fired on 0.08, not the pending 0.06
    states, _ = evaluate_rules([held], [result(EU, ece=0.08)], states, 10 * MIN)
    states, transitions = evaluate_rules([held], [result(EU, ece=0.09)], states, 11 * MIN)
    assert transitions == []
    (alert,) = states.values()
    assert (alert.state, dict(alert.values)) == ("firing", {"ece": 0.09})

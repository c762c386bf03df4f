"""The shipped multi-class rules (alerts/calmon-rules.yaml) on the simulator's
multi-class scenarios: silent before the drift, firing after it, and for the drifting
class only."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from monitor.core.alerts import AlertState
from monitor.core.series import SeriesWindow
from monitor.metrics.aggregates import EventAggregate
from monitor.metrics.multiclass import MulticlassAggregate
from monitor.rules.engine import evaluate_rules
from monitor.rules.model import load_rules
from monitor.settings import EvaluationSettings
from monitor.sim.scenario import Events, generate, load_scenario
from monitor.store.aggregates import WindowAggregate
from monitor.windows.evaluate import evaluate
from monitor.windows.multiclass import evaluate_multiclass

ROOT = Path(__file__).resolve().parents[3]
SERIES = SeriesWindow("intent", "v1", "__all__", "24h")
N = 5000
NOW = 1_790_000_000_000


def _aggregate(events: Events, classes: list[str]) -> MulticlassAggregate:
    assert events.probabilities is not None
    aggregate = MulticlassAggregate.empty(classes)
    aggregate.add_predictions(events.probabilities)
    aggregate.add_labelled(events.probabilities, events.label)
    return aggregate


def _fired(scenario_file: str, t: float) -> set[tuple[str, str | None]]:
    """(rule, class) of the shipped rules firing on a window at ``t`` seconds into the
    scenario, against a reference from before its drift, evaluated twice over 31 min."""
    rules = load_rules([ROOT / "alerts" / "calmon-rules.yaml"], webhooks=["recalibrate"])
    scenario = load_scenario(ROOT / "config" / "scenarios" / scenario_file)
    model = scenario.models[0]
    assert model.classes is not None
    rng = np.random.default_rng(11)
    reference = _aggregate(generate(rng, scenario, model, N, t=0.0), model.classes)
    states: dict[str, AlertState] = {}
    fired = set()
    for minutes in (0, 31):
        current = _aggregate(generate(rng, scenario, model, N, t=t), model.classes)
        outcome = evaluate_multiclass(current, reference, EvaluationSettings())
        result = evaluate(
            SERIES,
            WindowAggregate(EventAggregate.empty(), N, 0),
            start_ms=NOW - 86_400_000,
            end_ms=NOW,
            now_ms=NOW,
            references={},
            last_prediction_ms=NOW,
            last_label_ms=NOW,
            settings=EvaluationSettings(),
            multiclass=outcome,
        )
        states, transitions = evaluate_rules(rules, [result], states, NOW + minutes * 60_000)
        fired |= {(t.rule.name, t.alert.class_name) for t in transitions if t.kind == "firing"}
    return fired


def test_the_over_confident_softmax_fires_the_top_label_rule() -> None:
    assert _fired("multiclass-overconfident.yaml", 0.0) == set()
    fired = _fired("multiclass-overconfident.yaml", 3600.0)
    # Pushed towards 0 and 1, every class's probability is distributed otherwise too.
    assert ("TopLabelCalibrationErrorHigh", None) in fired
    assert {rule for rule, _ in fired} == {"TopLabelCalibrationErrorHigh", "ClassProbabilityDrift"}


def test_the_drifting_class_fires_the_class_rule_for_that_class_only() -> None:
    assert _fired("multiclass-class-drift.yaml", 0.0) == set()
    assert _fired("multiclass-class-drift.yaml", 3600.0) == {("ClassProbabilityDrift", "tech")}

"""False alarms of the shipped rules (alerts/calmon-rules.yaml) on a stationary,
well-calibrated stream: 200 evaluations of the 24h and 7d windows, 15 minutes apart,
each window a fresh sample of the same calibrated traffic (20,000 labelled events per
24h), scored by the real evaluation code and rule engine. docs/alerts-and-webhooks.md
states the result."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from monitor.core.results import ReferenceUsed, WindowResult
from monitor.core.series import SeriesWindow
from monitor.metrics.aggregates import EventAggregate
from monitor.metrics.drift import ReferenceProfile
from monitor.rules.engine import AlertState, evaluate_rules
from monitor.rules.model import load_rules
from monitor.settings import EvaluationSettings
from monitor.store.aggregates import WindowAggregate
from monitor.windows.evaluate import evaluate, to_datetime

ROOT = Path(__file__).resolve().parents[3]
EVALUATIONS = 200
STEP_MS = 15 * 60_000
PER_DAY = 20_000


def calibrated_window(rng: np.random.Generator, n: int) -> tuple[EventAggregate, np.ndarray]:
    raw = rng.normal(-1.2, 1.3, n)
    p = 1 / (1 + np.exp(-raw))
    y = (rng.uniform(size=n) < p).astype(np.int64)
    aggregate = EventAggregate.empty()
    aggregate.add_scores(raw)
    aggregate.add_probabilities(p)
    aggregate.add_labelled(p, y)
    return aggregate, raw


def result(
    rng: np.random.Generator,
    window: str,
    n: int,
    now_ms: int,
    reference: dict,  # type: ignore[type-arg]
) -> WindowResult:
    aggregate, _ = calibrated_window(rng, n)
    return evaluate(
        SeriesWindow("fraud", "__all__", "__all__", window),
        WindowAggregate(aggregate, n, 1),
        start_ms=now_ms - 86_400_000,
        end_ms=now_ms,
        now_ms=now_ms,
        references=reference,
        reference_used=ReferenceUsed(
            "snapshot",
            to_datetime(now_ms - 30 * 86_400_000),
            to_datetime(now_ms - 23 * 86_400_000),
            {distribution: profile.count for distribution, profile in reference.items()},
        ),
        last_prediction_ms=now_ms - 1_000,
        last_label_ms=now_ms - 60_000,
        settings=EvaluationSettings(bootstrap_resamples=200),
    )


def test_shipped_rules_do_not_fire_on_a_stationary_calibrated_stream() -> None:
    rules = load_rules([ROOT / "alerts" / "calmon-rules.yaml"], webhooks=["recalibrate"])
    rng = np.random.default_rng(2026)
    _, reference_raw = calibrated_window(rng, PER_DAY)
    reference_p = 1 / (1 + np.exp(-reference_raw))
    references = {
        "raw_score": ReferenceProfile.fit(reference_raw, kind="raw_score"),
        "probability": ReferenceProfile.fit(reference_p, kind="probability"),
    }
    states: dict[str, AlertState] = {}
    fired = []
    now = 1_790_000_000_000
    for _ in range(EVALUATIONS):
        now += STEP_MS
        day = result(rng, "24h", PER_DAY, now, references)
        week = result(rng, "7d", 7 * PER_DAY, now, references)
        states, transitions = evaluate_rules(
            rules, [day, week], states, now, other_windows={week.series: week}
        )
        fired += [t for t in transitions if t.kind == "firing"]
    assert [(t.rule.name, dict(t.alert.values)) for t in fired] == []


def test_the_metric_catalogue_is_what_an_evaluation_produces() -> None:
    # Rules validate against, and the exporter exports, metric_names: it must list every
    # key a real window evaluation writes, and nothing it never writes.
    from monitor.windows import metric_names

    rng = np.random.default_rng(1)
    _, raw = calibrated_window(rng, PER_DAY)
    references = {
        "raw_score": ReferenceProfile.fit(raw, kind="raw_score"),
        "probability": ReferenceProfile.fit(1 / (1 + np.exp(-raw)), kind="probability"),
    }
    produced = set(result(rng, "24h", PER_DAY, 1_790_000_000_000, references).values)
    # The sequential detector's and the reference thresholds' values come from the window
    # job's store reads (tests/integration/windows/ checks them there).
    job_only = set(metric_names.SEQUENTIAL) | set(metric_names.REFERENCE_STATISTICS)
    expected = metric_names.ALL_KEYS - set(metric_names.LABEL_DELAY_QUANTILES.values())
    assert produced == expected - job_only - metric_names.MULTICLASS_ONLY_KEYS


def test_the_multiclass_catalogue_is_what_a_multiclass_evaluation_produces() -> None:
    from monitor.metrics.multiclass import MulticlassAggregate
    from monitor.windows import metric_names
    from monitor.windows.multiclass import evaluate_multiclass

    rng = np.random.default_rng(2)
    logits = rng.normal(0, 1.5, (3000, 3))
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = rng.integers(0, 3, 3000)
    aggregate = MulticlassAggregate.empty(["a", "b", "c"])
    aggregate.add_predictions(p)
    aggregate.add_labelled(p, y)
    out = evaluate_multiclass(aggregate, aggregate, EvaluationSettings())
    assert metric_names.MULTICLASS_ONLY_KEYS <= set(out.values) <= metric_names.ALL_KEYS
    for found in out.classes.values():
        assert set(found.values) == set(metric_names.CLASS_METRICS)

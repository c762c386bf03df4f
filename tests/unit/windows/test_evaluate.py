"""What a window evaluation says about drift's inputs: how many events of each
distribution the window and its reference hold, so that "too few events" and "no
reference" can be told apart (alert CalmonDriftUnmeasured)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from monitor.core.results import ReferenceUsed
from monitor.core.series import SeriesWindow
from monitor.metrics.aggregates import EventAggregate
from monitor.metrics.drift import ReferenceProfile
from monitor.settings import EvaluationSettings
from monitor.store.aggregates import WindowAggregate
from monitor.windows.evaluate import evaluate

NOW = 1_790_000_000_000
AT = datetime(2026, 11, 1, tzinfo=UTC)


def evaluated(series: SeriesWindow, probabilities: np.ndarray, used: ReferenceUsed | None):
    aggregate = EventAggregate.empty()
    aggregate.add_probabilities(probabilities)  # a model that sends no raw scores
    reference = ReferenceProfile.fit(np.linspace(0.05, 0.95, 4000), kind="probability")
    return evaluate(
        series,
        WindowAggregate(aggregate, len(probabilities), 0),
        start_ms=NOW - 86_400_000,
        end_ms=NOW,
        now_ms=NOW,
        references={"raw_score": None, "probability": reference if used else None},
        reference_used=used,
        last_prediction_ms=NOW,
        last_label_ms=None,
        settings=EvaluationSettings(min_predictions=100),
    ).values


def test_window_and_reference_counts_are_there_whatever_the_sample_count() -> None:
    used = ReferenceUsed("snapshot", AT, AT, {"raw_score": 0, "probability": 4000})
    series = SeriesWindow("ctr", "v1", "__all__", "24h")
    rng = np.random.default_rng(3)

    few = evaluated(series, rng.uniform(0.1, 0.9, 60), used)
    assert {k: v for k, v in few.items() if "drift" in k or "psi" in k} == {
        "drift_window_events_raw_score": 0.0,
        "drift_window_events_probability": 60.0,
        "drift_reference_events_raw_score": 0.0,
        "drift_reference_events_probability": 4000.0,
    }

    enough = evaluated(series, rng.uniform(0.1, 0.9, 600), used)
    assert enough["drift_window_events_probability"] == 600.0
    assert "psi_probability" in enough and "psi_raw_score" not in enough


def test_a_series_without_a_reference_reports_only_the_window() -> None:
    # A segment's __other__ series is never measured for drift: no reference count.
    values = evaluated(
        SeriesWindow("ctr", "v1", "region=__other__", "24h"), np.full(300, 0.4), None
    )
    assert values["drift_window_events_probability"] == 300.0
    assert not any(key.startswith("drift_reference_events") for key in values)


def test_estimates_come_before_the_labels_and_gaps_with_them() -> None:
    series = SeriesWindow("ctr", "v1", "__all__", "24h")
    p = np.random.default_rng(4).uniform(0.05, 0.95, 600)
    unlabelled = evaluated(series, p, None)
    assert unlabelled["estimated_brier_score"] == pytest.approx(np.mean(p * (1 - p)), abs=5e-5)
    assert {"estimated_log_loss", "estimated_accuracy_score", "estimated_roc_auc_score"} <= set(
        unlabelled
    )
    assert not any(key.endswith("_gap") for key in unlabelled)  # nothing to compare yet
    assert "estimated_brier_score" not in evaluated(series, p[:60], None)  # too few

"""The sequential detector through a real store (SQLite and PostgreSQL): the window job's
CUSUM equals one computed here from the raw events minute by minute, and a `kind:
sequential` rule fires on it once calibration drifts, not before."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from monitor.core.records import Label, Prediction
from monitor.rules.engine import evaluate_rules
from monitor.rules.model import Rule
from monitor.settings import EvaluationSettings, Settings, WindowSettings
from monitor.store.write.event_store import EventStore
from monitor.windows import metric_names
from monitor.windows.jobs import JobMetrics, WindowJob

MINUTE = 60_000
NOW = 1_790_000_000_000 - 1_790_000_000_000 % MINUTE + 30_000  # half-way into a minute
PER_MINUTE = 200


def _events(drift_from_minute: int, shift: float, seed: int) -> tuple[list[object], dict]:
    """60 minutes of labelled predictions, labels drawn at p + shift from a given minute."""
    rng = np.random.default_rng(seed)
    records: list[object] = []
    truth: dict[int, tuple[float, float]] = {}  # minute start -> (sum y - p, sum p(1-p))
    first = NOW - NOW % MINUTE - 59 * MINUTE
    for minute in range(60):
        start = first + minute * MINUTE
        p = rng.uniform(0.1, 0.6, PER_MINUTE)
        rate = p + (shift if minute >= drift_from_minute else 0.0)
        y = (rng.random(PER_MINUTE) < rate).astype(int)
        for i in range(PER_MINUTE):
            event = f"{minute}-{i}"
            records.append(Prediction("m", event, "v1", start + i * 100, probability=float(p[i])))
            records.append(Label("m", event, int(y[i]), start + i * 100 + 1))
        truth[start] = (float((y - p).sum()), float((p * (1 - p)).sum()))
    return records, truth


def _job(engine: Engine) -> WindowJob:
    settings = Settings(
        evaluation=EvaluationSettings(min_labelled=50, bootstrap_resamples=0),
        windows=[WindowSettings(name="1h", length=3600, every=60)],
    )
    return WindowJob(
        engine,
        settings,
        settings.windows[0],
        owner="a",
        metrics=JobMetrics(CollectorRegistry()),
        clock_ms=lambda: NOW,
    )


def _cusum_by_hand(truth: dict[int, tuple[float, float]], k: float) -> tuple[float, float]:
    under = over = 0.0
    for start in sorted(truth):
        residual, variance = truth[start]
        z = residual / np.sqrt(variance)
        under, over = max(0.0, under + z - k), max(0.0, over - z - k)
    return under, over


@pytest.mark.parametrize("shift", [0.0, 0.08])
def test_window_job_cusum_equals_the_events_minute_by_minute(
    migrated_engine: Engine, shift: float
) -> None:
    records, truth = _events(drift_from_minute=45, shift=shift, seed=int(shift * 100))
    EventStore(migrated_engine, clock_ms=lambda: NOW).write_batch(records)  # type: ignore[arg-type]
    (result,) = [
        r
        for r in _job(migrated_engine).evaluate_all(NOW)
        if r.series.segment == "__all__" and r.series.model_version == "v1"
    ]
    assert set(metric_names.SEQUENTIAL) <= set(result.values)
    under, over = _cusum_by_hand(truth, k=0.5)
    assert result.values["calibration_cusum_under"] == pytest.approx(under, abs=1e-9)
    assert result.values["calibration_cusum_over"] == pytest.approx(over, abs=1e-9)
    limit = result.values["calibration_cusum_limit"]
    assert result.values["calibration_cusum_ratio"] == pytest.approx(max(under, over) / limit)

    rule = Rule.model_validate({"name": "CalibrationShift", "kind": "sequential"})
    _, transitions = evaluate_rules([rule], [result], {}, NOW)
    # 15 minutes of labels 0.08 above p at 200 a minute: z ~ 1.8 per minute, far past
    # the limit; calibrated: the CUSUM stays below it (and this seed is not a false alarm).
    assert [t.kind for t in transitions] == (["firing"] if shift else [])

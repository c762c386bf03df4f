"""Thresholds from the reference through a real store (SQLite and PostgreSQL): the window
job's mean and sd of ECE over reference chunks equal ECE computed here with numpy on each
chunk's raw events; a `from_reference: 3 sigma` rule fires on a miscalibrated window and
not on a calibrated one; a reference shorter than 5 windows gives no threshold."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from monitor.core.records import Label, Prediction
from monitor.rules.engine import evaluate_rules
from monitor.rules.model import Rule
from monitor.settings import EvaluationSettings, ReferenceSettings, Settings, WindowSettings
from monitor.store.write.event_store import EventStore
from monitor.windows.jobs import JobMetrics, WindowJob

HOUR = 3_600_000
NOW = 1_790_000_000_000 - 1_790_000_000_000 % HOUR  # on the hour: windows are whole hours
REFERENCE_START = NOW - 30 * HOUR
REFERENCE_HOURS = 12
PER_HOUR = 400
RULE = Rule.model_validate(
    {
        "name": "EceAboveReference",
        "metric": "ece",
        "op": ">",
        "threshold": {"from_reference": "3 sigma"},
    }
)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def _hour(rng: np.random.Generator, start: int, prefix: str, shift: float) -> tuple[list, float]:
    p = rng.uniform(0.05, 0.85, PER_HOUR)
    y = (rng.random(PER_HOUR) < np.clip(p + shift, 0, 1)).astype(int)
    records: list[object] = []
    for i in range(PER_HOUR):
        at = start + i * (HOUR // PER_HOUR)
        records += [
            Prediction("m", f"{prefix}{i}", "v1", at, probability=float(p[i])),
            Label("m", f"{prefix}{i}", int(y[i]), at + 1),
        ]
    return records, _ece(p, y)


def _ece(p: np.ndarray, y: np.ndarray) -> float:
    index = np.minimum((p * 10).astype(int), 9)
    gaps = np.bincount(index, weights=y - p, minlength=10)
    return float(np.abs(gaps).sum() / p.size)


def _job(engine: Engine, reference_hours: int) -> WindowJob:
    settings = Settings(
        evaluation=EvaluationSettings(min_labelled=100, bootstrap_resamples=0),
        windows=[WindowSettings(name="1h", length=3600, every=60)],
        reference=ReferenceSettings(
            mode="fixed",
            start=_iso(REFERENCE_START),
            end=_iso(REFERENCE_START + reference_hours * HOUR),
        ),
    )
    return WindowJob(
        engine,
        settings,
        settings.windows[0],
        owner="a",
        metrics=JobMetrics(CollectorRegistry()),
        clock_ms=lambda: NOW,
        reference_metrics=frozenset({"ece"}),
    )


@pytest.mark.parametrize("shift", [0.0, 0.12])
def test_threshold_is_mean_plus_3_sd_of_the_reference_chunks(
    migrated_engine: Engine, shift: float
) -> None:
    rng = np.random.default_rng(5)
    records: list[object] = []
    chunk_eces = []
    for hour in range(REFERENCE_HOURS):
        batch, ece = _hour(rng, REFERENCE_START + hour * HOUR, f"r{hour}-", 0.0)
        records += batch
        chunk_eces.append(ece)
    current, _ = _hour(rng, NOW - HOUR, "c-", shift)
    EventStore(migrated_engine, clock_ms=lambda: NOW).write_batch(records + current)  # type: ignore[arg-type]

    results = _job(migrated_engine, REFERENCE_HOURS).evaluate_all(NOW)
    (result,) = [r for r in results if r.series.model_version == "v1"]
    assert result.values["reference_chunks"] == REFERENCE_HOURS
    assert result.values["ece_reference_mean"] == pytest.approx(np.mean(chunk_eces), abs=1e-9)
    assert result.values["ece_reference_sd"] == pytest.approx(np.std(chunk_eces, ddof=1), abs=1e-9)

    _, transitions = evaluate_rules([RULE], [result], {}, NOW)
    threshold = np.mean(chunk_eces) + 3 * np.std(chunk_eces, ddof=1)
    assert [t.kind for t in transitions] == (["firing"] if result.values["ece"] > threshold else [])
    # The 0.12 shift is far above the reference's noise; the calibrated hour is not.
    assert bool(transitions) == (shift > 0)
    if transitions:
        assert transitions[0].alert.values["ece_threshold"] == pytest.approx(threshold)


def test_a_reference_shorter_than_five_windows_gives_no_threshold(sqlite_engine: Engine) -> None:
    rng = np.random.default_rng(6)
    records: list[object] = []
    for hour in range(3):
        records += _hour(rng, REFERENCE_START + hour * HOUR, f"r{hour}-", 0.0)[0]
    records += _hour(rng, NOW - HOUR, "c-", 0.3)[0]
    EventStore(sqlite_engine, clock_ms=lambda: NOW).write_batch(records)  # type: ignore[arg-type]
    (result,) = [
        r for r in _job(sqlite_engine, 3).evaluate_all(NOW) if r.series.model_version == "v1"
    ]
    assert result.values["reference_chunks"] == 3
    assert "ece_reference_mean" not in result.values
    # No evidence either way: a badly miscalibrated window neither fires nor resolves.
    assert evaluate_rules([RULE], [result], {}, NOW)[1] == []

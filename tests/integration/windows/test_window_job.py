"""Window jobs on a real SQLite store: segment capping, insufficient samples,
references per model version (baseline snapshot vs a new version), slot claims."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from monitor.core.records import Label, Prediction
from monitor.core.results import ReferenceUsed, WindowResult
from monitor.core.times import to_datetime
from monitor.metrics import calibration as core
from monitor.metrics.drift import ReferenceProfile, population_stability_index
from monitor.settings import EvaluationSettings, Settings, WindowSettings
from monitor.store.references import save_references
from monitor.store.write.event_store import EventStore
from monitor.windows.jobs import JobMetrics, WindowJob
from monitor.windows.references import fit_period

NOW = 1_790_000_000_000
HOUR = 3_600_000


@pytest.fixture
def engine(sqlite_engine: Engine) -> Engine:
    return sqlite_engine


def _job(engine: Engine, owner: str = "a", **evaluation: object) -> WindowJob:
    settings = Settings(
        evaluation=EvaluationSettings(**{"min_labelled": 50, "min_predictions": 50, **evaluation}),  # type: ignore[arg-type]
        windows=[WindowSettings(name="1h", length=3600, every=60)],
    )
    return WindowJob(
        engine,
        settings,
        settings.windows[0],
        owner=owner,
        metrics=JobMetrics(CollectorRegistry()),
        clock_ms=lambda: NOW,
    )


def _by_series(results: list[WindowResult]) -> dict[tuple[str, str], WindowResult]:
    return {(r.series.model_version, r.series.segment): r for r in results}


def test_top_k_segments_and_other_add_up(engine: Engine) -> None:
    store = EventStore(engine, segment_keys=["shop"], clock_ms=lambda: NOW)
    rng = np.random.default_rng(0)
    n = 3000
    shop = rng.zipf(1.5, n) % 40  # a long tail of shops
    p = rng.uniform(0.05, 0.95, n)
    y = (rng.uniform(size=n) < p).astype(int)
    store.write_batch(
        [
            Prediction(
                "m",
                str(i),
                "v1",
                NOW - HOUR + i,
                probability=float(p[i]),
                segment={"shop": f"s{shop[i]}"},
            )
            for i in range(n)
        ]
        + [Label("m", str(i), int(y[i]), NOW - 1000) for i in range(n)]
    )
    results = _by_series(_job(engine, max_segment_values=5).evaluate_all(NOW))
    segments = {s for v, s in results if v == "v1"}
    assert len(segments) == 1 + 5 + 1 and "shop=__other__" in segments
    counts = {s: results[("v1", s)].predictions for s in segments if s != "__all__"}
    assert sum(counts.values()) == n == results[("v1", "__all__")].predictions
    top = {
        f"s{v}"
        for v, _ in sorted(
            zip(*np.unique(shop, return_counts=True), strict=True), key=lambda t: -t[1]
        )[:5]
    }
    assert {s.split("=")[1] for s in segments if s not in ("__all__", "shop=__other__")} == top
    other = np.array([f"s{v}" not in top for v in shop])
    assert results[("v1", "shop=__other__")].values["ece"] == pytest.approx(
        core.expected_calibration_error(p[other], y[other]), abs=1e-9
    )


def test_below_minimum_samples_metrics_are_absent(engine: Engine) -> None:
    store = EventStore(engine, clock_ms=lambda: NOW)
    store.write_batch(
        [Prediction("m", str(i), "v1", NOW - 1000, probability=0.5) for i in range(30)]
        + [Label("m", str(i), i % 2, NOW - 10) for i in range(30)]
    )
    values = _by_series(_job(engine).evaluate_all(NOW))[("v1", "__all__")].values
    assert values["window_labelled"] == 30
    assert "ece" not in values and "brier_score" not in values


def test_a_new_model_version_does_not_reuse_the_old_versions_reference(engine: Engine) -> None:
    store = EventStore(engine, clock_ms=lambda: NOW)
    rng = np.random.default_rng(1)
    old = rng.normal(0, 1, 2000)
    shifted = rng.normal(0.8, 1, 2000)
    store.write_batch(
        [
            Prediction("m", f"a{i}", "v1", NOW - 3 * HOUR + i, raw_score=float(old[i]))
            for i in range(2000)
        ]
        + [
            Prediction("m", f"b{i}", "v1", NOW - HOUR // 2 + i, raw_score=float(shifted[i]))
            for i in range(1000)
        ]
        + [
            Prediction("m", f"c{i}", "v2", NOW - HOUR // 2 + i, raw_score=float(shifted[1000 + i]))
            for i in range(1000)
        ]
    )
    references = fit_period(
        engine,
        model_id="m",
        model_version="v1",
        segment="__all__",
        start_ms=NOW - 4 * HOUR,
        end_ms=NOW - 2 * HOUR,
        now_ms=NOW - 2 * HOUR,
        psi_bins=10,
    )[0]
    save_references(
        engine,
        model_id="m",
        model_version="v1",
        segment="__all__",
        references=references,
        start_ms=NOW - 4 * HOUR,
        end_ms=NOW - 2 * HOUR,
        now_ms=NOW,
        psi_bins=10,
    )
    results = _by_series(_job(engine).evaluate_all(NOW))
    # v1 is scored against its snapshot, exactly as the core would score those values.
    expected = population_stability_index(
        ReferenceProfile.fit(old, kind="raw_score"), shifted[:1000]
    )
    assert results[("v1", "__all__")].values["psi_raw_score"] == pytest.approx(expected, abs=1e-12)
    assert expected > 0.25
    # v2 has no snapshot and no events before this window: no reference, no drift value.
    assert "psi_raw_score" not in results[("v2", "__all__")].values
    # Each result says what it was measured against.
    assert results[("v1", "__all__")].reference == ReferenceUsed(
        "snapshot",
        to_datetime(NOW - 4 * HOUR),
        to_datetime(NOW - 2 * HOUR),
        {"raw_score": 2000, "probability": 0},
    )
    window_start = NOW - HOUR - NOW % 60_000  # the window's first whole minute
    assert results[("v2", "__all__")].reference == ReferenceUsed(
        "trailing",
        to_datetime(window_start - HOUR),
        to_datetime(window_start),
        {"raw_score": 0, "probability": 0},
    )


def test_each_slot_runs_once_across_replicas(engine: Engine) -> None:
    EventStore(engine, clock_ms=lambda: NOW).write_batch(
        [Prediction("m", "1", "v1", NOW - 1000, probability=0.3)]
    )
    first, second = _job(engine, owner="replica-a"), _job(engine, owner="replica-b")
    assert first.run() is not None
    assert second.run() is None  # same slot: already claimed


def test_the_trailing_reference_ends_where_the_window_begins(engine: Engine) -> None:
    # NOW is 20 s past a minute: the window [NOW - 1h, NOW) begins at the whole minute
    # before (buckets.window_edge), so its events of that minute are not its reference's.
    # The reference once ended at NOW - 1h rounded up, and counted them twice.
    assert NOW % 60_000 == 20_000
    window_start = NOW - HOUR - 20_000
    rng = np.random.default_rng(7)
    before, first_minute, rest = (rng.normal(0, 1, n) for n in (1500, 300, 1200))
    EventStore(engine, clock_ms=lambda: NOW).write_batch(
        [
            Prediction("m", f"a{i}", "v1", window_start - HOUR + i * 2000, raw_score=float(s))
            for i, s in enumerate(before)
        ]
        + [
            Prediction("m", f"b{i}", "v1", window_start + i * 100, raw_score=float(s))
            for i, s in enumerate(first_minute)
        ]
        + [
            Prediction("m", f"c{i}", "v1", window_start + 60_000 + i * 2000, raw_score=float(s))
            for i, s in enumerate(rest)
        ]
    )
    result = _by_series(_job(engine).evaluate_all(NOW))[("v1", "__all__")]
    assert result.predictions == 1500
    assert result.reference is not None
    assert result.reference.events["raw_score"] == 1500
    assert (result.reference.start, result.reference.end) == (
        to_datetime(window_start - HOUR),
        to_datetime(window_start),
    )
    current = np.concatenate([first_minute, rest])
    assert result.values["psi_raw_score"] == pytest.approx(
        population_stability_index(ReferenceProfile.fit(before, kind="raw_score"), current),
        abs=1e-12,
    )


def test_a_series_silent_past_retire_series_after_is_no_longer_evaluated(engine: Engine) -> None:
    """v1 of model m was replaced by v2 a day ago; its series stay known to the store.
    With retire_series_after at 12 h, v1's (silent for 26 h) are left out; a label of one
    of its events brings v1 back; v2 is evaluated throughout."""
    store = EventStore(engine, segment_keys=["shop"], clock_ms=lambda: NOW)
    day = 24 * HOUR
    store.write_batch(
        [
            Prediction(
                "m", "old", "v1", NOW - day - 2 * HOUR, probability=0.3, segment={"shop": "a"}
            ),
            Prediction("m", "new", "v2", NOW - 10 * 60_000, probability=0.6, segment={"shop": "a"}),
        ]
    )
    settings = {"retire_series_after": 12 * HOUR / 1000}
    keep_everything = {
        (r.series.model_version, r.series.segment) for r in _job(engine).evaluate_all(NOW)
    }
    assert ("v1", "__all__") in keep_everything and ("v1", "shop=a") not in keep_everything
    results = _job(engine, **settings).evaluate_all(NOW)
    assert {r.series.model_version for r in results} == {"v2", "__all__"}
    # Exactly at the limit a series is still live: retired once strictly older.
    edge = NOW - day - 2 * HOUR + 12 * HOUR
    assert "v1" in {r.series.model_version for r in _job(engine, **settings).evaluate_all(edge)}
    assert "v1" not in {
        r.series.model_version for r in _job(engine, **settings).evaluate_all(edge + 1)
    }
    # A late label of v1's event is activity: v1 is evaluated again (its window empty).
    store.write_batch([Label("m", "old", 1, NOW - 60_000)])
    back = _by_series(_job(engine, **settings).evaluate_all(NOW))
    assert back[("v1", "__all__")].predictions == 0


def test_retire_series_after_must_outlast_the_longest_window() -> None:
    with pytest.raises(ValueError, match="retire_series_after must be longer than the longest"):
        Settings(
            evaluation=EvaluationSettings(retire_series_after=3600),
            windows=[WindowSettings(name="1h", length=3600, every=60)],
        )

"""A reference period fixed in the config, on SQLite and PostgreSQL: fitted afresh until
it settles, then stored, so that retention deleting its buckets changes nothing; a new
period refits it and a `calmon baseline` snapshot wins over it."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import orjson
import pytest
from sqlalchemy import Engine, delete

from monitor.core.records import Prediction
from monitor.core.results import ReferenceUsed
from monitor.core.series import ALL
from monitor.core.times import to_datetime
from monitor.metrics.drift import ReferenceProfile, population_stability_index
from monitor.settings import ReferenceSettings
from monitor.store.db import migrate
from monitor.store.db.engine import make_engine
from monitor.store.db.tables import Reference
from monitor.store.maintenance.retention import RetentionPolicy, apply_retention
from monitor.store.references import FIXED, SNAPSHOT, insert_references, load_stored
from monitor.store.write.event_store import EventStore
from monitor.windows.references import (
    FIXED_SETTLE_MS,
    ReferenceResolver,
    fit_period,
    snapshot_period,
)

MINUTE, HOUR, DAY = 60_000, 3_600_000, 86_400_000
# A period that starts and ends off the hour, so that its edges move as it ages.
START = 20_600 * DAY + 10 * HOUR + 17 * MINUTE  # 2026-05-27T10:17Z
END = START + DAY


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def _fixed(start_ms: int = START, end_ms: int = END, psi_bins: int = 10) -> ReferenceSettings:
    return ReferenceSettings(
        mode="fixed", start=_iso(start_ms), end=_iso(end_ms), psi_bins=psi_bins
    )


def _write(
    engine: Engine, scores: np.ndarray, *, prefix: str, start_ms: int = START, span_ms: int = DAY
) -> None:
    """Raw scores spread evenly over [start, start + span)."""
    step = span_ms // len(scores)
    EventStore(engine, clock_ms=lambda: END).write_batch(
        [
            Prediction("m", f"{prefix}{i}", "v1", start_ms + i * step, raw_score=float(s))
            for i, s in enumerate(scores)
        ]
    )


def _raw_score_reference(
    engine: Engine, settings: ReferenceSettings, now_ms: int, *, keep_fixed: bool = True
) -> ReferenceProfile | None:
    resolver = ReferenceResolver(engine, settings, now_ms=now_ms, keep_fixed=keep_fixed)
    # The current window's bounds do not matter to a fixed reference.
    resolved = resolver.resolve("m", "v1", ALL, now_ms - HOUR, now_ms)
    return resolved.references["raw_score"]


def _assert_is_fit_of(profile: ReferenceProfile | None, scores: np.ndarray) -> None:
    """The same reference the metrics core fits on the raw values themselves."""
    expected = ReferenceProfile.fit(scores, kind="raw_score")
    assert profile is not None
    assert profile.count == len(scores)
    assert np.array_equal(profile.psi_edges, expected.psi_edges)
    shifted = np.random.default_rng(9).normal(0.5, 1, 3000)
    assert population_stability_index(profile, shifted) == pytest.approx(
        population_stability_index(expected, shifted), abs=1e-12
    )


def test_a_settled_fixed_reference_outlives_the_buckets_it_was_fitted_from(
    migrated_engine: Engine,
) -> None:
    scores = np.random.default_rng(1).normal(0, 1, 2000)
    _write(migrated_engine, scores, prefix="a")
    settings = _fixed()

    # Not settled yet: fitted, not stored.
    _assert_is_fit_of(_raw_score_reference(migrated_engine, settings, END + MINUTE), scores)
    assert load_stored(migrated_engine, "m", "v1", ALL) is None

    settled = END + FIXED_SETTLE_MS
    _assert_is_fit_of(_raw_score_reference(migrated_engine, settings, settled), scores)
    stored = load_stored(migrated_engine, "m", "v1", ALL)
    assert stored is not None
    assert stored.used() == ReferenceUsed(
        FIXED, to_datetime(START), to_datetime(END), {"raw_score": 2000, "probability": 0}
    )

    def refit(now_ms: int) -> ReferenceProfile | None:
        return fit_period(
            migrated_engine,
            model_id="m",
            model_version="v1",
            segment=ALL,
            start_ms=START,
            end_ms=END,
            psi_bins=10,
            now_ms=now_ms,
        )[0]["raw_score"]

    # Ten days on, a fit from the aggregates would have moved the edges to 10:00 and
    # lost the period's last 17 minutes; the stored reference has not.
    ten_days_on = refit(START + 10 * DAY)
    assert ten_days_on is not None and ten_days_on.count == np.sum(
        np.arange(2000) * (DAY // 2000) < DAY - 17 * MINUTE
    )
    _assert_is_fit_of(_raw_score_reference(migrated_engine, settings, START + 10 * DAY), scores)

    # 401 days on, retention has deleted every bucket of the period: a fit finds
    # nothing, the stored reference is what it was.
    later = START + 401 * DAY
    apply_retention(migrated_engine, RetentionPolicy(), later)
    assert refit(later) is None
    _assert_is_fit_of(_raw_score_reference(migrated_engine, settings, later), scores)


def test_late_predictions_count_until_the_period_settles(migrated_engine: Engine) -> None:
    rng = np.random.default_rng(2)
    first, late, too_late = rng.normal(0, 1, 1000), rng.normal(0, 1, 500), rng.normal(3, 1, 200)
    settings = _fixed()
    _write(migrated_engine, first, prefix="a")
    _assert_is_fit_of(_raw_score_reference(migrated_engine, settings, END + MINUTE), first)

    _write(migrated_engine, late, prefix="b")  # still inside the period
    both = np.concatenate([first, late])
    just_before = END + FIXED_SETTLE_MS - 1
    _assert_is_fit_of(_raw_score_reference(migrated_engine, settings, just_before), both)
    assert load_stored(migrated_engine, "m", "v1", ALL) is None

    _assert_is_fit_of(_raw_score_reference(migrated_engine, settings, END + FIXED_SETTLE_MS), both)
    _write(migrated_engine, too_late, prefix="c")  # after it settled: not counted
    _assert_is_fit_of(_raw_score_reference(migrated_engine, settings, END + 2 * HOUR), both)


def test_a_new_period_refits_and_a_baseline_snapshot_wins(migrated_engine: Engine) -> None:
    rng = np.random.default_rng(3)
    week_one, week_two = rng.normal(0, 1, 1000), rng.normal(1, 2, 1000)
    # Evaluated days later, the periods' edges move to the hour: the events stay inside.
    _write(migrated_engine, week_one, prefix="a", span_ms=22 * HOUR)
    _write(migrated_engine, week_two, prefix="b", start_ms=START + 7 * DAY, span_ms=22 * HOUR)
    now = START + 10 * DAY
    _assert_is_fit_of(_raw_score_reference(migrated_engine, _fixed(), now), week_one)

    moved = _fixed(START + 7 * DAY, END + 7 * DAY)
    _assert_is_fit_of(_raw_score_reference(migrated_engine, moved, now), week_two)
    stored = load_stored(migrated_engine, "m", "v1", ALL)
    assert stored is not None
    assert (stored.start_ms, stored.end_ms) == (START + 7 * DAY, END + 7 * DAY)

    snapshot_period(
        migrated_engine,
        model_id="m",
        model_version="v1",
        start_ms=START,
        end_ms=END,
        psi_bins=10,
        now_ms=now,
    )
    # The snapshot replaced the stored fixed reference, and a job under the moved
    # period, or the first one, does not replace the snapshot.
    for settings in (moved, _fixed()):
        _assert_is_fit_of(_raw_score_reference(migrated_engine, settings, now), week_one)
        stored = load_stored(migrated_engine, "m", "v1", ALL)
        assert stored is not None and stored.source == SNAPSHOT


def test_a_report_reads_a_fixed_reference_but_never_stores_one(migrated_engine: Engine) -> None:
    scores = np.random.default_rng(4).normal(0, 1, 1000)
    _write(migrated_engine, scores, prefix="a")
    reference = _raw_score_reference(migrated_engine, _fixed(), END + DAY, keep_fixed=False)
    _assert_is_fit_of(reference, scores)
    assert load_stored(migrated_engine, "m", "v1", ALL) is None


def test_changing_psi_bins_refits_a_stored_fixed_reference(migrated_engine: Engine) -> None:
    scores = np.random.default_rng(5).normal(0, 1, 2000)
    _write(migrated_engine, scores, prefix="a")
    settled = END + FIXED_SETTLE_MS
    ten = _raw_score_reference(migrated_engine, _fixed(), settled)
    assert ten is not None and ten.n_bins == 10
    twenty = _raw_score_reference(migrated_engine, _fixed(psi_bins=20), settled + HOUR)
    expected = ReferenceProfile.fit(scores, kind="raw_score", n_bins=20)
    assert twenty is not None and np.array_equal(twenty.psi_edges, expected.psi_edges)
    stored = load_stored(migrated_engine, "m", "v1", ALL)
    assert stored is not None and stored.psi_bins == 20


def test_a_snapshot_lands_when_a_fixed_write_commits_in_the_middle_of_it(
    postgres_url: str,
) -> None:
    """PostgreSQL runs a baseline and a window job concurrently. Forced order: the
    baseline deletes the series' rows; a job stores the settled fixed reference and
    commits; the baseline inserts its snapshot. The snapshot must win."""
    engine = make_engine(postgres_url)
    migrate.upgrade(engine)
    try:
        old, new = np.random.default_rng(6).normal(0, 1, (2, 1000))
        _write(engine, old, prefix="a")
        _write(engine, new, prefix="b", start_ms=END + DAY)
        snapshot = fit_period(
            engine,
            model_id="m",
            model_version="v1",
            segment=ALL,
            start_ms=END + DAY,
            end_ms=END + 2 * DAY,
            psi_bins=10,
            now_ms=END + 3 * DAY,
        )[0]
        rows = [
            {
                "model_id": "m",
                "model_version": "v1",
                "segment": ALL,
                "distribution": distribution,
                "source": SNAPSHOT,
                "start_ms": END + DAY,
                "end_ms": END + 2 * DAY,
                "created_ms": END + 3 * DAY,
                "psi_bins": 10,
                "profile_json": orjson.dumps(profile.to_dict()).decode(),
            }
            for distribution, profile in snapshot.items()
            if profile is not None
        ]
        with engine.connect() as baseline, baseline.begin():
            baseline.execute(delete(Reference).where(Reference.model_id == "m"))
            # The job, on its own connection, stores the fixed period and commits.
            _raw_score_reference(engine, _fixed(), END + 3 * DAY)
            insert_references(baseline, rows)
        stored = load_stored(engine, "m", "v1", ALL)
        assert stored is not None and stored.source == SNAPSHOT
        _assert_is_fit_of(stored.references["raw_score"], new)
    finally:
        engine.dispose()

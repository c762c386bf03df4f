"""The window cache against a cold read of the same window, on SQLite and PostgreSQL.

Hypothesis interleaves ingest batches (predictions, some of them late, and labels for
events up to five days old), compaction, retention and ticks of two windows (2 h,
minute edges and an hour in the middle; 4 days, an hour-precision start and the
minutes' retention inside its reference) with or without the detector. At every tick
each series' cached window, trailing reference and detector residuals are compared
with what ``store.aggregates`` reads cold (``load_window``, ``load_bucket_residuals``),
the code the job used before the cache: counts bit for bit, float sums within 1e-12 of
the column's largest value (the rounding bound of ``windows/incremental.py`` is below
1e-13 of it for the few hundred updates an example makes).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from monitor.core.records import Label, Prediction, Record
from monitor.core.series import ALL
from monitor.metrics.aggregates import EventAggregate
from monitor.metrics.histogram import SparseHistogram
from monitor.settings import Settings, WindowSettings
from monitor.store.aggregates import list_series, load_bucket_residuals, load_window
from monitor.store.maintenance.compaction import compact_aggregates
from monitor.store.maintenance.retention import RetentionPolicy, apply_retention
from monitor.store.write.event_store import EventStore
from monitor.windows.incremental import SeriesView, WindowCache
from monitor.windows.spans import spans_at

MINUTE, HOUR, DAY = 60_000, 3_600_000, 86_400_000
START = 1_790_000_000_000 + 13 * HOUR + 17 * MINUTE + 23_456
WINDOWS = [
    WindowSettings(name="2h", length=2 * 3600, every=60),
    WindowSettings(name="4d", length=4 * 86400, every=900),
]
_examples = itertools.count()


@dataclass
class World:
    """One example's store and clock: its own model id, so examples never meet."""

    engine: Engine
    model: str
    now: int = START
    events: list[tuple[str, int]] = field(default_factory=list)

    def store(self) -> EventStore:
        return EventStore(self.engine, segment_keys=["region"], clock_ms=lambda: self.now)


write = st.tuples(
    st.just("write"),
    st.integers(1, 30),  # predictions
    st.integers(0, 30),  # labels of earlier events
    st.sampled_from([0, 5 * MINUTE, 2 * HOUR, 5 * DAY]),  # how late predictions may be
    st.integers(0, 2**32 - 1),
)
tick = st.tuples(st.just("tick"), st.sampled_from([0, 40_000, MINUTE, 7 * MINUTE, HOUR, 5 * HOUR]))
steps = st.lists(
    st.one_of(write, write, tick, tick, st.just(("compact",)), st.just(("retention",))),
    min_size=4,
    max_size=16,
)


def _write(world: World, n: int, labels: int, lateness: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    records: list[Record] = []
    for _ in range(n):
        event = f"e{len(world.events)}"
        time = world.now - int(rng.integers(0, lateness + 1))
        world.events.append((event, time))
        p = float(rng.beta(2, 5))
        version = "v1" if rng.uniform() < 0.7 else "v2"
        region = str(rng.choice(["eu", "us"]))
        records.append(
            Prediction(
                world.model, event, version, time, float(rng.normal()), p, {"region": region}
            )
        )
    for index in rng.integers(0, len(world.events), labels):
        event, _ = world.events[index]
        records.append(Label(world.model, event, int(rng.uniform() < 0.3), world.now))
    world.store().write_batch(records)


def _run(world: World, caches: dict[str, WindowCache], plan: list[tuple[object, ...]]) -> None:
    for step in plan:
        if step[0] == "write":
            _write(world, *step[1:])  # type: ignore[arg-type]
        elif step[0] == "compact":
            compact_aggregates(world.engine, world.now, per_transaction=7)
        elif step[0] == "retention":
            apply_retention(world.engine, RetentionPolicy(), world.now)
        else:
            world.now += int(step[1])  # type: ignore[call-overload]
            for window in WINDOWS:
                _check_tick(world, window, caches[window.name])


def _check_tick(world: World, window: WindowSettings, cache: WindowCache) -> None:
    series = [
        (s.model_id, s.model_version, s.segment)
        for s in list_series(world.engine)
        if s.model_id == world.model
    ]
    # Only this example's model: the reads leave the earlier examples' models out.
    views = cache.advance(world.engine, world.now, series, models=[world.model])
    for key, view in views.items():
        _assert_view_is_cold(world, window, key, view)


def _assert_view_is_cold(
    world: World, window: WindowSettings, key: tuple[str, str, str], view: SeriesView
) -> None:
    model, version, segment = key
    length = int(window.length * 1000)
    cold = load_window(
        world.engine,
        model_id=model,
        model_version=version,
        segment=segment,
        start_ms=world.now - length,
        end_ms=world.now,
        now_ms=world.now,
    )
    assert view.window.predictions == cold.predictions
    _assert_same(view.window.aggregate, cold.aggregate)
    assert view.window.aggregate.raw_labelled.keys.size == 0  # not read by the metrics
    spans = spans_at(window, _settings(), world.now)
    start = spans.window[0][1]
    reference = load_window(
        world.engine,
        model_id=model,
        model_version=version,
        segment=segment,
        start_ms=start - length,
        end_ms=start,
        now_ms=world.now,
    ).aggregate
    _assert_same_histogram(view.reference_probabilities, reference.probabilities)
    _assert_same_histogram(view.reference_scores, reference.scores)
    resolution, first = spans.plan[0]
    residuals = load_bucket_residuals(
        world.engine,
        model_id=model,
        model_version=version,
        segment=segment,
        start_ms=first,
        end_ms=world.now,
        resolution_s=resolution,
    )
    assert view.residuals.bucket_start_ms.tolist() == residuals.bucket_start_ms.tolist()
    _assert_close(view.residuals.residual_sums, residuals.residual_sums)
    _assert_close(view.residuals.variances, residuals.variances)


#: Per histogram, the columns that hold integers (counts, sums of 0/1 labels): exact.
EXACT_COLUMNS = {
    "probabilities": [0],
    "labelled": [0, 2],
    "scores": [0],
    "label_delays": [0],
}


def _assert_same(cached: EventAggregate, cold: EventAggregate) -> None:
    for name, exact in EXACT_COLUMNS.items():
        _assert_same_histogram(getattr(cached, name), getattr(cold, name), exact)
    _assert_close(
        np.array([cached.spiegelhalter_numerator, cached.spiegelhalter_variance]),
        np.array([cold.spiegelhalter_numerator, cold.spiegelhalter_variance]),
    )


def _assert_same_histogram(
    cached: SparseHistogram, cold: SparseHistogram, exact: list[int] | None = None
) -> None:
    assert cached.keys.tolist() == cold.keys.tolist()
    for column in exact or [0]:
        assert cached.values[:, column].tolist() == cold.values[:, column].tolist()
    _assert_close(cached.values, cold.values)


def _assert_close(cached: np.ndarray, cold: np.ndarray) -> None:
    assert cached.shape == cold.shape
    scale = max(float(np.abs(cold).max(initial=0.0)), 1.0)
    assert np.abs(cached - cold).max(initial=0.0) <= 1e-12 * scale


def _settings() -> Settings:
    return Settings(windows=WINDOWS)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(plan=steps)
def test_cached_windows_equal_cold_reads(migrated_engine: Engine, plan: list) -> None:  # type: ignore[type-arg]
    world = World(migrated_engine, f"m{next(_examples)}")
    caches = {w.name: WindowCache(w, _settings()) for w in WINDOWS}
    # Some history first, so that windows, references and retention have buckets.
    for hours_back in (100, 60, 30, 3):
        world.now = START - hours_back * HOUR
        _write(world, 40, 10, HOUR, hours_back)
    world.now = START
    compact_aggregates(world.engine, world.now)
    _run(world, caches, [("tick", 0), *plan, ("tick", MINUTE), ("compact",), ("tick", 0)])


def test_all_versions_is_the_sum_of_the_versions(sqlite_engine: Engine) -> None:
    world = World(sqlite_engine, "m")
    _write(world, 200, 100, 3 * HOUR, 1)
    compact_aggregates(world.engine, world.now)
    cache = WindowCache(WINDOWS[0], _settings())
    series = [(s.model_id, s.model_version, s.segment) for s in list_series(world.engine)]
    views = cache.advance(world.engine, world.now, series)
    cold = load_window(
        world.engine,
        model_id="m",
        model_version=None,
        segment=ALL,
        start_ms=world.now - 2 * HOUR,
        end_ms=world.now,
        now_ms=world.now,
    )
    merged = EventAggregate.merge_all([views[("m", v, ALL)].window.aggregate for v in ("v1", "v2")])
    _assert_same(merged, cold.aggregate)

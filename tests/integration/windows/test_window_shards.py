"""Window jobs of several replicas sharing a window's shards, on both stores, on one
clock the test moves: fair shares, each series stored once per tick, a dead replica's
tick taken over (also the tick it died in), a paused replica storing nothing it lost."""

from __future__ import annotations

import collections

import numpy as np
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine, text

from monitor.core.records import Label, Prediction
from monitor.settings import EvaluationSettings, Settings, StoreSettings, WindowSettings
from monitor.store.results import save_shard_results
from monitor.store.shards import SHARDS, shard_of
from monitor.store.write.event_store import EventStore
from monitor.windows.jobs import JobMetrics, WindowJob
from monitor.windows.shards import ShardCoordinator

MINUTE = 60_000
T0 = 1_790_000_040_000 - 1_790_000_040_000 % MINUTE  # a slot's start
LEASE_S = 100.0  # longer than a tick: replicas that beat once a tick stay alive
MODELS = [f"model-{i}" for i in range(12)]


class Clock:
    def __init__(self) -> None:
        self.ms = T0 + 5000

    def __call__(self) -> int:
        return self.ms


class Replica:
    def __init__(self, engine: Engine, owner: str, clock: Clock) -> None:
        settings = Settings(
            store=StoreSettings(replica_lease=LEASE_S),
            evaluation=EvaluationSettings(
                min_labelled=10, min_predictions=10, bootstrap_resamples=0
            ),
            windows=[WindowSettings(name="1h", length=3600, every=60)],
        )
        self.owner = owner
        self.shards = ShardCoordinator(engine, owner, ["1h"], lease_s=LEASE_S, clock_ms=clock)
        self.job = WindowJob(
            engine,
            settings,
            settings.windows[0],
            owner=owner,
            metrics=JobMetrics(CollectorRegistry()),
            clock_ms=clock,
            shards=self.shards,
        )

    def beat(self) -> frozenset[int]:
        return self.shards.beat()["1h"]


def _fill(engine: Engine) -> None:
    rng = np.random.default_rng(3)
    records: list[Prediction | Label] = []
    for model in MODELS:
        p = rng.uniform(0.05, 0.95, 60)
        for i in range(60):
            records.append(
                Prediction(
                    model, f"{model}-{i}", "v1", T0 - 50 * MINUTE + i, probability=float(p[i])
                )
            )
            records.append(Label(model, f"{model}-{i}", int(rng.uniform() < p[i]), T0 - MINUTE))
    EventStore(engine, clock_ms=lambda: T0).write_batch(records)


def _evaluations(engine: Engine) -> dict[tuple[str, str], list[int]]:
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT model_id, model_version, evaluated_ms FROM metric_points"
                " WHERE metric = 'window_predictions'"
            )
        ).all()
    found = collections.defaultdict(list)
    for model, version, evaluated in rows:
        found[model, version].append(evaluated)
    return found


def _per_tick(engine: Engine) -> dict[tuple[str, str], list[int]]:
    """Evaluations of each series per tick T0, T0 + 1 min, ..."""
    counts = {}
    for series, times in _evaluations(engine).items():
        ticks = collections.Counter((t - T0) // MINUTE for t in times)
        counts[series] = [ticks[k] for k in range(max(ticks) + 1)]
    return counts


def test_two_replicas_split_the_shards_and_store_each_series_once_a_tick(
    migrated_engine: Engine,
) -> None:
    _fill(migrated_engine)
    clock = Clock()
    a, b = Replica(migrated_engine, "a", clock), Replica(migrated_engine, "b", clock)
    assert a.beat() == frozenset(range(SHARDS))  # alone: everything
    assert b.beat() == frozenset()  # nothing free yet
    half = a.beat()  # two replicas alive: a gives back what is over its share...
    assert len(half) == SHARDS // 2
    assert b.beat() == frozenset(range(SHARDS)) - half  # ...and b takes it
    for tick in range(3):
        clock.ms = T0 + tick * MINUTE + 20_000
        a.beat(), b.beat()
        ours = a.job.run() or []
        theirs = b.job.run() or []
        assert {shard_of(r.series.model) for r in ours} <= half
        assert {shard_of(r.series.model) for r in theirs}.isdisjoint(half)
        assert a.job.run() is None and b.job.run() is None  # the tick is done
    assert _per_tick(migrated_engine) == {
        (m, v): [1, 1, 1] for m in MODELS for v in ("v1", "__all__")
    }


def test_the_tick_a_replica_died_in_is_taken_over_once(migrated_engine: Engine) -> None:
    _fill(migrated_engine)
    clock = Clock()
    a, b = Replica(migrated_engine, "a", clock), Replica(migrated_engine, "b", clock)
    a.beat(), b.beat(), a.beat(), b.beat()
    b_shards = b.shards.held("1h")
    a.job.run(), b.job.run()  # tick 0: both
    # Tick 1: a runs, b dies before its run. One lease later, in tick 2, a takes b's
    # shards over: it stores tick 1 for them (as of tick 1's last millisecond), then
    # tick 2 for all.
    clock.ms = T0 + MINUTE + 10_000
    a.beat(), a.job.run()
    clock.ms = T0 + 2 * MINUTE + 10_000
    assert a.beat() == frozenset(range(SHARDS))
    results = a.job.take_over() or []
    assert {int(r.evaluated_at.timestamp() * 1000) for r in results} == {clock.ms}
    assert len(results) == 2 * len(MODELS)
    assert a.job.run() is None
    assert _per_tick(migrated_engine) == {
        (m, v): [1, 1, 1] for m in MODELS for v in ("v1", "__all__")
    }
    missed_at = T0 + 2 * MINUTE - 1
    taken = {
        model for (model, _), times in _evaluations(migrated_engine).items() if missed_at in times
    }
    assert taken == {model for model in MODELS if shard_of(model) in b_shards} != set()


def test_a_paused_replica_stores_nothing_of_the_shards_it_lost(migrated_engine: Engine) -> None:
    _fill(migrated_engine)
    clock = Clock()
    a, b = Replica(migrated_engine, "a", clock), Replica(migrated_engine, "b", clock)
    a.beat(), b.beat(), a.beat(), b.beat()
    b_shards = b.shards.held("1h")
    # b evaluates its shards for tick 1, then pauses (a long GC, a partition) past its
    # lease before storing them, while a takes its shards over.
    clock.ms = T0 + MINUTE
    late = b.job.evaluate_all(clock.ms, models=lambda model: shard_of(model) in b_shards)
    assert late
    clock.ms += int(LEASE_S * 1000) + 1000
    a.beat()  # a holds b's shards now
    stored = save_shard_results(
        migrated_engine,
        "1h",
        late,
        shards=b_shards,
        owner="b",
        slot_ms=T0 + MINUTE,
        now_ms=clock.ms,
    )
    assert stored == frozenset()  # b woke up and stores: nothing of what it lost
    assert len(a.job.run() or []) == 2 * len(MODELS)
    # Awake, b runs on what it believed it held, before a beat tells it otherwise.
    assert b.shards.held("1h") == b_shards
    assert b.job.run() is None
    # Tick 1 of b's shards was never stored (b lost them first), tick 2 of all by a.
    assert _per_tick(migrated_engine) == {
        (m, v): [0, 0, 1] for m in MODELS for v in ("v1", "__all__")
    }

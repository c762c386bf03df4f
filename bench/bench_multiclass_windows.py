"""A multi-class series' window job tick as a ratio to a binary series' of as many
events: the class aggregates are read afresh at every tick (the window cache keeps
binary sums), the binary series' second tick is incremental.

For N events over a 7-day window of 10 classes (and of 100), stores the aggregates ingest
would have written (minute, hour and day buckets, like ``bench_windows.py``) for one
multi-class model and one binary model, then times the second tick of one window job
(the first fills the cache) on SQLite, the window ending at 13:37 (minutes and hours at
its edges) with a trailing reference of the same length.

Run: ``.venv/bin/python bench/bench_multiclass_windows.py [--quick]``.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from prometheus_client import CollectorRegistry
from sqlalchemy import insert

from monitor.metrics.aggregates import EventAggregate
from monitor.metrics.multiclass import MulticlassAggregate, class_names
from monitor.settings import EvaluationSettings, Settings, WindowSettings
from monitor.store.buckets import RESOLUTIONS_S
from monitor.store.db import migrate
from monitor.store.db.engine import make_engine
from monitor.store.db.tables import ModelClass, Series
from monitor.store.maintenance.compaction import merge_into_buckets
from monitor.windows.jobs import JobMetrics, WindowJob

DAY_MS = 86_400_000
NOW = 1_790_000_000_000 - 1_790_000_000_000 % DAY_MS - (10 * 3600 + 23 * 60) * 1000
WINDOW_DAYS = 7


def binary_bucket(rng: np.random.Generator, n: int) -> EventAggregate:
    p = rng.beta(2, 5, n)
    aggregate = EventAggregate.empty()
    aggregate.add_probabilities(p)
    aggregate.add_labelled(p, (rng.uniform(size=n) < p).astype(np.int64))
    return aggregate


def multiclass_bucket(rng: np.random.Generator, n: int, k: int) -> MulticlassAggregate:
    logits = rng.normal(0, 1.5, (n, k))
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = (p.cumsum(axis=1) < rng.uniform(size=(n, 1))).sum(axis=1).clip(0, k - 1)
    aggregate = MulticlassAggregate.empty(k)
    aggregate.add_predictions(p)
    aggregate.add_labelled(p, y)
    return aggregate


def store(engine: object, events: int, k: int, rng: np.random.Generator) -> None:
    """Two windows' worth (window and trailing reference) of both models' buckets."""
    span_ms = 2 * WINDOW_DAYS * DAY_MS
    start = NOW - span_ms - DAY_MS
    for resolution_s in RESOLUTIONS_S:
        size = resolution_s * 1000
        buckets = (span_ms + 2 * DAY_MS) // size
        per_bucket = max(1, round(events / WINDOW_DAYS / 86_400 * resolution_s))
        binary, multi = binary_bucket(rng, per_bucket), multiclass_bucket(rng, per_bucket, k)
        additions = {}
        for b in range(buckets):
            at = start - start % size + b * size
            additions[("binary", "v1", "__all__", resolution_s, at)] = (per_bucket, binary, None)
            additions[("intent", "v1", "__all__", resolution_s, at)] = (
                per_bucket,
                EventAggregate.empty(),
                multi,
            )
        with engine.begin() as connection:  # type: ignore[attr-defined]
            merge_into_buckets(connection, additions, NOW)
    with engine.begin() as connection:  # type: ignore[attr-defined]
        for model in ("binary", "intent"):
            connection.execute(
                insert(Series).values(
                    model_id=model,
                    model_version="v1",
                    segment="__all__",
                    first_seen_ms=start,
                    last_prediction_ms=NOW,
                )
            )
        connection.execute(
            insert(ModelClass),
            [
                {"model_id": "intent", "class_name": c, "first_seen_ms": start}
                for c in class_names(k)
            ],
        )


def second_tick(engine: object, models: set[str]) -> float:
    settings = Settings(
        evaluation=EvaluationSettings(bootstrap_resamples=0, all_versions=False),
        windows=[WindowSettings(name="7d", length=WINDOW_DAYS * 86_400, every=900)],
    )
    job = WindowJob(
        engine,  # type: ignore[arg-type]
        settings,
        settings.windows[0],
        owner="bench",
        metrics=JobMetrics(CollectorRegistry()),
        clock_ms=lambda: NOW,
    )
    job.evaluate_all(NOW)  # fills the cache
    started = time.perf_counter()
    results = job.evaluate_all(NOW)
    elapsed = time.perf_counter() - started
    assert {r.series.model for r in results} >= models
    return elapsed


def main() -> int:
    events = 1_000_000 if "--quick" in sys.argv else 10_000_000
    print(f"{events:,} events in a 7-day window ending 13:37, second tick, seconds")
    print(f"{'classes':>8} {'both models':>12} {'binary only':>12} {'multi-class':>12}")
    for k in (10, 100):
        with tempfile.TemporaryDirectory() as directory:
            engine = make_engine(f"sqlite:///{Path(directory) / 'calmon.db'}")
            migrate.upgrade(engine)
            store(engine, events, k, np.random.default_rng(0))
            both = second_tick(engine, {"binary", "intent"})
            with engine.begin() as connection:
                connection.execute(ModelClass.__table__.delete())  # the model looks binary
            alone = second_tick(engine, {"binary"})
            engine.dispose()
        print(f"{k:>8} {both:12.3f} {alone:12.3f} {both - alone:12.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Window evaluation time versus events in the window: flat, because a window merges
stored per-bucket aggregates, never events.

For N = 1M, 10M, 100M events spread evenly over 7 days (100M over 7 days is 165
events/s), stores the aggregates ingest would have written — one per minute, hour and
day bucket, each built from as many real (p, y, raw score) draws as its bucket holds —
then times the window job evaluating a 7-day window (every metric, drift against a
trailing reference) on SQLite. N = 1.2 billion (2,000 events/s for 7 days) would store
the same number of rows; only the counts inside them grow.

A window that ends on a day boundary is covered by 7 day buckets. One that ends at
13:37 is not: minutes and hours cover its edges (67 buckets here: its start, a week
back, moves to the hour, ``monitor/store/buckets.py``; its trailing reference 30), so it
is timed too, with the peak of memory allocated while it is evaluated (tracemalloc, in a
separate run: tracing slows the code).

Run: ``.venv/bin/python bench/bench_windows.py`` (add ``--quick`` for 1M and 10M only).
"""

from __future__ import annotations

import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
from prometheus_client import CollectorRegistry
from sqlalchemy import insert

from monitor.core.results import WindowResult
from monitor.heap import limit_heap_fragmentation
from monitor.metrics.aggregates import EventAggregate
from monitor.settings import EvaluationSettings, Settings, WindowSettings
from monitor.store.buckets import RESOLUTIONS_S
from monitor.store.db import migrate
from monitor.store.db.engine import make_engine
from monitor.store.db.tables import Series
from monitor.store.maintenance.compaction import merge_into_buckets
from monitor.windows.jobs import JobMetrics, WindowJob

DAY_MS = 86_400_000
NOW = 1_790_000_000_000 - 1_790_000_000_000 % DAY_MS  # a day boundary
WINDOW_DAYS = 7
#: A window end that is not on a day or hour boundary: 13:37 the day before NOW.
MID_DAY = NOW - (10 * 3600 + 23 * 60) * 1000


def bucket_aggregate(rng: np.random.Generator, n: int) -> EventAggregate:
    raw = rng.normal(-1.2, 1.3, n)
    p = 1.0 / (1.0 + np.exp(-raw))
    y = (rng.uniform(size=n) < p).astype(np.int64)
    aggregate = EventAggregate.empty()
    aggregate.add_scores(raw)
    aggregate.add_probabilities(p)
    aggregate.add_labelled(p, y)
    aggregate.add_label_delays(rng.exponential(600.0, n))
    return aggregate


def store_window(engine: object, total_events: int, rng: np.random.Generator) -> int:
    """Aggregates of 2 x 7 days (window + trailing reference); returns rows written."""
    span_ms = 2 * WINDOW_DAYS * DAY_MS
    start = NOW - span_ms
    rows = 0
    for resolution_s in RESOLUTIONS_S:
        buckets = span_ms // (resolution_s * 1000)
        per_bucket = max(1, round(total_events / WINDOW_DAYS / 86_400 * resolution_s))
        aggregate = bucket_aggregate(rng, per_bucket)
        additions = {
            ("model", "v1", "__all__", resolution_s, start + b * resolution_s * 1000): (
                per_bucket,
                aggregate,
                None,
            )
            for b in range(buckets)
        }
        with engine.begin() as connection:  # type: ignore[attr-defined]
            merge_into_buckets(connection, additions, NOW)
        rows += len(additions)
    with engine.begin() as connection:  # type: ignore[attr-defined]
        connection.execute(
            insert(Series).values(
                model_id="model",
                model_version="v1",
                segment="__all__",
                first_seen_ms=start,
                last_prediction_ms=NOW,
                last_label_ms=NOW,
            )
        )
    return rows


def best_of_three(job: WindowJob, now_ms: int) -> tuple[float, WindowResult]:
    job.evaluate_all(now_ms)  # warm up imports and caches
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        (result,) = job.evaluate_all(now_ms)
        timings.append(time.perf_counter() - started)
    return min(timings), result


def main() -> int:
    limit_heap_fragmentation()  # as `calmon run` does as it starts (monitor/heap.py)
    sizes = [1_000_000, 10_000_000] + ([] if "--quick" in sys.argv else [100_000_000])
    rng = np.random.default_rng(0)
    print(
        f"{'events in 7-day window':>24} {'stored rows':>12} {'evaluate (s)':>13} {'ratio':>7}"
        f" {'ending 13:37 (s)':>17} {'its peak MiB':>13}"
    )
    first = None
    for n in sizes:
        with tempfile.TemporaryDirectory() as scratch:
            engine = make_engine(f"sqlite:///{Path(scratch) / 'bench.db'}")
            migrate.upgrade(engine)
            rows = store_window(engine, n, rng)
            settings = Settings(
                windows=[WindowSettings(name="7d", length=WINDOW_DAYS * 86_400, every=900)],
                evaluation=EvaluationSettings(all_versions=False),
            )
            job = WindowJob(
                engine,
                settings,
                settings.windows[0],
                owner="bench",
                metrics=JobMetrics(CollectorRegistry()),
                clock_ms=lambda: NOW,
            )
            elapsed, result = best_of_three(job, NOW)
            first = first or elapsed
            assert result.labelled >= 0.99 * n, result.labelled
            assert "ece" in result.values and "psi_raw_score" in result.values
            mid_day, _ = best_of_three(job, MID_DAY)
            tracemalloc.start()
            job.evaluate_all(MID_DAY)
            peak_mib = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
            print(
                f"{result.labelled:>24,} {rows:>12,} {elapsed:>13.3f} {elapsed / first:>7.2f}"
                f" {mid_day:>17.3f} {peak_mib:>13.1f}"
            )
            engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())

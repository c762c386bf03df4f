"""Where an ingested message's time goes: wall clock and CPU time per stage of one worker.

A pattern of ``bench_ingest.py`` (steady by default: new predictions, and labels of
predictions stored before timing; or racing: labels of the new predictions, often read
before them), consumed by one ``IngestWorker`` driven batch by batch in this thread;
each stage's method is wrapped with a timer, and the totals are printed per message,
in wall-clock time and in the process's CPU time (the latter less disturbed by other
work on a shared machine; PostgreSQL's own work is in neither).

Run: ``.venv/bin/python bench/bench_ingest_stages.py [N] [--store URL] [--pattern P]
[--no-freeze] [--profile K]`` (default N = 100,000, the steady pattern and a temporary
SQLite file; for PostgreSQL pass an empty database's URL; ``--no-freeze`` shows what
``monitor/heap.py`` saves; ``--profile K`` also runs the worker under cProfile and
prints the K functions with the most time of their own, which slows it down).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from bench_ingest import PATTERNS, kafka_settings, prepare_store, produce, topics_of
from prometheus_client import CollectorRegistry

from monitor.demo.broker import EmbeddedBroker
from monitor.heap import freeze_startup_objects, limit_heap_fragmentation
from monitor.ingest.metrics import IngestMetrics
from monitor.ingest.worker import IngestWorker
from monitor.settings import IngestSettings
from monitor.store.write import common_cases, event_store
from monitor.store.write.deltas import BatchDeltas
from monitor.store.write.event_store import EventStore

#: (owner, attribute, label): what is timed. Nested stages are part of their parent's.
STAGES = [
    (IngestWorker, "_collect", "Kafka poll (the batch's records)"),
    (IngestWorker, "_validate", "decode and validation"),
    (EventStore, "write_batch", "store transaction"),
    (common_cases, "insert_event_rows", "  insert new events"),
    (common_cases, "update_returning", "  UPDATEs (label joins, label first)"),
    (BatchDeltas, "aggregates", "  aggregate deltas: build"),
    (event_store, "_append_aggregate_deltas", "  aggregate deltas: insert"),
    (event_store.one_by_one, "write", "  one by one (what common cases leave)"),
    (IngestWorker, "_commit", "offset commit"),
    (IngestWorker, "_count", "counters"),
]


def timed(
    totals: dict[str, list[float]], label: str, function: Callable[..., Any]
) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            return function(*args, **kwargs)
        finally:
            totals[label][0] += time.perf_counter() - wall
            totals[label][1] += time.process_time() - cpu

    return wrapper


def counted(records: list[int], function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` (a write path taking the connection, then the records) counting the
    records it is given."""

    def wrapper(connection: Any, batch: Any, *args: Any, **kwargs: Any) -> Any:
        records[0] += len(batch)
        return function(connection, batch, *args, **kwargs)

    return wrapper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("n", nargs="?", type=int, default=100_000, help="predictions (and labels)")
    parser.add_argument("--store", help="database URL (default: a temporary SQLite file)")
    parser.add_argument(
        "--no-freeze", action="store_true", help="leave the start-up heap to the collector"
    )
    parser.add_argument("--pattern", choices=PATTERNS, default="steady")
    parser.add_argument("--profile", type=int, default=0, metavar="K", help="top K functions")
    args = parser.parse_args()
    n = args.n
    limit_heap_fragmentation()  # as `calmon run` does as it starts (monitor/heap.py)
    totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for owner, name, label in STAGES:
        setattr(owner, name, timed(totals, label, getattr(owner, name)))
    one_by_one_records = [0]  # records the common cases left
    one_by_one = event_store.one_by_one
    one_by_one.write = counted(one_by_one_records, one_by_one.write)  # type: ignore[method-assign]
    if not args.no_freeze:
        freeze_startup_objects()  # as `calmon run` does
    with EmbeddedBroker() as broker, tempfile.TemporaryDirectory() as directory:
        topics = topics_of(args.pattern, "")
        produce(broker.bootstrap_servers, topics, n, args.pattern, partitions=1)
        store = prepare_store(args.store or f"sqlite:///{directory}/s.db", n, args.pattern, 0)
        engine = store.engine
        kafka = kafka_settings(broker.bootstrap_servers, topics, f"stages-{uuid.uuid4().hex[:8]}")
        metrics = IngestMetrics(CollectorRegistry())
        worker = IngestWorker(kafka=kafka, ingest=IngestSettings(), store=store, metrics=metrics)
        worker.connect(threading.Event())
        consumer = worker.consumer
        while not consumer.assignment():  # join the group before timing
            consumer.poll(timeout_ms=100, max_records=1)
        consumer.seek_to_beginning()
        totals.clear()
        one_by_one_records[0] = 0
        stop = threading.Event()
        messages = metrics.messages
        # CPU time, not wall clock: on a shared machine the wall clock counts others' work.
        profile = cProfile.Profile(time.process_time) if args.profile else None
        wall, cpu = time.perf_counter(), time.process_time()
        if profile is not None:
            profile.enable()
        while sum(messages.labels(s)._value.get() for s in ("prediction", "label")) < 2 * n:
            records = worker._collect(stop)
            if records:
                worker.process(records, stop)
        if profile is not None:
            profile.disable()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        worker.close()
        engine.dispose()
    print(f"{2 * n:,} messages, {args.pattern}, {engine.dialect.name}: {2 * n / wall:,.0f} msg/s")
    print(f"{'':>36}  wall clock   CPU (this process)")
    row = "{:>36}: {:5.2f} us/msg  {:5.2f} us/msg"
    print(row.format("all", wall / (2 * n) * 1e6, cpu / (2 * n) * 1e6))
    for _, _, label in STAGES:
        stage_wall, stage_cpu = totals[label]
        print(row.format(label, stage_wall / (2 * n) * 1e6, stage_cpu / (2 * n) * 1e6))
    print(f"records through the one-by-one path: {one_by_one_records[0]:,} of {2 * n:,}")
    if profile is not None:
        pstats.Stats(profile).sort_stats("tottime").print_stats(args.profile)


if __name__ == "__main__":
    main()

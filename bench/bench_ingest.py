"""Sustained end-to-end ingest rate against the ceilings, in one run.

Three label patterns, each pre-produced into an embedded tansu broker (N predictions of
new events over one hour, two segment values, and N labels):

- ``steady``: the labels are those of N *earlier* predictions, already stored (written
  before timing starts). This is production's steady state: a label arrives minutes
  to weeks after its prediction, so it joins a stored row.
- ``racing``: the labels are those of the N new predictions, on their own topic, so
  the consumer reads a label in the same batch as its prediction or before it, as one
  catching up on a backlog does. A label read first is stored to wait, and its
  prediction then fills the row in: two statements per event where steady needs one.
- ``one-topic``: predictions and labels on one topic (the config allows it), each label
  2,000 messages after its prediction, so that both are mostly read in one poll: each
  such event is inserted with its label joined.

For each pattern, on the same topics (``ingest_ceilings.py`` says what each ceiling
does and skips):

- **consume**: a bare ``KafkaConsumer`` reading every message, nothing else (the
  floor; best of three reads);
- **decode**: the same plus one typed msgspec decode per message into columns, the
  ceiling for any writer (best of three);
- per store (SQLite, then PostgreSQL: a fresh database on the server at
  127.0.0.1:5432): **lean write**, the decode plus one plain insert and one UPDATE join
  per batch and the offset commit; then **calmon** ingest with the default ``ingest``
  settings, timed from the first batch until every message is durably stored with its
  aggregates and counted (its offset is committed right after); then **calmon
  prefetch**, the same with the polls in a thread of their own, a batch fetched while
  the one before is written (``prefetch_worker.py``: measured, not what calmon runs).

Each rate is printed with its ratio to consume and, for calmon, to the lean write of
the same store (prefetch: also to calmon's own loop, measured a minute before).

Run: ``.venv/bin/python bench/bench_ingest.py [N] [--preload M] [--pattern P] [--replicas R]``
(default N = 100,000; all patterns). ``--preload M`` first fills each store with M
older events, to show that a batch's cost does not grow with the table.
``--replicas R`` ingests with R worker processes in one consumer group, as R replicas
of ``calmon run`` would (``bench/ingest_replica.py``), from a copy of the messages in
topics of R partitions each; timed from the store (new events stored plus labels
joined, polled every 50 ms); the ceilings are then left out. The floor stays one bare
consumer on the auto-created topics.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from ingest_ceilings import consume_rate, decode_only, decoder, lean_write
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic
from prefetch_worker import PrefetchingWorker
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine, create_engine, text

from monitor.core.records import Prediction
from monitor.demo.broker import EmbeddedBroker
from monitor.heap import freeze_startup_objects, limit_heap_fragmentation
from monitor.ingest.metrics import IngestMetrics
from monitor.ingest.worker import IngestWorker
from monitor.settings import IngestSettings, KafkaSettings, TopicSettings
from monitor.store.db import migrate
from monitor.store.db.engine import make_engine
from monitor.store.db.sql import insert_ignoring_existing
from monitor.store.db.tables import Event
from monitor.store.write.event_store import EventStore

BASE_MS = 1_790_000_000_000
HOUR_MS = 3_600_000
POSTGRES_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PATTERNS = ("steady", "racing", "one-topic")
#: One-topic pattern: messages between a prediction and its label.
LABEL_LAG = 2_000


def prediction(i: int, n: int, prefix: str, start_ms: int) -> Prediction:
    p = (i * 7919 % 1000) / 1000
    return Prediction(
        model_id="fraud",
        event_id=f"{prefix}{i}",
        model_version="v1",
        event_time_ms=start_ms + i * HOUR_MS // n,
        raw_score=p * 8 - 4,
        probability=p,
        segment={"region": "eu" if i % 2 else "us"},
    )


def produce(bootstrap: str, topics: tuple[str, str], n: int, pattern: str, partitions: int) -> None:
    """N predictions of new events (``e``), then N labels (of ``p`` or ``e`` events).

    Topics are created by the first message, with the broker's default partition count
    (4 here; earlier notes said 1): tansu served those markedly faster to a bare
    consumer than topics created by an admin client, and the floor should be the
    fastest read. ``--replicas`` topics are created by the admin client.
    """
    if partitions > 1:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        new = [
            NewTopic(topic, num_partitions=partitions, replication_factor=1)
            for topic in set(topics)
        ]
        admin.create_topics(new)
        admin.close()
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, batch_size=256 * 1024)
    labelled = "p" if pattern == "steady" else "e"
    # One topic: keyed by event, as producers of such a topic would, so that an event's
    # label follows its prediction in one partition (unkeyed, the two went to any of
    # the topic's partitions, and were read up to 30,000 messages apart).
    keyed = pattern == "one-topic"

    def send_label(i: int) -> None:
        event_id = f"{labelled}{i}"
        label = {"event_id": event_id, "model_id": "fraud", "label": int(i % 3 == 0)}
        label["timestamp"] = BASE_MS + HOUR_MS + i
        producer.send(topics[1], orjson.dumps(label), key=event_id.encode() if keyed else None)

    lag = LABEL_LAG // 2 if pattern == "one-topic" else n  # in predictions sent
    for i in range(n):
        record = prediction(i, n, "e", BASE_MS)
        message = record._asdict()
        message["timestamp"] = message.pop("event_time_ms")
        key = record.event_id.encode() if keyed else None
        producer.send(topics[0], orjson.dumps(message), key=key)
        if i >= lag:
            send_label(i - lag)
    for i in range(max(n - lag, 0), n):
        send_label(i)
    producer.flush()
    producer.close()


def best_of_three(bootstrap: str, topics: tuple[str, str], total: int, handle: Any) -> float:
    """Messages per second of the best of three reads (``ingest_ceilings.consume_rate``)."""
    batch = IngestSettings().max_batch_records
    return max(consume_rate(bootstrap, topics, total, batch, handle) for _ in range(3))


def preload(engine: Engine, count: int) -> None:
    """Store ``count`` labelled events of another model, a day before the benchmark's."""
    step = 100_000
    for start in range(0, count, step):
        rows = [
            {
                "model_id": "older",
                "event_id": f"p{i}",
                "model_version": "v1",
                "event_time_ms": BASE_MS - 86_400_000 + i,
                "probability": (i % 1000) / 1000,
                "label": i % 2,
                "label_time_ms": BASE_MS,
                "created_ms": BASE_MS,
            }
            for i in range(start, min(start + step, count))
        ]
        with engine.begin() as connection:
            insert_ignoring_existing(connection, Event.__table__, rows, ["model_id", "event_id"])


def kafka_settings(bootstrap: str, topics: tuple[str, str], group: str) -> KafkaSettings:
    """A worker's Kafka settings: predictions and labels topics, no dead letters, and
    the group timeouts tansu needs to join quickly (docs/benchmarks.md, tests)."""
    return KafkaSettings(
        bootstrap_servers=[bootstrap],
        group_id=group,
        topics=TopicSettings(raw_scores=topics[0], probabilities=topics[0], labels=topics[1]),
        dead_letter_topic=None,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )


def prepare_store(url: str, n: int, pattern: str, preloaded: int) -> EventStore:
    engine = make_engine(url)
    migrate.upgrade(engine)
    preload(engine, preloaded)
    store = EventStore(engine, segment_keys=["region"], clock_ms=lambda: BASE_MS + 86_400_000)
    if pattern == "steady":  # the predictions the labels are for, an hour earlier
        earlier = [prediction(i, n, "p", BASE_MS - HOUR_MS) for i in range(n)]
        for start in range(0, n, 10_000):
            store.write_batch(earlier[start : start + 10_000])
    return store


def ingest_rate(
    bootstrap: str,
    topics: tuple[str, str],
    url: str,
    n: int,
    pattern: str,
    preloaded: int,
    worker_class: type[IngestWorker] = IngestWorker,
) -> float:
    """One worker in this process, timed by its own message counter."""
    store = prepare_store(url, n, pattern, preloaded)
    kafka = kafka_settings(bootstrap, topics, f"calmon-{uuid.uuid4().hex[:8]}")
    metrics = IngestMetrics(CollectorRegistry())
    worker = worker_class(kafka=kafka, ingest=IngestSettings(), store=store, metrics=metrics)
    stop = threading.Event()
    counted = metrics.messages
    done = lambda: sum(counted.labels(s)._value.get() for s in ("prediction", "label"))  # noqa: E731
    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    while done() == 0:  # the group join is not ingest work: start timing at the first batch
        time.sleep(0.005)
    start = time.perf_counter()
    first = done()
    while done() < 2 * n:
        time.sleep(0.005)
    elapsed = time.perf_counter() - start
    stop.set()
    thread.join()
    store.engine.dispose()
    return (2 * n - first) / elapsed


def replicas_rate(
    bootstrap: str,
    topics: tuple[str, str],
    url: str,
    n: int,
    pattern: str,
    preloaded: int,
    replicas: int,
) -> float:
    """``replicas`` worker processes in one consumer group, timed from the store: new
    events stored plus labels joined, polled every 50 ms."""
    engine = prepare_store(url, n, pattern, preloaded).engine
    group = f"calmon-{uuid.uuid4().hex[:8]}"
    script = str(Path(__file__).with_name("ingest_replica.py"))
    processes = [
        subprocess.Popen([sys.executable, script, bootstrap, *topics, url, group])
        for _ in range(replicas)
    ]
    progress = text(
        "SELECT (SELECT count(*) FROM events WHERE model_id = 'fraud' AND event_id LIKE 'e%')"
        " + (SELECT count(*) FROM events WHERE model_id = 'fraud' AND label IS NOT NULL)"
    )
    try:
        with engine.connect() as connection:
            done = lambda: int(connection.execute(progress).scalar_one())  # noqa: E731
            while (first := done()) == 0:
                time.sleep(0.05)
            start = time.perf_counter()
            while done() < 2 * n:
                time.sleep(0.05)
            elapsed = time.perf_counter() - start
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(timeout=60)
        engine.dispose()
    return (2 * n - first) / elapsed


def topics_of(pattern: str, suffix: str) -> tuple[str, str]:
    """(predictions topic, labels topic): one topic for both in the one-topic pattern."""
    if pattern == "one-topic":
        return (f"events-{pattern}{suffix}",) * 2
    return (f"predictions-{pattern}{suffix}", f"labels-{pattern}{suffix}")


def run_pattern(
    bootstrap: str, n: int, pattern: str, preloaded: int, replicas: int
) -> dict[str, float]:
    """The rates of one pattern, by name: ``consume``, ``decode``, then per store
    ``lean <store>`` and ``calmon <store>`` (``calmon <store> xR`` with replicas)."""
    # The floor and the ceilings: on the topics a bare consumer reads fastest (auto-created).
    topics = topics_of(pattern, "")
    produce(bootstrap, topics, n, pattern, partitions=1)
    rates = {"consume": best_of_three(bootstrap, topics, 2 * n, None)}
    if replicas > 1:  # the same messages again, in topics the replicas can share
        topics = topics_of(pattern, f"-{replicas}")
        produce(bootstrap, topics, n, pattern, partitions=replicas)
    else:
        rates["decode"] = best_of_three(bootstrap, topics, 2 * n, decode_only(decoder()))

    for store in ("sqlite", "postgres"):
        if replicas > 1:
            with fresh_database(store) as url:
                rate = replicas_rate(bootstrap, topics, url, n, pattern, preloaded, replicas)
            rates[f"calmon {store} x{replicas}"] = rate
            continue
        with fresh_database(store) as url:
            rates[f"lean {store}"] = lean_rate(bootstrap, topics, url, n, pattern, preloaded)
        with fresh_database(store) as url:
            rates[f"calmon {store}"] = ingest_rate(bootstrap, topics, url, n, pattern, preloaded)
        with fresh_database(store) as url:
            rates[f"calmon {store} prefetch"] = ingest_rate(
                bootstrap, topics, url, n, pattern, preloaded, PrefetchingWorker
            )
    return rates


@contextmanager
def fresh_database(store: str) -> Iterator[str]:
    """The URL of an empty database: a temporary SQLite file, or a new PostgreSQL
    database on the server at 127.0.0.1:5432 (dropped afterwards)."""
    if store == "sqlite":
        with tempfile.TemporaryDirectory() as directory:
            yield f"sqlite:///{directory}/b.db"
        return
    database = f"calmon_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{database}"'))
    try:
        yield POSTGRES_ADMIN.rsplit("/", 1)[0] + f"/{database}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        admin.dispose()


def lean_rate(
    bootstrap: str, topics: tuple[str, str], url: str, n: int, pattern: str, preloaded: int
) -> float:
    """Consume + decode + lean write, on a store prepared as calmon's is."""
    engine = prepare_store(url, n, pattern, preloaded).engine
    try:
        batch = IngestSettings().max_batch_records
        return consume_rate(bootstrap, topics, 2 * n, batch, lean_write(engine))
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("n", nargs="?", type=int, default=100_000, help="predictions (and labels)")
    parser.add_argument("--preload", type=int, default=0, help="older events stored first")
    parser.add_argument("--pattern", choices=PATTERNS, action="append", help="default: all")
    parser.add_argument(
        "--replicas",
        type=int,
        default=1,
        help="ingest with N worker processes in one consumer group (topics get N partitions)",
    )
    args = parser.parse_args()
    limit_heap_fragmentation()  # as `calmon run` does as it starts (monitor/heap.py)
    freeze_startup_objects()  # as `calmon run` does once it is up
    settings = IngestSettings()
    print(
        f"{2 * args.n:,} messages ({args.n:,} predictions + {args.n:,} labels), "
        f"{args.preload:,} preloaded; batches of up to {settings.max_batch_records:,} records"
    )
    with EmbeddedBroker() as broker:
        for pattern in args.pattern or PATTERNS:
            rates = run_pattern(
                broker.bootstrap_servers, args.n, pattern, args.preload, args.replicas
            )
            print(f"{pattern}:")
            print_rates(rates)


def print_rates(rates: dict[str, float]) -> None:
    """Each rate with its ratio to consume, and calmon's to the lean write as well."""
    floor = rates["consume"]
    for name, rate in rates.items():
        ratios = "" if name == "consume" else f"  {rate / floor:.2f} of consume"
        lean = rates.get(name.replace("calmon", "lean"))
        if name.startswith("calmon") and lean:
            ratios += f", {rate / lean:.2f} of lean write"
        if name.endswith(" prefetch"):
            ratios += f", {rate / rates[name.removesuffix(' prefetch')]:.2f} of calmon's loop"
        print(f"{name:>24}: {rate:>9,.0f} msg/s{ratios}")


if __name__ == "__main__":
    main()

"""Sustained end-to-end ingest rate versus a bare kafka-python consumer, in one run.

Pre-produces N predictions and N labels (events spread over one hour, two segment
values) into an embedded tansu broker, then measures, on the same topics:

- floor: a bare ``KafkaConsumer`` reading every message (no parsing, no storage);
- calmon ingest into SQLite, then into PostgreSQL (a fresh database on the server at
  127.0.0.1:5432): from start until every offset is committed, i.e. every event and
  label is durably in the store with its aggregates updated.

Run: ``.venv/bin/python bench/bench_ingest.py [N] [--preload M]`` (default N = 50,000).
``--preload M`` first fills each store with M older events, to show that a batch's
cost does not grow with the table (M = 1,000,000 takes about a minute).
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
import uuid

import orjson
from kafka import KafkaConsumer, KafkaProducer
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine, create_engine, text

from monitor.demo.broker import EmbeddedBroker
from monitor.ingest.metrics import IngestMetrics
from monitor.ingest.worker import IngestWorker
from monitor.settings import IngestSettings, KafkaSettings, TopicSettings
from monitor.store import migrate
from monitor.store.engine import make_engine
from monitor.store.events import EventStore
from monitor.store.models import Event
from monitor.store.sql import insert_ignoring_existing

BASE_MS = 1_790_000_000_000
POSTGRES_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def produce(bootstrap: str, n: int) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, batch_size=256 * 1024)
    for i in range(n):
        p = (i * 7919 % 1000) / 1000
        producer.send(
            "predictions",
            orjson.dumps(
                {
                    "event_id": f"e{i}",
                    "model_id": "fraud",
                    "model_version": "v1",
                    "timestamp": BASE_MS + i * 3_600_000 // n,
                    "raw_score": p * 8 - 4,
                    "probability": p,
                    "segment": {"region": "eu" if i % 2 else "us"},
                }
            ),
        )
    for i in range(n):
        producer.send(
            "labels",
            orjson.dumps(
                {
                    "event_id": f"e{i}",
                    "model_id": "fraud",
                    "label": int(i % 3 == 0),
                    "timestamp": BASE_MS + 3_600_000 + i,
                }
            ),
        )
    producer.flush()
    producer.close()


def bare_consumer_rate(bootstrap: str, total: int) -> float:
    consumer = KafkaConsumer(
        "predictions",
        "labels",
        bootstrap_servers=bootstrap,
        group_id=f"bare-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=2000,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )
    seen = 0
    start = None
    while seen < total:
        for records in consumer.poll(timeout_ms=500).values():
            if start is None:
                start = time.perf_counter()
            seen += len(records)
    elapsed = time.perf_counter() - (start or time.perf_counter())
    consumer.close()
    return total / elapsed


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


def ingest_rate(bootstrap: str, url: str, total: int, preloaded: int) -> float:
    engine = make_engine(url)
    migrate.upgrade(engine)
    preload(engine, preloaded)
    kafka = KafkaSettings(
        bootstrap_servers=[bootstrap],
        group_id=f"calmon-{uuid.uuid4().hex[:8]}",
        topics=TopicSettings(
            raw_scores="predictions", probabilities="predictions", labels="labels"
        ),
        dead_letter_topic=None,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )
    metrics = IngestMetrics(CollectorRegistry())
    worker = IngestWorker(
        kafka=kafka,
        ingest=IngestSettings(max_batch_records=2000, max_batch_age=0.5),
        store=EventStore(engine, segment_keys=["region"], clock_ms=lambda: BASE_MS + 86_400_000),
        metrics=metrics,
    )
    stop = threading.Event()
    counted = metrics.messages
    done = lambda: sum(counted.labels(s)._value.get() for s in ("prediction", "label"))  # noqa: E731
    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    while done() == 0:  # the group join is not ingest work: start timing at the first batch
        time.sleep(0.01)
    start = time.perf_counter() - 0.0
    first = done()
    while done() < total:
        time.sleep(0.01)
    elapsed = time.perf_counter() - start
    stop.set()
    thread.join()
    engine.dispose()
    return (total - first) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("n", nargs="?", type=int, default=50_000, help="predictions (and labels)")
    parser.add_argument("--preload", type=int, default=0, help="older events stored first")
    args = parser.parse_args()
    n = args.n
    total = 2 * n
    database = f"calmon_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{database}"'))
    try:
        with EmbeddedBroker() as broker:
            produce(broker.bootstrap_servers, n)
            floor = bare_consumer_rate(broker.bootstrap_servers, total)
            with tempfile.TemporaryDirectory() as directory:
                sqlite = ingest_rate(
                    broker.bootstrap_servers, f"sqlite:///{directory}/b.db", total, args.preload
                )
            postgres = ingest_rate(
                broker.bootstrap_servers,
                POSTGRES_ADMIN.rsplit("/", 1)[0] + f"/{database}",
                total,
                args.preload,
            )
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
    print(f"{total:,} messages ({n:,} predictions + {n:,} labels), {args.preload:,} preloaded")
    print(f"{'bare consumer':>16}: {floor:>9,.0f} msg/s")
    print(f"{'ingest sqlite':>16}: {sqlite:>9,.0f} msg/s  ratio {sqlite / floor:.2f}")
    print(f"{'ingest postgres':>16}: {postgres:>9,.0f} msg/s  ratio {postgres / floor:.2f}")


if __name__ == "__main__":
    main()

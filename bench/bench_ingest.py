"""Sustained end-to-end ingest rate versus a bare kafka-python consumer, in one run.

Pre-produces N predictions and N labels (events spread over one hour, two segment
values) into an embedded tansu broker, then measures, on the same topics:

- floor: a bare ``KafkaConsumer`` reading every message (no parsing, no storage);
- calmon ingest into SQLite, then into PostgreSQL (a fresh database on the server at
  127.0.0.1:5432): from start until every offset is committed, i.e. every event and
  label is durably in the store with its aggregates updated.

Run: ``.venv/bin/python bench/bench_ingest.py [N]`` (default N = 50,000).
"""

from __future__ import annotations

import sys
import threading
import time
import uuid

import orjson
from kafka import KafkaConsumer, KafkaProducer
from prometheus_client import CollectorRegistry
from sqlalchemy import create_engine, text

from monitor.demo.broker import EmbeddedBroker
from monitor.ingest.metrics import IngestMetrics
from monitor.ingest.worker import IngestWorker
from monitor.settings import IngestSettings, KafkaSettings, TopicSettings
from monitor.store import migrate
from monitor.store.engine import make_engine
from monitor.store.events import EventStore

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


def ingest_rate(bootstrap: str, url: str, total: int) -> float:
    engine = make_engine(url)
    migrate.upgrade(engine)
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
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
    total = 2 * n
    database = f"calmon_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{database}"'))
    try:
        with EmbeddedBroker() as broker:
            produce(broker.bootstrap_servers, n)
            floor = bare_consumer_rate(broker.bootstrap_servers, total)
            import tempfile

            with tempfile.TemporaryDirectory() as directory:
                sqlite = ingest_rate(broker.bootstrap_servers, f"sqlite:///{directory}/b.db", total)
            postgres = ingest_rate(
                broker.bootstrap_servers, POSTGRES_ADMIN.rsplit("/", 1)[0] + f"/{database}", total
            )
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
    print(f"{total:,} messages ({n:,} predictions + {n:,} labels)")
    print(f"{'bare consumer':>16}: {floor:>9,.0f} msg/s")
    print(f"{'ingest sqlite':>16}: {sqlite:>9,.0f} msg/s  ratio {sqlite / floor:.2f}")
    print(f"{'ingest postgres':>16}: {postgres:>9,.0f} msg/s  ratio {postgres / floor:.2f}")


if __name__ == "__main__":
    main()

"""Shared helpers for ingest tests: messages, a worker in a thread, waiting."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import orjson
from kafka import KafkaProducer
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine, func, select

from monitor.ingest.metrics import IngestMetrics
from monitor.ingest.worker import IngestWorker
from monitor.settings import IngestSettings, KafkaSettings
from monitor.store.db.tables import Event
from monitor.store.write.event_store import EventStore

BASE_MS = 1_790_000_000_000


def prediction(i: int, *, model: str = "fraud", probability: float | None = None) -> bytes:
    p = probability if probability is not None else (i % 97) / 97
    return orjson.dumps(
        {
            "event_id": f"e{i}",
            "model_id": model,
            "model_version": "v1",
            "timestamp": BASE_MS + i * 1000,
            "raw_score": i % 13 - 6.0,
            "probability": p,
            "segment": {"region": "eu" if i % 2 else "us"},
        }
    )


def label(i: int, value: int, *, model: str = "fraud") -> bytes:
    return orjson.dumps(
        {
            "event_id": f"e{i}",
            "model_id": model,
            "label": value,
            "timestamp": BASE_MS + i * 1000 + 60_000,
        }
    )


def send_all(producer: KafkaProducer, topic: str, payloads: list[bytes]) -> None:
    for payload in payloads:
        producer.send(topic, payload)
    producer.flush()


def wait_until(condition: Callable[[], bool], timeout_s: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what or condition}")


@contextmanager
def running_worker(
    kafka: KafkaSettings, store: EventStore, ingest: IngestSettings | None = None
) -> Iterator[tuple[IngestWorker, IngestMetrics, CollectorRegistry]]:
    registry = CollectorRegistry()
    metrics = IngestMetrics(registry)
    worker = IngestWorker(
        kafka=kafka,
        ingest=ingest
        or IngestSettings(max_batch_records=500, max_batch_age=0.2, retry_initial=0.2),
        store=store,
        metrics=metrics,
    )
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield worker, metrics, registry
    finally:
        stop.set()
        thread.join(timeout=30)
        assert not thread.is_alive(), "the worker did not stop within 30 s"


def count_events(engine: Engine, *where: object) -> int:
    """Rows in ``events``, optionally filtered."""
    with engine.connect() as connection:
        return int(
            connection.execute(select(func.count()).select_from(Event).where(*where)).scalar_one()
        )

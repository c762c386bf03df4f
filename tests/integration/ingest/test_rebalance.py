"""Ingest across a consumer-group rebalance that happens while the store is down."""

from __future__ import annotations

import pytest
from kafka import KafkaProducer, TopicPartition
from sqlalchemy import text

from monitor.settings import IngestSettings, KafkaSettings
from monitor.store.db import migrate
from monitor.store.db.engine import make_engine
from monitor.store.write.event_store import EventStore
from tests.integration.ingest.helpers import (
    BASE_MS,
    count_events,
    prediction,
    running_worker,
    wait_until,
)

pytestmark = pytest.mark.integration


def test_partitions_gained_during_a_store_outage_are_read_again_not_skipped(
    kafka_settings: KafkaSettings, producer: KafkaProducer, postgres_url: str, sqlite_url: str
) -> None:
    """Replica A cannot write (its events table is locked), so it retries with its
    partitions paused, polling only to stay in the group. Replica B leaves; inside one
    of those polls A is given B's partition, which is not paused, and the poll returns
    its records. They must be fetched again once A can write, not dropped."""
    # lock_timeout makes A's writes fail fast (a real PostgreSQL error) instead of waiting.
    engine_a = make_engine(postgres_url, connect_args={"options": "-c lock_timeout=300"})
    engine_b = make_engine(sqlite_url)
    migrate.upgrade(engine_a)
    migrate.upgrade(engine_b)
    topic = kafka_settings.topics.probabilities
    settings = IngestSettings(
        max_batch_records=100, max_batch_age=0.2, retry_initial=0.2, retry_max=0.5
    )

    def predictions_owned(worker) -> set[int]:  # type: ignore[no-untyped-def]
        # The consumer belongs to the worker's thread; reading its assignment is a copy.
        if not worker.connected.is_set():
            return set()
        return {p.partition for p in worker.consumer.assignment() if p.topic == topic}

    store_a = EventStore(engine_a, clock_ms=lambda: BASE_MS + 86_400_000)
    store_b = EventStore(engine_b, clock_ms=lambda: BASE_MS + 86_400_000)
    with running_worker(kafka_settings, store_a, settings) as (worker_a, _, registry_a):
        with running_worker(kafka_settings, store_b, settings) as (worker_b, _, _):
            wait_until(
                lambda: len(predictions_owned(worker_a)) == len(predictions_owned(worker_b)) == 1,
                what="one predictions partition each",
            )
            (partition_a,) = predictions_owned(worker_a)
            (partition_b,) = predictions_owned(worker_b)

            lock = engine_a.connect()
            lock.execute(text("LOCK TABLE events IN ACCESS EXCLUSIVE MODE"))
            for i in range(100):
                producer.send(topic, prediction(i), partition=partition_a)
            producer.flush()
            wait_until(
                lambda: (
                    (registry_a.get_sample_value("calmon_ingest_write_retries_total") or 0) >= 2
                ),
                what="A retrying",
            )
        # B has left the group. Its partition gets records nobody has read yet.
        for i in range(100, 200):
            producer.send(topic, prediction(i), partition=partition_b)
        producer.flush()
        wait_until(
            lambda: predictions_owned(worker_a) == {partition_a, partition_b},
            timeout_s=120,
            what="A owns both",
        )
        # A keeps retrying its batch, polling its paused (and newly unpaused) partitions
        # between tries: two more tries, and B's new records are still not written.
        retries = registry_a.get_sample_value("calmon_ingest_write_retries_total") or 0
        wait_until(
            lambda: (
                (registry_a.get_sample_value("calmon_ingest_write_retries_total") or 0)
                >= retries + 2
            ),
            what="A retrying with both partitions",
        )
        assert count_events(engine_b) == 0
        lock.rollback()
        lock.close()

        wait_until(lambda: count_events(engine_a) == 200, timeout_s=60, what="all 200 in A's store")
        assert TopicPartition(topic, partition_b) in worker_a.consumer.assignment()
    engine_a.dispose()
    engine_b.dispose()

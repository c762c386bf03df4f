"""The order that makes ingest at-least-once (``IngestWorker.process``): write, then
dead-letter and wait for the acks, then count, and only then commit — against a real
broker and a real store, in process so that every step can be watched.

A store "outage" here is a store that raises ``StoreUnavailable`` for a while: the
exception a real outage becomes (``test_failures.py`` stops a real PostgreSQL for the
same path, in a slower test).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

import pytest
from kafka import KafkaProducer
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from monitor.core.records import Record
from monitor.ingest import dead_letter
from monitor.ingest.metrics import IngestMetrics
from monitor.ingest.worker import IngestWorker
from monitor.settings import IngestSettings, KafkaSettings
from monitor.store.errors import StoreUnavailable
from monitor.store.write.event_store import EventStore
from monitor.store.write.result import WriteResult
from tests.fixtures.kafka import read_all
from tests.integration.ingest.helpers import (
    BASE_MS,
    count_events,
    prediction,
    running_worker,
    send_all,
    wait_until,
)
from tests.integration.ingest.test_ingest import committed_total

pytestmark = pytest.mark.integration

FAST_RETRIES = IngestSettings(
    max_batch_records=500, max_batch_age=0.2, retry_initial=0.1, retry_max=0.2
)


class FlakyStore(EventStore):
    """A real store whose writes fail with ``StoreUnavailable`` while ``down`` is set."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine, clock_ms=lambda: BASE_MS + 86_400_000)
        self.down = threading.Event()
        self.failed_writes = 0

    def write_batch(self, records: Sequence[Record]) -> WriteResult:
        if self.down.is_set():
            self.failed_writes += 1
            raise StoreUnavailable("the test's store is down")
        return super().write_batch(records)


def test_each_batch_is_written_then_dead_lettered_then_counted_then_committed(
    kafka_settings: KafkaSettings,
    producer: KafkaProducer,
    sqlite_engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    steps: list[str] = []
    forward = dead_letter.forward

    def forward_and_note(*args, **kwargs):  # type: ignore[no-untyped-def]
        forward(*args, **kwargs)
        steps.append("dead-lettered")

    monkeypatch.setattr(dead_letter, "forward", forward_and_note)
    store = FlakyStore(sqlite_engine)
    write = store.write_batch

    def write_and_note(records: Sequence[Record]) -> WriteResult:
        result = write(records)
        steps.append(f"wrote {len(records)}")
        return result

    store.write_batch = write_and_note  # type: ignore[method-assign]
    with running_worker(kafka_settings, store, FAST_RETRIES) as (worker, _metrics, registry):
        assert worker.connected.wait(30), "the worker did not reach the broker"
        commit = worker.consumer.commit

        def commit_and_note(*args, **kwargs):  # type: ignore[no-untyped-def]
            counted = registry.get_sample_value(
                "calmon_ingest_messages_total", {"stream": "prediction"}
            )
            steps.append(f"committed, {counted:.0f} counted")
            return commit(*args, **kwargs)

        worker.consumer.commit = commit_and_note  # type: ignore[method-assign]
        topic = kafka_settings.topics.probabilities
        send_all(producer, topic, [prediction(i) for i in range(20)] + [b"not json"])
        wait_until(lambda: committed_total(kafka_settings, topic) == 21, what="21 committed")
    # Batch after batch: its write, its dead letters (acknowledged), then its commit,
    # with the counters already holding everything written so far.
    written = 0
    dead_lettered = 0
    batch: list[str] = []
    for step in steps:
        batch.append(step)
        if step.startswith("committed"):
            assert batch[0].startswith("wrote "), steps
            assert batch[1:-1] in ([], ["dead-lettered"]), steps
            written += int(batch[0].split()[1])
            dead_lettered += len(batch) - 2
            assert step == f"committed, {written} counted", steps
            batch = []
    assert (batch, written, dead_lettered) == ([], 20, 1), steps
    commits = sum(step.startswith("committed") for step in steps)
    assert worker.batches_committed == commits
    assert registry.get_sample_value("calmon_ingest_batch_seconds_count") == commits
    dead = read_all(kafka_settings.bootstrap_servers[0], kafka_settings.dead_letter_topic or "", 1)
    assert [record.value for record in dead] == [b"not json"]


def test_while_the_store_is_down_the_batch_is_retried_and_nothing_committed_or_counted(
    kafka_settings: KafkaSettings,
    producer: KafkaProducer,
    sqlite_engine: Engine,
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = FlakyStore(sqlite_engine)
    store.down.set()
    topic = kafka_settings.topics.probabilities
    with running_worker(kafka_settings, store, FAST_RETRIES) as (worker, _metrics, registry):
        send_all(producer, topic, [prediction(i) for i in range(30)])
        with caplog.at_level(logging.WARNING, logger="monitor.ingest.worker"):
            wait_until(lambda: store.failed_writes >= 3, what="three failed writes")
        assert committed_total(kafka_settings, topic) == 0
        assert "store unavailable, retrying" in {r.getMessage() for r in caplog.records}
        assert registry.get_sample_value("calmon_ingest_write_retries_total") == pytest.approx(
            store.failed_writes, abs=1
        )
        counted = {"stream": "prediction"}
        assert (registry.get_sample_value("calmon_ingest_messages_total", counted) or 0) == 0
        assert worker.batches_committed == 0
        store.down.clear()
        wait_until(lambda: committed_total(kafka_settings, topic) == 30, what="30 committed")
        assert registry.get_sample_value("calmon_ingest_messages_total", counted) == 30
    assert count_events(sqlite_engine) == 30


def test_a_stop_during_the_retries_leaves_the_batch_uncommitted_for_the_next_reader(
    kafka_settings: KafkaSettings, producer: KafkaProducer, sqlite_engine: Engine
) -> None:
    store = FlakyStore(sqlite_engine)
    store.down.set()
    topic = kafka_settings.topics.probabilities
    send_all(producer, topic, [prediction(i) for i in range(30)])
    with running_worker(kafka_settings, store, FAST_RETRIES) as (worker, _metrics, _registry):
        wait_until(lambda: store.failed_writes >= 2, what="two failed writes")
    # running_worker stopped it (and asserted it stopped) while the store was down.
    assert worker.batches_committed == 0
    assert committed_total(kafka_settings, topic) == 0
    # The next reader of the group gets the whole batch again.
    with running_worker(kafka_settings, EventStore(sqlite_engine)):
        wait_until(lambda: committed_total(kafka_settings, topic) == 30, what="30 committed")
    assert count_events(sqlite_engine) == 30


def test_readiness_follows_the_consumer_from_start_through_its_group_join(
    kafka_settings: KafkaSettings, sqlite_engine: Engine
) -> None:
    """``broker_problem`` (/readyz): not connected, then in the group and answered."""
    store = EventStore(sqlite_engine)
    unstarted = IngestWorker(
        kafka=kafka_settings,
        ingest=IngestSettings(),
        store=store,
        metrics=IngestMetrics(CollectorRegistry()),
    )
    assert unstarted.broker_problem() == "not connected to the Kafka cluster yet"
    # Liveness (/healthz) beside it: a loop that has not gone round for longer than
    # max_poll_interval_ms is stuck (the worker notes each round in _progress_at).
    assert unstarted.stall_problem() is None
    limit_s = kafka_settings.max_poll_interval_ms / 1000
    unstarted._progress_at = time.monotonic() - (limit_s - 0.1)  # not quite stuck
    assert unstarted.stall_problem() is None
    unstarted._progress_at = time.monotonic() - (limit_s + 2)
    assert (unstarted.stall_problem() or "").startswith("the ingest loop has not gone round for ")
    with running_worker(kafka_settings, store) as (worker, _metrics, _registry):
        wait_until(lambda: worker.broker_problem() is None, what="ready")
        # A cluster that stops answering is reported once the silence outlasts
        # kafka.readiness_timeout (test_failures.py stops a real broker for it). Here
        # the timeout is set to zero instead, which the settings refuse from a user:
        # the gap between two heartbeat answers is then always too long.
        worker._kafka = kafka_settings.model_copy(update={"readiness_timeout": 0.0})
        wait_until(
            lambda: (worker.broker_problem() or "").startswith(
                "no heartbeat answered by the Kafka cluster for 0 s"
            ),
            what="a silence longer than a zero timeout",
        )


def test_while_the_dead_letter_topic_fails_the_batch_is_retried_and_not_committed(
    kafka_settings: KafkaSettings,
    producer: KafkaProducer,
    sqlite_engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Step 3: a rejected message is committed past only once the dead-letter topic has
    acknowledged it. The topic "fails" by raising what a failed acknowledgement raises."""
    down = threading.Event()
    down.set()
    failures: list[int] = []
    forward = dead_letter.forward

    def flaky_forward(*args, **kwargs):  # type: ignore[no-untyped-def]
        if down.is_set():
            failures.append(1)
            raise dead_letter.DeadLetterError("the test's dead-letter topic is down")
        return forward(*args, **kwargs)

    monkeypatch.setattr(dead_letter, "forward", flaky_forward)
    topic = kafka_settings.topics.probabilities
    store = EventStore(sqlite_engine, clock_ms=lambda: BASE_MS + 86_400_000)
    with running_worker(kafka_settings, store, FAST_RETRIES) as (worker, _metrics, registry):
        send_all(producer, topic, [prediction(i) for i in range(10)] + [b"not json"])
        with caplog.at_level(logging.WARNING, logger="monitor.ingest.worker"):
            wait_until(lambda: len(failures) >= 3, what="three failed dead-letter sends")
        assert committed_total(kafka_settings, topic) == 0
        assert registry.get_sample_value("calmon_ingest_dead_lettered_total") == 0
        assert "dead-letter topic unavailable, retrying" in {r.getMessage() for r in caplog.records}
        down.clear()
        wait_until(lambda: committed_total(kafka_settings, topic) == 11, what="11 committed")
        assert registry.get_sample_value("calmon_ingest_dead_lettered_total") == 1
        assert worker.batches_committed >= 1
    # The batch was written once per attempt, idempotently: each event once.
    assert count_events(sqlite_engine) == 10
    dead = read_all(kafka_settings.bootstrap_servers[0], kafka_settings.dead_letter_topic or "", 1)
    assert [record.value for record in dead] == [b"not json"]


def test_without_a_dead_letter_topic_a_rejected_message_is_counted_and_passed(
    kafka_settings: KafkaSettings, producer: KafkaProducer, sqlite_engine: Engine
) -> None:
    kafka = kafka_settings.model_copy(update={"dead_letter_topic": None})
    topic = kafka.topics.probabilities
    with running_worker(kafka, EventStore(sqlite_engine)) as (_worker, _metrics, registry):
        send_all(producer, topic, [prediction(1), b"not json", prediction(2)])
        wait_until(lambda: committed_total(kafka, topic) == 3, what="3 committed")
        rejected = registry.get_sample_value(
            "calmon_ingest_rejected_total", {"reason": "unparseable_json"}
        )
        assert rejected == 1
        assert (registry.get_sample_value("calmon_ingest_dead_lettered_total") or 0) == 0
    assert count_events(sqlite_engine) == 2

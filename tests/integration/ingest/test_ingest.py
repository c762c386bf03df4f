"""Ingest against a real Kafka-protocol broker and real databases."""

from __future__ import annotations

import logging

import numpy as np
import orjson
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from sqlalchemy import Engine

from monitor.metrics import calibration as core
from monitor.metrics.summary import calibration_summary
from monitor.settings import KafkaSettings
from monitor.store.aggregates import WindowAggregate, load_window
from monitor.store.db.tables import Event
from monitor.store.write.event_store import EventStore
from tests.fixtures.kafka import read_all
from tests.integration.ingest.helpers import (
    BASE_MS,
    count_events,
    label,
    prediction,
    running_worker,
    send_all,
    wait_until,
)

pytestmark = pytest.mark.integration


def _first_day(engine: Engine) -> WindowAggregate:
    """The test model's whole-series window over the day its events are in."""
    return load_window(
        engine,
        model_id="fraud",
        model_version="v1",
        segment="__all__",
        start_ms=BASE_MS,
        end_ms=BASE_MS + 86_400_000,
        now_ms=BASE_MS + 86_400_000,
    )


def test_good_messages_land_and_bad_ones_are_dead_lettered(
    kafka_settings: KafkaSettings, producer: KafkaProducer, migrated_engine: Engine
) -> None:
    good = [prediction(i) for i in range(200)]
    base = {"event_id": "x", "model_id": "fraud", "model_version": "v1", "timestamp": BASE_MS}
    bad = {
        b"{not json": "unparseable_json",
        orjson.dumps({**base, "probability": 1.5}): "bad_probability",
        orjson.dumps({"event_id": "x", "model_id": "fraud", "label": 2, "timestamp": BASE_MS}): (
            "bad_label"
        ),
        orjson.dumps({**base, "event_id": None, "probability": 0.5}): "missing_field",
        orjson.dumps({**base, "timestamp": "yesterday", "probability": 0.5}): "bad_timestamp",
        orjson.dumps({**base, "event_id": "z"})[:-1] + b', "raw_score": NaN}': "unparseable_json",
        b"[1, 2, 3]": "not_an_object",
        orjson.dumps({**base, "probability": 0.5, "pad": "x" * 70_000}): "oversized",
    }
    # Bad messages in the middle of the good ones: the same batch holds both.
    payloads = good[:100] + list(bad) + good[100:]
    send_all(producer, kafka_settings.topics.probabilities, payloads)
    labels = [label(i, i % 2) for i in range(200)]
    send_all(producer, kafka_settings.topics.labels, labels)

    store = EventStore(
        migrated_engine, segment_keys=["region"], clock_ms=lambda: BASE_MS + 86_400_000
    )
    with running_worker(kafka_settings, store) as (_worker, _metrics, registry):
        wait_until(
            lambda: count_events(migrated_engine, Event.label.is_not(None)) == 200,
            what="200 labelled events",
        )
        wait_until(
            lambda: (
                (registry.get_sample_value("calmon_ingest_dead_lettered_total") or 0) == len(bad)
            ),
            what="dead letters",
        )
        for reason, expected in {
            "unparseable_json": 2,
            "bad_probability": 1,
            "bad_label": 1,
            "missing_field": 1,
            "bad_timestamp": 1,
            "not_an_object": 1,
            "oversized": 1,
        }.items():
            assert (
                registry.get_sample_value("calmon_ingest_rejected_total", {"reason": reason})
                == expected
            )
        # The store holds the last batch before the worker counts it: wait for the count.
        wait_until(
            lambda: all(
                registry.get_sample_value("calmon_ingest_messages_total", {"stream": stream}) == 200
                for stream in ("prediction", "label")
            ),
            what="200 of each stream counted",
        )

    dead = read_all(
        kafka_settings.bootstrap_servers[0], kafka_settings.dead_letter_topic or "", len(bad)
    )
    assert sorted(record.value for record in dead) == sorted(bad)
    reasons = {record.value: dict(record.headers)["calmon-reason"].decode() for record in dead}
    assert reasons == bad
    # Each dead letter says where it came from, so it can be fixed and replayed there.
    topic = kafka_settings.topics.probabilities
    source = {
        record.value: (topic, str(record.partition), str(record.offset))
        for record in read_all(kafka_settings.bootstrap_servers[0], topic, len(payloads))
    }
    for record in dead:
        headers = {name: value.decode() for name, value in record.headers}
        assert (
            headers["calmon-source-topic"],
            headers["calmon-source-partition"],
            headers["calmon-source-offset"],
        ) == source[record.value]
        assert headers["calmon-detail"]

    # What landed is exactly the good events: compare the window with the core.
    p = np.array([(i % 97) / 97 for i in range(200)])
    y = np.array([i % 2 for i in range(200)])
    window = _first_day(migrated_engine)
    values = calibration_summary(window.aggregate, bootstrap_resamples=0).values
    assert values["ece"] == pytest.approx(core.expected_calibration_error(p, y), abs=1e-12)
    assert window.predictions == 200


def test_a_message_the_store_refuses_is_dead_lettered_and_the_rest_lands(
    kafka_settings: KafkaSettings,
    producer: KafkaProducer,
    migrated_engine: Engine,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Valid messages that the store refuses (a DataError or IntegrityError, the same
    on every retry) must not block the partition. The constraint below is the test's
    stand-in for any rule the database enforces that validation does not know."""
    if migrated_engine.dialect.name == "sqlite":  # SQLite cannot add a CHECK later
        refuse = (
            "CREATE TRIGGER refuse_e13 BEFORE INSERT ON events WHEN NEW.event_id = 'e13' "
            "BEGIN SELECT RAISE(ABORT, 'e13 refused'); END"
        )
    else:
        refuse = "ALTER TABLE events ADD CONSTRAINT refuse_e13 CHECK (event_id <> 'e13')"
    with migrated_engine.begin() as connection:
        connection.exec_driver_sql(refuse)
    send_all(producer, kafka_settings.topics.probabilities, [prediction(i) for i in range(100)])
    send_all(producer, kafka_settings.topics.labels, [label(i, i % 2) for i in range(100)])
    store = EventStore(migrated_engine, clock_ms=lambda: BASE_MS + 86_400_000)
    with (
        caplog.at_level(logging.WARNING, logger="monitor.ingest.worker"),
        running_worker(kafka_settings, store) as (_worker, _metrics, registry),
    ):
        wait_until(
            lambda: (
                committed_total(kafka_settings, kafka_settings.topics.probabilities) == 100
                and committed_total(kafka_settings, kafka_settings.topics.labels) == 100
            ),
            what="every offset committed",
        )
        refused = [
            r
            for r in caplog.records
            if r.getMessage() == "message refused by the store, dead-lettered"
        ]
        assert refused and refused[0].reason == "store_rejected"  # type: ignore[attr-defined]
        rejected = {"reason": "store_rejected"}
        assert registry.get_sample_value("calmon_ingest_rejected_total", rejected) == 2
        assert registry.get_sample_value("calmon_ingest_dead_lettered_total") == 2
        for stream in ("prediction", "label"):
            assert (
                registry.get_sample_value("calmon_ingest_messages_total", {"stream": stream}) == 99
            )
    # e13's prediction and its label are refused (both would create its row); the
    # other 99 events landed with their labels.
    assert count_events(migrated_engine) == 99
    assert count_events(migrated_engine, Event.label.is_not(None)) == 99
    window = _first_day(migrated_engine)
    assert (window.predictions, window.aggregate.n_labelled) == (99, 99)
    dead = read_all(kafka_settings.bootstrap_servers[0], kafka_settings.dead_letter_topic or "", 2)
    assert sorted(record.value for record in dead) == sorted([prediction(13), label(13, 1)])
    for record in dead:
        headers = dict(record.headers)
        assert headers["calmon-reason"] == b"store_rejected"
        assert b"refuse" in headers["calmon-detail"] or b"e13" in headers["calmon-detail"]


def test_committed_offsets_cover_the_batch(
    kafka_settings: KafkaSettings, producer: KafkaProducer, sqlite_engine: Engine
) -> None:
    send_all(producer, kafka_settings.topics.probabilities, [prediction(i) for i in range(50)])
    with running_worker(kafka_settings, EventStore(sqlite_engine)):
        wait_until(lambda: count_events(sqlite_engine) == 50, what="50 events")
        wait_until(
            lambda: committed_total(kafka_settings, kafka_settings.topics.probabilities) == 50,
            what="offsets committed",
        )


def test_a_committed_batch_is_already_counted(
    kafka_settings: KafkaSettings, producer: KafkaProducer, sqlite_engine: Engine
) -> None:
    """Whoever sees an offset committed must see its batch in the counters: a test or
    an operator reading both would otherwise find messages stored but not counted (a
    CI run once read 100 of 180, the commit having landed before the count)."""
    seen_at_commit: list[float] = []
    with running_worker(kafka_settings, EventStore(sqlite_engine)) as (worker, _metrics, registry):
        assert worker.connected.wait(30), "the worker did not reach the broker"
        commit = worker.consumer.commit

        def commit_and_note(*args, **kwargs):  # type: ignore[no-untyped-def]
            seen_at_commit.append(
                registry.get_sample_value("calmon_ingest_messages_total", {"stream": "prediction"})
                or 0.0
            )
            return commit(*args, **kwargs)

        worker.consumer.commit = commit_and_note  # type: ignore[method-assign]
        send_all(producer, kafka_settings.topics.probabilities, [prediction(i) for i in range(50)])
        wait_until(
            lambda: committed_total(kafka_settings, kafka_settings.topics.probabilities) == 50,
            what="offsets committed",
        )
    assert seen_at_commit and seen_at_commit[-1] == 50


def committed_total(kafka: KafkaSettings, topic: str) -> int:
    """Sum over partitions of the group's committed offset for ``topic``."""
    consumer = KafkaConsumer(
        bootstrap_servers=kafka.bootstrap_servers,
        group_id=kafka.group_id,
        enable_auto_commit=False,
    )
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        committed = [consumer.committed(TopicPartition(topic, p)) for p in partitions]
    finally:
        consumer.close(autocommit=False)
    return sum(offset or 0 for offset in committed)

"""Cardinality budgets from outside: `calmon run` as a process, a real broker and
PostgreSQL; models and versions past the budget reach the dead-letter topic with their
reason, and what was accepted before a restart is still accepted after it."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest
import yaml
from kafka import KafkaProducer

from monitor.demo.broker import free_loopback_port
from monitor.settings import KafkaSettings
from monitor.store.db import migrate
from monitor.store.db.engine import make_engine
from tests.fixtures.kafka import read_all
from tests.integration.app.test_daemon import _start, _stop, scrape
from tests.integration.ingest.helpers import send_all, wait_until

pytestmark = pytest.mark.integration


def _config(tmp_path: Path, kafka: KafkaSettings, port: int, **ingest: object) -> Path:
    path = tmp_path / "calmon.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "kafka": kafka.model_dump(mode="json", exclude_none=True),
                "ingest": {"max_batch_age": "0.1s", **ingest},
                "http": {"host": "127.0.0.1", "port": port},
            }
        )
    )
    return path


def _prediction(model: str, version: str, event: str) -> bytes:
    return orjson.dumps(
        {
            "event_id": event,
            "model_id": model,
            "model_version": version,
            "timestamp": int(time.time() * 1000),
            "probability": 0.3,
        }
    )


def _counter(port: int, name: str, **labels: str) -> float | None:
    try:
        return scrape(port).get((name, tuple(sorted(labels.items()))))
    except OSError:
        return None  # not listening yet


def test_models_and_versions_past_the_budget_are_dead_lettered_across_restarts(
    kafka_settings: KafkaSettings, producer: KafkaProducer, postgres_url: str, tmp_path: Path
) -> None:
    engine = make_engine(postgres_url)
    migrate.upgrade(engine)
    engine.dispose()
    topic = kafka_settings.topics.probabilities
    port = free_loopback_port()
    budget = {"models": ["m*"], "max_models": 2, "max_versions_per_model": 2}
    log = tmp_path / "calmon.log"
    process = _start(_config(tmp_path, kafka_settings, port, **budget), postgres_url, log)

    def accepted() -> float | None:
        return _counter(port, "calmon_ingest_messages_total", stream="prediction")

    def rejected(reason: str) -> float | None:
        return _counter(port, "calmon_ingest_rejected_total", reason=reason)

    try:
        # One at a time: the topic has two partitions, and the budget admits in the
        # order ingest reads, which across partitions is not the order sent.
        for n, version in enumerate(["v1", "v2"], start=1):
            send_all(producer, topic, [_prediction("m0", version, f"a{n}")])
            wait_until(lambda n=n: accepted() == n, timeout_s=60, what=f"m0 {version} accepted")
        send_all(producer, topic, [_prediction("m0", "v3", "a3")])
        wait_until(lambda: rejected("over_budget") == 1, timeout_s=30, what="v3 over budget")
        send_all(producer, topic, [_prediction("spam", "v1", "s1")])
        wait_until(lambda: rejected("model_not_allowed") == 1, timeout_s=30, what="spam")
        assert accepted() == 2
        assert _counter(port, "calmon_ingest_models") == 1
        assert _counter(port, "calmon_ingest_model_versions") == 2
    finally:
        _stop(process, log)

    # Restarted with a lower cap: m0 v1 and v2 were accepted before, so they still are;
    # a new version is not.
    budget["max_versions_per_model"] = 1
    process = _start(_config(tmp_path, kafka_settings, port, **budget), postgres_url, log)
    try:
        wait_until(
            lambda: _counter(port, "calmon_ingest_model_versions") == 2,
            timeout_s=30,
            what="the restarted daemon's budget, seeded from the store",
        )
        send_all(producer, topic, [_prediction("m0", "v2", "b1")])
        wait_until(lambda: accepted() == 1, timeout_s=60, what="known version accepted")
        send_all(producer, topic, [_prediction("m0", "v4", "b2")])
        wait_until(lambda: rejected("over_budget") == 1, timeout_s=30, what="v4 over budget")
    finally:
        _stop(process, log)

    assert kafka_settings.dead_letter_topic is not None
    letters = read_all(kafka_settings.bootstrap_servers[0], kafka_settings.dead_letter_topic, 3)
    reasons = {
        orjson.loads(record.value)["model_version"]
        + "/"
        + orjson.loads(record.value)["model_id"]: dict(record.headers)["calmon-reason"].decode()
        for record in letters
    }
    assert reasons == {
        "v3/m0": "over_budget",
        "v1/spam": "model_not_allowed",
        "v4/m0": "over_budget",
    }


def _classes(model: str, event: str, *names: str) -> bytes:
    return orjson.dumps(
        {
            "event_id": event,
            "model_id": model,
            "model_version": "v1",
            "timestamp": int(time.time() * 1000),
            "probabilities": {name: 1 / len(names) for name in names},
        }
    )


def test_classes_past_the_cap_are_dead_lettered_across_restarts(
    kafka_settings: KafkaSettings, producer: KafkaProducer, postgres_url: str, tmp_path: Path
) -> None:
    engine = make_engine(postgres_url)
    migrate.upgrade(engine)
    engine.dispose()
    topic = kafka_settings.topics.probabilities
    port = free_loopback_port()
    log = tmp_path / "calmon.log"
    cap = {"multiclass": {"max_classes": 3}}

    def accepted() -> float | None:
        return _counter(port, "calmon_ingest_messages_total", stream="prediction")

    def rejected(reason: str) -> float | None:
        return _counter(port, "calmon_ingest_rejected_total", reason=reason)

    process = _start(_config(tmp_path, kafka_settings, port, **cap), postgres_url, log)
    try:
        send_all(producer, topic, [_classes("intent", "a1", "a", "b", "c")])
        wait_until(lambda: accepted() == 1, timeout_s=60, what="three classes accepted")
        send_all(producer, topic, [_classes("intent", "a2", "a", "d")])
        wait_until(lambda: rejected("too_many_classes") == 1, timeout_s=30, what="a fourth")
        send_all(producer, topic, [_classes("fraud", "f1", "x", "y", "z", "w")])
        wait_until(lambda: rejected("too_many_classes") == 2, timeout_s=30, what="four at once")
    finally:
        _stop(process, log)

    # Restarted: the model's three classes are known from the store, so a fourth is
    # still refused, the known ones still pass, and the model stays multi-class.
    process = _start(_config(tmp_path, kafka_settings, port, **cap), postgres_url, log)
    try:
        wait_until(lambda: accepted() is not None, timeout_s=60, what="restarted daemon")
        # First a new class: without the count from the store, two classes would pass.
        send_all(producer, topic, [_classes("intent", "b2", "a", "e")])
        wait_until(lambda: rejected("too_many_classes") == 1, timeout_s=60, what="e refused")
        send_all(producer, topic, [_classes("intent", "b1", "c", "b")])
        wait_until(lambda: accepted() == 1, timeout_s=60, what="known classes accepted")
        send_all(
            producer,
            topic,
            [
                orjson.dumps(
                    {
                        **orjson.loads(_classes("intent", "b3", "a", "b")),
                        "probabilities": None,
                        "probability": 0.5,
                    }
                )
            ],
        )
        wait_until(lambda: rejected("kind_mismatch") == 1, timeout_s=30, what="a binary one")
    finally:
        _stop(process, log)

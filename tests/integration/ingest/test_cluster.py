"""The heartbeat signal /readyz is built on, read from a real consumer (kafka-python's
internals: this fails if an upgrade moves them)."""

from __future__ import annotations

import threading
import time

import pytest
from kafka import ConsumerRebalanceListener

from monitor.ingest.cluster import heartbeat_answered_at
from monitor.ingest.worker import make_consumer
from monitor.settings import IngestSettings, KafkaSettings
from tests.integration.ingest.helpers import wait_until

pytestmark = pytest.mark.integration


class Assigned(ConsumerRebalanceListener):
    def __init__(self) -> None:
        self.done = threading.Event()

    def on_partitions_revoked(self, revoked):  # type: ignore[no-untyped-def]
        pass

    def on_partitions_assigned(self, assigned):  # type: ignore[no-untyped-def]
        self.done.set()


def test_heartbeat_answers_start_with_the_group_membership(kafka_settings: KafkaSettings) -> None:
    listener = Assigned()
    consumer = make_consumer(kafka_settings, IngestSettings(), listener)
    try:
        assert heartbeat_answered_at(consumer) is None  # not in the group yet
        wait_until(
            lambda: bool(consumer.poll(timeout_ms=100) is not None and listener.done.is_set()),
            timeout_s=60,
            what="the group assignment",
        )
        # Heartbeats go from the client's IO thread, every heartbeat_interval_ms (1 s).
        first = time.monotonic()
        wait_until(
            lambda: (heartbeat_answered_at(consumer) or 0) > first,
            timeout_s=10,
            what="a heartbeat answered after the join",
        )
        answered = heartbeat_answered_at(consumer)
        assert answered is not None and answered <= time.monotonic()
    finally:
        consumer.close(autocommit=False, timeout_ms=1000)


def test_failed_connection_attempts_leave_no_thread_behind() -> None:
    """kafka-python starts its IO thread before the bootstrap that times out; calmon
    retries for as long as the cluster is away, so each failed attempt must close it."""
    from kafka.errors import KafkaTimeoutError

    from monitor.demo.broker import free_loopback_port

    def io_threads() -> int:
        return sum(1 for t in threading.enumerate() if t.name.startswith("kafka-io"))

    before = io_threads()
    kafka = KafkaSettings(
        bootstrap_servers=[f"127.0.0.1:{free_loopback_port()}"], bootstrap_timeout_ms=300
    )
    for _ in range(5):
        with pytest.raises(KafkaTimeoutError):
            make_consumer(kafka, IngestSettings(), Assigned())
    assert io_threads() == before

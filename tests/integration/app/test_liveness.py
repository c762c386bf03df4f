"""Liveness from outside: a `calmon run` process whose ingest loop is stuck (its write
waits on a PostgreSQL lock with no timeout) fails the chart's livenessProbe, and passes
it again once the loop goes round; readiness is not what it changes."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import orjson
import pytest
from kafka import KafkaProducer
from sqlalchemy import text

from monitor.demo.broker import free_loopback_port
from monitor.settings import KafkaSettings
from monitor.store.db import migrate
from monitor.store.db.engine import make_engine
from tests.integration.app.test_readiness import (
    chart_probes,
    predictions,
    predictions_counted,
    start_daemon,
    stop_daemon,
    write_config,
)
from tests.integration.ingest.helpers import count_events, send_all, wait_until

pytestmark = pytest.mark.integration

#: kafka.max_poll_interval_ms here: the bound of a stuck ingest loop.
STALL_MS = 8000


def liveness_problems(port: int) -> dict[str, str]:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5)
    except urllib.error.HTTPError as error:
        problems: dict[str, str] = orjson.loads(error.read())["problems"]
        return problems
    return {}


def test_a_stuck_ingest_loop_fails_liveness_until_it_goes_round_again(
    kafka_settings: KafkaSettings, producer: KafkaProducer, postgres_url: str, tmp_path: Path
) -> None:
    engine = make_engine(postgres_url)
    migrate.upgrade(engine)
    http_port = free_loopback_port()
    probes = chart_probes(http_port)
    liveness, readiness = probes["livenessProbe"], probes["readinessProbe"]
    kafka = kafka_settings.model_copy(update={"max_poll_interval_ms": STALL_MS})
    log = tmp_path / "calmon.log"
    daemon = start_daemon(write_config(tmp_path, kafka, http_port), postgres_url, log)
    lock = engine.connect()
    try:
        wait_until(readiness.succeeds, timeout_s=90, what="ready")
        assert liveness.succeeds()

        lock.execute(text("LOCK TABLE events IN ACCESS EXCLUSIVE MODE"))
        send_all(producer, kafka.topics.probabilities, predictions(0, 10))
        wait_until(
            lambda: not liveness.succeeds(), timeout_s=STALL_MS / 1000 + 30, what="not alive"
        )
        assert "has not gone round" in liveness_problems(http_port)["ingest"]

        lock.rollback()
        wait_until(liveness.succeeds, timeout_s=30, what="alive again")
        # The write went through once the lock was gone (counters are at-least-once: a
        # stalled member loses its partitions and may read the batch again).
        wait_until(lambda: predictions_counted(http_port) >= 10, timeout_s=60, what="ingest")
        assert count_events(engine) == 10
    finally:
        lock.close()
        stop_daemon(daemon, log)
        engine.dispose()

"""The daemon (`calmon run`, a real process) is SIGKILLed with a webhook delivery
pending; a new daemon on the same store delivers it, exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine, select

from monitor.alerts.pipeline import AlertPipeline
from monitor.rules.model import Rule
from monitor.settings import KafkaSettings, Settings, WebhookSettings
from monitor.store.db.tables import WebhookDelivery
from tests.fixtures.http_receiver import Receiver
from tests.integration.alerts.test_webhooks import drifted_result
from tests.integration.ingest.helpers import wait_until

pytestmark = pytest.mark.integration


def start_daemon(config: Path, database_url: str, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "CALMON_STORE_URL": database_url, "CALMON_WEBHOOK_SECRET": "k"}
    return subprocess.Popen(
        [sys.executable, "-m", "monitor", "run", "--config", str(config)],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def test_a_pending_delivery_survives_a_killed_daemon(
    kafka_settings: KafkaSettings,
    http_receiver: Receiver,
    sqlite_url: str,
    sqlite_engine: Engine,
    tmp_path: Path,
) -> None:
    webhook = {"url": f"{http_receiver.url}/hook", "backoff_initial": 0.1, "backoff_max": 0.2}
    config = tmp_path / "calmon.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "kafka": kafka_settings.model_dump(mode="json", exclude_none=True),
                "http": {"host": "127.0.0.1", "port": 0},
                "webhooks": {"recalibrate": webhook},
            }
        )
    )
    rule = Rule.model_validate(
        {
            "name": "HighECE",
            "metric": "ece",
            "op": ">",
            "threshold": 0.05,
            "actions": ["recalibrate"],
        }
    )
    settings = Settings(webhooks={"recalibrate": WebhookSettings.model_validate(webhook)})
    AlertPipeline(sqlite_engine, settings, [rule], CollectorRegistry(), notifier=None).on_results(
        "24h", [drifted_result()]
    )

    http_receiver.responses = [503] * 1000  # the receiver is down
    log = tmp_path / "daemon.log"
    first = start_daemon(config, sqlite_url, log)
    http_receiver.wait_for(lambda got: len(got) >= 1, timeout=60)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    with sqlite_engine.connect() as connection:
        (row,) = connection.execute(select(WebhookDelivery)).all()
    assert row.state == "pending", log.read_text()

    http_receiver.responses.clear()  # the receiver is back
    second = start_daemon(config, sqlite_url, log)
    try:
        http_receiver.wait_for(lambda got: any(r.status == 200 for r in got), timeout=90)

        def delivered() -> bool:
            with sqlite_engine.connect() as connection:
                (row,) = connection.execute(select(WebhookDelivery)).all()
            return bool(row.state == "delivered")

        # Marked delivered: the delivery loop leases pending rows only, so from here on
        # nothing could send it again.
        wait_until(delivered, timeout_s=30, what="the delivery marked delivered")
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=60)
    assert len(http_receiver.accepted()) == 1, log.read_text()
    keys = {r.headers["webhook-id"] for r in http_receiver.received}
    assert len(keys) == 1
    with sqlite_engine.connect() as connection:
        (row,) = connection.execute(select(WebhookDelivery)).all()
    assert row.state == "delivered"

"""Recalibration webhooks from the outbox, against a real HTTP receiver and both stores:
retries until accepted (exactly one accepted delivery), a valid HMAC signature, resume
after a restart, dead-lettering after the last attempt, one delivery across replicas."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime

import orjson
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine, select
from standardwebhooks import Webhook, WebhookVerificationError

from monitor.alerts import signing
from monitor.alerts.pipeline import AlertPipeline
from monitor.alerts.webhooks import DeliveryMetrics, WebhookDeliverer, backoff_ms
from monitor.core.results import WindowResult
from monitor.core.series import SeriesWindow
from monitor.metrics.calibration import ReliabilityBin
from monitor.rules.model import Rule
from monitor.settings import Settings, WebhookSettings
from monitor.store.db.tables import WebhookDelivery
from tests.fixtures.http_receiver import Receiver

pytestmark = pytest.mark.integration

KEY = b"s3cret-signing-key, 32 bytes long"
SECRET = "whsec_" + base64.b64encode(KEY).decode()  # the Standard Webhooks form
SERIES = SeriesWindow("fraud", "v2", "region=eu", "24h")
RULE = Rule.model_validate(
    {
        "name": "CalibrationErrorHigh",
        "metric": "ece",
        "op": ">",
        "threshold": 0.05,
        "actions": ["recalibrate"],
        "annotations": {"summary": "ECE {ece:.3f} on {model} {segment}"},
    }
)


@pytest.fixture(autouse=True)
def signing_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALMON_WEBHOOK_SECRET", SECRET)


def drifted_result() -> WindowResult:
    at = datetime(2026, 11, 22, 12, tzinfo=UTC)
    return WindowResult(
        SERIES,
        at,
        at,
        at,
        predictions=5000,
        labelled=4000,
        values={"ece": 0.083, "brier_score": 0.21},
        reliability_bins=(ReliabilityBin(9, 0.9, 1.0, 120, 0.95, 0.71, 0.62, 0.78),),
    )


def webhook_settings(receiver: Receiver, **overrides: object) -> dict[str, WebhookSettings]:
    options = {"url": f"{receiver.url}/recalibrate", "backoff_initial": 0.05, "backoff_max": 0.2}
    return {"recalibrate": WebhookSettings.model_validate({**options, **overrides})}


def fire(
    engine: Engine, webhooks: dict[str, WebhookSettings], actions: list[str] | None = None
) -> None:
    settings = Settings(webhooks=webhooks)
    rule = RULE.model_copy(update={"actions": actions or ["recalibrate"]})
    pipeline = AlertPipeline(engine, settings, [rule], CollectorRegistry(), notifier=None)
    (transition,) = pipeline.on_results("24h", [drifted_result()])
    assert transition.kind == "firing"
    # Evaluating the same firing alert again never enqueues a second delivery.
    assert pipeline.on_results("24h", [drifted_result()]) == []


def deliverer(engine: Engine, webhooks: dict[str, WebhookSettings]) -> WebhookDeliverer:
    return WebhookDeliverer(engine, webhooks, DeliveryMetrics(CollectorRegistry()), seed=1)


def deliver_until_done(worker: WebhookDeliverer, engine: Engine, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        worker.deliver_due()
        state = outbox(engine)[0].state
        if state != "pending":
            return str(state)
        time.sleep(0.02)
    raise AssertionError("delivery still pending")


def outbox(engine: Engine) -> list[WebhookDelivery]:
    with engine.connect() as connection:
        return list(connection.execute(select(WebhookDelivery)).all())  # type: ignore[arg-type]


def test_retries_until_accepted_then_never_again(
    migrated_engine: Engine, http_receiver: Receiver
) -> None:
    http_receiver.responses = [500, 502, 503]  # fails three times, then succeeds
    webhooks = webhook_settings(http_receiver)
    fire(migrated_engine, webhooks)
    worker = deliverer(migrated_engine, webhooks)
    assert deliver_until_done(worker, migrated_engine) == "delivered"

    assert [r.status for r in http_receiver.received] == [500, 502, 503, 200]
    (accepted,) = http_receiver.accepted()
    keys = {r.headers[signing.ID_HEADER] for r in http_receiver.received}
    assert len(keys) == 1  # every retry carries the same id, the idempotency key
    # What the receiver got, verified by the Standard Webhooks reference library (which
    # raises unless it verifies) and by calmon's own verify.
    Webhook(SECRET).verify(accepted.body, accepted.headers)
    assert signing.verify(KEY, accepted.body, accepted.headers)
    assert not signing.verify(b"wrong key", accepted.body, accepted.headers)
    assert not signing.verify(KEY, accepted.body + b" ", accepted.headers)
    forged = {**accepted.headers, signing.ID_HEADER: "forged:recalibrate"}
    assert not signing.verify(KEY, accepted.body, forged)
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(accepted.body, forged)

    body = orjson.loads(accepted.body)
    assert body["model"] == "fraud" and body["model_version"] == "v2"
    assert body["segment"] == "region=eu" and body["window"] == "24h"
    assert body["trigger"] == {"ece": 0.083} and body["metrics"]["brier_score"] == 0.21
    assert body["reliability_bins"][0]["observed_ratio"] == 0.71
    assert body["annotations"] == {"summary": "ECE 0.083 on fraud region=eu"}  # rendered
    assert body["alert_id"] in keys.pop()
    assert "/api/v1/history?model=fraud&model_version=v2" in body["history_url"]

    (row,) = outbox(migrated_engine)
    assert (row.state, row.attempts) == ("delivered", 4)
    outcomes = worker._metrics.outcomes
    assert outcomes.labels("recalibrate", "retry")._value.get() == 3
    assert outcomes.labels("recalibrate", "delivered")._value.get() == 1
    # Later passes, and a restarted daemon, do not send a delivered webhook again.
    worker.deliver_due()
    deliverer(migrated_engine, webhooks).deliver_due()
    assert len(http_receiver.received) == 4


def test_a_restart_resumes_pending_deliveries(
    migrated_engine: Engine, http_receiver: Receiver
) -> None:
    http_receiver.responses = [503]
    webhooks = webhook_settings(http_receiver, backoff_initial=0.01, backoff_max=0.01)
    fire(migrated_engine, webhooks)
    first = deliverer(migrated_engine, webhooks)
    assert first.deliver_due() == 1  # fails, stays pending
    first.close()  # the daemon stops
    assert outbox(migrated_engine)[0].state == "pending"
    time.sleep(0.05)
    assert deliver_until_done(deliverer(migrated_engine, webhooks), migrated_engine) == (
        "delivered"
    )
    assert [r.status for r in http_receiver.received] == [503, 200]


def test_dead_lettered_after_the_last_attempt(
    migrated_engine: Engine, http_receiver: Receiver
) -> None:
    http_receiver.responses = [500] * 10
    webhooks = webhook_settings(http_receiver, max_attempts=3)
    fire(migrated_engine, webhooks)
    worker = deliverer(migrated_engine, webhooks)
    assert deliver_until_done(worker, migrated_engine) == "dead"
    (row,) = outbox(migrated_engine)
    assert (row.attempts, row.last_error) == (3, "HTTP 500")
    assert worker._metrics.outcomes.labels("recalibrate", "dead")._value.get() == 1
    worker.deliver_due()
    assert len(http_receiver.received) == 3


def test_an_unreachable_receiver_is_a_failed_attempt(migrated_engine: Engine) -> None:
    from monitor.demo.broker import free_loopback_port

    webhooks = {
        "recalibrate": WebhookSettings(
            url=f"http://127.0.0.1:{free_loopback_port()}/hook", max_attempts=1
        )
    }
    fire(migrated_engine, webhooks)
    assert deliver_until_done(deliverer(migrated_engine, webhooks), migrated_engine) == "dead"
    assert "ConnectError" in (outbox(migrated_engine)[0].last_error or "")


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    import random

    settings = WebhookSettings(url="http://x", backoff_initial=1, backoff_max=60)
    rng = random.Random(0)
    for attempt, base in [(1, 1), (2, 2), (3, 4), (6, 32), (7, 60), (20, 60)]:
        delay = backoff_ms(settings, attempt, rng)
        assert 500 * base <= delay <= 1000 * base

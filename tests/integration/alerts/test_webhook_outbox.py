"""The webhook outbox against hostile and slow receivers, and replicas racing on it: real
HTTP receivers on loopback, real stores (two deliverers with engines of their own are two
replicas: they share nothing but the database)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from monitor.alerts.deadline import RESPONSE_CAP
from monitor.alerts.webhooks import DeliveryMetrics, WebhookDeliverer
from monitor.core.times import wall_clock_ms
from monitor.settings import WebhookSettings
from monitor.store import outbox as store_outbox
from monitor.store.db.engine import make_engine
from tests.fixtures.http_receiver import HugeBody, Receiver, held, start_receiver, trickle
from tests.integration.alerts.test_webhooks import fire, outbox, signing_key  # noqa: F401

pytestmark = pytest.mark.integration
NO_RETRY_SOON = {"backoff_initial": 3600, "backoff_max": 3600}


def hook(receiver: Receiver, **options: object) -> WebhookSettings:
    return WebhookSettings.model_validate({"url": f"{receiver.url}/hook", **options})


def replica(
    engine: Engine,
    webhooks: dict[str, WebhookSettings],
    *,
    clock_ms: Callable[[], int] = wall_clock_ms,
    lease_margin_ms: int = 30_000,
) -> WebhookDeliverer:
    return WebhookDeliverer(
        engine,
        webhooks,
        DeliveryMetrics(CollectorRegistry(), webhooks),
        clock_ms=clock_ms,
        seed=1,
        lease_margin_ms=lease_margin_ms,
    )


def outcome(worker: WebhookDeliverer, webhook: str, name: str) -> float:
    return float(worker._metrics.outcomes.labels(webhook, name)._value.get())


@pytest.fixture
def second_engine(migrated_engine: Engine) -> Iterator[Engine]:
    """Another replica's engine on the same database: its own pool of connections."""
    engine = make_engine(migrated_engine.url.render_as_string(hide_password=False))
    yield engine
    engine.dispose()


def test_a_trickling_receiver_cannot_outlive_the_lease(
    migrated_engine: Engine, second_engine: Engine, http_receiver: Receiver
) -> None:
    # Lease: the 1 s deadline, 1 s of grace, 5 s of margin (room for a loaded machine).
    # The receiver trickles its answer for over 15 s, a byte every 0.1 s: httpx's
    # per-read timeout never fires, and without the deadline the attempt outlives it.
    http_receiver.responses = [trickle(200, every_s=0.1, padding=100)]
    webhooks = {"recalibrate": hook(http_receiver, timeout=1, **NO_RETRY_SOON)}
    fire(migrated_engine, webhooks)
    first = replica(migrated_engine, webhooks, lease_margin_ms=5000)
    second = replica(second_engine, webhooks, lease_margin_ms=5000)
    attempt = threading.Thread(target=first.deliver_due)
    attempt.start()
    http_receiver.wait_for(lambda got: len(got) == 1)
    # The other replica polls all along: had the attempt outlived its lease, it would
    # have taken the delivery over and sent it a second time.
    while attempt.is_alive():
        second.deliver_due()
        attempt.join(0.05)
    (row,) = outbox(migrated_engine)
    assert len(http_receiver.received) == 1
    assert (row.state, row.attempts) == ("pending", 1)  # a failure, recorded in its lease
    assert "deadline of 1 s exceeded" in (row.last_error or "")
    assert outcome(first, "recalibrate", "retry") == 1
    assert outcome(first, "recalibrate", "lease_lost") == 0
    # And calmon hung up at the deadline (the receiver's next byte fails), rather than
    # leaving a thread reading the trickle to its end.
    http_receiver.wait_for(lambda got: got[0].status == -1, timeout=10)


@pytest.mark.parametrize("status", [200, 500])
def test_a_huge_response_body_is_not_read(
    migrated_engine: Engine, http_receiver: Receiver, status: int
) -> None:
    huge = HugeBody(size=256 * 1024 * 1024, status=status)
    http_receiver.responses = [huge]
    webhooks = {"recalibrate": hook(http_receiver, timeout=30, max_attempts=1)}
    fire(migrated_engine, webhooks)
    assert replica(migrated_engine, webhooks).deliver_due() == 1
    assert huge.hung_up.wait(30)
    # Sent before calmon hung up: what the loopback's socket buffers hold, not 256 MiB.
    assert huge.sent < 64 * 1024 * 1024, huge.sent
    (row,) = outbox(migrated_engine)
    if status == 200:
        assert (row.state, row.last_error) == ("delivered", None)
    else:
        assert row.state == "dead"
        assert row.last_error == "HTTP 500: " + "x" * 200  # from the first RESPONSE_CAP bytes
        assert RESPONSE_CAP <= 4096


def test_a_late_attempt_cannot_overwrite_the_replica_that_took_over(
    migrated_engine: Engine, second_engine: Engine, http_receiver: Receiver
) -> None:
    """The race the lease-conditioned UPDATE closes: replica A's attempt outlives its
    lease (here: B's clock is ahead, as after a pause or with skew), B takes the delivery
    over and it is delivered; then A's answer comes, a failure, its last attempt."""
    release = threading.Event()
    http_receiver.responses = [held(release, 500), 200]
    webhooks = {"recalibrate": hook(http_receiver, timeout=30, max_attempts=1)}
    fire(migrated_engine, webhooks)
    a = replica(migrated_engine, webhooks, lease_margin_ms=1000)
    lease_ms = 32_000  # A's lease: the 30 s deadline, 1 s grace, 1 s margin
    b = replica(second_engine, webhooks, clock_ms=lambda: wall_clock_ms() + lease_ms + 1000)

    attempt = threading.Thread(target=a.deliver_due)
    attempt.start()
    http_receiver.wait_for(lambda got: len(got) == 1)  # A's POST is at the receiver
    assert b.deliver_due() == 1  # B sees A's lease over, takes it, and it is delivered
    assert outbox(migrated_engine)[0].state == "delivered"
    release.set()  # now A's answer: HTTP 500 on its last attempt
    attempt.join(60)
    assert not attempt.is_alive()

    (row,) = outbox(migrated_engine)
    assert (row.state, row.attempts, row.last_error) == ("delivered", 1, None)
    assert [r.status for r in http_receiver.received] == [500, 200]
    assert outcome(a, "recalibrate", "lease_lost") == 1
    assert outcome(a, "recalibrate", "dead") == 0  # no false CalmonWebhookDeadLettered
    assert outcome(b, "recalibrate", "delivered") == 1


def test_two_replicas_racing_deliver_each_row_once(
    migrated_engine: Engine, second_engine: Engine, http_receiver: Receiver
) -> None:
    """Two replicas take from the same 120 due rows at the same time, in threads; a take
    that is not exclusive (two replicas leasing the same row) shows as a key received
    twice."""
    webhooks = {"recalibrate": hook(http_receiver, timeout=10)}
    now = wall_clock_ms()
    with migrated_engine.begin() as connection:
        store_outbox.enqueue(
            connection,
            [
                store_outbox.NewDelivery(f"alert-{i}:recalibrate", "recalibrate", hook_url, "{}")
                for i, hook_url in enumerate([webhooks["recalibrate"].url] * 120)
            ],
            now,
        )
    replicas = [replica(migrated_engine, webhooks), replica(second_engine, webhooks)]
    start = threading.Barrier(len(replicas))

    def drain(worker: WebhookDeliverer) -> None:
        start.wait()
        while worker.deliver_due(limit=5):
            pass

    threads = [threading.Thread(target=drain, args=(r,)) for r in replicas]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    keys = [r.headers["webhook-id"] for r in http_receiver.received]
    assert sorted(keys) == sorted(f"alert-{i}:recalibrate" for i in range(120))
    assert {row.state for row in outbox(migrated_engine)} == {"delivered"}
    # Both took part: otherwise the test would not have raced anything.
    assert all(outcome(r, "recalibrate", "delivered") > 0 for r in replicas)


def test_a_slow_receiver_does_not_stall_another_webhook(migrated_engine: Engine) -> None:
    slow, fast = start_receiver(), start_receiver()
    release = threading.Event()
    slow.responses = [held(release, 200)]
    webhooks = {"slow": hook(slow, timeout=60), "fast": hook(fast, timeout=60)}
    fire(migrated_engine, webhooks, actions=["slow", "fast"])
    worker = replica(migrated_engine, webhooks)
    try:
        attempt = threading.Thread(target=worker.deliver_due)
        attempt.start()
        slow.wait_for(lambda got: len(got) == 1)
        # The fast webhook is delivered while the slow one's receiver still holds it.
        assert wait_delivered(migrated_engine, "fast")
        assert {row.webhook: row.state for row in outbox(migrated_engine)}["slow"] == "pending"
        assert len(fast.received) == 1
    finally:
        release.set()
        attempt.join(60)
        for receiver in (slow, fast):
            receiver.server.shutdown()
            receiver.server.server_close()
    assert {row.webhook: row.state for row in outbox(migrated_engine)} == {
        "slow": "delivered",
        "fast": "delivered",
    }


def wait_delivered(engine: Engine, webhook: str, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if {r.webhook: r.state for r in outbox(engine)}.get(webhook) == "delivered":
            return True
        time.sleep(0.02)
    return False


def test_error_text_is_redacted(migrated_engine: Engine, http_receiver: Receiver) -> None:
    url = f"http://calmon:hunter2@127.0.0.1:{http_receiver.server.server_port}/hook?token=abc"

    def echoes_the_url(handler):  # type: ignore[no-untyped-def]
        body = f"bad credentials for {url}".encode()
        handler.send_response(401)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
        return 401

    http_receiver.responses = [echoes_the_url]
    webhooks = {"recalibrate": WebhookSettings(url=url, max_attempts=1)}
    fire(migrated_engine, webhooks)
    replica(migrated_engine, webhooks).deliver_due()
    (row,) = outbox(migrated_engine)
    assert row.state == "dead"
    assert row.last_error == (
        f"HTTP 401: bad credentials for http://***@127.0.0.1:{http_receiver.server.server_port}"
        "/hook?token=***"
    )

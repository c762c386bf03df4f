"""The outbox's own rules, on both stores: which due row a replica takes (most overdue
first, due exactly at now included, filtered by webhook) and that an attempt's outcome
lands on its own row alone, fenced by its lease. Written after `make mutants` showed
these rules could change without a test failing (docs/testing.md)."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select

from monitor.store import outbox
from monitor.store.db.tables import WebhookDelivery

pytestmark = pytest.mark.integration
LEASE_MS = 60_000


def enqueue(engine: Engine, key: str, at_ms: int, webhook: str = "recal") -> None:
    with engine.begin() as connection:
        outbox.enqueue(
            connection, [outbox.NewDelivery(key, webhook, "http://127.0.0.1:9/hook", "{}")], at_ms
        )


def rows(engine: Engine) -> dict[str, dict[str, object]]:
    with engine.connect() as connection:
        found = connection.execute(select(WebhookDelivery.__table__)).mappings().all()
    return {row["idempotency_key"]: dict(row) for row in found}


def test_the_most_overdue_row_first_and_a_row_due_exactly_now(migrated_engine: Engine) -> None:
    enqueue(migrated_engine, "later", 1_000)
    enqueue(migrated_engine, "earlier", 500)  # written second, due first
    enqueue(migrated_engine, "future", 2_001)
    first = outbox.take_next(migrated_engine, 2_000, LEASE_MS)
    second = outbox.take_next(migrated_engine, 2_000, LEASE_MS)
    assert first is not None and second is not None
    assert (first.idempotency_key, second.idempotency_key) == ("earlier", "later")
    assert outbox.take_next(migrated_engine, 2_000, LEASE_MS) is None  # "future" is not due
    due_now = outbox.take_next(migrated_engine, 2_001, LEASE_MS)  # due at exactly 2,001
    assert due_now is not None and due_now.idempotency_key == "future"
    assert due_now.lease_until_ms == 2_001 + LEASE_MS
    assert rows(migrated_engine)["future"]["next_attempt_ms"] == 2_001 + LEASE_MS


def test_due_by_takes_only_rows_due_by_then(migrated_engine: Engine) -> None:
    enqueue(migrated_engine, "old", 100)
    enqueue(migrated_engine, "new", 900)
    assert outbox.take_next(migrated_engine, 1_000, LEASE_MS, due_by_ms=50) is None
    taken = outbox.take_next(migrated_engine, 1_000, LEASE_MS, due_by_ms=500)
    assert taken is not None and taken.idempotency_key == "old"
    assert outbox.take_next(migrated_engine, 1_000, LEASE_MS, due_by_ms=500) is None
    # A due_by in the future is capped at now: nothing due later than now is taken.
    enqueue(migrated_engine, "ahead", 5_000)
    taken = outbox.take_next(migrated_engine, 1_000, LEASE_MS, due_by_ms=10_000)
    assert taken is not None and taken.idempotency_key == "new"
    assert outbox.take_next(migrated_engine, 1_000, LEASE_MS, due_by_ms=10_000) is None


def test_webhook_and_not_webhooks_select_the_lane(migrated_engine: Engine) -> None:
    enqueue(migrated_engine, "a1", 100, webhook="a")
    enqueue(migrated_engine, "b1", 200, webhook="b")
    enqueue(migrated_engine, "c1", 300, webhook="c")
    taken = outbox.take_next(migrated_engine, 1_000, LEASE_MS, not_webhooks=["a", "b"])
    assert taken is not None and taken.idempotency_key == "c1"
    taken = outbox.take_next(migrated_engine, 1_000, LEASE_MS, webhook="b")
    assert taken is not None and taken.idempotency_key == "b1"
    assert outbox.take_next(migrated_engine, 1_000, LEASE_MS, not_webhooks=["a"]) is None


def test_an_outcome_lands_on_its_own_row_only(migrated_engine: Engine) -> None:
    # Two rows taken in the same millisecond share their lease's end: only the id tells
    # them apart in the fenced UPDATE.
    enqueue(migrated_engine, "one", 100)
    enqueue(migrated_engine, "two", 100)
    one = outbox.take_next(migrated_engine, 1_000, LEASE_MS)
    two = outbox.take_next(migrated_engine, 1_000, LEASE_MS)
    assert one is not None and two is not None and one.lease_until_ms == two.lease_until_ms
    assert outbox.record_attempt(
        migrated_engine, one, error=None, state=outbox.DELIVERED, now_ms=1_500
    )
    # Its outcome is recorded once: the row is no longer pending.
    assert not outbox.record_attempt(
        migrated_engine, one, error="late", state=outbox.DEAD, now_ms=1_550
    )
    stored = rows(migrated_engine)
    assert (stored["one"]["state"], stored["one"]["attempts"], stored["one"]["finished_ms"]) == (
        outbox.DELIVERED,
        1,
        1_500,
    )
    assert (stored["two"]["state"], stored["two"]["attempts"], stored["two"]["finished_ms"]) == (
        outbox.PENDING,
        0,
        None,
    )
    # A retry: pending again at its next attempt, the error kept, not finished.
    assert outbox.record_attempt(
        migrated_engine,
        two,
        error="HTTP 503",
        state=outbox.PENDING,
        now_ms=1_600,
        next_attempt_ms=9_000,
    )
    stored = rows(migrated_engine)["two"]
    assert (stored["state"], stored["attempts"], stored["next_attempt_ms"]) == (
        outbox.PENDING,
        1,
        9_000,
    )
    assert (stored["last_error"], stored["finished_ms"]) == ("HTTP 503", None)
    # Its old lease no longer fences the row: a second outcome of that attempt is refused.
    assert not outbox.record_attempt(
        migrated_engine, two, error=None, state=outbox.DEAD, now_ms=1_700
    )
    # ...and a finished delivery is never taken again.
    assert outbox.take_next(migrated_engine, 10_000, LEASE_MS, webhook="recal") is not None
    assert outbox.take_next(migrated_engine, 10_000, LEASE_MS) is None


def test_an_episode_is_enqueued_once(migrated_engine: Engine) -> None:
    # The same idempotency key again (a replayed alert transaction) writes nothing.
    enqueue(migrated_engine, "episode-1", 100)
    enqueue(migrated_engine, "episode-1", 200)
    (row,) = rows(migrated_engine).values()
    assert (row["idempotency_key"], row["next_attempt_ms"], row["attempts"]) == (
        "episode-1",
        100,
        0,
    )

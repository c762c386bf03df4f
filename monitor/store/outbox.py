"""The webhook outbox: one row per (alert episode, webhook), delivered at most once
successfully.

Rows are written in the alert's transaction (``store/alerts.py``); a delivery loop on
every replica takes due rows with a lease (:func:`take_due`), and records each
attempt's outcome (:func:`record_attempt`). States: ``pending``, ``delivered``, ``dead``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, select, update

from monitor.store.db.sql import insert_ignoring_existing
from monitor.store.db.tables import WebhookDelivery

PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"


@dataclass(frozen=True)
class NewDelivery:
    """A delivery to write: the same key is written once (idempotent per episode)."""

    idempotency_key: str
    webhook: str
    url: str
    body: str


@dataclass(frozen=True)
class Delivery:
    """A delivery taken for an attempt."""

    id: int
    idempotency_key: str
    webhook: str
    url: str
    body: str
    attempts: int


def enqueue(connection: Connection, deliveries: list[NewDelivery], now_ms: int) -> int:
    """Write the deliveries, due now, in the caller's transaction; returns how many were
    asked for (a key already written is skipped)."""
    rows = [
        {
            "idempotency_key": d.idempotency_key,
            "webhook": d.webhook,
            "url": d.url,
            "body": d.body,
            "state": PENDING,
            "attempts": 0,
            "next_attempt_ms": now_ms,
            "created_ms": now_ms,
        }
        for d in deliveries
    ]
    if rows:
        insert_ignoring_existing(
            connection,
            WebhookDelivery.__table__,  # type: ignore[arg-type]
            rows,
            ["idempotency_key"],
        )
    return len(rows)


def take_due(
    engine: Engine, now_ms: int, limit: int, lease_ms: Callable[[str], int]
) -> list[Delivery]:
    """Take up to ``limit`` due pending deliveries, each leased for ``lease_ms(webhook)``:
    invisible to other replicas until then."""
    with engine.begin() as connection:
        due = connection.execute(
            select(WebhookDelivery.id, WebhookDelivery.next_attempt_ms, WebhookDelivery.webhook)
            .where(WebhookDelivery.state == PENDING, WebhookDelivery.next_attempt_ms <= now_ms)
            .order_by(WebhookDelivery.next_attempt_ms)
            .limit(limit)
        ).all()
    taken = []
    for row_id, seen, name in due:
        # Optimistic lease: only the replica whose update matches the row it saw owns it.
        with engine.begin() as connection:
            won = connection.execute(
                update(WebhookDelivery)
                .where(
                    WebhookDelivery.id == row_id,
                    WebhookDelivery.state == PENDING,
                    WebhookDelivery.next_attempt_ms == seen,
                )
                .values(next_attempt_ms=now_ms + lease_ms(name))
            ).rowcount
        if won == 1:
            taken.append(row_id)
    if not taken:
        return []
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                WebhookDelivery.id,
                WebhookDelivery.idempotency_key,
                WebhookDelivery.webhook,
                WebhookDelivery.url,
                WebhookDelivery.body,
                WebhookDelivery.attempts,
            ).where(WebhookDelivery.id.in_(taken))
        ).all()
    by_id = {row.id: Delivery(*row) for row in rows}
    return [by_id[row_id] for row_id in taken]


def record_attempt(
    engine: Engine,
    delivery: Delivery,
    *,
    error: str | None,
    state: str,
    now_ms: int,
    next_attempt_ms: int | None = None,
) -> None:
    """Record one attempt: ``delivered`` or ``dead`` finish the delivery; ``pending``
    waits until ``next_attempt_ms``."""
    values: dict[str, object] = {"attempts": delivery.attempts + 1, "last_error": error}
    if state == PENDING:
        values["next_attempt_ms"] = next_attempt_ms
    else:
        values.update(state=state, finished_ms=now_ms)
    with engine.begin() as connection:
        connection.execute(
            update(WebhookDelivery).where(WebhookDelivery.id == delivery.id).values(**values)
        )

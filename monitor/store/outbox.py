"""The webhook outbox: one row per (alert episode, webhook), delivered at most once
successfully.

Rows are written in the alert's transaction (``store/alerts.py``); a delivery loop on
every replica takes one due row at a time with a lease (:func:`take_next`), and records
each attempt's outcome (:func:`record_attempt`). States: ``pending``, ``delivered``,
``dead``.

The lease is the row's ``next_attempt_ms`` moved to the lease's end. It is also the
fencing token of the attempt: the outcome is recorded only if ``next_attempt_ms`` still
holds this lease's end. A replica that took the row after the lease ran out moved it
(its lease ends later, since it took the row at or after this lease's end), so a late
attempt's outcome can never overwrite the newer one's.
"""

from __future__ import annotations

from collections.abc import Collection
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
    """A delivery taken for an attempt, leased until ``lease_until_ms``."""

    id: int
    idempotency_key: str
    webhook: str
    url: str
    body: str
    attempts: int
    lease_until_ms: int


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


#: Due rows looked at per take: if another replica wins one, the next is tried.
_CANDIDATES = 8


def take_next(
    engine: Engine,
    now_ms: int,
    lease_ms: int,
    *,
    webhook: str | None = None,
    not_webhooks: Collection[str] = (),
    due_by_ms: int | None = None,
) -> Delivery | None:
    """Take the most overdue pending delivery (of ``webhook``, or of none of
    ``not_webhooks``; due by ``due_by_ms``, default now), leased until
    ``now_ms + lease_ms``: invisible to other replicas until then. None if nothing is
    due."""
    due_by = now_ms if due_by_ms is None else min(due_by_ms, now_ms)
    where = [WebhookDelivery.state == PENDING, WebhookDelivery.next_attempt_ms <= due_by]
    if webhook is not None:
        where.append(WebhookDelivery.webhook == webhook)
    if not_webhooks:
        where.append(WebhookDelivery.webhook.not_in(list(not_webhooks)))
    with engine.begin() as connection:
        due = connection.execute(
            select(WebhookDelivery.id, WebhookDelivery.next_attempt_ms)
            .where(*where)
            .order_by(WebhookDelivery.next_attempt_ms, WebhookDelivery.id)
            .limit(_CANDIDATES)
        ).all()
    lease_until = now_ms + lease_ms
    for row_id, seen in due:
        # Optimistic lease: only the replica whose update matches the row it saw owns it.
        with engine.begin() as connection:
            won = connection.execute(
                update(WebhookDelivery)
                .where(
                    WebhookDelivery.id == row_id,
                    WebhookDelivery.state == PENDING,
                    WebhookDelivery.next_attempt_ms == seen,
                )
                .values(next_attempt_ms=lease_until)
            ).rowcount
            if won == 1:
                row = connection.execute(
                    select(
                        WebhookDelivery.id,
                        WebhookDelivery.idempotency_key,
                        WebhookDelivery.webhook,
                        WebhookDelivery.url,
                        WebhookDelivery.body,
                        WebhookDelivery.attempts,
                    ).where(WebhookDelivery.id == row_id)
                ).one()
                return Delivery(*row, lease_until_ms=lease_until)
    return None


def record_attempt(
    engine: Engine,
    delivery: Delivery,
    *,
    error: str | None,
    state: str,
    now_ms: int,
    next_attempt_ms: int | None = None,
) -> bool:
    """Record one attempt: ``delivered`` or ``dead`` finish the delivery; ``pending``
    waits until ``next_attempt_ms``. False, and nothing written, if the lease is no
    longer this attempt's (another replica took the row after it ran out)."""
    values: dict[str, object] = {"attempts": delivery.attempts + 1, "last_error": error}
    if state == PENDING:
        values["next_attempt_ms"] = next_attempt_ms
    else:
        values.update(state=state, finished_ms=now_ms)
    with engine.begin() as connection:
        return (
            connection.execute(
                update(WebhookDelivery)
                .where(
                    WebhookDelivery.id == delivery.id,
                    WebhookDelivery.state == PENDING,
                    WebhookDelivery.next_attempt_ms == delivery.lease_until_ms,
                )
                .values(**values)
            ).rowcount
            == 1
        )

"""Alert state in the store: what survives a restart, and what Alertmanager is sent.

One row per alert (a rule on one series), with its labels and annotations as rendered
when it last changed. The alerts pipeline changes a window's alerts and writes their
webhook deliveries in one transaction (:func:`alert_transaction`), so a firing alert
and its deliveries exist together or not at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, Row, delete, insert, select, update

from monitor.core.alerts import AlertState, StoredAlert
from monitor.core.recalibrations import Recalibration
from monitor.core.series import SeriesWindow
from monitor.store import outbox, recalibrations
from monitor.store.db.tables import AlertRow


def load_alerts(engine: Engine, *, window: str | None = None) -> dict[str, StoredAlert]:
    """Every stored alert (of one window), by fingerprint."""
    with engine.connect() as connection:
        return _load(connection, window)


def _load(connection: Connection, window: str | None) -> dict[str, StoredAlert]:
    query = select(AlertRow)
    if window is not None:
        query = query.where(AlertRow.window == window)
    return {row.fingerprint: _stored(row) for row in connection.execute(query)}


def _stored(row: Row[Any]) -> StoredAlert:
    labels = orjson.loads(row.labels_json)
    return StoredAlert(
        state=AlertState(
            rule=row.rule,
            series=SeriesWindow(row.model_id, row.model_version, row.segment, row.window),
            state=row.state,
            active_since_ms=row.active_since_ms,
            fired_ms=row.fired_ms,
            resolved_ms=row.resolved_ms,
            values=orjson.loads(row.values_json),
            # A per-class alert's class is its ``class`` label (``alerts/render.py``).
            class_name=labels.get("class"),
        ),
        labels=labels,
        annotations=orjson.loads(row.annotations_json),
        last_sent_ms=row.last_sent_ms,
    )


class AlertTransaction:
    """A window's alerts and the webhook deliveries of those that fire, in one
    transaction (see :func:`alert_transaction`)."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def load(self, window: str) -> dict[str, StoredAlert]:
        return _load(self._connection, window)

    def save(self, alerts: Mapping[str, StoredAlert], removed: Iterable[str]) -> None:
        """Write every given alert (state, labels, annotations; ``last_sent_ms`` is left
        as stored) and delete ``removed``."""
        connection = self._connection
        removed = list(removed)
        if removed:
            connection.execute(delete(AlertRow).where(AlertRow.fingerprint.in_(removed)))
        stored = set(
            connection.execute(
                select(AlertRow.fingerprint).where(AlertRow.fingerprint.in_(list(alerts)))
            ).scalars()
        )
        for key, alert in alerts.items():
            row = _row(alert)
            if key not in stored:
                connection.execute(insert(AlertRow).values(fingerprint=key, **row))
            else:
                connection.execute(
                    update(AlertRow).where(AlertRow.fingerprint == key).values(**row)
                )

    def enqueue_deliveries(self, deliveries: list[outbox.NewDelivery], now_ms: int) -> int:
        return outbox.enqueue(self._connection, deliveries, now_ms)

    def record_recalibration(self, recalibration: Recalibration) -> None:
        recalibrations.record(self._connection, recalibration)


@contextmanager
def alert_transaction(engine: Engine) -> Iterator[AlertTransaction]:
    """Commit everything done with the yielded object together, or nothing."""
    with engine.begin() as connection:
        yield AlertTransaction(connection)


def _row(alert: StoredAlert) -> dict[str, Any]:
    state = alert.state
    return {
        "rule": state.rule,
        "model_id": state.series.model,
        "model_version": state.series.model_version,
        "segment": state.series.segment,
        "window": state.series.window,
        "state": state.state,
        "active_since_ms": state.active_since_ms,
        "fired_ms": state.fired_ms,
        "resolved_ms": state.resolved_ms,
        "values_json": orjson.dumps(dict(state.values)).decode(),
        "labels_json": orjson.dumps(alert.labels).decode(),
        "annotations_json": orjson.dumps(alert.annotations).decode(),
    }


def alerts_to_send(engine: Engine, *, resolved_before_ms: int) -> dict[str, StoredAlert]:
    """Firing and resolved alerts, after forgetting those resolved before
    ``resolved_before_ms`` (past their resend period: done)."""
    with engine.begin() as connection:
        connection.execute(
            delete(AlertRow).where(
                AlertRow.state == "resolved", AlertRow.resolved_ms < resolved_before_ms
            )
        )
        return {
            key: alert
            for key, alert in _load(connection, None).items()
            if alert.state.state in ("firing", "resolved")
        }


def mark_sent(engine: Engine, fingerprints: Iterable[str], now_ms: int) -> None:
    with engine.begin() as connection:
        connection.execute(
            update(AlertRow)
            .where(AlertRow.fingerprint.in_(list(fingerprints)))
            .values(last_sent_ms=now_ms)
        )

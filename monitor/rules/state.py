"""Alert state in the store: what survives a restart, and what Alertmanager is sent."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, Row, delete, insert, select, update

from monitor.rules.engine import AlertState, render
from monitor.rules.model import Rule
from monitor.store.models import AlertRow
from monitor.windows.results import SeriesWindow


@dataclass(frozen=True)
class StoredAlert:
    state: AlertState
    labels: dict[str, str]
    annotations: dict[str, str]
    last_sent_ms: int | None


def alert_labels(alert: AlertState, rule: Rule) -> dict[str, str]:
    """Alertmanager labels: the rule's own, then the ones calmon owns."""
    return {
        **rule.labels,
        "alertname": rule.name,
        "model": alert.series.model,
        "model_version": alert.series.model_version,
        "segment": alert.series.segment,
        "window": alert.series.window,
        "severity": rule.severity,
    }


def load_alerts(connection: Connection, *, window: str | None = None) -> dict[str, StoredAlert]:
    query = select(AlertRow)
    if window is not None:
        query = query.where(AlertRow.window == window)
    return {row.fingerprint: _stored(row) for row in connection.execute(query)}


def _stored(row: Row[Any]) -> StoredAlert:
    return StoredAlert(
        state=AlertState(
            rule=row.rule,
            series=SeriesWindow(row.model_id, row.model_version, row.segment, row.window),
            state=row.state,
            active_since_ms=row.active_since_ms,
            fired_ms=row.fired_ms,
            resolved_ms=row.resolved_ms,
            values=orjson.loads(row.values_json),
        ),
        labels=orjson.loads(row.labels_json),
        annotations=orjson.loads(row.annotations_json),
        last_sent_ms=row.last_sent_ms,
    )


def save_alerts(
    connection: Connection,
    states: Mapping[str, AlertState],
    removed: Iterable[str],
    rules: Mapping[str, Rule],
) -> None:
    """Write every given state (rendering labels and annotations) and delete ``removed``."""
    removed = list(removed)
    if removed:
        connection.execute(delete(AlertRow).where(AlertRow.fingerprint.in_(removed)))
    stored = set(
        connection.execute(
            select(AlertRow.fingerprint).where(AlertRow.fingerprint.in_(list(states)))
        ).scalars()
    )
    for key, alert in states.items():
        rule = rules[alert.rule]
        row = {
            "rule": alert.rule,
            "model_id": alert.series.model,
            "model_version": alert.series.model_version,
            "segment": alert.series.segment,
            "window": alert.series.window,
            "state": alert.state,
            "active_since_ms": alert.active_since_ms,
            "fired_ms": alert.fired_ms,
            "resolved_ms": alert.resolved_ms,
            "values_json": orjson.dumps(dict(alert.values)).decode(),
            "labels_json": orjson.dumps(alert_labels(alert, rule)).decode(),
            "annotations_json": orjson.dumps(
                {name: render(text, alert, rule) for name, text in rule.annotations.items()}
            ).decode(),
        }
        if key not in stored:
            connection.execute(insert(AlertRow).values(fingerprint=key, **row))
        else:
            connection.execute(update(AlertRow).where(AlertRow.fingerprint == key).values(**row))

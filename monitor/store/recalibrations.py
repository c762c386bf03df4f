"""Recommended calibrators in the store: recorded with their alert, decided once.

A recalibration is written in the firing alert's transaction (``AlertTransaction``), so
it exists exactly when the webhook that handed it over does. Its verdict and the
webhook deliveries that announce it are written together (:func:`decide`), and only
while it is still ``awaiting``, so it is announced once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, Row, Table, select, update

from monitor.core.recalibrations import Recalibration
from monitor.core.series import CALIBRATOR_SEPARATOR, SeriesWindow, without_calibrator
from monitor.store import outbox
from monitor.store.db.sql import insert_ignoring_existing
from monitor.store.db.tables import RecalibrationRow, Series

_TABLE: Table = RecalibrationRow.__table__  # type: ignore[assignment]


def record(connection: Connection, recalibration: Recalibration) -> None:
    """Write a new recalibration in the caller's transaction (once per alert id)."""
    series = recalibration.series
    row = {
        "alert_id": recalibration.alert_id,
        "model_id": series.model,
        "model_version": series.model_version,
        "segment": series.segment,
        "window": series.window,
        "fired_ms": recalibration.fired_ms,
        "webhooks_json": orjson.dumps(list(recalibration.webhooks)).decode(),
        "before_json": orjson.dumps(dict(recalibration.before)).decode(),
        "recommendation_json": orjson.dumps(dict(recalibration.recommendation)).decode(),
        "state": recalibration.state,
        "outcome_json": None,
        "decided_ms": None,
    }
    insert_ignoring_existing(connection, _TABLE, [row], ["alert_id"])


def awaiting(engine: Engine, window: str) -> list[Recalibration]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(RecalibrationRow).where(
                RecalibrationRow.window == window, RecalibrationRow.state == "awaiting"
            )
        )
        return [_recalibration(row) for row in rows]


def decide(
    engine: Engine,
    alert_id: str,
    *,
    state: str,
    outcome: dict[str, Any],
    decided_ms: int,
    deliveries: list[outbox.NewDelivery],
) -> bool:
    """Record the verdict and enqueue its deliveries; False if it was already decided."""
    with engine.begin() as connection:
        changed = connection.execute(
            update(RecalibrationRow)
            .where(RecalibrationRow.alert_id == alert_id, RecalibrationRow.state == "awaiting")
            .values(state=state, outcome_json=orjson.dumps(outcome).decode(), decided_ms=decided_ms)
        ).rowcount
        if changed:
            outbox.enqueue(connection, deliveries, decided_ms)
        return bool(changed)


def load(engine: Engine, *, model: str | None = None) -> list[Recalibration]:
    """Every stored recalibration (of one model), newest first."""
    query = select(RecalibrationRow).order_by(RecalibrationRow.fired_ms.desc())
    if model is not None:
        query = query.where(RecalibrationRow.model_id == model)
    with engine.connect() as connection:
        return [_recalibration(row) for row in connection.execute(query)]


def _recalibration(row: Row[Any]) -> Recalibration:
    return Recalibration(
        alert_id=row.alert_id,
        series=SeriesWindow(row.model_id, row.model_version, row.segment, row.window),
        fired_ms=row.fired_ms,
        webhooks=tuple(orjson.loads(row.webhooks_json)),
        before=orjson.loads(row.before_json),
        recommendation=orjson.loads(row.recommendation_json),
        state=row.state,
        outcome=None if row.outcome_json is None else orjson.loads(row.outcome_json),
        decided_ms=row.decided_ms,
    )


@dataclass(frozen=True)
class Switch:
    """When a recommended calibrator went live: the series version that runs it and
    when calmon first stored one of its predictions (``series.first_seen_ms``)."""

    model_version: str
    at_ms: int


def switches(engine: Engine, found: Iterable[Recalibration]) -> dict[str, Switch]:
    """The calibrator switch of each recalibration that has one, by alert id.

    Decided: the version the verdict measured. Awaiting: the earliest new calibrator
    version of the alerted model version in the same segment (one not known when the
    alert fired), the one the verdict will measure once it has enough labels.
    """
    found = list(found)
    if not found:
        return {}
    with engine.connect() as connection:
        rows = connection.execute(
            select(Series.model_id, Series.model_version, Series.segment, Series.first_seen_ms)
            .where(Series.model_id.in_(sorted({r.series.model for r in found})))
            .where(Series.segment.in_(sorted({r.series.segment for r in found})))
        ).all()
    seen: dict[tuple[str, str], dict[str, int]] = {}
    for row in rows:
        seen.setdefault((row.model_id, row.segment), {})[row.model_version] = row.first_seen_ms
    out = {}
    for recalibration in found:
        versions = seen.get((recalibration.series.model, recalibration.series.segment), {})
        switch = _switch_of(recalibration, versions)
        if switch is not None:
            out[recalibration.alert_id] = switch
    return out


def _switch_of(recalibration: Recalibration, first_seen: dict[str, int]) -> Switch | None:
    if recalibration.outcome is not None:
        deployed = recalibration.outcome.get("deployed_model_version")
        at = first_seen.get(deployed) if isinstance(deployed, str) else None
        return None if deployed is None or at is None else Switch(deployed, at)
    alerted = recalibration.series.model_version
    known = set(recalibration.before.get("known_versions", [alerted]))
    new = [
        (at, version)
        for version, at in first_seen.items()
        if CALIBRATOR_SEPARATOR in version
        and without_calibrator(version) == without_calibrator(alerted)
        and version not in known
    ]
    return Switch(min(new)[1], min(new)[0]) if new else None

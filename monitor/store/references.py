"""Drift references in the store: a series' fitted reference profiles, and the period
and source they came from.

Sources: ``snapshot`` (``calmon baseline``: replaces whatever the series had) and
``fixed`` (the configured period, stored once it has settled; replaces only an earlier
fixed one, never a snapshot). A trailing reference is fitted afresh at every
evaluation and never stored (``monitor/windows/references.py`` decides which applies).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, Table, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from monitor.core.results import ReferenceUsed
from monitor.core.times import to_datetime
from monitor.metrics.class_references import ClassReferences
from monitor.metrics.drift import DISTRIBUTIONS, Distribution, ReferenceProfile
from monitor.store.db.sql import insert_ignoring_existing
from monitor.store.db.tables import Reference

#: Each distribution's profile; None where too few events (or one value) to fit one.
References = dict[Distribution, ReferenceProfile | None]

SNAPSHOT, FIXED, TRAILING = "snapshot", "fixed", "trailing"
#: The ``distribution`` of a multi-class series' row: its confidence's and every class's
#: profiles in one (``ClassReferences``).
CLASSES = "classes"
REFERENCE_KEY = ["model_id", "model_version", "segment", "distribution"]


@dataclass(frozen=True)
class FittedReferences:
    """A series' references and where they came from: the period they were fitted on,
    and the source (``snapshot``, ``fixed`` or ``trailing``)."""

    source: str
    start_ms: int
    end_ms: int
    references: References
    #: The PSI bins asked for when it was fitted (None: stored before this was kept).
    psi_bins: int | None = None
    #: A multi-class series' references, when stored (None: binary, or fitted on demand).
    classes: ClassReferences | None = None

    def fitted_as(self, source: str, start_ms: int, end_ms: int, psi_bins: int) -> bool:
        same_period = (self.start_ms, self.end_ms) == (start_ms, end_ms)
        return self.source == source and same_period and self.psi_bins == psi_bins

    def used(self) -> ReferenceUsed:
        return ReferenceUsed(
            source=self.source,
            start=to_datetime(self.start_ms),
            end=to_datetime(self.end_ms),
            events={
                distribution: 0 if profile is None else profile.count
                for distribution, profile in self.references.items()
            },
        )


def load_stored(
    engine: Engine, model_id: str, model_version: str, segment: str
) -> FittedReferences | None:
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                Reference.distribution,
                Reference.source,
                Reference.start_ms,
                Reference.end_ms,
                Reference.psi_bins,
                Reference.profile_json,
            ).where(
                Reference.model_id == model_id,
                Reference.model_version == model_version,
                Reference.segment == segment,
            )
        ).all()
    return _from_rows(rows) if rows else None


def load_all_stored(engine: Engine) -> dict[tuple[str, str, str], FittedReferences]:
    """Every series' stored references, by (model_id, model_version, segment)."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                Reference.model_id,
                Reference.model_version,
                Reference.segment,
                Reference.distribution,
                Reference.source,
                Reference.start_ms,
                Reference.end_ms,
                Reference.psi_bins,
                Reference.profile_json,
            )
        ).all()
    by_series: dict[tuple[str, str, str], list[Any]] = {}
    for row in rows:
        by_series.setdefault((row.model_id, row.model_version, row.segment), []).append(row)
    return {series: _from_rows(series_rows) for series, series_rows in by_series.items()}


def _from_rows(rows: Sequence[Any]) -> FittedReferences:
    # A series' rows are written together, so they share source and period. Should a
    # baseline race a job's fixed write, the snapshot's rows win.
    source = SNAPSHOT if any(row.source == SNAPSHOT for row in rows) else rows[0].source
    chosen = [row for row in rows if row.source == source]
    profiles: References = {distribution: None for distribution in DISTRIBUTIONS}
    classes = None
    for row in chosen:
        if row.distribution == CLASSES:
            classes = ClassReferences.from_dict(orjson.loads(row.profile_json))
        else:
            profiles[row.distribution] = ReferenceProfile.from_dict(orjson.loads(row.profile_json))
    first = chosen[0]
    return FittedReferences(source, first.start_ms, first.end_ms, profiles, first.psi_bins, classes)


def save_references(
    engine: Engine,
    *,
    model_id: str,
    model_version: str,
    segment: str,
    references: References,
    start_ms: int,
    end_ms: int,
    now_ms: int,
    psi_bins: int,
    source: str = SNAPSHOT,
    classes: ClassReferences | None = None,
) -> int:
    """Store the references of one series (with a multi-class series' ``classes``);
    returns how many rows.

    A snapshot replaces whatever the series had; a fixed reference replaces only an
    earlier fixed one (of another period), never a snapshot.
    """
    rows = [
        {
            "model_id": model_id,
            "model_version": model_version,
            "segment": segment,
            "distribution": distribution,
            "source": source,
            "start_ms": start_ms,
            "end_ms": end_ms,
            "created_ms": now_ms,
            "psi_bins": psi_bins,
            "profile_json": orjson.dumps(profile.to_dict()).decode(),
        }
        for distribution, profile in references.items()
        if profile is not None
    ]
    if classes is not None and classes.count:
        rows.append(
            {
                **_row_key(model_id, model_version, segment),
                "distribution": CLASSES,
                "source": source,
                "start_ms": start_ms,
                "end_ms": end_ms,
                "created_ms": now_ms,
                "psi_bins": psi_bins,
                "profile_json": orjson.dumps(classes.to_dict()).decode(),
            }
        )
    with engine.begin() as connection:
        replaced = delete(Reference).where(
            Reference.model_id == model_id,
            Reference.model_version == model_version,
            Reference.segment == segment,
        )
        if source != SNAPSHOT:
            replaced = replaced.where(Reference.source == source)
        connection.execute(replaced)
        insert_references(connection, rows)
    return len(rows)


def _row_key(model_id: str, model_version: str, segment: str) -> dict[str, Any]:
    return {"model_id": model_id, "model_version": model_version, "segment": segment}


def insert_references(connection: Connection, rows: list[dict[str, Any]]) -> None:
    """Insert reference rows: a snapshot's overwrite, a fixed one's never do.

    A window job may store a fixed reference between a baseline's delete and its
    insert (PostgreSQL runs them concurrently): the snapshot must still land.
    """
    if not rows:
        return
    table: Table = Reference.__table__  # type: ignore[assignment]
    if rows[0]["source"] != SNAPSHOT:
        insert_ignoring_existing(connection, table, rows, REFERENCE_KEY)
        return
    insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    statement = insert(table)
    statement = statement.on_conflict_do_update(
        index_elements=REFERENCE_KEY,
        set_={name: statement.excluded[name] for name in rows[0] if name not in REFERENCE_KEY},
    )
    connection.execute(statement, rows)

"""Which reference a series' drift is measured against, and storing snapshots.

Order of precedence for a (model, version, segment):

1. a snapshot taken with ``calmon baseline`` for that model version (stored);
2. otherwise the configured mode: ``fixed`` (a period, fitted from the stored
   aggregates of that period) or ``trailing`` (the window of the same length just
   before the current one).

A new model version has no snapshot and so gets its own reference from its own events.

A fixed period is fitted afresh at each evaluation until ``FIXED_SETTLE_MS`` after it
ends, then stored (source ``fixed``) and read back from then on. Retention coarsens and
later deletes the buckets it was fitted from (``monitor/store/buckets.py``); without
the stored copy a fixed reference would change as it aged and vanish after 400 days.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, Table, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from monitor.metrics.drift import DISTRIBUTIONS, Distribution, ReferenceProfile
from monitor.metrics.errors import DegenerateReferenceError
from monitor.settings import ReferenceSettings
from monitor.store.buckets import window_edge
from monitor.store.models import Reference
from monitor.store.reading import list_series, load_window
from monitor.store.sql import insert_ignoring_existing
from monitor.windows.evaluate import to_datetime
from monitor.windows.results import ALL, ReferenceUsed

References = dict[Distribution, ReferenceProfile | None]

#: Predictions of a fixed period that arrive late (consumer lag, a replayed partition)
#: still count for this long after it ends; then its reference is stored as it is.
FIXED_SETTLE_MS = 3_600_000

SNAPSHOT, FIXED, TRAILING = "snapshot", "fixed", "trailing"
REFERENCE_KEY = ["model_id", "model_version", "segment", "distribution"]


def fit_references(
    engine: Engine,
    *,
    model_id: str,
    model_version: str,
    segment: str,
    start_ms: int,
    end_ms: int,
    psi_bins: int,
    now_ms: int,
) -> References:
    """Fit both distributions' references from the stored aggregates of a period."""
    window = load_window(
        engine,
        model_id=model_id,
        model_version=None if model_version == ALL else model_version,
        segment=segment,
        start_ms=start_ms,
        end_ms=end_ms,
        now_ms=now_ms,
    )
    fitted: References = {}
    for distribution in DISTRIBUTIONS:
        histogram = (
            window.aggregate.scores
            if distribution == "raw_score"
            else window.aggregate.probabilities
        )
        try:
            fitted[distribution] = ReferenceProfile.from_histogram(
                histogram, kind=distribution, n_bins=psi_bins
            )
        except DegenerateReferenceError:
            fitted[distribution] = None
    return fitted


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
) -> int:
    """Store the references of one series; returns how many.

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


def snapshot_period(
    engine: Engine,
    *,
    model_id: str,
    model_version: str,
    start_ms: int,
    end_ms: int,
    psi_bins: int,
    now_ms: int,
) -> dict[str, dict[str, int]]:
    """``calmon baseline``: snapshot every segment of a model version from a period.

    Returns, per segment, the event count of each stored reference (empty: no data).
    """
    segments = sorted(
        {
            s.segment
            for s in list_series(engine)
            if (s.model_id, s.model_version) == (model_id, model_version)
        }
    )
    stored: dict[str, dict[str, int]] = {}
    for segment in segments:
        references = fit_references(
            engine,
            model_id=model_id,
            model_version=model_version,
            segment=segment,
            start_ms=start_ms,
            end_ms=end_ms,
            psi_bins=psi_bins,
            now_ms=now_ms,
        )
        save_references(
            engine,
            model_id=model_id,
            model_version=model_version,
            segment=segment,
            references=references,
            start_ms=start_ms,
            end_ms=end_ms,
            now_ms=now_ms,
            psi_bins=psi_bins,
        )
        stored[segment] = {d: (p.count if p else 0) for d, p in references.items()}
    return stored


@dataclass(frozen=True)
class ResolvedReferences:
    """A series' references and where they came from: the period they were fitted on,
    and the source (``snapshot``, ``fixed`` or ``trailing``)."""

    source: str
    start_ms: int
    end_ms: int
    references: References
    #: The PSI bins asked for when it was fitted (None: stored before this was kept).
    psi_bins: int | None = None

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
) -> ResolvedReferences | None:
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
    if not rows:
        return None
    # A series' rows are written together, so they share source and period. Should a
    # baseline race a job's fixed write, the snapshot's rows win.
    source = SNAPSHOT if any(row.source == SNAPSHOT for row in rows) else rows[0].source
    chosen = [row for row in rows if row.source == source]
    profiles: References = {distribution: None for distribution in DISTRIBUTIONS}
    for row in chosen:
        profiles[row.distribution] = ReferenceProfile.from_dict(orjson.loads(row.profile_json))
    first = chosen[0]
    return ResolvedReferences(source, first.start_ms, first.end_ms, profiles, first.psi_bins)


class ReferenceResolver:
    """Finds each series' references, as evaluated at ``now_ms``.

    ``keep_fixed``: store a fixed period's reference once it has settled. The window
    jobs do; a report, which only reads, does not.
    """

    def __init__(
        self,
        engine: Engine,
        settings: ReferenceSettings,
        *,
        now_ms: int,
        keep_fixed: bool = False,
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._now_ms = now_ms  # when the windows are evaluated: it places their edges
        self._keep_fixed = keep_fixed

    def resolve(
        self, model_id: str, model_version: str, segment: str, start_ms: int, end_ms: int
    ) -> ResolvedReferences:
        """The references of the series whose current window is [start, end)."""
        stored = load_stored(self._engine, model_id, model_version, segment)
        if stored is not None and stored.source == SNAPSHOT:
            return stored
        if self._settings.mode == "fixed":
            return self._fixed_period(model_id, model_version, segment, stored)
        # The reference ends where the window's first bucket begins. Ending it at the
        # nominal start instead would round that edge up (an end edge is rounded up to
        # the minute) into the window's first minute, and count its events in both.
        length = end_ms - start_ms
        window_start = window_edge(start_ms, self._now_ms, end=False)
        fitted = self._fit(model_id, model_version, segment, window_start - length, window_start)
        return ResolvedReferences(
            TRAILING, window_start - length, window_start, fitted, self._settings.psi_bins
        )

    def _fit(
        self, model_id: str, model_version: str, segment: str, start_ms: int, end_ms: int
    ) -> References:
        return fit_references(
            self._engine,
            model_id=model_id,
            model_version=model_version,
            segment=segment,
            start_ms=start_ms,
            end_ms=end_ms,
            psi_bins=self._settings.psi_bins,
            now_ms=self._now_ms,
        )

    def _fixed_period(
        self,
        model_id: str,
        model_version: str,
        segment: str,
        stored: ResolvedReferences | None,
    ) -> ResolvedReferences:
        start_ms, end_ms = self._settings.period_ms()
        psi_bins = self._settings.psi_bins
        if stored is not None and stored.fitted_as(FIXED, start_ms, end_ms, psi_bins):
            return stored
        fitted = self._fit(model_id, model_version, segment, start_ms, end_ms)
        settled = self._now_ms >= end_ms + FIXED_SETTLE_MS
        if self._keep_fixed and settled and any(fitted.values()):
            save_references(
                self._engine,
                model_id=model_id,
                model_version=model_version,
                segment=segment,
                references=fitted,
                start_ms=start_ms,
                end_ms=end_ms,
                now_ms=self._now_ms,
                psi_bins=psi_bins,
                source=FIXED,
            )
        return ResolvedReferences(FIXED, start_ms, end_ms, fitted, psi_bins)

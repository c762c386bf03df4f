"""The write path: a batch of predictions and labels into ``events`` and the aggregates.

Rules users can rely on (README, "Delayed labels"):

- Idempotent: (model_id, event_id) identifies an event. A field that is already set is
  never overwritten and never counted twice, so replaying a batch changes nothing.
- Raw score and probability may come in separate messages; the first prediction
  message fixes the event's model version, timestamp and segment.
- A label may arrive before its prediction: it waits in the event's row (*pending*) and
  joins when the prediction arrives.
- Duplicate labels: the first label written wins. A later identical label counts as
  ``duplicate``, a later different one as ``conflicting``; neither changes anything.
- Horizon (default 30 days): a label whose own timestamp is older than the horizon, or
  that arrives more than the horizon after its prediction, is counted and dropped.
- Every aggregate bucket the event belongs to (three resolutions, ``__all__`` and one
  segment per configured segment key) gets what the batch adds to it, in the same
  transaction, including the past bucket of an old prediction that a late label
  joins. It is appended as a delta (``aggregate_deltas``), which readers merge and
  compaction folds into the bucket's row (``compaction.py``).

Most records are one of five common cases: a prediction of an event the store does not
have yet, or whose label came first and waits; a label of a stored prediction that waits
for it, or of an event the store does not have yet; a new event's prediction and label
in one batch. These are written set-at-a-time (one statement per case and batch decides
them all, ``common_cases.py``); every other record goes through the one-by-one path
here, which applies the same rules.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, Table
from sqlalchemy.exc import OperationalError

from monitor.metrics.aggregates import EventAggregate
from monitor.store import common_cases, compaction
from monitor.store.deltas import AggregateKey, BatchDeltas, SeriesKey
from monitor.store.models import AggregateDelta, Event, Series
from monitor.store.records import EventRow, Label, Prediction
from monitor.store.sql import (
    insert_ignoring_existing,
    insert_rows,
    select_for_update,
    take_write_lock,
    update_by_key,
)

DAY_MS = 86_400_000
_EVENTS: Table = Event.__table__  # type: ignore[assignment]
_DELTAS: Table = AggregateDelta.__table__  # type: ignore[assignment]
_SERIES: Table = Series.__table__  # type: ignore[assignment]
_EVENT_ROW_FIELDS = [f.name for f in dataclasses.fields(EventRow)]


#: Times a batch is redone with its rows locked first, after a deadlock.
LOCKED_REDOS = 3


class _ConcurrentInsert(Exception):
    """Another writer created one of the batch's new events after we read them."""


def _is_deadlock(exc: OperationalError) -> bool:
    return getattr(exc.orig, "sqlstate", None) == "40P01"  # PostgreSQL's deadlock_detected


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class WriteResult:
    """What one batch did; ``labels_dropped`` is keyed by reason."""

    predictions_new: int = 0
    predictions_updated: int = 0
    predictions_duplicate: int = 0
    labels_joined: int = 0
    labels_pending: int = 0
    labels_duplicate: int = 0
    labels_conflicting: int = 0
    labels_dropped: Counter[str] = field(default_factory=Counter)
    label_delays_s: list[float] = field(default_factory=list)

    def __add__(self, other: WriteResult) -> WriteResult:
        """Both batches' outcomes (a batch written in parts)."""
        counts = {
            f.name: getattr(self, f.name) + getattr(other, f.name) for f in dataclasses.fields(self)
        }
        return WriteResult(**counts)


class EventStore:
    def __init__(
        self,
        engine: Engine,
        *,
        segment_keys: Sequence[str] = (),
        label_horizon_s: int = 30 * 86_400,
        clock_ms: Callable[[], int] = wall_clock_ms,
    ) -> None:
        self._engine = engine
        self._segment_keys = tuple(segment_keys)
        self._horizon_ms = label_horizon_s * 1000
        self._clock_ms = clock_ms

    @property
    def engine(self) -> Engine:
        return self._engine

    def write_batch(self, records: Sequence[Prediction | Label]) -> WriteResult:
        """Write the records, in order, in one transaction; all or nothing.

        Two replicas may write the same events at once (one holds the predictions'
        partition, the other the labels'). The batch is redone with every row locked
        first, in key order, when the one-by-one path finds that another writer created
        an event it read as new, and when PostgreSQL finds the two transactions
        deadlocked (the set-at-a-time statements lock rows in their plan's order) and
        rolls this one back.
        """
        if not records:
            return WriteResult()
        redos = 0
        while True:
            result = WriteResult()
            try:
                with self._engine.begin() as connection:
                    self._write(connection, records, result, lock_first=redos > 0)
                return result
            except (_ConcurrentInsert, OperationalError) as exc:
                if isinstance(exc, OperationalError) and not _is_deadlock(exc):
                    raise
                # A redo locks its rows in key order first, but another writer's first
                # attempt locks rows as its statements meet them, so a redo too can
                # deadlock: redo again, a bounded number of times (then the caller
                # retries the batch with backoff, as after any database error).
                if redos == LOCKED_REDOS:
                    raise
                redos += 1

    def _write(
        self,
        connection: Connection,
        records: Sequence[common_cases.Record],
        result: WriteResult,
        *,
        lock_first: bool,
    ) -> None:
        take_write_lock(connection)
        now = self._clock_ms()
        deltas = BatchDeltas(self._segment_keys)
        one_by_one = records
        if not lock_first:
            one_by_one = common_cases.write(
                connection,
                records,
                now=now,
                horizon_ms=self._horizon_ms,
                deltas=deltas,
                result=result,
            )
        if one_by_one:
            self._write_one_by_one(connection, one_by_one, now, deltas, result, lock_first)
        _append_aggregate_deltas(connection, deltas.aggregates(), now)
        _touch_series(connection, deltas.last_prediction_ms, deltas.last_label_ms, now)

    # -- every other record, one by one -------------------------------------------------
    def _write_one_by_one(
        self,
        connection: Connection,
        records: Sequence[common_cases.Record],
        now: int,
        deltas: BatchDeltas,
        result: WriteResult,
        lock_first: bool,
    ) -> None:
        new_keys: set[tuple[str, str]] = set()
        if lock_first:
            rows = self._lock_event_rows(connection, records, now)
        else:
            rows, new_keys = self._read_event_rows(connection, records, now)
        before = {key: _snapshot(row) for key, row in rows.items() if key not in new_keys}
        for record in records:
            row = rows[(record.model_id, record.event_id)]
            if isinstance(record, Prediction):
                self._apply_prediction(row, record, deltas, result)
            else:
                self._apply_label(row, record, now, deltas, result)
        new_rows = [_new_event_values(rows[key]) for key in sorted(new_keys)]
        if len(common_cases.insert_event_rows(connection, new_rows)) < len(new_rows):
            raise _ConcurrentInsert
        changed = [
            rows[key] for key, snapshot in before.items() if _snapshot(rows[key]) != snapshot
        ]
        _update_event_rows(connection, changed)

    # -- events -------------------------------------------------------------------------
    def _read_event_rows(
        self, connection: Connection, records: Sequence[Prediction | Label], now: int
    ) -> tuple[dict[tuple[str, str], EventRow], set[tuple[str, str]]]:
        """The batch's stored rows (locked, PostgreSQL) and fresh rows for new events."""
        keys = sorted({(r.model_id, r.event_id) for r in records})
        rows = {
            (found.model_id, found.event_id): EventRow(*found)  # type: ignore[call-arg]
            for found in select_for_update(
                connection, _EVENTS, common_cases.EVENT_KEY, keys, _EVENT_ROW_FIELDS
            )
        }
        new_keys = {key for key in keys if key not in rows}
        for model_id, event_id in new_keys:
            rows[(model_id, event_id)] = EventRow(model_id, event_id, created_ms=now)
        return rows, new_keys

    def _lock_event_rows(
        self, connection: Connection, records: Sequence[Prediction | Label], now: int
    ) -> dict[tuple[str, str], EventRow]:
        """Create missing rows, then lock all of the batch's rows in key order."""
        keys = sorted({(r.model_id, r.event_id) for r in records})
        insert_ignoring_existing(
            connection,
            _EVENTS,
            [{"model_id": m, "event_id": e, "created_ms": now} for m, e in keys],
            ["model_id", "event_id"],
        )
        rows: dict[tuple[str, str], EventRow] = {}
        for found in select_for_update(
            connection, _EVENTS, common_cases.EVENT_KEY, keys, _EVENT_ROW_FIELDS
        ):
            rows[(found.model_id, found.event_id)] = EventRow(*found)  # type: ignore[call-arg]
        return rows

    def _apply_prediction(
        self, row: EventRow, record: Prediction, deltas: BatchDeltas, result: WriteResult
    ) -> None:
        is_new = not row.has_prediction
        if is_new:
            row.model_version = record.model_version
            row.event_time_ms = record.event_time_ms
            row.segment_json = record.segment_json
            deltas.prediction(_series_group(deltas, row), record.event_time_ms)
            pending_label_ms = row.label_time_ms
            if (
                pending_label_ms is not None
                and pending_label_ms - record.event_time_ms > self._horizon_ms
            ):
                result.labels_dropped["label_delay_over_horizon"] += 1
                row.label = row.label_time_ms = None
        added = False
        if record.raw_score is not None and row.raw_score is None:
            row.raw_score = record.raw_score
            deltas.score(_series_group(deltas, row), _time(row), record.raw_score)
            added = True
        if record.probability is not None and row.probability is None:
            row.probability = record.probability
            deltas.probability(_series_group(deltas, row), _time(row), record.probability)
            added = True
            if row.label is not None:
                self._join(row, deltas, result)
        if is_new:
            result.predictions_new += 1
        elif added:
            result.predictions_updated += 1
        else:
            result.predictions_duplicate += 1

    def _apply_label(
        self, row: EventRow, record: Label, now: int, deltas: BatchDeltas, result: WriteResult
    ) -> None:
        if row.label is not None:
            if row.label == record.label:
                result.labels_duplicate += 1
            else:
                result.labels_conflicting += 1
            return
        if now - record.label_time_ms > self._horizon_ms:
            result.labels_dropped["label_too_old"] += 1
            return
        if (
            row.event_time_ms is not None
            and record.label_time_ms - row.event_time_ms > self._horizon_ms
        ):
            result.labels_dropped["label_delay_over_horizon"] += 1
            return
        row.label = record.label
        row.label_time_ms = record.label_time_ms
        if row.probability is not None:
            self._join(row, deltas, result)
        else:
            result.labels_pending += 1

    @staticmethod
    def _join(row: EventRow, deltas: BatchDeltas, result: WriteResult) -> None:
        assert row.label_time_ms is not None and row.event_time_ms is not None
        assert row.probability is not None and row.label is not None
        common_cases.add_join(
            deltas,
            result,
            _series_group(deltas, row),
            row.event_time_ms,
            row.probability,
            row.label,
            row.label_time_ms,
        )


def _time(row: EventRow) -> int:
    assert row.event_time_ms is not None
    return row.event_time_ms


def _series_group(deltas: BatchDeltas, row: EventRow) -> int:
    assert row.model_version is not None
    return deltas.group(row.model_id, row.model_version, row.segment_json)


def _snapshot(row: EventRow) -> tuple[object, ...]:
    return (
        row.model_version,
        row.event_time_ms,
        row.raw_score,
        row.probability,
        row.segment_json,
        row.label,
        row.label_time_ms,
    )


def _event_values(row: EventRow) -> dict[str, Any]:
    return {
        "model_id": row.model_id,
        "event_id": row.event_id,
        "model_version": row.model_version,
        "event_time_ms": row.event_time_ms,
        "raw_score": row.raw_score,
        "probability": row.probability,
        "segment_json": row.segment_json,
        "label": row.label,
        "label_time_ms": row.label_time_ms,
    }


def _new_event_values(row: EventRow) -> tuple[Any, ...]:
    """A new row's values, in ``common_cases.NEW_EVENT_COLUMNS`` order."""
    return (*_event_values(row).values(), row.created_ms)


def _update_event_rows(connection: Connection, rows: list[EventRow]) -> None:
    update_by_key(
        connection,
        _EVENTS,
        ["model_id", "event_id"],
        [_event_values(row) for row in rows],
    )


# -- aggregates -------------------------------------------------------------------------

_SERIES_KEY_NAMES = ["model_id", "model_version", "segment"]
_DELTA_COLUMNS = [*compaction.KEY_NAMES, "predictions", "blob", "created_ms"]


def _append_aggregate_deltas(
    connection: Connection,
    additions: dict[AggregateKey, tuple[int, EventAggregate]],
    now: int,
) -> None:
    """Append what the batch adds to each bucket; compaction merges it into the bucket's
    row later (rewriting a busy day bucket here, per batch, cost more than the rest of
    the write)."""
    rows = [
        (*key, n, aggregate.to_bytes(compress=False), now)  # short-lived: compaction reads it
        for key, (n, aggregate) in additions.items()
    ]
    insert_rows(connection, _DELTAS, _DELTA_COLUMNS, rows, [])


def _touch_series(
    connection: Connection,
    last_prediction_ms: dict[SeriesKey, int],
    last_label_ms: dict[SeriesKey, int],
    now: int,
) -> None:
    keys = sorted(set(last_prediction_ms) | set(last_label_ms))
    insert_ignoring_existing(
        connection,
        _SERIES,
        [
            {"model_id": m, "model_version": v, "segment": s, "first_seen_ms": now}
            for m, v, s in keys
        ],
        ["model_id", "model_version", "segment"],
    )
    columns = [*_SERIES_KEY_NAMES, "last_prediction_ms", "last_label_ms"]
    updates = [
        {
            "model_id": found.model_id,
            "model_version": found.model_version,
            "segment": found.segment,
            "last_prediction_ms": _latest(
                found.last_prediction_ms, last_prediction_ms.get(_series_key(found))
            ),
            "last_label_ms": _latest(found.last_label_ms, last_label_ms.get(_series_key(found))),
        }
        for found in select_for_update(connection, _SERIES, _SERIES_KEY_NAMES, keys, columns)
    ]
    update_by_key(connection, _SERIES, _SERIES_KEY_NAMES, updates)


def _latest(stored: int | None, new: int | None) -> int | None:
    if stored is None or new is None:
        return stored if new is None else new
    return max(stored, new)


def _series_key(row: Any) -> SeriesKey:
    return (row.model_id, row.model_version, row.segment)

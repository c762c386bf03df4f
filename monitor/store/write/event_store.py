"""The write path's transaction: a batch of predictions and labels into ``events`` and
the aggregates.

Rules users can rely on (docs/messages.md, "Delayed labels"):

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
- Only the configured segment keys are stored with an event (``segment_json``): a
  producer's other attributes are not kept, so their size and number cost nothing.
- Every aggregate bucket the event belongs to (three resolutions, ``__all__`` and one
  segment per configured segment key) gets what the batch adds to it, in the same
  transaction, including the past bucket of an old prediction that a late label
  joins. It is appended as a delta (``aggregate_deltas``), which readers merge and
  compaction folds into the bucket's row (``store/maintenance/compaction.py``).

Most records are one of five common cases: a prediction of an event the store does not
have yet, or whose label came first and waits; a label of a stored prediction that waits
for it, or of an event the store does not have yet; a new event's prediction and label
in one batch. These are written set-at-a-time (one statement per case and batch decides
them all, ``common_cases.py``); every other record goes through the one-by-one path
(``one_by_one.py``). Both apply the rules as ``join.py`` states them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, Table
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError

from monitor.core.records import Prediction, Record
from monitor.core.times import wall_clock_ms
from monitor.store.db.sql import (
    insert_ignoring_existing,
    insert_rows,
    select_for_update,
    take_write_lock,
    update_by_key,
)
from monitor.store.db.tables import BUCKET_KEY, AggregateDelta, ModelClass, Series
from monitor.store.errors import RecordsRefused, StoreUnavailable
from monitor.store.write import common_cases, one_by_one
from monitor.store.write.deltas import AggregateKey, BatchDeltas, BucketAddition, SeriesKey
from monitor.store.write.join import LabelHorizon
from monitor.store.write.result import WriteResult

_DELTAS: Table = AggregateDelta.__table__  # type: ignore[assignment]
_SERIES: Table = Series.__table__  # type: ignore[assignment]
_MODEL_CLASSES: Table = ModelClass.__table__  # type: ignore[assignment]

#: Times a batch is redone with its rows locked first, after a deadlock.
LOCKED_REDOS = 3


def _is_deadlock(exc: OperationalError) -> bool:
    return getattr(exc.orig, "sqlstate", None) == "40P01"  # PostgreSQL's deadlock_detected


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
        self._kept_keys = frozenset(segment_keys)
        self._horizon = LabelHorizon(label_horizon_s * 1000)
        self._clock_ms = clock_ms

    @property
    def engine(self) -> Engine:
        return self._engine

    def write_batch(self, records: Sequence[Record]) -> WriteResult:
        """Write the records, in order, in one transaction; all or nothing.

        Raises :class:`RecordsRefused` when the database refuses the data itself (a
        retry would fail the same way) and :class:`StoreUnavailable` for anything else
        the database does (down, timed out, deadlocked for good): worth retrying.

        Two replicas may write the same events at once (one holds the predictions'
        partition, the other the labels'). The batch is redone with every row locked
        first, in key order, when the one-by-one path finds that another writer created
        an event it read as new, and when PostgreSQL finds the two transactions
        deadlocked (the set-at-a-time statements lock rows in their plan's order) and
        rolls this one back.
        """
        if not records:
            return WriteResult()
        records = self._configured_segments(records)
        try:
            return self._write_with_redos(records)
        except (DataError, IntegrityError) as exc:
            raise RecordsRefused(str(exc.orig).splitlines()[0][:300]) from exc
        except DBAPIError as exc:
            raise StoreUnavailable(str(exc)[:500]) from exc

    def _configured_segments(self, records: Sequence[Record]) -> Sequence[Record]:
        """The records with each prediction's segment cut to the configured keys.

        The rest of a segment is never read (series come from the configured keys), so
        storing it only let a producer grow every row with attributes of its own.
        """
        keep = self._kept_keys
        if not _any_segment_beyond(records, keep):
            return records  # the common case: nothing to cut, no copy
        return [
            r._replace(segment={k: v for k, v in r.segment.items() if k in keep})
            if type(r) is Prediction and r.segment and not keep.issuperset(r.segment)
            else r
            for r in records
        ]

    def _write_with_redos(self, records: Sequence[Record]) -> WriteResult:
        redos = 0
        while True:
            result = WriteResult()
            try:
                with self._engine.begin() as connection:
                    self._write(connection, records, result, lock_first=redos > 0)
                return result
            except (one_by_one.ConcurrentInsert, OperationalError) as exc:
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
        records: Sequence[Record],
        result: WriteResult,
        *,
        lock_first: bool,
    ) -> None:
        take_write_lock(connection)
        now = self._clock_ms()
        deltas = BatchDeltas(self._segment_keys)
        rest = records
        if not lock_first:
            rest = common_cases.write(
                connection, records, now=now, horizon=self._horizon, deltas=deltas, result=result
            )
        if rest:
            one_by_one.write(
                connection,
                rest,
                now=now,
                horizon=self._horizon,
                deltas=deltas,
                result=result,
                lock_first=lock_first,
            )
        _append_aggregate_deltas(connection, deltas.aggregates(), now)
        _touch_series(connection, deltas.last_prediction_ms, deltas.last_label_ms, now)
        _note_model_classes(connection, deltas.model_classes, now)


def _any_segment_beyond(records: Sequence[Record], keep: frozenset[str]) -> bool:
    """Whether a prediction's segment has a key beyond ``keep`` (a plain loop: any()
    over a generator cost three times as much, for every message)."""
    for record in records:
        if type(record) is Prediction:
            segment = record.segment
            if segment and not keep.issuperset(segment):
                return True
    return False


# -- aggregates -------------------------------------------------------------------------

_SERIES_KEY_NAMES = ["model_id", "model_version", "segment"]
_DELTA_COLUMNS = [*BUCKET_KEY, "predictions", "blob", "multiclass_blob", "created_ms"]


def _append_aggregate_deltas(
    connection: Connection,
    additions: dict[AggregateKey, BucketAddition],
    now: int,
) -> None:
    """Append what the batch adds to each bucket; compaction merges it into the bucket's
    row later (rewriting a busy day bucket here, per batch, cost more than the rest of
    the write)."""
    rows = [
        (
            *key,
            n,
            aggregate.to_bytes(compress=False),  # short-lived: compaction reads it
            None if multiclass is None else multiclass.to_bytes(),
            now,
        )
        for key, (n, aggregate, multiclass) in additions.items()
    ]
    insert_rows(connection, _DELTAS, _DELTA_COLUMNS, rows, [])


def _note_model_classes(connection: Connection, seen: set[tuple[str, str]], now: int) -> None:
    """Every class of a multi-class model, kept for the ingest budget's next start."""
    if seen:
        insert_ignoring_existing(
            connection,
            _MODEL_CLASSES,
            [{"model_id": m, "class_name": c, "first_seen_ms": now} for m, c in sorted(seen)],
            ["model_id", "class_name"],
        )


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

"""The write path's other records, one by one: read each event's row, apply the
records to it in batch order, write back what changed.

What the set-at-a-time path (``common_cases.py``) leaves comes here: an event with
three records in the batch, a prediction of an event already predicted (a replay, or
raw score and probability in two messages), a second label, a label past the horizon.
The rules are the same (``join.py``); this path is their plainest statement, and the
reference the set-at-a-time path is tested against.

"One by one" is the rules, not the statements: the batch's rows are read in one
statement, applied to in Python, and written back in two (the new rows, the changed
ones), whatever the number of records; on PostgreSQL each set goes by binary COPY into
a staging table (``sql.py``), on SQLite the changed rows by one executemany.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection

from monitor.core.records import Label, Prediction, Record
from monitor.store.db.sql import insert_ignoring_existing, select_for_update, update_rows
from monitor.store.write.deltas import BatchDeltas
from monitor.store.write.event_rows import (
    EVENT_KEY,
    EVENTS,
    NEW_EVENT_COLUMNS,
    EventRow,
    insert_event_rows,
    vector_json,
)
from monitor.store.write.join import LabelHorizon, join_either, label_fits
from monitor.store.write.result import WriteResult

_EVENT_ROW_FIELDS = [f.name for f in dataclasses.fields(EventRow)]


class ConcurrentInsert(Exception):
    """Another writer created one of the batch's new events after we read them."""


def write(
    connection: Connection,
    records: Sequence[Record],
    *,
    now: int,
    horizon: LabelHorizon,
    deltas: BatchDeltas,
    result: WriteResult,
    lock_first: bool,
) -> None:
    """Apply ``records`` in order to their events' rows.

    ``lock_first`` (a redo after a conflict with another writer): create the missing
    rows, then lock all of them in key order before reading.
    """
    new_keys: set[tuple[str, str]] = set()
    if lock_first:
        rows = _lock_event_rows(connection, records, now)
    else:
        rows, new_keys = _read_event_rows(connection, records, now)
    before = {key: _snapshot(row) for key, row in rows.items() if key not in new_keys}
    for record in records:
        row = rows[(record.model_id, record.event_id)]
        if isinstance(record, Prediction):
            _apply_prediction(row, record, horizon, deltas, result)
        else:
            _apply_label(row, record, now, horizon, deltas, result)
    new_rows = [_new_event_values(rows[key]) for key in sorted(new_keys)]
    if len(insert_event_rows(connection, new_rows)) < len(new_rows):
        raise ConcurrentInsert
    changed = []
    for key, snapshot in before.items():
        after = _snapshot(rows[key])
        if after != snapshot:
            changed.append((*key, *after))
    update_rows(connection, EVENTS, EVENT_KEY, _SNAPSHOT_COLUMNS, changed)


def _read_event_rows(
    connection: Connection, records: Sequence[Record], now: int
) -> tuple[dict[tuple[str, str], EventRow], set[tuple[str, str]]]:
    """The batch's stored rows (locked, PostgreSQL) and fresh rows for new events."""
    keys = sorted({(r.model_id, r.event_id) for r in records})
    rows = {
        (found.model_id, found.event_id): EventRow(*found)  # type: ignore[call-arg]
        for found in select_for_update(
            connection, EVENTS, EVENT_KEY, keys, _EVENT_ROW_FIELDS, staged=True
        )
    }
    new_keys = {key for key in keys if key not in rows}
    for model_id, event_id in new_keys:
        rows[(model_id, event_id)] = EventRow(model_id, event_id, created_ms=now)
    return rows, new_keys


def _lock_event_rows(
    connection: Connection, records: Sequence[Record], now: int
) -> dict[tuple[str, str], EventRow]:
    """Create missing rows, then lock all of the batch's rows in key order."""
    keys = sorted({(r.model_id, r.event_id) for r in records})
    insert_ignoring_existing(
        connection,
        EVENTS,
        [{"model_id": m, "event_id": e, "created_ms": now} for m, e in keys],
        EVENT_KEY,
    )
    rows: dict[tuple[str, str], EventRow] = {}
    for found in select_for_update(
        connection, EVENTS, EVENT_KEY, keys, _EVENT_ROW_FIELDS, staged=True
    ):
        rows[(found.model_id, found.event_id)] = EventRow(*found)  # type: ignore[call-arg]
    return rows


def _apply_prediction(
    row: EventRow,
    record: Prediction,
    horizon: LabelHorizon,
    deltas: BatchDeltas,
    result: WriteResult,
) -> None:
    is_new = not row.has_prediction
    if is_new:
        row.model_version = record.model_version
        row.event_time_ms = record.event_time_ms
        row.segment_json = record.segment_json
        deltas.prediction(_series_group(deltas, row), record.event_time_ms)
        _drop_pending_label_that_cannot_join(row, record, horizon, result)
    if record.probabilities is not None:
        added = _apply_class_probabilities(row, record, deltas, result)
    else:
        added = _apply_binary_scores(row, record, deltas, result)
    if is_new:
        result.predictions_new += 1
    elif added:
        result.predictions_updated += 1
    else:
        result.predictions_duplicate += 1


def _drop_pending_label_that_cannot_join(
    row: EventRow, record: Prediction, horizon: LabelHorizon, result: WriteResult
) -> None:
    """A label that waited for this (first) prediction: dropped if past the horizon of
    it, or of the other kind, or of a class it does not name (``join.py``)."""
    pending = row.stored_label
    if pending is None:
        return
    assert row.label_time_ms is not None
    if horizon.delay_over(record.event_time_ms, row.label_time_ms):
        problem: str | None = "label_delay_over_horizon"
    else:
        problem = label_fits(record.probabilities, pending)
    if problem is not None:
        result.labels_dropped[problem] += 1
        row.set_label(None, None)


def _apply_binary_scores(
    row: EventRow, record: Prediction, deltas: BatchDeltas, result: WriteResult
) -> bool:
    """Raw score and probability not set yet; True if either was."""
    if row.probabilities_json is not None:
        return False  # a multi-class event: not a binary one's scores too
    added = False
    if record.raw_score is not None and row.raw_score is None:
        row.raw_score = record.raw_score
        deltas.score(_series_group(deltas, row), _time(row), record.raw_score)
        added = True
        if row.probability is not None and row.label is not None:  # joined before
            deltas.raw_score_of_labelled(
                _series_group(deltas, row), _time(row), row.raw_score, row.probability, row.label
            )
    if record.probability is not None and row.probability is None:
        row.probability = record.probability
        deltas.probability(_series_group(deltas, row), _time(row), record.probability)
        added = True
        if row.stored_label is not None:
            _join(row, deltas, result)
    return added


def _apply_class_probabilities(
    row: EventRow, record: Prediction, deltas: BatchDeltas, result: WriteResult
) -> bool:
    """A multi-class event's probabilities, unless it has probabilities (or is binary)."""
    assert record.probabilities is not None
    if (
        row.probabilities_json is not None
        or row.probability is not None
        or row.raw_score is not None
    ):
        return False
    row.probabilities_json = vector_json(record.probabilities)
    deltas.class_probabilities(
        _series_group(deltas, row), row.model_id, _time(row), record.probabilities
    )
    if row.stored_label is not None:
        _join(row, deltas, result)
    return True


def _apply_label(
    row: EventRow,
    record: Label,
    now: int,
    horizon: LabelHorizon,
    deltas: BatchDeltas,
    result: WriteResult,
) -> None:
    if row.stored_label is not None:
        if row.stored_label == record.label:
            result.labels_duplicate += 1
        else:
            result.labels_conflicting += 1
        return
    if horizon.label_too_old(record.label_time_ms, now):
        result.labels_dropped["label_too_old"] += 1
        return
    if row.event_time_ms is not None and horizon.delay_over(
        row.event_time_ms, record.label_time_ms
    ):
        result.labels_dropped["label_delay_over_horizon"] += 1
        return
    if row.has_prediction:
        problem = label_fits(row.probabilities_json, record.label)
        if problem is not None:
            result.labels_dropped[problem] += 1
            return
    row.set_label(record.label, record.label_time_ms)
    if row.probability is not None or row.probabilities_json is not None:
        _join(row, deltas, result)
    else:
        result.labels_pending += 1


def _join(row: EventRow, deltas: BatchDeltas, result: WriteResult) -> None:
    assert row.label_time_ms is not None and row.event_time_ms is not None
    label = row.stored_label
    assert label is not None
    join_either(
        deltas,
        result,
        _series_group(deltas, row),
        row.event_time_ms,
        row.probability,
        row.probabilities_json,
        label,
        row.label_time_ms,
        row.raw_score,
    )


def _time(row: EventRow) -> int:
    assert row.event_time_ms is not None
    return row.event_time_ms


def _series_group(deltas: BatchDeltas, row: EventRow) -> int:
    assert row.model_version is not None
    return deltas.group(row.model_id, row.model_version, row.segment_json)


#: The columns a row's snapshot holds, in its order: what this path may change (a new
#: row's columns but its key and creation time).
_SNAPSHOT_COLUMNS = [c for c in NEW_EVENT_COLUMNS if c not in (*EVENT_KEY, "created_ms")]


#: The row's ``_SNAPSHOT_COLUMNS``, as a tuple.
_snapshot: Callable[[EventRow], tuple[object, ...]] = operator.attrgetter(*_SNAPSHOT_COLUMNS)


#: A new row's values, in ``event_rows.NEW_EVENT_COLUMNS`` order.
_new_event_values: Callable[[EventRow], tuple[Any, ...]] = operator.attrgetter(*NEW_EVENT_COLUMNS)

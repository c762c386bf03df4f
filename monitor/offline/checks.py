"""Check a file's rows as ingest checks messages, and keep the valid events.

The message validator (``monitor/ingest/validation.py``) is the one definition of a
valid prediction and label. Run row by row it would take most of the time of a large
file, so the columns are checked first with array operations, which accept only what
the validator accepts (``tests/unit/offline/test_checks.py`` compares the two); every
row they do not accept goes to the validator itself, which accepts it after all or names
the reason and the field, as it would for a Kafka message.

A row whose prediction is valid but whose label is not keeps its prediction, as ingest
keeps a valid prediction message and dead-letters the bad label message.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from monitor.core.times import epoch_ms
from monitor.ingest.validation import (
    DEFAULT_MULTICLASS,
    MAX_ID_LENGTH,
    MAX_SEGMENT_VALUE_LENGTH,
    MAX_TIME_MS,
    MIN_TIME_MS,
    RESERVED_VALUES,
    InvalidMessage,
    label_from,
    prediction_from,
)
from monitor.offline import class_columns as mc
from monitor.offline.class_columns import ClassColumns
from monitor.offline.columns import IDS, BadFile
from monitor.offline.events import NO_LABEL, NO_TIME, Events, EventsBuilder
from monitor.offline.read import Chunk
from monitor.settings import MulticlassSettings


@dataclass(frozen=True, slots=True)
class Reject:
    row: int  # file row number (JSON Lines: line number)
    reason: str  # a reason of ``monitor.ingest.validation.REASONS``
    detail: str
    part: str = "prediction"  # or "label": the row's prediction was kept


def check_chunk(
    chunk: Chunk,
    segment_keys: tuple[str, ...],
    *,
    source: str,
    multiclass: MulticlassSettings = DEFAULT_MULTICLASS,
) -> tuple[Events, list[Reject]]:
    """The valid events of ``chunk`` and the rejects, in row order. ``multiclass``:
    ``ingest.multiclass`` (configured classes, the class cap, the sum tolerance)."""
    rejects = [Reject(row, reason, detail) for row, reason, detail in chunk.unparseable]
    if chunk.table is None:
        builder = EventsBuilder(segment_keys)
        for row in chunk.rows:
            rejects += _validate_row(row, int(row["__row__"]), segment_keys, builder, multiclass)
        return builder.build(), rejects
    return _check_table(chunk.table, chunk.first_row, segment_keys, source, rejects, multiclass)


def _check_table(
    table: pa.Table,
    first_row: int,
    segment_keys: tuple[str, ...],
    source: str,
    rejects: list[Reject],
    multiclass: MulticlassSettings,
) -> tuple[Events, list[Reject]]:
    n = table.num_rows
    ok = np.ones(n, dtype=bool)
    ids = {}
    for name in IDS:
        ids[name], valid = _id_column(table.column(name), name, source)
        ok &= valid
    time_ms, valid = _time_column(table.column("timestamp"), "timestamp", source)
    ok &= valid
    class_names = mc.class_columns(table.column_names)
    classes: ClassColumns | None = None
    if class_names:
        raw, prob, label, classes, scores_ok = _class_scores(
            table, class_names, ids["model_id"], multiclass, source
        )
        ok &= scores_ok
    else:
        raw, prob, label, scores_ok = _binary_scores(table, source)
        ok &= scores_ok
    if "calibrator_version" in table.column_names:
        # The version of the series is then model_version+cal=...: the validator's to say.
        ok &= ~_given(table.column("calibrator_version"))
    label_time = np.full(n, NO_TIME, dtype=np.int64)
    if "label_timestamp" in table.column_names:
        column = table.column("label_timestamp")
        times, valid = _time_column(column, "label_timestamp", source)
        given = _given(column)
        ok &= valid | ~given
        label_time = np.where(given & valid & (label != NO_LABEL), times, NO_TIME)
    segments = {}
    for key in segment_keys:
        segments[key], valid = _segment_column(table, key, source)
        ok &= valid
    if ok.all():  # the common case: nothing to take or to send to the validator
        return Events(
            rows=np.arange(first_row, first_row + n, dtype=np.int64),
            event_id=ids["event_id"],
            model_id=ids["model_id"],
            model_version=ids["model_version"],
            time_ms=time_ms,
            raw_score=raw,
            probability=prob,
            label=label,
            label_time_ms=label_time,
            segments=segments,
            classes=classes,
        ), rejects
    good = np.flatnonzero(ok)
    events = Events(
        rows=good + first_row,
        event_id=ids["event_id"].take(good),
        model_id=ids["model_id"].take(good),
        model_version=ids["model_version"].take(good),
        time_ms=time_ms[good],
        raw_score=raw[good],
        probability=prob[good],
        label=label[good],
        label_time_ms=label_time[good],
        segments={key: values.take(good) for key, values in segments.items()},
        classes=None if classes is None else classes.take(good),
    )
    flagged = np.flatnonzero(~ok)
    if flagged.size == 0:
        return events, rejects
    builder = EventsBuilder(segment_keys)
    for index, row in zip(flagged, table.take(flagged).to_pylist(), strict=True):
        rejects += _validate_row(
            row, int(index) + first_row, segment_keys, builder, multiclass, bool(class_names)
        )
    accepted = builder.build()
    merged = Events.concat([events, accepted], segment_keys)
    if len(accepted):
        order = np.argsort(merged.rows, kind="stable")
        merged = merged.take(order)
    rejects.sort(key=lambda r: r.row)
    return merged, rejects


# -- the validator, row by row ---------------------------------------------------------
def _validate_row(
    row: dict[str, Any],
    number: int,
    segment_keys: tuple[str, ...],
    builder: EventsBuilder,
    multiclass: MulticlassSettings = DEFAULT_MULTICLASS,
    multiclass_file: bool = False,
) -> list[Reject]:
    """``multiclass_file``: the file has class columns, so each row must be multi-class."""
    message = {
        name: _plain(row.get(name))
        for name in (*IDS, "timestamp", "raw_score", "probability", "segment", "calibrator_version")
    }
    message["probabilities"] = mc.row_probabilities(row)
    if message["segment"] is None:
        given = {k: _segment_text(row.get(k)) for k in segment_keys if row.get(k) is not None}
        message["segment"] = given or None
    try:
        prediction = prediction_from(message, multiclass)
    except InvalidMessage as problem:
        return [Reject(number, problem.reason, problem.detail)]
    if multiclass_file and prediction.probabilities is None:
        detail = (
            "no class probabilities: a file with probability.<class> columns holds "
            "multi-class models only (docs/evaluate.md)"
        )
        return [Reject(number, "bad_probabilities", detail)]
    value = row.get("label")
    if value is None or (isinstance(value, float) and math.isnan(value)):
        builder.add(number, prediction, None, timed=False)
        return []
    if prediction.probabilities is not None:
        value = mc.class_label(value)
    label_time = _plain(row.get("label_timestamp"))
    label_message = {
        "model_id": message["model_id"],
        "event_id": message["event_id"],
        "label": value,
        "timestamp": message["timestamp"] if label_time is None else label_time,
    }
    try:
        label = label_from(label_message, multiclass)
    except InvalidMessage as problem:
        builder.add(number, prediction, None, timed=False)
        return [Reject(number, problem.reason, problem.detail, part="label")]
    mismatch = mc.label_kind_problem(prediction.probabilities, label.label)
    if mismatch is not None:
        builder.add(number, prediction, None, timed=False)
        return [Reject(number, *mismatch, part="label")]
    builder.add(number, prediction, label, timed=label_time is not None)
    return []


def _plain(value: Any) -> Any:
    """A typed file value as it would be in a JSON message: a datetime as epoch ms."""
    if isinstance(value, datetime):
        return epoch_ms(value) if value.tzinfo is not None else value.isoformat()
    return value


def _segment_text(value: Any) -> Any:
    """Typed segment columns (an integer cohort, a flag) are read as their text."""
    if isinstance(value, bool):
        return str(value).lower()
    return str(value) if isinstance(value, int | float) else value


# -- the columns, with array operations --------------------------------------------------
def _type_error(source: str, name: str, column: pa.ChunkedArray, wants: str) -> BadFile:
    return BadFile(f"{source}: column {name} has type {column.type}; it must be {wants}")


def _strings(column: pa.ChunkedArray) -> pa.Array:
    """One array; large strings as strings (dictionary arrays stay as they are)."""
    array = _one_array(column)
    if pa.types.is_large_string(array.type) or pa.types.is_string_view(array.type):
        array = array.cast(pa.string())
    return array


def _one_array(column: pa.ChunkedArray) -> pa.Array:
    """The column as one array (without a copy when it is one chunk already)."""
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


def _codes(array: pa.DictionaryArray) -> np.ndarray:
    """A dictionary array's codes as int64, -1 where null."""
    indices = array.indices if array.null_count == 0 else array.indices.fill_null(-1)
    return np.asarray(indices, dtype=np.int64)


def _text_checked(array: pa.Array, max_length: int, *, names: bool = True) -> np.ndarray:
    """Which values are text of 1..``max_length`` characters without NUL (null: False)
    and, for ``names`` (a model id, a version, a segment value), not a reserved value.

    A dictionary array is checked once per distinct value. Otherwise lengths come from
    the offsets, in bytes: a value of 1..max bytes has 1..max characters, and a longer
    one is sent on to the validator, which counts its characters.
    """
    if pa.types.is_dictionary(array.type):
        per_value = _text_checked(array.dictionary, max_length, names=names)
        return np.append(per_value, False)[_codes(array)]
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int32)[
        array.offset : array.offset + len(array) + 1
    ]
    lengths = np.diff(offsets)
    valid = (lengths >= 1) & (lengths <= max_length) & _given(array)
    data = array.buffers()[2]
    if data is not None and memoryview(data).tobytes().find(b"\x00") >= 0:
        valid &= ~_true(pc.match_substring(array, "\x00"))
    if names:
        valid &= ~_true(pc.is_in(array, value_set=pa.array(sorted(RESERVED_VALUES))))
    return valid


def _id_column(column: pa.ChunkedArray, name: str, source: str) -> tuple[pa.Array, np.ndarray]:
    array = _strings(column)
    if pa.types.is_integer(array.type):
        # The validator reads an integer id as its decimal text: the same here.
        text = array.cast(pa.string())
        return text, _given(text)
    if pa.types.is_null(array.type):
        return array.cast(pa.string()), np.zeros(len(array), dtype=bool)
    if not _is_text(array.type):
        raise _type_error(source, name, column, "text or integers")
    # The event id names no series: it may be any text (reserved values too).
    return array, _text_checked(array, MAX_ID_LENGTH, names=name != "event_id")


def _is_text(kind: pa.DataType) -> bool:
    if pa.types.is_dictionary(kind):
        return bool(pa.types.is_string(kind.value_type))
    return bool(pa.types.is_string(kind))


def _true(mask: pa.Array) -> np.ndarray:
    """A boolean array with nulls as False, as numpy."""
    return np.asarray(pc.fill_null(mask, False).to_numpy(zero_copy_only=False), dtype=bool)


def _given(array: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Which values are not null, as numpy (without a pass when there is no null)."""
    if array.null_count == 0:
        return np.ones(len(array), dtype=bool)
    return np.asarray(array.is_valid().to_numpy(zero_copy_only=False), dtype=bool)


def _time_column(column: pa.ChunkedArray, name: str, source: str) -> tuple[np.ndarray, np.ndarray]:
    """Epoch ms and whether each value is a valid timestamp (null: not valid)."""
    array = _strings(column)
    kind = array.type
    if pa.types.is_timestamp(kind):
        if kind.tz is None:
            raise BadFile(
                f"{source}: column {name} is a timestamp without a time zone; calmon "
                "needs UTC times (pandas: df[col].dt.tz_localize('UTC'))"
            )
        per_ms = {"s": None, "ms": 1, "us": 1000, "ns": 1_000_000}[kind.unit]
        raw = np.asarray(array.cast(pa.int64()).fill_null(0))
        ms = raw * 1000 if per_ms is None else raw // per_ms
        valid = _given(array)
    elif pa.types.is_integer(kind) and array.null_count == 0:
        # The common case (epoch ms, no nulls): the integers as they are, one pass.
        ms = np.asarray(array.cast(pa.int64()))
        return ms, (ms >= MIN_TIME_MS) & (ms <= MAX_TIME_MS)
    elif pa.types.is_integer(kind) or pa.types.is_floating(kind):
        values = np.asarray(array.cast(pa.float64()).fill_null(np.nan))
        valid = np.isfinite(values)
        ms = np.where(valid, values, 0).astype(np.int64)
        # The bounds apply to the number as sent (the validator's rule).
        with np.errstate(invalid="ignore"):
            valid &= (values >= MIN_TIME_MS) & (values <= MAX_TIME_MS)
        if pa.types.is_integer(kind):
            ms = np.asarray(array.cast(pa.int64()).fill_null(0))
        return ms, valid
    elif pa.types.is_string(kind) or pa.types.is_null(kind):
        # Text timestamps: the validator's parser, value by value (the rows it refuses
        # are flagged, and the validator names the problem).
        from monitor.ingest.validation import timestamp_from

        ms = np.zeros(len(array), dtype=np.int64)
        valid = np.zeros(len(array), dtype=bool)
        for i, text in enumerate(array.to_pylist()):
            if text is None:
                continue
            try:
                ms[i] = timestamp_from(text)
                valid[i] = True
            except InvalidMessage:
                pass
        return ms, valid
    else:
        raise _type_error(source, name, column, "a timestamp with a time zone, epoch ms or text")
    valid &= (ms >= MIN_TIME_MS) & (ms <= MAX_TIME_MS)
    return ms, valid


def _number_column(table: pa.Table, name: str, source: str) -> np.ndarray:
    """Floats, NaN where absent (null); a NaN in the file is told apart by _nan_given."""
    if name not in table.column_names:
        return np.full(table.num_rows, np.nan)
    column = table.column(name)
    kind = column.type
    if not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_null(kind)):
        raise _type_error(source, name, column, "numbers")
    values = _one_array(column).cast(pa.float64())
    return np.asarray(values if values.null_count == 0 else values.fill_null(np.nan))


def _nan_given(table: pa.Table, name: str) -> np.ndarray:
    """Where the file has a NaN (not a null): an invalid value, not an absent one."""
    if name not in table.column_names or not pa.types.is_floating(table.column(name).type):
        return np.zeros(table.num_rows, dtype=bool)
    column = table.column(name)
    if column.null_count == 0:  # no null read as NaN: every NaN is the file's
        return np.isnan(np.asarray(_one_array(column)))
    return _true(pc.is_nan(column.combine_chunks()))


def _binary_scores(
    table: pa.Table, source: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Raw scores, probabilities, labels and which rows' are valid (binary models)."""
    raw = _number_column(table, "raw_score", source)
    prob = _number_column(table, "probability", source)
    with np.errstate(invalid="ignore"):
        ok = ~np.isinf(raw) & (
            (np.isnan(prob) & ~_nan_given(table, "probability")) | ((prob >= 0.0) & (prob <= 1.0))
        )
    ok &= ~(_nan_given(table, "raw_score"))
    ok &= ~(np.isnan(raw) & np.isnan(prob))  # no_score
    label, label_ok = _label_column(table, source)
    return raw, prob, label, ok & label_ok


def _class_scores(
    table: pa.Table,
    columns: list[str],
    model_ids: pa.Array,
    multiclass: MulticlassSettings,
    source: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, ClassColumns, np.ndarray]:
    """A multi-class file's rows: no scores, class labels (indices), the probability
    vectors divided by their sums, and which rows the validator would accept as they
    are (the others go to it, ``class_columns.py``)."""
    n = table.num_rows
    matrix = mc.class_matrix(table, columns, source)
    ok = mc.plain_rows(matrix, multiclass) & ~mc.nan_in_file(table, columns)
    for name in ("raw_score", "probability"):
        if name in table.column_names:  # "not both": the validator's to say
            ok &= ~_given(table.column(name))
    if multiclass.classes:  # configured classes: the validator checks them by name
        configured = pa.array(sorted(multiclass.classes), pa.string())
        if pa.types.is_dictionary(model_ids.type):
            model_ids = model_ids.dictionary_decode()
        ok &= ~_true(pc.is_in(model_ids, value_set=configured))
    names = tuple(mc.class_of(c) for c in columns)
    label, given, named = mc.label_codes(table, names, matrix, source)
    ok &= named | ~given
    classes = ClassColumns(names, mc.normalised(matrix))
    nothing = np.full(n, np.nan)
    return nothing, nothing.copy(), label, classes, ok


def _label_column(table: pa.Table, source: str) -> tuple[np.ndarray, np.ndarray]:
    """Labels (``NO_LABEL`` where null or NaN: not labelled yet) and which are 0 or 1."""
    n = table.num_rows
    if "label" not in table.column_names:
        return np.full(n, NO_LABEL, dtype=np.int8), np.ones(n, dtype=bool)
    column = table.column("label")
    kind = column.type
    if pa.types.is_boolean(kind):
        column = column.cast(pa.int8())
    elif not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_null(kind)):
        raise _type_error(source, "label", column, "0 or 1 (integers, floats or booleans)")
    if pa.types.is_integer(column.type) and column.null_count == 0:
        # The common case (0/1 integers, every row labelled): no float copy.
        ints = np.asarray(_one_array(column))
        valid = (ints == 0) | (ints == 1)
        return np.where(valid, ints, NO_LABEL).astype(np.int8), valid
    values = np.asarray(column.combine_chunks().cast(pa.float64()).fill_null(np.nan))
    absent = np.isnan(values)
    valid = absent | (values == 0.0) | (values == 1.0)
    label = np.where(valid & ~absent, values, NO_LABEL).astype(np.int8)
    return label, valid


def _segment_column(table: pa.Table, key: str, source: str) -> tuple[pa.Array, np.ndarray]:
    if key not in table.column_names:
        raise BadFile(f"{source}: no column {key} for --segment-keys")
    array = _strings(table.column(key))
    if pa.types.is_dictionary(array.type) and not _is_text(array.type):
        array = array.dictionary_decode()
    if pa.types.is_boolean(array.type):
        array = pc.if_else(array, "true", "false")
    elif not _is_text(array.type):
        try:
            array = array.cast(pa.string())
        except pa.ArrowException:
            raise _type_error(source, key, table.column(key), "text") from None
    given = _given(array)
    return array, _text_checked(array, MAX_SEGMENT_VALUE_LENGTH) | ~given


def reject_counts(rejects: Iterable[Reject]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for reject in rejects:
        counts[reject.reason] = counts.get(reject.reason, 0) + 1
    return dict(sorted(counts.items(), key=lambda item: -item[1]))

"""The write path's common cases, set-at-a-time: most records of any stream.

A record is a common case if its event appears once in the batch (records of one event
depend on their order; the last case below is the exception) and it is

- a prediction of an event the store does not have: inserted with its values;
- a prediction of an event whose label came first and waits for it (no prediction yet,
  the label within the horizon of it): an UPDATE fills the row in and returns the label
  it joins;
- a label within the horizon whose event has a probability and no label: an UPDATE
  whose condition is the join rule decides it row by row, and returns what the join
  adds to the aggregates;
- a label within the horizon of an event the store does not have: inserted to wait for
  its prediction;
- a prediction and a label of the same new event, in either order, the label within
  the horizon: inserted with the label joined.

The last three are what a consumer catching up on a backlog meets: it reads the label
topic as fast as the prediction topic, so a label often arrives before its prediction,
or in the same poll. Every outcome is what the one-by-one path (``one_by_one.py``) would do
with these records, by the same rule (``join.py``); the records they leave (an event
already predicted, a label twice, a label past the horizon) go to it, in the same
transaction.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from sqlalchemy import Connection

from monitor.core.records import Label, Prediction, Record, segment_json
from monitor.store.db.sql import update_by_key, update_returning
from monitor.store.write.deltas import BatchDeltas
from monitor.store.write.event_rows import (
    EVENT_KEY,
    EVENTS,
    NEW_EVENT_COLUMNS,
    insert_event_rows,
    vector_json,
    vector_of,
)
from monitor.store.write.join import (
    LABEL_KIND_FITS_SQL,
    WAITS_FOR_CLASS_LABEL_SQL,
    WAITS_FOR_LABEL_SQL,
    WAITS_FOR_PREDICTION_SQL,
    LabelHorizon,
    add_class_join,
    add_joins,
    add_predictions,
    label_fits,
)
from monitor.store.write.result import WriteResult

#: What a joined label's row returns: enough to add it to its buckets.
_JOINED_COLUMNS = [
    "model_id",
    "event_id",
    "model_version",
    "event_time_ms",
    "probability",
    "segment_json",
    "label",
    "label_time_ms",
    "raw_score",
]
#: What a joined class label's row returns.
_CLASS_JOINED_COLUMNS = [
    "model_id",
    "event_id",
    "model_version",
    "event_time_ms",
    "probabilities_json",
    "segment_json",
    "label_class",
    "label_time_ms",
]
_NO_SEGMENT_JSON = segment_json({})
#: A waiting label's row: no prediction fields, its label set by ``_with_label``.
_NO_PREDICTION = (None,) * 6


def write(
    connection: Connection,
    records: Sequence[Record],
    *,
    now: int,
    horizon: LabelHorizon,
    deltas: BatchDeltas,
    result: WriteResult,
) -> list[Record]:
    """Write the batch's common cases; return the other records (each event's records
    in batch order) for the one-by-one path."""
    occurrences = Counter([(record[0], record[1]) for record in records])
    oldest_label_ms = horizon.oldest_label_ms(now)
    twice: dict[tuple[str, str], list[Record]] = {}
    others: list[Record] = []
    if len(occurrences) == len(records):  # the usual batch: every event once
        predictions = [r for r in records if type(r) is Prediction]
        labels: list[Label] = [r for r in records if type(r) is Label]
    else:
        predictions, labels = [], []
        for record in records:
            seen = occurrences[record.model_id, record.event_id]
            if seen == 2:
                twice.setdefault((record.model_id, record.event_id), []).append(record)
            elif seen > 2:
                others.append(record)
            elif type(record) is Prediction:
                predictions.append(record)
            else:
                labels.append(record)  # type: ignore[arg-type]
    if labels and min(label.label_time_ms for label in labels) < oldest_label_ms:
        others += [label for label in labels if label.label_time_ms < oldest_label_ms]
        labels = [label for label in labels if label.label_time_ms >= oldest_label_ms]
    pairs: list[tuple[Prediction, Label, bool]] = []
    for first, second in twice.values():
        if isinstance(first, Prediction) and isinstance(second, Label):
            prediction, label, label_first = first, second, False
        elif isinstance(first, Label) and isinstance(second, Prediction):
            prediction, label, label_first = second, first, True
        else:  # a replay, or raw score and probability in two messages
            others += (first, second)
            continue
        if (
            not horizon.label_too_old(label.label_time_ms, now)
            and not horizon.delay_over(prediction.event_time_ms, label.label_time_ms)
            and label_fits(prediction.probabilities, label.label) is None
        ):
            pairs.append((prediction, label, label_first))
        else:
            others += (first, second)  # a label dropped: counted by the one-by-one path
    stored = _insert_new_predictions(connection, predictions, now, deltas, result)
    others += _complete_waiting_events(connection, stored, horizon, deltas, result)
    others += _insert_labelled_events(connection, pairs, now, deltas, result)
    binary = [label for label in labels if not isinstance(label.label, str)]
    unjoined = _join_waiting_predictions(connection, binary, horizon, deltas, result)
    if len(binary) < len(labels):
        classes = [label for label in labels if isinstance(label.label, str)]
        unjoined += _join_waiting_class_events(connection, classes, horizon, deltas, result)
    others += _insert_waiting_labels(connection, unjoined, now, result)
    return others


def _insert_new_predictions(
    connection: Connection,
    predictions: list[Prediction],
    now: int,
    deltas: BatchDeltas,
    result: WriteResult,
) -> list[tuple[Prediction, str]]:
    """Insert the events these predictions create; return the predictions (with their
    segment text) of events already stored (before this batch, or by another writer
    meanwhile: PostgreSQL's insert waits for that writer's commit and skips the row)."""
    if not predictions:
        return []
    texts = _segment_texts(predictions)
    # A Prediction's first six fields are the row's first six columns.
    rows = [
        (*p[:6], text, None, None, now, vector_json(p.probabilities), None)
        for p, text in zip(predictions, texts, strict=True)
    ]
    rows.sort()  # in key order: PostgreSQL locks new rows as it inserts them
    inserted = insert_event_rows(connection, rows)
    others = []
    if len(inserted) < len(predictions):  # some events exist: set those predictions aside
        new_keys = set(inserted)
        kept = [
            (p, text)
            for p, text in zip(predictions, texts, strict=True)
            if (p.model_id, p.event_id) in new_keys
        ]
        others = [
            (p, text)
            for p, text in zip(predictions, texts, strict=True)
            if (p.model_id, p.event_id) not in new_keys
        ]
        predictions, texts = [p for p, _ in kept], [text for _, text in kept]
    series = deltas.groups(
        [(p.model_id, p.model_version, text) for p, text in zip(predictions, texts, strict=True)]
    )
    add_predictions(deltas, series, predictions)
    result.predictions_new += len(inserted)
    return others


def _segment_texts(predictions: Sequence[Prediction]) -> list[str]:
    """Each prediction's segment as stored, computed once per distinct segment."""
    known: dict[tuple[tuple[str, str], ...], str] = {}
    texts = []
    for p in predictions:
        segment = p.segment
        if segment:
            items = tuple(segment.items())
            text = known.get(items)
            if text is None:
                text = known[items] = segment_json(segment)
        else:
            text = _NO_SEGMENT_JSON
        texts.append(text)
    return texts


def _insert_labelled_events(
    connection: Connection,
    pairs: list[tuple[Prediction, Label, bool]],
    now: int,
    deltas: BatchDeltas,
    result: WriteResult,
) -> list[Record]:
    """Insert new events whose prediction and label are both in this batch (the label
    within the horizon), joined; return the records, in batch order, of events already
    stored. Counted as the one-by-one path counts them: a label read first waited (it
    is pending until its prediction comes), and one without a probability still waits."""
    if not pairs:
        return []
    texts = _segment_texts([prediction for prediction, _, _ in pairs])
    rows = sorted(
        _with_label(
            (*p[:6], text, None, label.label_time_ms, now, vector_json(p.probabilities), None),
            label,
        )
        for (p, label, _), text in zip(pairs, texts, strict=True)
    )
    inserted = set(insert_event_rows(connection, rows))
    others: list[Record] = []
    new: list[tuple[Prediction, Label, bool, str]] = []
    for (p, label, label_first), text in zip(pairs, texts, strict=True):
        if (p.model_id, p.event_id) in inserted:
            new.append((p, label, label_first, text))
        else:
            others += (label, p) if label_first else (p, label)
    series = deltas.groups([(p.model_id, p.model_version, text) for p, _, _, text in new])
    add_predictions(deltas, series, [p for p, _, _, _ in new])
    result.labels_pending += sum(
        1
        for p, _, label_first, _ in new
        if label_first or (p.probability is None and p.probabilities is None)
    )
    joins = [
        (group, p.event_time_ms, p.probability, label.label, label.label_time_ms, p.raw_score)
        for group, (p, label, _, _) in zip(series, new, strict=True)
        if p.probability is not None
    ]
    if joins:
        add_joins(deltas, result, *zip(*joins, strict=True))
    for group, (p, label, _, _) in zip(series, new, strict=True):
        if p.probabilities is not None:  # ``write`` paired only labels that fit
            assert isinstance(label.label, str)
            add_class_join(
                deltas,
                result,
                group,
                p.event_time_ms,
                p.probabilities,
                label.label,
                label.label_time_ms,
            )
    result.predictions_new += len(inserted)
    return others


_LABEL, _LABEL_CLASS = NEW_EVENT_COLUMNS.index("label"), NEW_EVENT_COLUMNS.index("label_class")


def _with_label(row: tuple[object, ...], label: Label) -> tuple[object, ...]:
    """A new event's row with the label in its column: ``label`` (0/1) or ``label_class``."""
    values = list(row)
    values[_LABEL_CLASS if isinstance(label.label, str) else _LABEL] = label.label
    return tuple(values)


def _complete_waiting_events(
    connection: Connection,
    predictions: list[tuple[Prediction, str]],
    horizon: LabelHorizon,
    deltas: BatchDeltas,
    result: WriteResult,
) -> list[Prediction]:
    """Give the prediction to events that have none yet (their label came first), and
    join that label; return the predictions of events that have one, or whose label
    came more than the horizon after it (the one-by-one path drops that label)."""
    if not predictions:
        return []
    # Each event appears once in the batch (``write`` sends the others one by one), so
    # no key is lost here and the sort below never compares two rows' None values.
    by_key = {(p.model_id, p.event_id): (p, text) for p, text in predictions}
    assert len(by_key) == len(predictions)
    completed = update_returning(
        connection,
        EVENTS,
        EVENT_KEY,
        [
            "model_version",
            "event_time_ms",
            "raw_score",
            "probability",
            "segment_json",
            "probabilities_json",
        ],
        sorted(
            (*key, *p[2:6], text, vector_json(p.probabilities)) for key, (p, text) in by_key.items()
        ),
        condition=(
            f"{WAITS_FOR_PREDICTION_SQL} AND (t.label_time_ms IS NULL"
            f" OR ({horizon.delay_within_sql('v.new_event_time_ms', 't.label_time_ms')}"
            f" AND {LABEL_KIND_FITS_SQL}))"
        ),
        returning=["model_id", "event_id", "label", "label_class", "label_time_ms"],
    )
    completed_predictions = [by_key.pop((row[0], row[1])) for row in completed]
    series = deltas.groups(
        [(p.model_id, p.model_version, text) for p, text in completed_predictions]
    )
    add_predictions(deltas, series, [p for p, _ in completed_predictions])
    joins = [
        (group, p.event_time_ms, p.probability, label, label_time_ms, p.raw_score)
        for group, (p, _), (_, _, label, _, label_time_ms) in zip(
            series, completed_predictions, completed, strict=True
        )
        if p.probability is not None and label is not None
    ]
    if joins:
        add_joins(deltas, result, *zip(*joins, strict=True))
    unjoined: list[dict[str, object]] = []
    for group, (p, _), (model_id, event_id, _, label_class, label_time_ms) in zip(
        series, completed_predictions, completed, strict=True
    ):
        if p.probabilities is None or label_class is None:
            continue
        problem = label_fits(p.probabilities, label_class)
        if problem is None:
            add_class_join(
                deltas, result, group, p.event_time_ms, p.probabilities, label_class, label_time_ms
            )
        else:  # a class the probabilities do not name: dropped (join.py)
            result.labels_dropped[problem] += 1
            unjoined.append(_no_label(model_id, event_id))
    update_by_key(connection, EVENTS, EVENT_KEY, unjoined)
    result.predictions_new += len(completed)
    return [p for p, _ in by_key.values()]


def _no_label(model_id: str, event_id: str) -> dict[str, object]:
    return {
        "model_id": model_id,
        "event_id": event_id,
        "label": None,
        "label_class": None,
        "label_time_ms": None,
    }


def _insert_waiting_labels(
    connection: Connection, labels: list[Label], now: int, result: WriteResult
) -> list[Label]:
    """Store the labels of events the store does not have, to wait for their prediction;
    return the others (an event with a label already, or a prediction without a
    probability, or created by another writer meanwhile)."""
    if not labels:
        return []
    rows = sorted(
        _with_label(
            (label.model_id, label.event_id, *_NO_PREDICTION, label.label_time_ms, now, None, None),
            label,
        )
        for label in labels
    )
    inserted = set(insert_event_rows(connection, rows))
    result.labels_pending += len(inserted)
    if len(inserted) == len(labels):
        return []
    return [label for label in labels if (label.model_id, label.event_id) not in inserted]


def _join_waiting_predictions(
    connection: Connection,
    labels: list[Label],
    horizon: LabelHorizon,
    deltas: BatchDeltas,
    result: WriteResult,
) -> list[Label]:
    """Join the labels whose prediction waits for one; return the others."""
    if not labels:
        return []
    joined = update_returning(
        connection,
        EVENTS,
        EVENT_KEY,
        ["label", "label_time_ms"],
        [(label.model_id, label.event_id, label.label, label.label_time_ms) for label in labels],
        condition=(
            f"{WAITS_FOR_LABEL_SQL}"
            f" AND {horizon.delay_within_sql('t.event_time_ms', 'v.new_label_time_ms')}"
        ),
        returning=_JOINED_COLUMNS,
    )
    if joined:
        columns = zip(*joined, strict=True)
        model_ids, _, versions, event_times, probabilities, texts, values, label_times, raws = (
            columns
        )
        series = deltas.groups(zip(model_ids, versions, texts, strict=True))
        add_joins(deltas, result, series, event_times, probabilities, values, label_times, raws)
    if len(joined) == len(labels):
        return []
    done = {(row[0], row[1]) for row in joined}
    return [label for label in labels if (label.model_id, label.event_id) not in done]


def _join_waiting_class_events(
    connection: Connection,
    labels: list[Label],
    horizon: LabelHorizon,
    deltas: BatchDeltas,
    result: WriteResult,
) -> list[Label]:
    """``_join_waiting_predictions`` for class labels and multi-class events. A class the
    event's probabilities do not name is dropped again (counted, ``join.py``)."""
    if not labels:
        return []
    joined = update_returning(
        connection,
        EVENTS,
        EVENT_KEY,
        ["label_class", "label_time_ms"],
        [(label.model_id, label.event_id, label.label, label.label_time_ms) for label in labels],
        condition=(
            f"t.label IS NULL AND {WAITS_FOR_CLASS_LABEL_SQL}"
            f" AND {horizon.delay_within_sql('t.event_time_ms', 'v.new_label_time_ms')}"
        ),
        returning=_CLASS_JOINED_COLUMNS,
    )
    group = deltas.group
    unknown = []
    for model_id, event_id, version, event_time_ms, stored, text, label, label_time_ms in joined:
        vector = vector_of(stored)  # parsed once, for the check and the join
        problem = label_fits(vector, label)
        if problem is not None:
            result.labels_dropped[problem] += 1
            unknown.append(_no_label(model_id, event_id))
            continue
        series = group(model_id, version, text)
        add_class_join(deltas, result, series, event_time_ms, vector, label, label_time_ms)
    update_by_key(connection, EVENTS, EVENT_KEY, unknown)
    if len(joined) == len(labels):
        return []
    done = {(row[0], row[1]) for row in joined}
    return [label for label in labels if (label.model_id, label.event_id) not in done]

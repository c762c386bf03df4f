"""The join and label-horizon rule, in one place for both write paths.

- A label **joins** its event when the event has a probability and no label yet: the
  event then enters calibration, and its label delay is counted (``add_join``). For a
  multi-class event (class probabilities, ``probabilities_json``) the label is a class
  name, and joins only if the event's probabilities name that class.
- A label that **cannot join** its event is dropped (not kept with it, so a later one
  may still join): a class label of a binary event or a 0/1 label of a multi-class one
  (``label_kind_mismatch``), a class the event's probabilities do not name
  (``unknown_class``).
- A label is **too old** (dropped as ``label_too_old``) when its own timestamp is more
  than the horizon before now.
- A label is **too late** (dropped as ``label_delay_over_horizon``) when it came more
  than the horizon after its prediction's timestamp; both orders of arrival are checked,
  the label waiting or the prediction.

The one-by-one path asks these questions in Python, the set-at-a-time path in SQL
(``delay_within_sql``, over named columns): both ask them of this class.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from monitor.core.records import Prediction
from monitor.store.write.deltas import BatchDeltas
from monitor.store.write.event_rows import vector_of
from monitor.store.write.result import WriteResult


@dataclass(frozen=True)
class LabelHorizon:
    """``ingest.label_horizon`` (default 30 days), in milliseconds."""

    horizon_ms: int

    def oldest_label_ms(self, now_ms: int) -> int:
        """The oldest label timestamp still accepted at ``now_ms``."""
        return now_ms - self.horizon_ms

    def label_too_old(self, label_time_ms: int, now_ms: int) -> bool:
        return label_time_ms < self.oldest_label_ms(now_ms)

    def delay_over(self, event_time_ms: int, label_time_ms: int) -> bool:
        """The label came more than the horizon after its prediction."""
        return label_time_ms - event_time_ms > self.horizon_ms

    def delay_within_sql(self, event_time: str, label_time: str) -> str:
        """SQL for "not ``delay_over``" between two SQL expressions (column names)."""
        return f"{label_time} - {event_time} <= {int(self.horizon_ms)}"


#: SQL: the event has a probability and waits for its label (the label joins it).
WAITS_FOR_LABEL_SQL = "t.label IS NULL AND t.probability IS NOT NULL"
#: SQL: a multi-class event waits for its (class) label.
WAITS_FOR_CLASS_LABEL_SQL = "t.label_class IS NULL AND t.probabilities_json IS NOT NULL"
#: SQL: the event's label came first and it has no prediction yet.
WAITS_FOR_PREDICTION_SQL = "t.model_version IS NULL"
#: SQL: a waiting label ``t`` is of the kind of the new prediction ``v`` (a class name
#: for class probabilities, 0/1 otherwise).
LABEL_KIND_FITS_SQL = "(v.new_probabilities_json IS NULL) = (t.label_class IS NULL)"

KIND_MISMATCH = "label_kind_mismatch"
UNKNOWN_CLASS = "unknown_class"


def label_fits(probabilities: Mapping[str, float] | str | None, label: int | str) -> str | None:
    """None if ``label`` can join an event with these class probabilities (None: a
    binary event), else why not (the ``calmon_labels_dropped_total`` reason)."""
    if probabilities is None:
        return None if not isinstance(label, str) else KIND_MISMATCH
    if not isinstance(label, str):
        return KIND_MISMATCH
    if isinstance(probabilities, str):
        probabilities = vector_of(probabilities)
    return None if label in probabilities else UNKNOWN_CLASS


def add_predictions(
    deltas: BatchDeltas, series: Sequence[int], predictions: Sequence[Prediction]
) -> None:
    """What new events' predictions add to their buckets (``series[i]`` is
    ``predictions[i]``'s)."""
    times = [p.event_time_ms for p in predictions]
    deltas.predictions_many(series, times)
    raw_scores = [p.raw_score for p in predictions]
    deltas.scores_many(*_present(series, times, raw_scores))
    probabilities = [p.probability for p in predictions]
    deltas.probabilities_many(*_present(series, times, probabilities))
    multiclass = [
        (group, p.model_id, p.event_time_ms, p.probabilities)
        for group, p in zip(series, predictions, strict=True)
        if p.probabilities is not None
    ]
    for group, model_id, time_ms, vector in multiclass:  # few: found by a comprehension
        deltas.class_probabilities(group, model_id, time_ms, vector)


def _present(
    series: Sequence[int], times: Sequence[int], values: list[float | None]
) -> tuple[Sequence[int], Sequence[int], list[float]]:
    """The entries whose value is not None (usually all of them: no copy then)."""
    if None not in values:
        return series, times, values  # type: ignore[return-value]
    kept = [i for i, value in enumerate(values) if value is not None]
    return [series[i] for i in kept], [times[i] for i in kept], [values[i] for i in kept]  # type: ignore[misc]


def add_joins(
    deltas: BatchDeltas,
    result: WriteResult,
    series: Sequence[int],
    event_times_ms: Sequence[int],
    probabilities: Sequence[float],
    labels: Sequence[int],
    label_times_ms: Sequence[int],
    raw_scores: Sequence[float | None],
) -> None:
    """:func:`add_join` of many events, given as columns."""
    deltas.labelled_many(series, event_times_ms, probabilities, labels, label_times_ms, raw_scores)
    pairs = zip(event_times_ms, label_times_ms, strict=True)
    result.label_delays_s.extend([max(label - event, 0) / 1000 for event, label in pairs])
    result.labels_joined += len(series)


def add_join(
    deltas: BatchDeltas,
    result: WriteResult,
    series: int,
    event_time_ms: int,
    probability: float,
    label: int,
    label_time_ms: int,
    raw_score: float | None,
) -> None:
    """What an event gains when it has both a probability and a label: it enters
    calibration (with its raw score, if known), and its label delay is counted."""
    deltas.labelled(series, event_time_ms, probability, label, label_time_ms, raw_score)
    result.label_delays_s.append(max(label_time_ms - event_time_ms, 0) / 1000)
    result.labels_joined += 1


def add_class_join(
    deltas: BatchDeltas,
    result: WriteResult,
    series: int,
    event_time_ms: int,
    probabilities: Mapping[str, float] | str,
    label: str,
    label_time_ms: int,
) -> None:
    """``add_join`` for a multi-class event (its probabilities as stored, or parsed),
    whose label ``label_fits``."""
    if isinstance(probabilities, str):
        probabilities = vector_of(probabilities)
    deltas.class_labelled(series, event_time_ms, probabilities, label, label_time_ms)
    result.label_delays_s.append(max(label_time_ms - event_time_ms, 0) / 1000)
    result.labels_joined += 1


def join_either(
    deltas: BatchDeltas,
    result: WriteResult,
    series: int,
    event_time_ms: int,
    probability: float | None,
    probabilities: Mapping[str, float] | str | None,
    label: int | str,
    label_time_ms: int,
    raw_score: float | None,
) -> None:
    """Join a label to an event of either kind that has its probabilities. The caller
    has dropped a label that cannot join it (``label_fits``): when the label came, or
    when the first prediction found it waiting (``one_by_one.py``)."""
    if probabilities is not None:
        assert isinstance(label, str)
        add_class_join(deltas, result, series, event_time_ms, probabilities, label, label_time_ms)
    else:
        assert probability is not None and not isinstance(label, str)
        add_join(
            deltas, result, series, event_time_ms, probability, label, label_time_ms, raw_score
        )

"""A file's valid events reduced to one mergeable aggregate per series and period.

The same sufficient statistics the store keeps per bucket (``EventAggregate``), and the
same series a message's event counts in (``__all__`` plus one per segment key, each
model version and, with ``evaluation.all_versions``, all versions together), so that
the window code evaluates them as it evaluates the daemon's windows.

Events are grouped by what they share (model, version, segment values, period) and
each piece of the file is aggregated once per group, in one pass over its columns
(``metrics/grouped.py``). A series (``__all__``, a segment, all versions) is the merge of
its groups, made when the series are asked for, as ingest's ``BatchDeltas`` adds a
batch to every series of an event. Memory is the aggregates': it does not grow with the
rows read.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from monitor.core.series import ALL
from monitor.metrics.aggregates import EventAggregate
from monitor.metrics.grouped import grouped_aggregates
from monitor.metrics.multiclass import MulticlassAggregate
from monitor.offline.class_columns import ClassColumns
from monitor.offline.events import NO_LABEL, NO_TIME, Events
from monitor.offline.slices import Slices

#: (model_id, model_version, segment, period start in epoch ms or None: the whole file)
SeriesPeriod = tuple[str, str, str, int | None]
#: (model_id, model_version, each segment key's value or None, period start or None)
GroupKey = tuple[str, str, tuple[str | None, ...], int | None]
#: Pieces of a group kept before they are merged into one: merging several histograms
#: at once costs about what merging two does; each piece holds up to about 1 MB.
MERGE_EVERY = 4


@dataclass
class SeriesState:
    #: A multi-class series' one holds its predictions' count and label delays only, as
    #: the store's does; its probabilities are in ``multiclass``.
    aggregate: EventAggregate = field(default_factory=EventAggregate.empty)
    predictions: int = 0
    last_prediction_ms: int | None = None
    last_label_ms: int | None = None
    #: The events of multi-class models (None: none), as the store aggregates them.
    multiclass: MulticlassAggregate | None = None

    @classmethod
    def merge_all(cls, states: list[SeriesState]) -> SeriesState:
        """One state of many; never changes them (a state may stand in several series)."""
        if len(states) == 1:
            return states[0]
        merged = cls(aggregate=EventAggregate.merge_all([s.aggregate for s in states]))
        classes = [s.multiclass for s in states if s.multiclass is not None]
        merged.multiclass = MulticlassAggregate.merge_all(classes) if classes else None
        for state in states:
            merged.predictions += state.predictions
            merged.last_prediction_ms = _later(merged.last_prediction_ms, state.last_prediction_ms)
            merged.last_label_ms = _later(merged.last_label_ms, state.last_label_ms)
        return merged


def _later(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else max(a, b)


class Accumulator:
    """Adds pieces of a file; ``every_ms`` splits time into periods aligned on the epoch
    (UTC midnights for a day), None keeps the whole file as one period.

    ``label_horizon_ms``: a label more than this after its prediction is dropped, as the
    store drops it (``store/write/join.py``); only labels with a ``label_timestamp``
    can be judged.

    ``slices``: also keep the labelled events by time slice (``slices.py``), so that a
    series' window can be split in time to fit a recalibration (:meth:`halves`).
    """

    def __init__(
        self,
        segment_keys: tuple[str, ...],
        *,
        all_versions: bool = True,
        every_ms: int | None = None,
        label_horizon_ms: int | None = None,
        residual_bucket_ms: int | None = None,
        slices: bool = False,
    ) -> None:
        self._keys = segment_keys
        self._slices = Slices(every_ms=every_ms) if slices else None
        self._residual_bucket_ms = residual_bucket_ms
        self._all_versions = all_versions
        self._every_ms = every_ms
        self.label_horizon_ms = label_horizon_ms
        self.clear()

    def clear(self) -> None:
        """Forget every event added (to add a file again, its repeats merged)."""
        self._groups: dict[GroupKey, list[SeriesState]] = {}
        self._series: dict[SeriesPeriod, SeriesState] | None = None
        #: Per group and bucket start: sum(y - p) and sum p(1 - p) of labelled events.
        self._residuals: dict[GroupKey, dict[int, list[float]]] = {}
        self._series_residuals: dict[tuple[str, str, str], dict[int, tuple[float, float]]] | None
        self._series_residuals = None
        self.first_ms: int | None = None
        self.last_ms: int | None = None
        self.events = 0
        self.labelled = 0
        self.labels_over_horizon = 0
        if self._slices is not None:
            self._slices.clear()

    @property
    def series(self) -> dict[SeriesPeriod, SeriesState]:
        """Every series and period: the merge of the groups it is made of."""
        if self._series is None:
            members: dict[SeriesPeriod, list[SeriesState]] = defaultdict(list)
            for key, parts in self._groups.items():
                state = self._collapse(key, parts)
                for series in self._series_of(key):
                    members[series].append(state)
            self._series = {s: SeriesState.merge_all(m) for s, m in members.items()}
        return self._series

    def add(self, events: Events) -> None:
        if not len(events):
            return
        self._series = self._series_residuals = None
        self.events += len(events)
        self.first_ms = min(int(events.time_ms.min()), self.first_ms or 2**62)
        self.last_ms = max(int(events.time_ms.max()), self.last_ms or 0)
        label = events.label
        if self.label_horizon_ms is not None:
            late = (events.label_time_ms != NO_TIME) & (
                events.label_time_ms - events.time_ms > self.label_horizon_ms
            )
            self.labels_over_horizon += int(late.sum())
            label = np.where(late, NO_LABEL, label).astype(label.dtype)
        index, keys = self._group_index(events)
        if self._residual_bucket_ms is not None:
            self._add_residuals(events, label, index, keys)
        if self._slices is not None:
            labelled = np.flatnonzero(~np.isnan(events.probability) & (label != NO_LABEL))
            self._slices.add(
                keys,
                index[labelled],
                events.time_ms[labelled],
                events.probability[labelled],
                label[labelled],
                events.raw_score[labelled],
                span_ms=self.last_ms - self.first_ms + 1,
            )
        for key, state in zip(keys, self._states(events, label, index, len(keys)), strict=True):
            parts = self._groups.setdefault(key, [])
            parts.append(state)
            if len(parts) >= MERGE_EVERY:
                self._collapse(key, parts)

    def halves(
        self, series: SeriesPeriod, start_ms: int, end_ms: int
    ) -> tuple[int, EventAggregate, EventAggregate]:
        """The split point of a series' window [start, end) and its labelled events
        before and after it (``Slices.halves``; needs ``slices``)."""
        if self._slices is None:
            raise ValueError("the accumulator keeps no time slices (slices=False)")
        groups = [key for key in self._groups if series in self._series_of(key)]
        return self._slices.halves(groups, start_ms, end_ms)

    def bucket_residuals(self, series: tuple[str, str, str]) -> dict[int, tuple[float, float]]:
        """Per bucket of ``residual_bucket_ms`` (its start), the sequential detector's
        sums of a series (model, version, segment) over the whole file: sum(y - p) and
        sum p(1 - p) of its labelled events (``store.aggregates.BucketResiduals``)."""
        if self._series_residuals is None:
            by_series: dict[tuple[str, str, str], dict[int, tuple[float, float]]] = {}
            for key, buckets in self._residuals.items():
                for model, version, segment, _ in self._series_of(key):
                    sums = by_series.setdefault((model, version, segment), {})
                    for start, (residual, variance) in buckets.items():
                        before = sums.get(start, (0.0, 0.0))
                        sums[start] = (before[0] + residual, before[1] + variance)
            self._series_residuals = by_series
        return self._series_residuals.get(series, {})

    def _add_residuals(
        self, events: Events, label: np.ndarray, index: np.ndarray, keys: list[GroupKey]
    ) -> None:
        assert self._residual_bucket_ms is not None
        labelled = ~np.isnan(events.probability) & (label != NO_LABEL)
        if not labelled.any():
            return
        p, y = events.probability[labelled], label[labelled]
        bucket = events.time_ms[labelled] // self._residual_bucket_ms
        low = int(bucket.min())
        span = int(bucket.max()) - low + 1
        distinct, at = _distinct(index[labelled] * span + (bucket - low))
        residual = np.bincount(at, y - p, distinct.size).tolist()
        variance = np.bincount(at, p * (1.0 - p), distinct.size).tolist()
        for code, r, v in zip(distinct.tolist(), residual, variance, strict=True):
            group, offset = divmod(code, span)
            start = (low + offset) * self._residual_bucket_ms
            sums = self._residuals.setdefault(keys[group], {}).setdefault(start, [0.0, 0.0])
            sums[0] += r
            sums[1] += v

    def _collapse(self, key: GroupKey, parts: list[SeriesState]) -> SeriesState:
        merged = SeriesState.merge_all(parts)
        self._groups[key] = [merged]
        return merged

    def _series_of(self, key: GroupKey) -> list[SeriesPeriod]:
        model, version, values, period = key
        segments = [ALL] + [
            f"{k}={value}" for k, value in zip(self._keys, values, strict=True) if value is not None
        ]
        versions = [version, ALL] if self._all_versions else [version]
        return [(model, v, segment, period) for v in versions for segment in segments]

    def _group_index(self, events: Events) -> tuple[np.ndarray, list[GroupKey]]:
        """Each event's group (0..n-1) and the n groups' keys."""
        columns = [_codes(events.model_id), _codes(events.model_version)]
        columns += [_codes(events.segments[key]) for key in self._keys]
        key = np.zeros(len(events), dtype=np.int64)
        radix = 1
        for codes, values in columns:
            key += (codes + 1) * radix
            radix *= len(values) + 1
        offset = 0
        if self._every_ms is not None:
            periods = events.time_ms // self._every_ms
            offset = int(periods.min())
            key += (periods - offset) * radix
        distinct, index = _distinct(key)
        return index, [self._key_of(code, columns, offset) for code in distinct.tolist()]

    def _key_of(
        self, code: int, columns: list[tuple[np.ndarray, list[str]]], offset: int
    ) -> GroupKey:
        """The group of a combined code: each column's value (None: null), the period."""
        parts: list[str | None] = []
        for _, values in columns:
            code, rest = divmod(code, len(values) + 1)
            parts.append(None if rest == 0 else values[rest - 1])
        period = None if self._every_ms is None else (code + offset) * self._every_ms
        model, version, *segments = parts  # ids are never null: the checks refuse them
        return str(model), str(version), tuple(segments), period

    def _states(
        self, events: Events, label: np.ndarray, index: np.ndarray, n_groups: int
    ) -> list[SeriesState]:
        class_rows, class_labelled = _class_events(events, label)
        binary_label = np.where(class_rows, NO_LABEL, label)
        labelled = ~np.isnan(events.probability) & (binary_label != NO_LABEL)
        timed = (labelled | class_labelled) & (events.label_time_ms != NO_TIME)
        delays = np.where(
            timed, np.maximum((events.label_time_ms - events.time_ms) / 1000, 0.0), np.nan
        )
        aggregates = grouped_aggregates(
            index,
            n_groups,
            raw_scores=events.raw_score,
            probabilities=events.probability,
            labels=binary_label,
            label_delays_s=delays,
        )
        self.labelled += int(labelled.sum() + class_labelled.sum())
        predictions = np.bincount(index, minlength=n_groups).tolist()
        last_prediction = _group_max(index, events.time_ms, n_groups)
        last_label = _group_max(index[timed], events.label_time_ms[timed], n_groups)
        multiclass: list[MulticlassAggregate | None] = [None] * n_groups
        if events.classes is not None and class_rows.any():
            for group, rows in _by_group(index, class_rows):
                multiclass[group] = _class_aggregate(
                    events.classes, rows, label[rows], class_labelled[rows]
                )
                # The store adds a multi-class label's delay to the binary aggregate.
                delayed = rows[class_labelled[rows] & timed[rows]]
                if delayed.size:
                    aggregates[group].add_label_delays(delays[delayed])
        return [
            SeriesState(aggregate, n, last_p, last_l, classes)
            for aggregate, n, last_p, last_l, classes in zip(
                aggregates, predictions, last_prediction, last_label, multiclass, strict=True
            )
        ]


def _class_events(events: Events, label: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which events are multi-class, and which of those have a label that joins (a
    class their probabilities name: a repeat's label may name one its first row, whose
    probabilities the event keeps, does not; the store drops it as ``unknown_class``)."""
    n = len(events)
    if events.classes is None:
        return np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    probabilities = events.classes.probabilities
    class_rows = ~np.isnan(probabilities).all(axis=1) if probabilities.size else np.zeros(n, bool)
    labelled = np.flatnonzero(class_rows & (label != NO_LABEL))
    joins = np.zeros(n, dtype=bool)
    joins[labelled] = ~np.isnan(probabilities[labelled, label[labelled].astype(np.int64)])
    return class_rows, joins


def _by_group(index: np.ndarray, chosen: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """The ``chosen`` events' positions, per group (one sort, not a pass per group)."""
    rows = np.flatnonzero(chosen)
    rows = rows[np.argsort(index[rows], kind="stable")]
    starts = np.flatnonzero(np.diff(index[rows])) + 1
    return [(int(index[part[0]]), part) for part in np.split(rows, starts) if part.size]


def _class_aggregate(
    classes: ClassColumns, rows: np.ndarray, label: np.ndarray, labelled: np.ndarray
) -> MulticlassAggregate:
    """One group's multi-class events (``rows``; their labels and which join) as one
    aggregate over the classes they name (a class an event does not name is probability
    0 for it, as ``MulticlassAggregate`` merges them)."""
    names, matrix = classes.named(rows)
    aggregate = MulticlassAggregate.empty(names)
    aggregate.add_predictions(matrix)
    if labelled.any():
        # Label indices are into all the file's classes; the aggregate's are its own.
        label_names = np.array(classes.names)[label[labelled].astype(np.int64)]
        own = np.searchsorted(np.array(names), label_names).astype(np.int64)
        aggregate.add_labelled(matrix[labelled], own)
    return aggregate


def _group_max(index: np.ndarray, values: np.ndarray, n_groups: int) -> list[int | None]:
    """The largest of ``values`` per group (None: the group has none)."""
    most = np.full(n_groups, np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(most, index, values)
    return [None if m == np.iinfo(np.int64).min else m for m in most.tolist()]


def _distinct(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values of ``key`` (sorted) and each element's position among them."""
    top = int(key.max())
    if top >= 1 << 22:
        distinct, index = np.unique(key, return_inverse=True)
        return distinct, index.astype(np.int64)
    # Few possible keys (the usual case): a lookup table instead of a sort.
    present = np.zeros(top + 1, dtype=bool)
    present[key] = True
    distinct = np.flatnonzero(present)
    lookup = np.zeros(top + 1, dtype=np.int64)
    lookup[distinct] = np.arange(distinct.size)
    return distinct, lookup[key]


def _codes(array: pa.Array) -> tuple[np.ndarray, list[str]]:
    """Integer codes (-1: null) and the values they stand for."""
    encoded = array if pa.types.is_dictionary(array.type) else pc.dictionary_encode(array)
    indices = encoded.indices if encoded.null_count == 0 else encoded.indices.fill_null(-1)
    codes = np.asarray(indices, dtype=np.int64)
    return codes, encoded.dictionary.to_pylist()

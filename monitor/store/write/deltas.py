"""What one batch adds to the aggregates, collected per (series, resolution, bucket)."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from monitor.core.series import ALL
from monitor.metrics.aggregates import EventAggregate
from monitor.metrics.grouped import tagged_aggregates
from monitor.metrics.multiclass import MulticlassAggregate
from monitor.store.buckets import RESOLUTIONS_S

#: (model_id, model_version, segment, resolution_s, bucket_start_ms)
AggregateKey = tuple[str, str, str, int, int]
#: (model_id, model_version, segment)
SeriesKey = tuple[str, str, str]
#: (group id, resolution_s, bucket_start_ms): a bucket of one group of a batch's events
GroupBucket = tuple[int, int, int]
#: What a batch adds to one bucket: predictions, the aggregate, and the multi-class
#: aggregate of a multi-class series (else None).
BucketAddition = tuple[int, EventAggregate, MulticlassAggregate | None]


def segments_of(segment_json: str | None, segment_keys: tuple[str, ...]) -> list[str]:
    """``__all__`` plus ``key=value`` for each configured key the event carries."""
    segments = [ALL]
    if segment_json and segment_keys:
        attributes = json.loads(segment_json)
        segments += [f"{key}={attributes[key]}" for key in segment_keys if key in attributes]
    return segments


class BatchDeltas:
    """Collects what a batch adds to every aggregate bucket its events belong to.

    Each call appends a few numbers to flat columns; :meth:`aggregates` then groups them
    per (series, resolution, bucket) with numpy. Per-event Python work stays at a few
    appends, whatever the number of segment keys and resolutions (this path runs for
    every message ingested).
    """

    def __init__(self, segment_keys: tuple[str, ...]) -> None:
        self._segment_keys = segment_keys
        #: (model_id, model_version, segment_json) -> group id; a group's events share
        #: their series (``__all__`` and one per segment key).
        self._group_ids: dict[tuple[str, str, str | None], int] = {}
        self._group_series: list[list[SeriesKey]] = []
        self._predictions: tuple[list[int], list[int]] = ([], [])
        self._scores: tuple[list[int], list[int], list[float]] = ([], [], [])
        self._probabilities: tuple[list[int], list[int], list[float]] = ([], [], [])
        #: group, event time, p, y, label time
        self._labelled: tuple[list[int], list[int], list[float], list[int], list[int]] = (
            [],
            [],
            [],
            [],
            [],
        )
        #: group, event time, raw score, p, y: labelled events whose raw score is known
        self._raw_labelled: tuple[list[int], list[int], list[float], list[float], list[int]] = (
            [],
            [],
            [],
            [],
            [],
        )
        #: Multi-class: group, event time, class probabilities (by class name)
        self._class_predictions: tuple[list[int], list[int], list[Mapping[str, float]]] = (
            [],
            [],
            [],
        )
        #: group, event time, class probabilities, label class
        self._class_labelled: tuple[list[int], list[int], list[Mapping[str, float]], list[str]] = (
            [],
            [],
            [],
            [],
        )
        #: Of the same joins: label delay (s), label time
        self._class_delays: tuple[list[float], list[int]] = ([], [])
        #: (model_id, class) of every multi-class prediction (``model_classes``)
        self.model_classes: set[tuple[str, str]] = set()
        self._class_sets: set[tuple[str, tuple[str, ...]]] = set()

    def group(self, model_id: str, model_version: str, segment_json: str | None) -> int:
        """The id of the series group of events with these fields (created on first use)."""
        key = (model_id, model_version, segment_json)
        group = self._group_ids.get(key)
        if group is None:
            group = self._group_ids[key] = len(self._group_series)
            self._group_series.append(
                [
                    (model_id, model_version, segment)
                    for segment in segments_of(segment_json, self._segment_keys)
                ]
            )
        return group

    def groups(self, keys: Iterable[tuple[str, str, str | None]]) -> list[int]:
        """:meth:`group` of each (model_id, model_version, segment_json), in one pass."""
        known = self._group_ids
        return [known[key] if key in known else self.group(*key) for key in keys]

    def prediction(self, group: int, event_time_ms: int) -> None:
        """A new event: it counts in its buckets' predictions."""
        self._predictions[0].append(group)
        self._predictions[1].append(event_time_ms)

    def score(self, group: int, event_time_ms: int, value: float) -> None:
        self._scores[0].append(group)
        self._scores[1].append(event_time_ms)
        self._scores[2].append(value)

    def probability(self, group: int, event_time_ms: int, value: float) -> None:
        self._probabilities[0].append(group)
        self._probabilities[1].append(event_time_ms)
        self._probabilities[2].append(value)

    def labelled(
        self,
        group: int,
        event_time_ms: int,
        probability: float,
        label: int,
        label_time_ms: int,
        raw_score: float | None,
    ) -> None:
        """The event now has both probability and label: it enters calibration (and
        the raw-score refit's cells, if its raw score is known)."""
        self.labelled_many(
            [group], [event_time_ms], [probability], [label], [label_time_ms], [raw_score]
        )

    def raw_score_of_labelled(
        self, group: int, event_time_ms: int, raw_score: float, probability: float, label: int
    ) -> None:
        """A labelled event's raw score: at its join, or later (a raw score sent in a
        message of its own, after the probability and the label)."""
        groups, times, s, p, y = self._raw_labelled
        groups.append(group)
        times.append(event_time_ms)
        s.append(raw_score)
        p.append(probability)
        y.append(label)

    def predictions_many(self, groups: Sequence[int], event_times_ms: Sequence[int]) -> None:
        """:meth:`prediction` of many events, given as columns."""
        self._predictions[0].extend(groups)
        self._predictions[1].extend(event_times_ms)

    def scores_many(
        self, groups: Sequence[int], event_times_ms: Sequence[int], values: Sequence[float]
    ) -> None:
        for column, added in zip(self._scores, (groups, event_times_ms, values), strict=True):
            column.extend(added)  # type: ignore[attr-defined]

    def probabilities_many(
        self, groups: Sequence[int], event_times_ms: Sequence[int], values: Sequence[float]
    ) -> None:
        for column, added in zip(
            self._probabilities, (groups, event_times_ms, values), strict=True
        ):
            column.extend(added)  # type: ignore[attr-defined]

    def labelled_many(
        self,
        groups: Sequence[int],
        event_times_ms: Sequence[int],
        probabilities: Sequence[float],
        labels: Sequence[int],
        label_times_ms: Sequence[int],
        raw_scores: Sequence[float | None],
    ) -> None:
        """:meth:`labelled` of many events, given as columns."""
        added = (groups, event_times_ms, probabilities, labels, label_times_ms)
        for column, values in zip(self._labelled, added, strict=True):
            column.extend(values)  # type: ignore[attr-defined]
        known: tuple[Sequence[Any], ...] = (
            groups,
            event_times_ms,
            raw_scores,
            probabilities,
            labels,
        )
        if None in raw_scores:  # keep the events whose raw score is known
            kept = [i for i, raw_score in enumerate(raw_scores) if raw_score is not None]
            known = tuple([column[i] for i in kept] for column in known)
        for column, values in zip(self._raw_labelled, known, strict=True):
            column.extend(values)  # type: ignore[attr-defined]

    def class_probabilities(
        self, group: int, model_id: str, event_time_ms: int, probabilities: Mapping[str, float]
    ) -> None:
        """A multi-class event's probability vector (drift, estimates)."""
        self._class_predictions[0].append(group)
        self._class_predictions[1].append(event_time_ms)
        self._class_predictions[2].append(probabilities)
        names = tuple(probabilities)
        if (model_id, names) not in self._class_sets:  # most events repeat a set of classes
            self._class_sets.add((model_id, names))
            self.model_classes.update((model_id, name) for name in names)

    def class_labelled(
        self,
        group: int,
        event_time_ms: int,
        probabilities: Mapping[str, float],
        label: str,
        label_time_ms: int,
    ) -> None:
        """A multi-class event joined its label (a class its vector names)."""
        groups, times, vectors, labels = self._class_labelled
        groups.append(group)
        times.append(event_time_ms)
        vectors.append(probabilities)
        labels.append(label)
        delays, label_times = self._class_delays
        delays.append(max((label_time_ms - event_time_ms) / 1000, 0.0))
        label_times.append(label_time_ms)

    @property
    def last_prediction_ms(self) -> dict[SeriesKey, int]:
        return self._latest(*self._predictions)

    @property
    def last_label_ms(self) -> dict[SeriesKey, int]:
        groups, _, _, _, label_times = self._labelled
        return self._latest(
            [*groups, *self._class_labelled[0]], [*label_times, *self._class_delays[1]]
        )

    def _latest(self, groups: list[int], times: list[int]) -> dict[SeriesKey, int]:
        latest: dict[SeriesKey, int] = {}
        group_array, time_array = np.asarray(groups), np.asarray(times, dtype=np.int64)
        for group in np.unique(group_array):
            newest = int(time_array[group_array == group].max())
            for series in self._group_series[group]:
                latest[series] = max(latest.get(series, newest), newest)
        return latest

    def _buckets(
        self, groups: list[int], times: list[int], *columns: Sequence[Any] | np.ndarray
    ) -> Iterator[tuple[GroupBucket, list[np.ndarray]]]:
        """((group, resolution, bucket start), the columns' entries in that bucket)."""
        group_array = np.asarray(groups)
        time_array = np.asarray(times, dtype=np.int64)
        arrays = [np.asarray(column) for column in columns]
        for group in np.unique(group_array):
            in_group = np.flatnonzero(group_array == group)
            group_times = time_array[in_group]
            for resolution in RESOLUTIONS_S:
                starts = group_times - group_times % (resolution * 1000)
                order = np.argsort(starts, kind="stable")
                boundaries = np.flatnonzero(np.diff(starts[order])) + 1
                for part in np.split(order, boundaries):
                    entries = in_group[part]
                    key = (int(group), resolution, int(starts[part[0]]))
                    yield key, [array[entries] for array in arrays]

    def aggregates(self) -> dict[AggregateKey, BucketAddition]:
        """(predictions, aggregate, multi-class aggregate) added to each bucket of each
        series, by bucket key.

        Each group's events are aggregated once per bucket, then added to every series
        of the group (``__all__`` and one per segment key): with two segment keys, a
        third of the work of aggregating them once per series. The buckets of every
        group and resolution are aggregated together, one pass per histogram
        (``metrics/grouped.py``).
        """
        index = _BucketIndex()
        predictions = index.tag(*self._predictions[:2])
        scores = index.tag(*self._scores[:2])
        with_probability = index.tag(*self._probabilities[:2])
        groups, event_times, p, y, label_times = self._labelled
        labelled = index.tag(groups, event_times)
        raw_labelled = index.tag(*self._raw_labelled[:2])
        keys = index.keys()
        # Seconds from prediction to label, never negative (a label stamped before its
        # prediction by a producer's clock counts as immediate).
        delays = np.maximum(
            (np.asarray(label_times, dtype=np.int64) - np.asarray(event_times, dtype=np.int64))
            / 1000,
            0.0,
        )
        repeat = len(RESOLUTIONS_S)
        built = tagged_aggregates(
            len(keys),
            probabilities=(with_probability(), _tiled(self._probabilities[2], repeat)),
            scores=(scores(), _tiled(self._scores[2], repeat)),
            labelled=(labelled(), _tiled(p, repeat), _tiled(y, repeat)),
            label_delays=(labelled(), np.tile(delays, repeat)),
            raw_labelled=(
                raw_labelled(),
                *(_tiled(column, repeat) for column in self._raw_labelled[2:]),
            ),
        )
        counts = dict(
            zip(keys, np.bincount(predictions(), minlength=len(keys)).tolist(), strict=True)
        )
        aggregates: dict[GroupBucket, EventAggregate] = defaultdict(EventAggregate.empty)
        aggregates.update(zip(keys, built, strict=True))
        class_groups, class_times, _, _ = self._class_labelled
        for key, (delays_in,) in self._buckets(class_groups, class_times, self._class_delays[0]):
            aggregates[key].add_label_delays(delays_in)
        multiclass = self._multiclass_aggregates()
        series_counts: dict[AggregateKey, int] = defaultdict(int)
        series_parts: dict[AggregateKey, list[EventAggregate]] = defaultdict(list)
        series_classes: dict[AggregateKey, list[MulticlassAggregate]] = defaultdict(list)
        for group_bucket in set(counts) | set(aggregates) | set(multiclass):
            group, resolution, bucket = group_bucket
            for series in self._group_series[group]:
                series_bucket: AggregateKey = (*series, resolution, bucket)
                series_counts[series_bucket] += counts.get(group_bucket, 0)
                if group_bucket in aggregates:
                    series_parts[series_bucket].append(aggregates[group_bucket])
                if group_bucket in multiclass:
                    series_classes[series_bucket].append(multiclass[group_bucket])
        return {
            key: (
                series_counts[key],
                EventAggregate.merge_all(series_parts.get(key, [])),
                MulticlassAggregate.merge_all(series_classes[key])
                if key in series_classes
                else None,
            )
            for key in sorted(series_counts)
        }

    def _multiclass_aggregates(self) -> dict[GroupBucket, MulticlassAggregate]:
        """Each group's multi-class events aggregated once per bucket, over the classes
        its events name (a class an event did not name is probability 0 for it)."""
        found: dict[GroupBucket, MulticlassAggregate] = {}
        groups, times, vectors = self._class_predictions
        indices = list(range(len(groups)))
        for key, (in_bucket,) in self._buckets(groups, times, indices):
            rows = [vectors[i] for i in in_bucket]
            classes, matrix = _class_matrix(rows)
            found[key] = MulticlassAggregate.empty(classes)
            found[key].add_predictions(matrix)
        groups, times, vectors, labels = self._class_labelled
        indices = list(range(len(groups)))
        for key, (in_bucket,) in self._buckets(groups, times, indices):
            rows = [vectors[i] for i in in_bucket]
            classes, matrix = _class_matrix(rows)
            index = {name: k for k, name in enumerate(classes)}
            y = np.array([index[labels[i]] for i in in_bucket], dtype=np.int64)
            labelled = MulticlassAggregate.empty(classes)
            labelled.add_labelled(matrix, y)
            found[key] = (
                labelled
                if key not in found
                else MulticlassAggregate.merge_all([found[key], labelled])
            )
        return found


def _class_matrix(vectors: list[Mapping[str, float]]) -> tuple[tuple[str, ...], np.ndarray]:
    """The classes the vectors name (sorted) and their (events, classes) matrix, 0 where
    a vector does not name a class."""
    first = tuple(vectors[0])
    if list(first) == sorted(first) and all(tuple(v) == first for v in vectors):
        # The usual batch: every vector names the same classes, in order (validation
        # sorts them): one array of the values, no per-class Python work.
        return first, np.array([list(v.values()) for v in vectors], dtype=np.float64)
    classes = tuple(sorted(set().union(*vectors)))
    index = {name: k for k, name in enumerate(classes)}
    matrix = np.zeros((len(vectors), len(classes)))
    for row, vector in enumerate(vectors):
        for name, p in vector.items():
            matrix[row, index[name]] = p
    return classes, matrix


#: Bucket starts are whole minutes (every resolution is a multiple of one), and a
#: minute number fits in 27 bits until past the year 2100 (ingest's last timestamp).
_MINUTE_MS = 60_000
_MINUTE_BITS = 27
assert all(resolution % 60 == 0 for resolution in RESOLUTIONS_S)


class _BucketIndex:
    """Numbers the (group, resolution, bucket start) triples of a batch's events, so
    that ``tagged_aggregates`` can aggregate every bucket in one pass.

    ``tag(groups, times)`` registers events and returns a function that, once every
    kind is tagged, gives each event's bucket number at each resolution (the events'
    numbers at the first resolution, then at the second...); ``keys()`` the triples.
    """

    def __init__(self) -> None:
        self._codes: list[np.ndarray] = []
        self._numbers: np.ndarray | None = None

    def tag(self, groups: Sequence[int], times: Sequence[int]) -> Callable[[], np.ndarray]:
        group_array = np.asarray(groups, dtype=np.int64)
        time_array = np.asarray(times, dtype=np.int64)
        codes = []
        for position, resolution in enumerate(RESOLUTIONS_S):
            minutes = (time_array - time_array % (resolution * 1000)) // _MINUTE_MS
            if minutes.size and (minutes.min() < 0 or minutes.max() >= 1 << _MINUTE_BITS):
                raise ValueError("event time outside 1970-2225: not a validated record")
            codes.append(((group_array * len(RESOLUTIONS_S) + position) << _MINUTE_BITS) | minutes)
        start = sum(part.size for part in self._codes)
        self._codes.append(np.concatenate(codes))
        end = start + self._codes[-1].size
        return lambda: self._numbered()[start:end]

    def keys(self) -> list[GroupBucket]:
        codes = self._unique()
        resolutions = len(RESOLUTIONS_S)
        group_resolution = (codes >> _MINUTE_BITS).tolist()
        minutes = (codes & ((1 << _MINUTE_BITS) - 1)).tolist()
        return [
            (g // resolutions, RESOLUTIONS_S[g % resolutions], minute * _MINUTE_MS)
            for g, minute in zip(group_resolution, minutes, strict=True)
        ]

    def _unique(self) -> np.ndarray:
        self._numbered()
        return self._unique_codes

    def _numbered(self) -> np.ndarray:
        if self._numbers is None:
            codes = np.concatenate(self._codes) if self._codes else np.empty(0, np.int64)
            self._unique_codes, numbers = np.unique(codes, return_inverse=True)
            self._numbers = numbers.ravel()
        return self._numbers


def _tiled(column: Sequence[Any], repeat: int) -> np.ndarray:
    """A column's values once per resolution, as ``_BucketIndex.tag`` numbers them."""
    return np.tile(np.asarray(column, dtype=np.float64), repeat)

"""What one batch adds to the aggregates, collected per (series, resolution, bucket)."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import numpy as np

from monitor.metrics.aggregates import EventAggregate
from monitor.store.buckets import RESOLUTIONS_S
from monitor.store.records import EventRow

ALL = "__all__"

#: (model_id, model_version, segment, resolution_s, bucket_start_ms)
AggregateKey = tuple[str, str, str, int, int]
#: (model_id, model_version, segment)
SeriesKey = tuple[str, str, str]


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
        #: group, event time, p, y, delay (s), label time
        self._labelled: tuple[
            list[int], list[int], list[float], list[int], list[float], list[int]
        ] = ([], [], [], [], [], [])

    def _group(self, row: EventRow) -> int:
        assert row.model_version is not None
        key = (row.model_id, row.model_version, row.segment_json)
        group = self._group_ids.get(key)
        if group is None:
            group = self._group_ids[key] = len(self._group_series)
            self._group_series.append(
                [
                    (row.model_id, row.model_version, segment)
                    for segment in segments_of(row.segment_json, self._segment_keys)
                ]
            )
        return group

    def prediction(self, row: EventRow) -> None:
        assert row.event_time_ms is not None
        groups, times = self._predictions
        groups.append(self._group(row))
        times.append(row.event_time_ms)

    def score(self, row: EventRow, value: float) -> None:
        self._append(self._scores, row, value)

    def probability(self, row: EventRow, value: float) -> None:
        self._append(self._probabilities, row, value)

    def _append(
        self, columns: tuple[list[int], list[int], list[float]], row: EventRow, value: float
    ) -> None:
        assert row.event_time_ms is not None
        columns[0].append(self._group(row))
        columns[1].append(row.event_time_ms)
        columns[2].append(value)

    def labelled(self, row: EventRow) -> None:
        """The row now has both probability and label: it enters calibration."""
        assert row.probability is not None and row.label is not None
        assert row.label_time_ms is not None and row.event_time_ms is not None
        groups, times, p, y, delays, label_times = self._labelled
        groups.append(self._group(row))
        times.append(row.event_time_ms)
        p.append(row.probability)
        y.append(row.label)
        delays.append(max((row.label_time_ms - row.event_time_ms) / 1000, 0.0))
        label_times.append(row.label_time_ms)

    @property
    def last_prediction_ms(self) -> dict[SeriesKey, int]:
        return self._latest(*self._predictions)

    @property
    def last_label_ms(self) -> dict[SeriesKey, int]:
        groups, _, _, _, _, label_times = self._labelled
        return self._latest(groups, label_times)

    def _latest(self, groups: list[int], times: list[int]) -> dict[SeriesKey, int]:
        latest: dict[SeriesKey, int] = {}
        group_array, time_array = np.asarray(groups), np.asarray(times, dtype=np.int64)
        for group in np.unique(group_array):
            newest = int(time_array[group_array == group].max())
            for series in self._group_series[group]:
                latest[series] = max(latest.get(series, newest), newest)
        return latest

    def _buckets(
        self, groups: list[int], times: list[int], *columns: list[Any]
    ) -> Iterator[tuple[AggregateKey, list[np.ndarray]]]:
        """(bucket key, the columns' entries in that bucket) for every bucket hit."""
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
                    bucket = int(starts[part[0]])
                    entries = in_group[part]
                    sliced = [array[entries] for array in arrays]
                    for series in self._group_series[group]:
                        yield (*series, resolution, bucket), sliced

    def aggregates(self) -> dict[AggregateKey, tuple[int, EventAggregate]]:
        counts: dict[AggregateKey, int] = defaultdict(int)
        aggregates: dict[AggregateKey, EventAggregate] = defaultdict(EventAggregate.empty)
        for key, (in_bucket,) in self._buckets(*self._predictions, self._predictions[1]):
            counts[key] += len(in_bucket)
        for key, (values,) in self._buckets(*self._scores):
            aggregates[key].add_scores(values)
        for key, (values,) in self._buckets(*self._probabilities):
            aggregates[key].add_probabilities(values)
        groups, event_times, p, y, delays, _ = self._labelled
        for key, (p_in, y_in, delays_in) in self._buckets(groups, event_times, p, y, delays):
            aggregates[key].add_labelled(p_in, y_in)
            aggregates[key].add_label_delays(delays_in)
        return {
            key: (counts.get(key, 0), aggregates.get(key) or EventAggregate.empty())
            for key in sorted(set(counts) | set(aggregates))
        }

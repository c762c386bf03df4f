"""What one batch adds to the aggregates, collected per (series, resolution, bucket)."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field

from monitor.metrics.aggregates import EventAggregate
from monitor.store.buckets import RESOLUTIONS_S, bucket_start
from monitor.store.records import EventRow

ALL = "__all__"

#: (model_id, model_version, segment, resolution_s, bucket_start_ms)
AggregateKey = tuple[str, str, str, int, int]
#: (model_id, model_version, segment)
SeriesKey = tuple[str, str, str]


@dataclass
class _Additions:
    predictions: int = 0
    scores: list[float] = field(default_factory=list)
    probabilities: list[float] = field(default_factory=list)
    labelled_p: list[float] = field(default_factory=list)
    labelled_y: list[int] = field(default_factory=list)
    label_delays_s: list[float] = field(default_factory=list)

    def to_aggregate(self) -> EventAggregate:
        aggregate = EventAggregate.empty()
        if self.scores:
            aggregate.add_scores(self.scores)
        if self.probabilities:
            aggregate.add_probabilities(self.probabilities)
        if self.labelled_p:
            aggregate.add_labelled(self.labelled_p, self.labelled_y)
        if self.label_delays_s:
            aggregate.add_label_delays(self.label_delays_s)
        return aggregate


def segments_of(segment_json: str | None, segment_keys: tuple[str, ...]) -> list[str]:
    """``__all__`` plus ``key=value`` for each configured key the event carries."""
    segments = [ALL]
    if segment_json and segment_keys:
        attributes = json.loads(segment_json)
        segments += [f"{key}={attributes[key]}" for key in segment_keys if key in attributes]
    return segments


class BatchDeltas:
    """Accumulates additions to every aggregate bucket an event belongs to."""

    def __init__(self, segment_keys: tuple[str, ...]) -> None:
        self._segment_keys = segment_keys
        self._additions: dict[AggregateKey, _Additions] = defaultdict(_Additions)
        self.last_prediction_ms: dict[SeriesKey, int] = {}
        self.last_label_ms: dict[SeriesKey, int] = {}
        self._segments: dict[str | None, list[str]] = {}

    def _series(self, row: EventRow) -> list[SeriesKey]:
        assert row.model_version is not None
        segments = self._segments.get(row.segment_json)
        if segments is None:  # most events share a few segment combinations: parse once
            segments = segments_of(row.segment_json, self._segment_keys)
            self._segments[row.segment_json] = segments
        return [(row.model_id, row.model_version, segment) for segment in segments]

    def _targets(self, row: EventRow) -> list[_Additions]:
        assert row.event_time_ms is not None
        time_ms = row.event_time_ms
        return [
            self._additions[(*series, resolution, bucket_start(time_ms, resolution))]
            for series in self._series(row)
            for resolution in RESOLUTIONS_S
        ]

    def prediction(self, row: EventRow) -> None:
        assert row.event_time_ms is not None
        for target in self._targets(row):
            target.predictions += 1
        for series in self._series(row):
            previous = self.last_prediction_ms.get(series, row.event_time_ms)
            self.last_prediction_ms[series] = max(previous, row.event_time_ms)

    def score(self, row: EventRow, value: float) -> None:
        for target in self._targets(row):
            target.scores.append(value)

    def probability(self, row: EventRow, value: float) -> None:
        for target in self._targets(row):
            target.probabilities.append(value)

    def labelled(self, row: EventRow) -> None:
        """The row now has both probability and label: it enters calibration."""
        assert row.probability is not None and row.label is not None
        assert row.label_time_ms is not None and row.event_time_ms is not None
        delay_s = max((row.label_time_ms - row.event_time_ms) / 1000, 0.0)
        for target in self._targets(row):
            target.labelled_p.append(row.probability)
            target.labelled_y.append(row.label)
            target.label_delays_s.append(delay_s)
        for series in self._series(row):
            previous = self.last_label_ms.get(series, row.label_time_ms)
            self.last_label_ms[series] = max(previous, row.label_time_ms)

    def aggregates(self) -> dict[AggregateKey, tuple[int, EventAggregate]]:
        return {
            key: (a.predictions, a.to_aggregate()) for key, a in sorted(self._additions.items())
        }

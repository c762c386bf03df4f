"""A file's valid events reduced to one mergeable aggregate per series and period.

The same sufficient statistics the store keeps per bucket (``EventAggregate``), and the
same series a message's event counts in (``__all__`` plus one per segment key, each
model version and, with ``evaluation.all_versions``, all versions together), so that
the window code evaluates them as it evaluates the daemon's windows.

Events are first grouped by what they share (model, version, segment values, period)
and aggregated once per group, then added to every series of the group, as ingest's
``BatchDeltas`` does. Memory is the aggregates': it does not grow with the rows read.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from monitor.core.series import ALL
from monitor.metrics.aggregates import EventAggregate
from monitor.offline.events import NO_LABEL, NO_TIME, Events

#: (model_id, model_version, segment, period start in epoch ms or None: the whole file)
SeriesPeriod = tuple[str, str, str, int | None]


@dataclass
class SeriesState:
    aggregate: EventAggregate = field(default_factory=EventAggregate.empty)
    predictions: int = 0
    last_prediction_ms: int | None = None
    last_label_ms: int | None = None

    def add(self, other: SeriesState) -> None:
        self.aggregate.merge(other.aggregate)
        self.predictions += other.predictions
        self.last_prediction_ms = _later(self.last_prediction_ms, other.last_prediction_ms)
        self.last_label_ms = _later(self.last_label_ms, other.last_label_ms)


def _later(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else max(a, b)


class Accumulator:
    """Adds pieces of a file; ``every_ms`` splits time into periods aligned on the epoch
    (UTC midnights for a day), None keeps the whole file as one period.

    ``label_horizon_ms``: a label more than this after its prediction is dropped, as the
    store drops it (``store/write/join.py``); only labels with a ``label_timestamp``
    can be judged.
    """

    def __init__(
        self,
        segment_keys: tuple[str, ...],
        *,
        all_versions: bool = True,
        every_ms: int | None = None,
        label_horizon_ms: int | None = None,
    ) -> None:
        self._keys = segment_keys
        self._all_versions = all_versions
        self._every_ms = every_ms
        self._horizon_ms = label_horizon_ms
        self.series: dict[SeriesPeriod, SeriesState] = {}
        self.first_ms: int | None = None
        self.last_ms: int | None = None
        self.events = 0
        self.labelled = 0
        self.labels_over_horizon = 0

    def add(self, events: Events) -> None:
        if not len(events):
            return
        self.events += len(events)
        self.first_ms = min(int(events.time_ms.min()), self.first_ms or 2**62)
        self.last_ms = max(int(events.time_ms.max()), self.last_ms or 0)
        label = events.label
        if self._horizon_ms is not None:
            late = (events.label_time_ms != NO_TIME) & (
                events.label_time_ms - events.time_ms > self._horizon_ms
            )
            self.labels_over_horizon += int(late.sum())
            label = np.where(late, NO_LABEL, label).astype(np.int8)
        for series, state in self._groups(events, label):
            known = self.series.get(series)
            if known is None:
                self.series[series] = state
            else:
                known.add(state)

    def _groups(
        self, events: Events, label: np.ndarray
    ) -> Iterator[tuple[SeriesPeriod, SeriesState]]:
        columns = [_codes(events.model_id), _codes(events.model_version)]
        columns += [_codes(events.segments[key]) for key in self._keys]
        periods = (
            np.zeros(len(events), dtype=np.int64)
            if self._every_ms is None
            else events.time_ms // self._every_ms
        )
        key = np.zeros(len(events), dtype=np.int64)
        radix = 1
        for codes, _ in columns:
            key += (codes + 1) * radix
            radix *= len(_) + 1
        offset = int(periods.min())
        key += (periods - offset) * radix
        if int(key.max()) < 2**16:
            # A few thousand groups at most: numpy sorts 16-bit keys by radix, in one pass.
            key = key.astype(np.uint16)
        order = np.argsort(key, kind="stable")
        boundaries = np.flatnonzero(np.diff(key[order])) + 1
        # Each column in group order once: every group is then a slice, not a gather.
        ordered = _Ordered(events, label, order)
        for start, stop in zip(
            np.concatenate([[0], boundaries]),
            np.concatenate([boundaries, [len(order)]]),
            strict=True,
        ):
            first = order[start]
            model = columns[0][1][columns[0][0][first]]
            version = columns[1][1][columns[1][0][first]]
            segments = [ALL]
            for k, (codes, values) in zip(self._keys, columns[2:], strict=True):
                if codes[first] >= 0:
                    segments.append(f"{k}={values[codes[first]]}")
            period = None if self._every_ms is None else int(periods[first]) * self._every_ms
            state = self._state(ordered, slice(int(start), int(stop)))
            versions = [version, ALL] if self._all_versions else [version]
            for v in versions:
                for segment in segments:
                    copy = SeriesState()
                    copy.add(state)
                    yield (model, v, segment, period), copy

    def _state(self, ordered: _Ordered, members: slice) -> SeriesState:
        aggregate = EventAggregate.empty()
        raw = ordered.raw_score[members]
        raw = raw[~np.isnan(raw)]
        if raw.size:
            aggregate.add_scores(raw)
        p = ordered.probability[members]
        has_p = ~np.isnan(p)
        if has_p.any():
            aggregate.add_probabilities(p[has_p])
        y = ordered.label[members]
        labelled = has_p & (y != NO_LABEL)
        n_labelled = int(labelled.sum())
        self.labelled += n_labelled
        label_times = ordered.label_time_ms[members][labelled]
        timed = label_times != NO_TIME
        if n_labelled:
            aggregate.add_labelled(p[labelled], y[labelled])
            if timed.any():
                times = ordered.time_ms[members][labelled]
                aggregate.add_label_delays(
                    np.maximum((label_times[timed] - times[timed]) / 1000, 0.0)
                )
        return SeriesState(
            aggregate=aggregate,
            predictions=members.stop - members.start,
            last_prediction_ms=int(ordered.time_ms[members].max()),
            last_label_ms=int(label_times[timed].max()) if timed.any() else None,
        )


class _Ordered:
    """The numeric columns of a piece, in group order."""

    def __init__(self, events: Events, label: np.ndarray, order: np.ndarray) -> None:
        self.raw_score = events.raw_score[order]
        self.probability = events.probability[order]
        self.label = label[order]
        self.time_ms = events.time_ms[order]
        self.label_time_ms = events.label_time_ms[order]


def _codes(array: pa.Array) -> tuple[np.ndarray, list[str]]:
    """Integer codes (-1: null) and the values they stand for."""
    encoded = array if pa.types.is_dictionary(array.type) else pc.dictionary_encode(array)
    codes = np.asarray(encoded.indices.fill_null(-1), dtype=np.int64)
    return codes, encoded.dictionary.to_pylist()

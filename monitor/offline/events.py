"""The valid events of a piece of a file, as columns: what the checks hand on."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from monitor.core.records import Label, Prediction
from monitor.offline.class_columns import ClassColumns

#: ``label_time_ms`` of an event whose label has no ``label_timestamp``: no label delay.
NO_TIME = -1
#: ``label`` of an event without one.
NO_LABEL = -1


@dataclass
class Events:
    """Columns of valid events. Absent values: NaN scores, ``NO_LABEL``, ``NO_TIME``,
    a null segment value.

    Events of multi-class models have ``classes`` (their probability vectors; NaN
    scores) and, in ``label``, the index of their label's class in ``classes.names``.
    """

    rows: np.ndarray  # int64 file row numbers
    event_id: pa.Array  # string
    model_id: pa.Array  # string
    model_version: pa.Array  # string
    time_ms: np.ndarray  # int64
    raw_score: np.ndarray  # float64
    probability: np.ndarray  # float64
    label: np.ndarray  # int8; multi-class: int16 class indices
    label_time_ms: np.ndarray  # int64
    segments: Mapping[str, pa.Array] = field(default_factory=dict)  # string, null: absent
    classes: ClassColumns | None = None

    def __len__(self) -> int:
        return int(self.rows.size)

    def take(self, indices: np.ndarray) -> Events:
        """The events at ``indices`` (positions), in that order."""
        at = pa.array(indices, pa.int64())
        return Events(
            rows=self.rows[indices],
            event_id=self.event_id.take(at),
            model_id=self.model_id.take(at),
            model_version=self.model_version.take(at),
            time_ms=self.time_ms[indices],
            raw_score=self.raw_score[indices],
            probability=self.probability[indices],
            label=self.label[indices],
            label_time_ms=self.label_time_ms[indices],
            segments={k: v.take(at) for k, v in self.segments.items()},
            classes=None if self.classes is None else self.classes.take(indices),
        )

    @classmethod
    def concat(cls, parts: list[Events], segment_keys: tuple[str, ...]) -> Events:
        parts = [p for p in parts if len(p)] or parts[:1]
        if not parts:
            return EventsBuilder(segment_keys).build()
        if len(parts) == 1:
            return parts[0]

        def arrow(name: str) -> pa.Array:
            return _concat([getattr(p, name) for p in parts])

        def numpy(name: str) -> np.ndarray:
            return np.concatenate([getattr(p, name) for p in parts])

        return cls(
            rows=numpy("rows"),
            event_id=arrow("event_id"),
            model_id=arrow("model_id"),
            model_version=arrow("model_version"),
            time_ms=numpy("time_ms"),
            raw_score=numpy("raw_score"),
            probability=numpy("probability"),
            label=numpy("label"),
            label_time_ms=numpy("label_time_ms"),
            segments={key: _concat([p.segments[key] for p in parts]) for key in segment_keys},
            classes=(
                None
                if all(p.classes is None for p in parts)
                else ClassColumns.concat([p.classes for p in parts], [len(p) for p in parts])
            ),
        )


def _concat(arrays: list[pa.Array]) -> pa.Array:
    """One array of text columns that may be dictionary arrays or plain strings."""
    if len({a.type for a in arrays}) > 1:
        arrays = [a.cast(pa.string()) for a in arrays]
    return pa.concat_arrays(arrays)


class EventsBuilder:
    """Collects events one validated record at a time (JSON Lines, and the rows the
    column checks sent to the message validator)."""

    def __init__(self, segment_keys: tuple[str, ...]) -> None:
        self._keys = segment_keys
        self._rows: list[int] = []
        self._predictions: list[Prediction] = []
        self._labels: list[int | str] = []
        self._label_times: list[int] = []

    def add(self, row: int, prediction: Prediction, label: Label | None, timed: bool) -> None:
        """``timed``: the label has its own timestamp (``label_timestamp``). A
        multi-class prediction's label is a class its probabilities name (checks.py)."""
        self._rows.append(row)
        self._predictions.append(prediction)
        self._labels.append(NO_LABEL if label is None else label.label)
        self._label_times.append(label.label_time_ms if label is not None and timed else NO_TIME)

    def build(self) -> Events:
        p = self._predictions
        classes = self._classes()
        labels: list[int | str] = self._labels
        if classes is not None:
            index = {name: k for k, name in enumerate(classes.names)}
            labels = [index[v] if isinstance(v, str) else v for v in labels]
        return Events(
            rows=np.asarray(self._rows, dtype=np.int64),
            event_id=pa.array([x.event_id for x in p], pa.string()),
            model_id=pa.array([x.model_id for x in p], pa.string()),
            model_version=pa.array([x.model_version for x in p], pa.string()),
            time_ms=np.asarray([x.event_time_ms for x in p], dtype=np.int64),
            raw_score=np.asarray(
                [np.nan if x.raw_score is None else x.raw_score for x in p], dtype=np.float64
            ),
            probability=np.asarray(
                [np.nan if x.probability is None else x.probability for x in p],
                dtype=np.float64,
            ),
            label=np.asarray(labels, dtype=np.int8 if classes is None else np.int16),
            label_time_ms=np.asarray(self._label_times, dtype=np.int64),
            segments={
                key: pa.array([x.segment.get(key) for x in p], pa.string()) for key in self._keys
            },
            classes=classes,
        )

    def _classes(self) -> ClassColumns | None:
        """The multi-class predictions' vectors (None: no multi-class prediction)."""
        vectors = [x.probabilities for x in self._predictions]
        if all(v is None for v in vectors):
            return None
        names = tuple(sorted(set().union(*(v for v in vectors if v is not None))))
        index = {name: k for k, name in enumerate(names)}
        matrix = np.full((len(vectors), len(names)), np.nan)
        for row, vector in enumerate(vectors):
            for name, value in (vector or {}).items():
                matrix[row, index[name]] = value
        return ClassColumns(names, matrix)

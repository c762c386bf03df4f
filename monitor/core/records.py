"""Validated records: what ingest hands to the store, one per Kafka message.

``Prediction`` and ``Label`` are named tuples: ingest builds one per Kafka message, and
a tuple is built in C, several times faster than a frozen dataclass, while reading the
same as a dataclass everywhere else.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import NamedTuple

NO_SEGMENT: Mapping[str, str] = MappingProxyType({})


def segment_json(segment: Mapping[str, str]) -> str:
    """The canonical text of a segment: keys sorted, no spaces (stored in ``events``)."""
    return json.dumps(dict(segment), sort_keys=True, separators=(",", ":"))


class Prediction(NamedTuple):
    """A prediction message: raw score and/or probability of one event.

    Raw score and probability may arrive in two messages with the same ids; the store
    joins them.
    """

    model_id: str
    event_id: str
    model_version: str
    event_time_ms: int
    raw_score: float | None = None
    probability: float | None = None
    segment: Mapping[str, str] = NO_SEGMENT
    #: A multi-class prediction: class name -> probability, by class name, summing to 1
    #: (``probability`` and ``raw_score`` are then None). None for a binary prediction.
    probabilities: Mapping[str, float] | None = None

    @property
    def segment_json(self) -> str:
        return segment_json(self.segment)

    @property
    def probabilities_json(self) -> str | None:
        """The class probabilities as stored in ``events`` (None for a binary prediction)."""
        return None if self.probabilities is None else probabilities_json(self.probabilities)


def probabilities_json(probabilities: Mapping[str, float]) -> str:
    """The canonical text of class probabilities: keys sorted, no spaces."""
    return json.dumps(dict(probabilities), sort_keys=True, separators=(",", ":"))


class Label(NamedTuple):
    """The observed outcome of one event: 0 or 1 for a binary model, the class name
    (text) for a multi-class one."""

    model_id: str
    event_id: str
    label: int | str
    label_time_ms: int


#: One validated message: a prediction or a label.
Record = Prediction | Label

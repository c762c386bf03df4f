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

    @property
    def segment_json(self) -> str:
        return segment_json(self.segment)


class Label(NamedTuple):
    """The observed outcome of one event."""

    model_id: str
    event_id: str
    label: int
    label_time_ms: int


#: One validated message: a prediction or a label.
Record = Prediction | Label

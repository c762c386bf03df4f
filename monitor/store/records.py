"""Validated records that ingest hands to the store."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Prediction:
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
    segment: Mapping[str, str] = field(default_factory=dict)

    @property
    def segment_json(self) -> str:
        return json.dumps(dict(self.segment), sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class Label:
    """The observed outcome of one event."""

    model_id: str
    event_id: str
    label: int
    label_time_ms: int


@dataclass(slots=True)
class EventRow:
    """One row of the ``events`` table as the write path edits it."""

    model_id: str
    event_id: str
    created_ms: int
    model_version: str | None = None
    event_time_ms: int | None = None
    raw_score: float | None = None
    probability: float | None = None
    segment_json: str | None = None
    label: int | None = None
    label_time_ms: int | None = None

    @property
    def has_prediction(self) -> bool:
        return self.model_version is not None

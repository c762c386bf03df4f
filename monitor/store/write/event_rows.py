"""Rows of the ``events`` table as both write paths insert and edit them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, Table

from monitor.store.db.sql import insert_returning_keys
from monitor.store.db.tables import Event

EVENTS: Table = Event.__table__  # type: ignore[assignment]


def vector_json(probabilities: Mapping[str, float] | None) -> str | None:
    """A multi-class prediction's probabilities as ``events.probabilities_json`` keeps
    them (keys sorted); None for a binary one. orjson: the stdlib's encoder was a third
    of the time of writing a multi-class batch."""
    if probabilities is None:
        return None
    return orjson.dumps(probabilities, option=orjson.OPT_SORT_KEYS).decode()


def vector_of(text: str) -> dict[str, float]:
    """The probabilities of a stored ``probabilities_json``."""
    parsed: dict[str, float] = orjson.loads(text)
    return parsed


EVENT_KEY = ["model_id", "event_id"]
#: Columns of a new event as inserted (label columns stay NULL until a label joins).
NEW_EVENT_COLUMNS = [
    "model_id",
    "event_id",
    "model_version",
    "event_time_ms",
    "raw_score",
    "probability",
    "segment_json",
    "label",
    "label_time_ms",
    "created_ms",
    "probabilities_json",
    "label_class",
]


def insert_event_rows(connection: Connection, rows: list[tuple[Any, ...]]) -> list[Any]:
    """Insert new events (tuples in ``NEW_EVENT_COLUMNS`` order); returns the keys of
    those inserted: not those another writer created first."""
    return insert_returning_keys(connection, EVENTS, NEW_EVENT_COLUMNS, rows, EVENT_KEY)


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
    probabilities_json: str | None = None
    label_class: str | None = None

    @property
    def has_prediction(self) -> bool:
        return self.model_version is not None

    @property
    def stored_label(self) -> int | str | None:
        """The label as a record carries it: 0/1, or a class name."""
        return self.label if self.label_class is None else self.label_class

    def set_label(self, label: int | str | None, label_time_ms: int | None) -> None:
        self.label, self.label_class = (None, label) if isinstance(label, str) else (label, None)
        self.label_time_ms = label_time_ms

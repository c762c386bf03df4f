"""``calmon backfill FILE``: a file's predictions and labels into the store, through the
write path ingest uses (``store/write/event_store.py``): the same idempotent rules, so a
second backfill of the same file changes nothing, and the same aggregates, so the
daemon's windows, references and ``calmon baseline`` see the history.

The file is checked whole before anything is written: a file that cannot be read, or
with more bad rows than allowed, leaves the store as it was.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from monitor.core.records import Label, Prediction, Record
from monitor.offline.events import NO_LABEL, NO_TIME, Events
from monitor.offline.pipeline import ReadSummary, Source, checked_events
from monitor.store.write.event_store import EventStore
from monitor.store.write.result import WriteResult


def check_file(source: Source) -> ReadSummary:
    """Read and check the whole file, writing nothing."""
    summary = ReadSummary()
    for _ in checked_events(source, summary):
        pass
    return summary


def records_of(events: Events, segment_keys: tuple[str, ...]) -> Iterator[Record]:
    """Each event's prediction, then its label when it has one. A label without its own
    ``label_timestamp`` is stamped with the prediction's time (no delay)."""
    ids = events.event_id.to_pylist()
    models = events.model_id.to_pylist()
    versions = events.model_version.to_pylist()
    times = events.time_ms.tolist()
    raw = [None if np.isnan(v) else v for v in events.raw_score.tolist()]
    prob = [None if np.isnan(v) else v for v in events.probability.tolist()]
    labels = events.label.tolist()
    label_times = events.label_time_ms.tolist()
    segments = {key: events.segments[key].to_pylist() for key in segment_keys}
    vectors, class_labels = _class_values(events)
    for i, event_id in enumerate(ids):
        segment = {k: values[i] for k, values in segments.items() if values[i] is not None}
        yield Prediction(
            models[i], event_id, versions[i], times[i], raw[i], prob[i], segment, vectors[i]
        )
        if labels[i] != NO_LABEL:
            stamp = times[i] if label_times[i] == NO_TIME else label_times[i]
            label = labels[i] if vectors[i] is None else class_labels[labels[i]]
            yield Label(models[i], event_id, label, stamp)


def _class_values(events: Events) -> tuple[list[dict[str, float] | None], tuple[str, ...]]:
    """Each event's class probabilities (None: a binary event) as a message carries
    them, by class name, and the class names its label indices stand for."""
    if events.classes is None:
        return [None] * len(events), ()
    names = events.classes.names
    vectors: list[dict[str, float] | None] = []
    for row in events.classes.probabilities.tolist():
        named = {name: p for name, p in zip(names, row, strict=True) if not math.isnan(p)}
        vectors.append(named or None)
    return vectors, names


@dataclass
class Span:
    """The models and the time span of the events a backfill wrote."""

    models: set[str] = field(default_factory=set)
    first_ms: int | None = None
    last_ms: int | None = None

    def add(self, events: Events) -> None:
        if not len(events):
            return
        self.models.update(pc.unique(events.model_id.cast(pa.string())).to_pylist())
        first, last = int(events.time_ms.min()), int(events.time_ms.max())
        self.first_ms = first if self.first_ms is None else min(self.first_ms, first)
        self.last_ms = last if self.last_ms is None else max(self.last_ms, last)


def backfill(
    source: Source,
    store: EventStore,
    *,
    batch_records: int,
    on_progress: Callable[[int], None] = lambda rows: None,
    span: Span | None = None,
) -> tuple[ReadSummary, WriteResult]:
    """Write the file's valid rows in batches of ``batch_records`` records, each batch
    one transaction (as ingest writes a poll); ``on_progress`` gets the rows written,
    ``span`` the events."""
    summary = ReadSummary()
    total = WriteResult()
    for events in checked_events(source, summary):
        if span is not None:
            span.add(events)
        batch: list[Record] = []
        for record in records_of(events, source.segment_keys):
            batch.append(record)
            # A label in the batch after its prediction's joins it, as in ingest.
            if len(batch) >= batch_records:
                total += store.write_batch(batch)
                batch = []
        if batch:
            total += store.write_batch(batch)
        on_progress(len(events))
    return summary, total

"""A file through the checks into accumulators, one piece at a time."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from monitor.offline.accumulate import Accumulator
from monitor.offline.checks import Reject, check_chunk
from monitor.offline.columns import BadFile
from monitor.offline.duplicates import KeyLog, among, merge_repeats
from monitor.offline.events import Events
from monitor.offline.read import ROWS_PER_CHUNK, read_chunks
from monitor.settings import MulticlassSettings

#: Rejects kept in memory to show (all are counted, and written with --rejects).
SHOWN_REJECTS = 20


@dataclass(frozen=True)
class Source:
    """A file to read, with its column renames and segment keys."""

    path: Path
    wanted: Mapping[str, str]  # calmon name -> the file's column
    segment_keys: tuple[str, ...] = ()
    format_: str | None = None
    #: ``ingest.multiclass``: class probabilities are checked by its rules.
    multiclass: MulticlassSettings = field(default_factory=MulticlassSettings)


@dataclass
class ReadSummary:
    rows: int = 0
    valid: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    first_rejects: list[Reject] = field(default_factory=list)
    #: Rows that repeat an event read before (its ``model_id`` and ``event_id``),
    #: merged into it as the store merges them.
    repeats: int = 0

    @property
    def n_rejected(self) -> int:
        return sum(self.rejected.values())

    def count(self, reject: Reject) -> None:
        self.rejected[reject.reason] = self.rejected.get(reject.reason, 0) + 1
        if len(self.first_rejects) < SHOWN_REJECTS:
            self.first_rejects.append(reject)


def checked_events(
    source: Source,
    summary: ReadSummary,
    *,
    on_reject: Callable[[Reject], None] | None = None,
    rows_per_chunk: int = ROWS_PER_CHUNK,
) -> Iterator[Events]:
    """The valid events of each piece of the file; rejects are counted in ``summary``."""
    for chunk in read_chunks(
        source.path, source.wanted, format_=source.format_, rows_per_chunk=rows_per_chunk
    ):
        events, rejects = check_chunk(
            chunk, source.segment_keys, source=str(source.path), multiclass=source.multiclass
        )
        summary.rows += chunk.n_rows
        summary.valid += len(events)
        for reject in rejects:
            summary.count(reject)
            if on_reject is not None:
                on_reject(reject)
        yield events
    if summary.rows == 0:
        raise BadFile(f"{source.path}: no rows")


def accumulate(
    source: Source,
    accumulator: Accumulator,
    *,
    period: tuple[int, int] | None = None,
    period_accumulator: Accumulator | None = None,
    on_reject: Callable[[Reject], None] | None = None,
    rows_per_chunk: int = ROWS_PER_CHUNK,
) -> ReadSummary:
    """Read the whole file into ``accumulator``; events in ``period`` [start, end) also
    go to ``period_accumulator`` (a reference period of the same file). Rows that
    repeat an event are merged as the store merges them (``duplicates.py``)."""
    summary = ReadSummary()

    def pieces(again: bool) -> Iterator[Events]:
        # The second reading counts nothing: its rejects were counted the first time.
        into = ReadSummary() if again else summary
        report = None if again else on_reject
        return checked_events(source, into, on_reject=report, rows_per_chunk=rows_per_chunk)

    targets = Targets(accumulator, period, period_accumulator)
    summary.repeats = add_merging_repeats(pieces, targets)
    return summary


@dataclass
class Targets:
    """Where events go: an accumulator, and those in ``period`` also another."""

    accumulator: Accumulator
    period: tuple[int, int] | None = None
    period_accumulator: Accumulator | None = None

    def add(self, events: Events) -> None:
        self.accumulator.add(events)
        if self.period is not None and self.period_accumulator is not None:
            start, end = self.period
            inside = np.flatnonzero((events.time_ms >= start) & (events.time_ms < end))
            self.period_accumulator.add(events.take(inside))

    def clear(self) -> None:
        self.accumulator.clear()
        if self.period_accumulator is not None:
            self.period_accumulator.clear()


def add_merging_repeats(pieces: Callable[[bool], Iterator[Events]], targets: Targets) -> int:
    """Add the events of ``pieces(False)``; when some rows repeat an event, start again
    from ``pieces(True)`` (the same events) with the repeats merged. Returns the rows
    merged into an earlier one."""
    keys = KeyLog()
    for events in pieces(False):
        keys.add(events)
        targets.add(events)
    repeated = keys.repeated()
    if repeated.size == 0:
        return 0
    targets.clear()
    set_aside = []
    for events in pieces(True):
        candidate = among(events, repeated)
        targets.add(events.take(np.flatnonzero(~candidate)))
        set_aside.append(events.take(np.flatnonzero(candidate)))
    candidates = Events.concat(set_aside, tuple(set_aside[0].segments))
    merged = merge_repeats(candidates, targets.accumulator.label_horizon_ms)
    targets.add(merged)
    return len(candidates) - len(merged)

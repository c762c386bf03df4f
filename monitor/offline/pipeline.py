"""A file through the checks into accumulators, one piece at a time."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from monitor.offline.accumulate import Accumulator
from monitor.offline.checks import Reject, check_chunk
from monitor.offline.columns import BadFile
from monitor.offline.events import Events
from monitor.offline.read import ROWS_PER_CHUNK, read_chunks

#: Rejects kept in memory to show (all are counted, and written with --rejects).
SHOWN_REJECTS = 20


@dataclass(frozen=True)
class Source:
    """A file to read, with its column renames and segment keys."""

    path: Path
    wanted: Mapping[str, str]  # calmon name -> the file's column
    segment_keys: tuple[str, ...] = ()
    format_: str | None = None


@dataclass
class ReadSummary:
    rows: int = 0
    valid: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    first_rejects: list[Reject] = field(default_factory=list)

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
        events, rejects = check_chunk(chunk, source.segment_keys, source=str(source.path))
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
    go to ``period_accumulator`` (a reference period of the same file)."""
    summary = ReadSummary()
    for events in checked_events(
        source, summary, on_reject=on_reject, rows_per_chunk=rows_per_chunk
    ):
        accumulator.add(events)
        if period is not None and period_accumulator is not None:
            inside = np.flatnonzero((events.time_ms >= period[0]) & (events.time_ms < period[1]))
            period_accumulator.add(events.take(inside))
    return summary

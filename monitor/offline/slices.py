"""A file's labelled events by time slice, for the recalibration of ``calmon evaluate
--report``: the daemon fits candidates on the earlier part of a window and scores them
on the later part, split at the minute boundary nearest the middle
(``windows/recalibration.py``); a file's window is known only once it is read, so the
labelled cells are kept per slice of time and the split is made afterwards.

Slices are a minute long, aligned on the epoch, as the store's buckets, while the span
to cover (the whole file's, or one ``--every`` period) fits in :data:`MAX_SLICES` of
them; beyond, their length doubles (merging neighbours) until it fits. The split is
then the slice boundary nearest the middle: to the minute in a file of up to an hour,
within 1/64 of the span in a longer one.

Only what a fit reads is kept (the labelled and raw-score labelled cells), and with
``--every`` only each model's latest period (the one the report shows): memory is at
most ``MAX_SLICES`` slices of each group's cells.

>>> slices = Slices(every_ms=None)
>>> slices.slice_ms, Slices.split_point_ms(0, 3_600_000, 60_000)
(60000, 1800000)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from monitor.metrics.aggregates import EventAggregate
from monitor.metrics.grouped import tagged_aggregates

#: Slices over the span, at most.
MAX_SLICES = 64
#: The shortest slice: the store's smallest bucket.
MINUTE_MS = 60_000
#: Pieces of one slice kept before they are merged into one.
MERGE_EVERY = 4

#: A group of events: (model, ..., period), the accumulator's ``GroupKey``.
Group = tuple[Any, ...]


class Slices:
    """Labelled cells per group (any hashable key whose last item is its period) and
    slice start (epoch ms)."""

    def __init__(self, *, every_ms: int | None) -> None:
        self._every_ms = every_ms
        self.clear()

    def clear(self) -> None:
        self.slice_ms = MINUTE_MS if self._every_ms is None else _width(self._every_ms)
        self._parts: dict[Group, dict[int, list[EventAggregate]]] = {}
        #: Per model, its latest period (``--every``): older periods are not kept.
        self._latest: dict[str, int] = {}

    def add(
        self,
        keys: Sequence[Group],
        index: np.ndarray,
        time_ms: np.ndarray,
        p: np.ndarray,
        y: np.ndarray,
        raw: np.ndarray,
        *,
        span_ms: int,
    ) -> None:
        """Add the labelled events (``p`` known, ``y`` 0 or 1) of groups ``keys[index]``,
        the file's span so far ``span_ms`` (ignored with ``--every``)."""
        if self._every_ms is None:
            self._widen(_width(span_ms))
        keep = self._kept(keys, index)
        if not keep.any():
            return
        index, time_ms, p, y, raw = index[keep], time_ms[keep], p[keep], y[keep], raw[keep]
        start = time_ms // self.slice_ms
        low = int(start.min())
        span = int(start.max()) - low + 1
        combined = index * span + (start - low)
        distinct, at = np.unique(combined, return_inverse=True)
        has_raw = ~np.isnan(raw)
        aggregates = tagged_aggregates(
            distinct.size,
            labelled=(at, p, y),
            raw_labelled=(at[has_raw], raw[has_raw], p[has_raw], y[has_raw]),
        )
        for code, aggregate in zip(distinct.tolist(), aggregates, strict=True):
            group, offset = divmod(code, span)
            slices = self._parts.setdefault(keys[group], {})
            parts = slices.setdefault((low + offset) * self.slice_ms, [])
            parts.append(aggregate)
            if len(parts) >= MERGE_EVERY:
                parts[:] = [EventAggregate.merge_all(parts)]

    def halves(
        self, groups: Iterable[Group], start_ms: int, end_ms: int
    ) -> tuple[int, EventAggregate, EventAggregate]:
        """The split of [start, end) and the labelled cells of ``groups`` before and
        after it."""
        split = self.split_point_ms(start_ms, end_ms, self.slice_ms)
        earlier: list[EventAggregate] = []
        later: list[EventAggregate] = []
        for group in groups:
            for at, parts in self._parts.get(group, {}).items():
                (earlier if at < split else later).extend(parts)
        return split, EventAggregate.merge_all(earlier), EventAggregate.merge_all(later)

    @staticmethod
    def split_point_ms(start_ms: int, end_ms: int, slice_ms: int) -> int:
        """The slice boundary nearest the middle of [start, end), kept so that each
        part has at least one slice (``windows.recalibration.split_point_ms``)."""
        lower = start_ms // slice_ms * slice_ms
        upper = -(-end_ms // slice_ms) * slice_ms
        middle = start_ms + (end_ms - start_ms) // 2
        nearest = (middle + slice_ms // 2) // slice_ms * slice_ms
        return max(lower + slice_ms, min(nearest, upper - slice_ms))

    def _widen(self, width: int) -> None:
        if width <= self.slice_ms:
            return
        self.slice_ms = width
        for group, slices in self._parts.items():
            merged: dict[int, list[EventAggregate]] = {}
            for at, parts in slices.items():
                merged.setdefault(at // width * width, []).extend(parts)
            self._parts[group] = {
                at: [EventAggregate.merge_all(parts)] for at, parts in merged.items()
            }

    def _kept(self, keys: Sequence[Group], index: np.ndarray) -> np.ndarray:
        """With ``--every``, the events of each model's latest period (older periods'
        slices are dropped as a newer one appears)."""
        if self._every_ms is None:
            return np.ones(index.size, dtype=bool)
        for key in keys:
            model, period = key[0], key[-1]
            assert isinstance(period, int)
            if period > self._latest.get(model, period - 1):
                self._latest[model] = period
        for group in [g for g in self._parts if g[-1] < self._latest[g[0]]]:
            del self._parts[group]
        current = np.array([key[-1] == self._latest[key[0]] for key in keys], dtype=bool)
        return current[index]


def _width(span_ms: int) -> int:
    """The shortest slice, a minute doubled, that covers ``span_ms`` in MAX_SLICES."""
    width = MINUTE_MS
    while width * MAX_SLICES < span_ms:
        width *= 2
    return width

"""A sparse histogram over integer cells: sorted unique keys, one row of sums per key.

Windows hold few distinct cells compared with their events, so sums are kept sparse.
Merging adds them into a dense range of cells when the cells are close together (the
usual case: one series' buckets share most of their cells), and sorts the union of keys
when they are spread out; it is associative and commutative up to floating-point
rounding of the sums.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from monitor.metrics.validation import FloatArray


class SparseHistogram:
    __slots__ = ("keys", "values")

    def __init__(self, keys: np.ndarray, values: FloatArray) -> None:
        self.keys = keys
        self.values = values

    @classmethod
    def empty(cls, n_columns: int) -> SparseHistogram:
        return cls(np.empty(0, dtype=np.int64), np.empty((0, n_columns)))

    @classmethod
    def from_cells(cls, cells: np.ndarray, columns: Sequence[FloatArray | None]) -> SparseHistogram:
        """Sum per cell each of ``columns`` (per-event weights; ``None`` counts events)."""
        if cells.size == 0:
            return cls.empty(len(columns))
        n_cells = int(cells.max()) + 1
        if cells.size >= n_cells // 8:
            # Many events per cell: counting beats sorting (O(n) per column).
            counts = np.bincount(cells, minlength=n_cells)
            keys = np.flatnonzero(counts)
            # Filled column by column: no list of columns stacked and copied again.
            values = np.empty((keys.size, len(columns)))
            for i, col in enumerate(columns):
                values[:, i] = (
                    counts[keys] if col is None else np.bincount(cells, col, n_cells)[keys]
                )
            return cls(keys, values)
        order = np.argsort(cells, kind="stable")
        sorted_cells = cells[order]
        starts = np.flatnonzero(np.r_[True, sorted_cells[1:] != sorted_cells[:-1]])
        totals = [
            np.diff(np.r_[starts, cells.size])
            if col is None
            else np.add.reduceat(col[order], starts)
            for col in columns
        ]
        return cls(sorted_cells[starts], np.column_stack(totals).astype(np.float64))

    @classmethod
    def _from_rows(cls, keys: np.ndarray, rows: FloatArray) -> SparseHistogram:
        """Sum rows that share a key (used to merge histograms)."""
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
        return cls(sorted_keys[starts], np.add.reduceat(rows[order], starts, axis=0))

    @property
    def n_columns(self) -> int:
        return int(self.values.shape[1])

    def merged(self, other: SparseHistogram) -> SparseHistogram:
        if other.keys.size == 0:
            return self
        if self.keys.size == 0:
            return other
        return SparseHistogram.merge_many([self, other])

    @classmethod
    def merge_many(cls, histograms: Sequence[SparseHistogram]) -> SparseHistogram:
        non_empty = [h for h in histograms if h.keys.size]
        if not non_empty:
            return cls.empty(histograms[0].n_columns) if histograms else cls.empty(1)
        if len(non_empty) == 1:
            return non_empty[0]
        low = min(int(h.keys[0]) for h in non_empty)  # keys are sorted
        span = max(int(h.keys[-1]) for h in non_empty) - low + 1
        if span > 2 * sum(h.keys.size for h in non_empty):
            # Few cells over a wide range: sort the union (O(n log n), no dense array).
            return cls._from_rows(
                np.concatenate([h.keys for h in non_empty]),
                np.concatenate([h.values for h in non_empty]),
            )
        # The usual case (aggregates of one series share most of their cells): add each
        # histogram into a dense range in O(n), no sort and no concatenated copy. Keys are
        # unique within a histogram, so one fancy-indexed add per histogram is exact.
        sums = np.zeros((span, non_empty[0].n_columns))
        present = np.zeros(span, dtype=bool)
        for histogram in non_empty:
            index = histogram.keys - low
            sums[index] += histogram.values
            present[index] = True
        cells = np.flatnonzero(present)
        return cls(cells + low, sums[cells])

    def copy(self) -> SparseHistogram:
        return SparseHistogram(self.keys.copy(), self.values.copy())

    def plus(self, other: SparseHistogram, sign: float = 1.0) -> SparseHistogram:
        """``self + sign * other``, column 0 being the count of events per cell.

        In place, returning ``self``, when every cell of ``other`` is one of ``self``'s
        (a window's updates usually are); otherwise a new histogram. Subtracting
        (``sign=-1``) drops the cells whose count reaches zero, so the sums of a cell
        whose events have all left are exact zeros, not rounding residue. Counts are
        integers below 2**53: they stay exact whatever the order of additions.
        """
        if other.keys.size == 0:
            return self
        index = np.searchsorted(self.keys, other.keys)
        found = index < self.keys.size
        found[found] = self.keys[index[found]] == other.keys[found]
        if found.all():
            self.values[index] += sign * other.values  # keys are unique: exact fancy add
            result = self
        elif sign < 0:
            raise ValueError("cannot subtract events from cells that hold none")
        else:
            result = SparseHistogram.merge_many([self, other.copy()])
        if sign < 0:
            emptied = result.values[:, 0] == 0
            if emptied.any():
                result = SparseHistogram(result.keys[~emptied], result.values[~emptied])
        return result

    def dense(self, n_cells: int) -> FloatArray:
        out = np.zeros((n_cells, self.n_columns))
        out[self.keys] = self.values
        return out

    def column_total(self, column: int) -> float:
        return float(self.values[:, column].sum())

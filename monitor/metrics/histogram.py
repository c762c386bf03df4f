"""A sparse histogram over integer cells: sorted unique keys, one row of sums per key.

Windows hold few distinct cells compared with their events, so sums are kept sparse and
merged by sorting the union of keys; merging is associative and commutative up to
floating-point rounding of the sums.
"""

from __future__ import annotations

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
    def from_cells(cls, cells: np.ndarray, columns: FloatArray) -> SparseHistogram:
        """Sum the rows of ``columns`` (n events x k columns) that share a cell."""
        if cells.size == 0:
            return cls.empty(columns.shape[1])
        order = np.argsort(cells, kind="stable")
        sorted_cells = cells[order]
        starts = np.flatnonzero(np.r_[True, sorted_cells[1:] != sorted_cells[:-1]])
        return cls(sorted_cells[starts], np.add.reduceat(columns[order], starts, axis=0))

    @property
    def n_columns(self) -> int:
        return int(self.values.shape[1])

    def merged(self, other: SparseHistogram) -> SparseHistogram:
        if other.keys.size == 0:
            return self
        if self.keys.size == 0:
            return other
        return SparseHistogram.from_cells(
            np.concatenate([self.keys, other.keys]), np.concatenate([self.values, other.values])
        )

    def dense(self, n_cells: int) -> FloatArray:
        out = np.zeros((n_cells, self.n_columns))
        out[self.keys] = self.values
        return out

    def column_total(self, column: int) -> float:
        return float(self.values[:, column].sum())

"""Mergeable statistics of a multi-class model's events in one time bucket.

A multi-class prediction is a vector of K class probabilities. The aggregate names its
classes (sorted), and class k of its arrays is ``classes[k]``. Aggregates of different
class sets merge by name: an event whose vector did not name a class had probability 0
for it (and, since a label joins only a class its vector names, y = 0), which the merge
adds exactly (:meth:`MulticlassAggregate.aligned`). The aggregate keeps:

- ``top``: an :class:`EventAggregate` of the top-label view, confidence = the largest
  probability, "label" = whether the predicted class was right. Everything calmon
  computes for a binary model then applies to the confidence: top-label ECE and its
  reliability bins, drift of the confidence, accuracy (its observed ratio), the AUC of
  confidence against correctness.
- per class, one-vs-rest: the counts of all events' p_c (for drift of each class's
  probability) and of the labelled events (count, sum p_c, sum y_c, sum (p_c - y_c)^2)
  on the *class grid*, for classwise ECE, per-class reliability bins, Brier score and AUC;
- scalar sums over events: the multi-class Brier score sum_c (p_c - y_c)^2, the log loss
  -log p_label, and, for every event, labelled or not, the confidence, 1 - sum_c p_c^2
  and the entropy (the label-free estimates of accuracy, Brier score and log loss).

The class grid is the fine probability grid of ``grids`` with its uniform part merged
8 to 1 (1,280 cells of width 1/1280, plus the same logit tails): equal-width bins for
n_bins = 5, 10, 20, 40, 80 are still unions of cells, so classwise ECE and the per-class
bins are exact, while one class costs at most ``CLASS_CELLS`` rows however many events
it has. Size per bucket, at most: top ~ 2 x 10,350 rows, plus K x 1,390 rows of the
class histograms (``docs/benchmarks.md`` has the measured sizes at 2, 10 and 100 classes).

>>> import numpy as np
>>> a = MulticlassAggregate.empty(["bird", "cat", "dog"])
>>> a.add_labelled(np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]]), np.array([0, 1]))
>>> MulticlassAggregate.from_bytes(a.to_bytes()).top.n_labelled
2
>>> b = MulticlassAggregate.empty(["cat", "dog", "fox"])
>>> MulticlassAggregate.merge_all([a, b]).classes
('bird', 'cat', 'dog', 'fox')
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

from monitor.metrics import grids
from monitor.metrics.aggregates import EventAggregate
from monitor.metrics.clipping import LOG_LOSS_EPS
from monitor.metrics.errors import MetricInputError
from monitor.metrics.histogram import SparseHistogram
from monitor.metrics.validation import FloatArray

#: Fine cells merged into one class-grid cell in the uniform part of the grid.
CLASS_GRID_FACTOR = 8
_UNIFORM = grids.GRID_CELLS // CLASS_GRID_FACTOR
CLASS_CELLS = 2 * grids.TAIL_CELLS + _UNIFORM
#: Columns of the per-class labelled histogram.
CLASS_COLUMNS = ("count", "sum_p", "sum_y", "sum_squared_error")
CLASS_COLUMN = {name: i for i, name in enumerate(CLASS_COLUMNS)}
#: Scalar sums, in this order.
SUMS = (
    "brier",  # labelled: sum over events of sum_c (p_c - y_c)^2
    "log_loss",  # labelled: sum of -log p_label (clipped like the binary log loss)
    "confidence",  # all events: sum of max_c p_c
    "expected_brier",  # all events: sum of 1 - sum_c p_c^2
    "entropy",  # all events: sum of -sum_c p_c log p_c
)
_MAGIC = b"CMC2"


def class_cells(fine_cells: np.ndarray) -> np.ndarray:
    """Class-grid cell of each fine probability cell (order preserved)."""
    tail, uniform = grids.TAIL_CELLS, grids.GRID_CELLS
    return np.where(
        fine_cells < tail,
        fine_cells,
        np.where(
            fine_cells < tail + uniform,
            tail + (fine_cells - tail) // CLASS_GRID_FACTOR,
            fine_cells - uniform + _UNIFORM,
        ),
    )


def _first_fine_cells() -> np.ndarray:
    cells = np.arange(CLASS_CELLS)
    tail = grids.TAIL_CELLS
    return np.where(
        cells < tail,
        cells,
        np.where(
            cells < tail + _UNIFORM,
            tail + (cells - tail) * CLASS_GRID_FACTOR,
            cells - _UNIFORM + grids.GRID_CELLS,
        ),
    )


#: The first fine cell of each class-grid cell, and the class cells' probability bounds.
FIRST_FINE_CELL = _first_fine_cells()
_LAST_FINE_CELL = np.r_[FIRST_FINE_CELL[1:] - 1, grids.PROBABILITY_CELLS - 1]
CLASS_CELL_LOWER = grids.PROBABILITY_CELL_LOWER[FIRST_FINE_CELL]
CLASS_CELL_UPPER = grids.PROBABILITY_CELL_UPPER[_LAST_FINE_CELL]


def probability_matrix(p: ArrayLike, n_classes: int) -> FloatArray:
    """``p`` as an (events, classes) float array of probabilities; raises on bad input.

    Ingest validates each message (sum to 1 within its tolerance); this only guards the
    sums against what would corrupt them.
    """
    matrix = np.asarray(p, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[1] != n_classes:
        raise MetricInputError(f"expected an (events, {n_classes}) array, got {matrix.shape}")
    if not np.isfinite(matrix).all() or (matrix < 0).any() or (matrix > 1).any():
        raise MetricInputError("class probabilities must be finite and in [0, 1]")
    return matrix


def class_names(n_classes: int) -> tuple[str, ...]:
    """Names "0".."K-1", zero-padded so that their sorted order is their numeric one."""
    width = len(str(n_classes - 1))
    return tuple(f"{k:0{width}d}" for k in range(n_classes))


#: The class-grid cell of probability 0: where a class an event did not name counts.
ZERO_CELL = int(class_cells(grids.probability_cells(np.zeros(1)))[0])


@dataclass
class MulticlassAggregate:
    #: Class names, sorted and distinct; class k of the arrays below is ``classes[k]``.
    classes: tuple[str, ...]
    top: EventAggregate
    #: All events: count per (class, class cell), key = class * CLASS_CELLS + cell.
    class_probabilities: SparseHistogram
    #: Labelled events: CLASS_COLUMNS per (class, class cell).
    class_labelled: SparseHistogram
    sums: FloatArray = field(default_factory=lambda: np.zeros(len(SUMS)))

    @classmethod
    def empty(cls, classes: Sequence[str] | int) -> MulticlassAggregate:
        """No events, of these classes (names; an int K names them "0".."K-1")."""
        names = class_names(classes) if isinstance(classes, int) else tuple(classes)
        if len(names) < 2:
            raise MetricInputError(f"a multi-class model has 2 or more classes, got {len(names)}")
        if list(names) != sorted(set(names)):
            raise MetricInputError("class names must be distinct and sorted")
        return cls(
            names,
            EventAggregate.empty(),
            SparseHistogram.empty(1),
            SparseHistogram.empty(len(CLASS_COLUMNS)),
        )

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def n_labelled(self) -> int:
        return self.top.n_labelled

    @property
    def n_predictions(self) -> int:
        return self.top.n_probabilities

    def sum_of(self, name: str) -> float:
        return float(self.sums[SUMS.index(name)])

    def _keys(self, matrix: FloatArray) -> np.ndarray:
        cells = class_cells(grids.probability_cells(matrix.ravel()))
        classes = np.tile(np.arange(self.n_classes), matrix.shape[0])
        return classes * CLASS_CELLS + cells

    def add_predictions(self, p: ArrayLike) -> None:
        """Add events' probability vectors (labelled or not): drift and estimates."""
        matrix = probability_matrix(p, self.n_classes)
        if matrix.shape[0] == 0:
            return
        confidence = matrix.max(axis=1)
        self.top.add_probabilities(confidence)
        self.class_probabilities = self.class_probabilities.merged(
            SparseHistogram.from_cells(self._keys(matrix), [None])
        )
        clipped = np.clip(matrix, LOG_LOSS_EPS, 1.0)
        self._add_sums(
            confidence=confidence.sum(),
            expected_brier=(1.0 - (matrix * matrix).sum(axis=1)).sum(),
            entropy=-(matrix * np.log(clipped)).sum(),
        )

    def add_labelled(self, p: ArrayLike, labels: ArrayLike) -> None:
        """Add events that have a label (class index 0..K-1): the calibration input."""
        matrix = probability_matrix(p, self.n_classes)
        y = np.asarray(labels)
        if y.shape != (matrix.shape[0],) or not np.issubdtype(y.dtype, np.integer):
            raise MetricInputError("labels must be one class index per event")
        if ((y < 0) | (y >= self.n_classes)).any():
            raise MetricInputError(f"labels must be class indices in [0, {self.n_classes})")
        if y.size == 0:
            return
        predicted = matrix.argmax(axis=1)
        confidence = matrix[np.arange(y.size), predicted]
        self.top.add_labelled(confidence, (predicted == y).astype(np.float64))
        onehot = np.zeros_like(matrix)
        onehot[np.arange(y.size), y] = 1.0
        flat_p, flat_y = matrix.ravel(), onehot.ravel()
        squared = (flat_p - flat_y) ** 2
        self.class_labelled = self.class_labelled.merged(
            SparseHistogram.from_cells(self._keys(matrix), [None, flat_p, flat_y, squared])
        )
        p_label = np.clip(matrix[np.arange(y.size), y], LOG_LOSS_EPS, 1.0)
        self._add_sums(brier=squared.sum(), log_loss=-np.log(p_label).sum())

    def _add_sums(self, **values: float) -> None:
        for name, value in values.items():
            self.sums[SUMS.index(name)] += value

    # -- merging ------------------------------------------------------------------------
    def aligned(self, classes: tuple[str, ...]) -> MulticlassAggregate:
        """The same events over ``classes`` (sorted, a superset of this one's): each
        class this aggregate lacks gets its events at probability 0, label 0."""
        if classes == self.classes:
            return self
        if not set(self.classes) <= set(classes) or list(classes) != sorted(set(classes)):
            raise MetricInputError("aligned classes must be sorted and include the aggregate's")
        position = np.searchsorted(np.array(classes), np.array(self.classes))
        missing = np.setdiff1d(np.arange(len(classes)), position)
        probabilities = self._remapped(self.class_probabilities, position)
        labelled = self._remapped(self.class_labelled, position)
        zero_keys = missing * CLASS_CELLS + ZERO_CELL
        if self.n_predictions:
            counts = np.full((missing.size, 1), float(self.n_predictions))
            probabilities = probabilities.merged(SparseHistogram(zero_keys, counts))
        if self.n_labelled:
            rows = np.zeros((missing.size, len(CLASS_COLUMNS)))
            rows[:, CLASS_COLUMN["count"]] = self.n_labelled
            labelled = labelled.merged(SparseHistogram(zero_keys, rows))
        return MulticlassAggregate(classes, self.top, probabilities, labelled, self.sums)

    @staticmethod
    def _remapped(histogram: SparseHistogram, position: np.ndarray) -> SparseHistogram:
        # ``position`` increases, so the remapped keys stay sorted.
        k, cell = np.divmod(histogram.keys, CLASS_CELLS)
        return SparseHistogram(position[k] * CLASS_CELLS + cell, histogram.values)

    def merge(self, other: MulticlassAggregate) -> None:
        merged = MulticlassAggregate.merge_all([self, other])
        self.classes, self.top = merged.classes, merged.top
        self.class_probabilities, self.class_labelled = (
            merged.class_probabilities,
            merged.class_labelled,
        )
        self.sums = merged.sums

    @classmethod
    def merge_all(cls, aggregates: Sequence[MulticlassAggregate]) -> MulticlassAggregate:
        if not aggregates:
            raise MetricInputError("nothing to merge")
        classes = tuple(sorted(set().union(*(a.classes for a in aggregates))))
        parts = [a.aligned(classes) for a in aggregates]
        # Each histogram merged once (cheaper than pairwise), as EventAggregate.merge_all.
        return cls(
            classes,
            EventAggregate.merge_all([a.top for a in parts]),
            SparseHistogram.merge_many([a.class_probabilities for a in parts]),
            SparseHistogram.merge_many([a.class_labelled for a in parts]),
            np.sum([a.sums for a in parts], axis=0),
        )

    # -- one class ----------------------------------------------------------------------
    def class_slice(self, histogram: SparseHistogram, k: int) -> SparseHistogram:
        """Class ``k``'s rows of a class histogram, keyed by class cell."""
        start, stop = np.searchsorted(histogram.keys, [k * CLASS_CELLS, (k + 1) * CLASS_CELLS])
        return SparseHistogram(
            histogram.keys[start:stop] - k * CLASS_CELLS, histogram.values[start:stop]
        )

    def class_index(self, name: str) -> int:
        return self.classes.index(name)

    def class_probability_histogram(self, k: int) -> SparseHistogram:
        """All events' p_k on the fine grid (each at its class cell's first fine cell),
        the form drift references are fitted on and compared with."""
        counts = self.class_slice(self.class_probabilities, k)
        return SparseHistogram(FIRST_FINE_CELL[counts.keys], counts.values)

    # -- persistence --------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        top = self.top.to_bytes(compress=False)
        names = json.dumps(self.classes, ensure_ascii=False).encode()
        parts = [
            struct.pack("<II", len(names), len(top)),
            names,
            top,
            self.sums.astype("<f8").tobytes(),
        ]
        for histogram in (self.class_probabilities, self.class_labelled):
            parts.append(struct.pack("<II", histogram.keys.size, histogram.n_columns))
            parts.append(histogram.keys.astype("<i4").tobytes())
            parts.append(histogram.values.astype("<f8").tobytes())
        return _MAGIC + zlib.compress(b"".join(parts), level=1)

    @classmethod
    def from_bytes(cls, blob: bytes) -> MulticlassAggregate:
        if blob[:4] != _MAGIC:
            raise ValueError("not a calmon multi-class aggregate (bad magic)")
        raw = zlib.decompress(blob[4:])
        names_size, top_size = struct.unpack_from("<II", raw, 0)
        offset = 8
        classes = tuple(json.loads(raw[offset : offset + names_size].decode()))
        offset += names_size
        top = EventAggregate.from_bytes(raw[offset : offset + top_size])
        offset += top_size
        sums = np.frombuffer(raw, dtype="<f8", count=len(SUMS), offset=offset).copy()
        offset += 8 * len(SUMS)
        histograms = []
        for _ in range(2):
            size, n_columns = struct.unpack_from("<II", raw, offset)
            offset += 8
            keys = np.frombuffer(raw, dtype="<i4", count=size, offset=offset).astype(np.int64)
            offset += 4 * size
            values = np.frombuffer(raw, dtype="<f8", count=size * n_columns, offset=offset)
            offset += 8 * size * n_columns
            histograms.append(SparseHistogram(keys, values.reshape(size, n_columns).copy()))
        return cls(classes, top, histograms[0], histograms[1], sums)

"""Mergeable per-bucket statistics of one series: what the store keeps instead of events.

A window's metrics are computed from the merge of its buckets' aggregates, so the cost
of a window does not grow with its event count (see ``summary.py`` for the metrics and
which of them are exact).

>>> import numpy as np
>>> a, b = EventAggregate.empty(), EventAggregate.empty()
>>> a.add_labelled(np.array([0.2, 0.7]), np.array([0, 1]))
>>> b.add_labelled(np.array([0.9]), np.array([1]))
>>> a.merge(b)
>>> a.n_labelled
3
>>> EventAggregate.from_bytes(a.to_bytes()).n_labelled
3
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from monitor.metrics import grids
from monitor.metrics.calibration import log_loss_and_logit
from monitor.metrics.histogram import SparseHistogram
from monitor.metrics.tests_of_fit import spiegelhalter_terms
from monitor.metrics.validation import (
    finite_values,
    probabilities,
    probabilities_and_labels,
)

#: Columns of the labelled histogram, per probability cell.
LABELLED_COLUMNS = (
    "count",
    "sum_p",
    "sum_y",
    "sum_p2",
    "sum_py",
    "sum_squared_error",
    "sum_log_loss",
    "sum_logit",
)
COLUMN = {name: i for i, name in enumerate(LABELLED_COLUMNS)}

_MAGIC_COMPRESSED = b"CAG1"
_MAGIC_RAW = b"CAG2"
#: Larger serialized aggregates are stored uncompressed. The hour and day buckets of a
#: busy series reach hundreds of kilobytes and are rewritten by every compaction run
#: that merges deltas into them: zlib took almost all of the time to serialise one, and
#: saved only about a third of its size (float sums barely compress). Small buckets,
#: the numerous ones, still compress well.
COMPRESS_BELOW_BYTES = 64 * 1024


@dataclass
class EventAggregate:
    """Sufficient statistics of the events of one series in one time bucket."""

    probabilities: SparseHistogram  # all events with a probability, by probability cell
    labelled: SparseHistogram  # labelled events, LABELLED_COLUMNS by probability cell
    scores: SparseHistogram  # all events with a raw score, by value cell
    label_delays: SparseHistogram  # seconds from prediction to label, by value cell
    spiegelhalter_numerator: float = 0.0
    spiegelhalter_variance: float = 0.0

    @classmethod
    def empty(cls) -> EventAggregate:
        return cls(
            probabilities=SparseHistogram.empty(1),
            labelled=SparseHistogram.empty(len(LABELLED_COLUMNS)),
            scores=SparseHistogram.empty(1),
            label_delays=SparseHistogram.empty(1),
        )

    # -- counts ---------------------------------------------------------------------
    @property
    def n_probabilities(self) -> int:
        return round(self.probabilities.column_total(0))

    @property
    def n_labelled(self) -> int:
        return round(self.labelled.column_total(0))

    @property
    def n_scores(self) -> int:
        return round(self.scores.column_total(0))

    @property
    def n_label_delays(self) -> int:
        return round(self.label_delays.column_total(0))

    # -- adding events --------------------------------------------------------------
    def add_probabilities(self, p: ArrayLike) -> None:
        values = probabilities(p)
        self.probabilities = self.probabilities.merged(
            SparseHistogram.from_cells(grids.probability_cells(values), [None])
        )

    def add_scores(self, raw_scores: ArrayLike) -> None:
        values = finite_values(raw_scores, "raw_scores")
        self.scores = self.scores.merged(
            SparseHistogram.from_cells(grids.value_cells(values), [None])
        )

    def add_label_delays(self, seconds: ArrayLike) -> None:
        values = finite_values(seconds, "label_delays")
        self.label_delays = self.label_delays.merged(
            SparseHistogram.from_cells(grids.value_cells(values), [None])
        )

    def add_labelled(self, p: ArrayLike, y: ArrayLike) -> None:
        """Add events that have both a probability and a label (the calibration input)."""
        probs, labels = probabilities_and_labels(p, y)
        log_loss, logit = log_loss_and_logit(probs, labels)
        # Order: LABELLED_COLUMNS. sum_squared_error is kept, not derived from sum_p2,
        # sum_py and sum_y, to spare the Brier score the cancellation error.
        columns = [
            None,
            probs,
            labels,
            probs * probs,
            probs * labels,
            (probs - labels) ** 2,
            log_loss,
            logit,
        ]
        self.labelled = self.labelled.merged(
            SparseHistogram.from_cells(grids.probability_cells(probs), columns)
        )
        numerator, variance = spiegelhalter_terms(probs, labels)
        self.spiegelhalter_numerator += numerator
        self.spiegelhalter_variance += variance

    # -- merging ----------------------------------------------------------------------
    def merge(self, other: EventAggregate) -> None:
        """Add ``other``'s events to this aggregate, in place."""
        self.probabilities = self.probabilities.merged(other.probabilities)
        self.labelled = self.labelled.merged(other.labelled)
        self.scores = self.scores.merged(other.scores)
        self.label_delays = self.label_delays.merged(other.label_delays)
        self.spiegelhalter_numerator += other.spiegelhalter_numerator
        self.spiegelhalter_variance += other.spiegelhalter_variance

    @classmethod
    def merge_all(cls, aggregates: list[EventAggregate]) -> EventAggregate:
        """One aggregate of many, merging each histogram once (cheaper than pairwise)."""
        result = cls.empty()
        if not aggregates:
            return result
        for name in ("probabilities", "labelled", "scores", "label_delays"):
            merged = SparseHistogram.merge_many([getattr(a, name) for a in aggregates])
            setattr(result, name, merged)
        result.spiegelhalter_numerator = sum(a.spiegelhalter_numerator for a in aggregates)
        result.spiegelhalter_variance = sum(a.spiegelhalter_variance for a in aggregates)
        return result

    # -- persistence ----------------------------------------------------------------
    def to_bytes(self, *, compress: bool = True) -> bytes:
        """Binary form for the store: a magic that says how it is stored, then the sums
        (zlib-compressed below :data:`COMPRESS_BELOW_BYTES`, unless ``compress`` is
        False: for data that is read back soon, such as ingest's deltas)."""
        parts = [struct.pack("<dd", self.spiegelhalter_numerator, self.spiegelhalter_variance)]
        for histogram in self._histograms():
            parts.append(struct.pack("<II", histogram.keys.size, histogram.n_columns))
            parts.append(histogram.keys.astype("<i4").tobytes())
            parts.append(histogram.values.astype("<f8").tobytes())
        raw = b"".join(parts)
        if not compress or len(raw) >= COMPRESS_BELOW_BYTES:
            return _MAGIC_RAW + raw
        return _MAGIC_COMPRESSED + zlib.compress(raw, level=1)

    @classmethod
    def from_bytes(cls, blob: bytes) -> EventAggregate:
        magic = blob[:4]
        raw: bytes | memoryview
        if magic == _MAGIC_COMPRESSED:
            raw = zlib.decompress(blob[4:])
        elif magic == _MAGIC_RAW:
            raw = memoryview(blob)[4:]
        else:
            raise ValueError(
                "not a calmon aggregate (bad magic); was it written by a newer version?"
            )
        numerator, variance = struct.unpack_from("<dd", raw, 0)
        offset = 16
        histograms = []
        for _ in range(4):
            size, n_columns = struct.unpack_from("<II", raw, offset)
            offset += 8
            keys = np.frombuffer(raw, dtype="<i4", count=size, offset=offset).astype(np.int64)
            offset += 4 * size
            values = np.frombuffer(raw, dtype="<f8", count=size * n_columns, offset=offset)
            offset += 8 * size * n_columns
            histograms.append(SparseHistogram(keys, values.reshape(size, n_columns).copy()))
        probabilities_, labelled, scores, label_delays = histograms
        return cls(probabilities_, labelled, scores, label_delays, numerator, variance)

    def _histograms(self) -> tuple[SparseHistogram, ...]:
        return (self.probabilities, self.labelled, self.scores, self.label_delays)

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
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

from monitor.metrics import grids
from monitor.metrics.calibration import log_loss_and_logit
from monitor.metrics.histogram import SparseHistogram
from monitor.metrics.tests_of_fit import spiegelhalter_terms
from monitor.metrics.validation import (
    FloatArray,
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
#: Columns of the raw-score histogram of labelled events, per score cell
#: (``grids.score_cells``): what a calibrator refitted from the raw score needs, and the
#: served p to compare it with the corrections of p on the same events.
RAW_LABELLED_COLUMNS = ("count", "sum_y", "sum_score", "sum_p")
RAW_COLUMN = {name: i for i, name in enumerate(RAW_LABELLED_COLUMNS)}

#: Serialised forms, by magic: (zlib-compressed, histograms stored). Format 1 (CAG1,
#: CAG2) has the first four histograms; format 3 (CAG3, CAG4) says how many follow, so
#: a later format may append one and still read these. Every form stays readable: a
#: store upgrades bucket by bucket as compaction rewrites them.
_FORMATS = {b"CAG1": (True, 4), b"CAG2": (False, 4), b"CAG3": (True, None), b"CAG4": (False, None)}
_MAGIC_COMPRESSED = b"CAG3"
_MAGIC_RAW = b"CAG4"
#: Larger serialized aggregates are stored uncompressed. The hour and day buckets of a
#: busy series reach hundreds of kilobytes and are rewritten by every compaction run
#: that merges deltas into them: zlib took almost all of the time to serialise one, and
#: saved only about a third of its size (float sums barely compress). Small buckets,
#: the numerous ones, still compress well.
COMPRESS_BELOW_BYTES = 64 * 1024


def labelled_columns(probs: FloatArray, labels: FloatArray) -> list[FloatArray | None]:
    """The per-event terms of :data:`LABELLED_COLUMNS` (None: count the events)."""
    log_loss, logit = log_loss_and_logit(probs, labels)
    # sum_squared_error is kept, not derived from sum_p2, sum_py and sum_y, to spare
    # the Brier score the cancellation error.
    return [
        None,
        probs,
        labels,
        probs * probs,
        probs * labels,
        (probs - labels) ** 2,
        log_loss,
        logit,
    ]


def raw_labelled_columns(
    raw_scores: FloatArray, probs: FloatArray, labels: FloatArray
) -> list[FloatArray | None]:
    """Per labelled event with a raw score, what it adds to ``RAW_LABELLED_COLUMNS``."""
    return [None, labels, raw_scores, probs]


@dataclass
class EventAggregate:
    """Sufficient statistics of the events of one series in one time bucket."""

    probabilities: SparseHistogram  # all events with a probability, by probability cell
    labelled: SparseHistogram  # labelled events, LABELLED_COLUMNS by probability cell
    scores: SparseHistogram  # all events with a raw score, by value cell
    label_delays: SparseHistogram  # seconds from prediction to label, by value cell
    #: labelled events with a raw score, RAW_LABELLED_COLUMNS by score cell (empty in
    #: buckets written before format 3)
    raw_labelled: SparseHistogram = field(
        default_factory=lambda: SparseHistogram.empty(len(RAW_LABELLED_COLUMNS))
    )
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

    @property
    def n_raw_labelled(self) -> int:
        return round(self.raw_labelled.column_total(0))

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
        self.labelled = self.labelled.merged(
            SparseHistogram.from_cells(
                grids.probability_cells(probs), labelled_columns(probs, labels)
            )
        )
        numerator, variance = spiegelhalter_terms(probs, labels)
        self.spiegelhalter_numerator += numerator
        self.spiegelhalter_variance += variance

    def add_raw_labelled(self, raw_scores: ArrayLike, p: ArrayLike, y: ArrayLike) -> None:
        """Add the raw scores of labelled events (already added with ``add_labelled``,
        whenever their raw score is known): the input of a raw-score refit."""
        probs, labels = probabilities_and_labels(p, y)
        values = finite_values(raw_scores, "raw_scores")
        if values.shape != probs.shape:
            raise ValueError("raw_scores, p and y must have the same length")
        self.raw_labelled = self.raw_labelled.merged(
            SparseHistogram.from_cells(
                grids.score_cells(values), raw_labelled_columns(values, probs, labels)
            )
        )

    # -- merging ----------------------------------------------------------------------
    def merge(self, other: EventAggregate) -> None:
        """Add ``other``'s events to this aggregate, in place."""
        self.probabilities = self.probabilities.merged(other.probabilities)
        self.labelled = self.labelled.merged(other.labelled)
        self.scores = self.scores.merged(other.scores)
        self.label_delays = self.label_delays.merged(other.label_delays)
        self.raw_labelled = self.raw_labelled.merged(other.raw_labelled)
        self.spiegelhalter_numerator += other.spiegelhalter_numerator
        self.spiegelhalter_variance += other.spiegelhalter_variance

    def add(self, other: EventAggregate, sign: float = 1.0) -> None:
        """Add (``sign=1``) or take out (``sign=-1``) ``other``'s events, in place where
        the cells allow (:meth:`SparseHistogram.plus`). Taking out events that were
        added before leaves the counts exact and a cell whose events all left empty;
        the other sums carry the rounding of each addition and subtraction."""
        for name in HISTOGRAMS:
            setattr(self, name, getattr(self, name).plus(getattr(other, name), sign))
        if self.labelled.keys.size == 0:
            self.spiegelhalter_numerator = self.spiegelhalter_variance = 0.0
        else:
            self.spiegelhalter_numerator += sign * other.spiegelhalter_numerator
            self.spiegelhalter_variance += sign * other.spiegelhalter_variance

    def copy(self) -> EventAggregate:
        return EventAggregate(
            **{name: getattr(self, name).copy() for name in HISTOGRAMS},
            spiegelhalter_numerator=self.spiegelhalter_numerator,
            spiegelhalter_variance=self.spiegelhalter_variance,
        )

    @classmethod
    def merge_all(cls, aggregates: list[EventAggregate]) -> EventAggregate:
        """One aggregate of many, merging each histogram once (cheaper than pairwise)."""
        result = cls.empty()
        if not aggregates:
            return result
        for name in HISTOGRAMS:
            merged = SparseHistogram.merge_many([getattr(a, name) for a in aggregates])
            setattr(result, name, merged)
        result.spiegelhalter_numerator = sum(a.spiegelhalter_numerator for a in aggregates)
        result.spiegelhalter_variance = sum(a.spiegelhalter_variance for a in aggregates)
        return result

    # -- persistence ----------------------------------------------------------------
    def to_bytes(self, *, compress: bool = True) -> bytes:
        """Binary form for the store (format 3): a magic that says how it is stored, then
        the sums (zlib-compressed below :data:`COMPRESS_BELOW_BYTES`, unless ``compress``
        is False: for data that is read back soon, such as ingest's deltas)."""
        histograms = self._histograms()
        parts = [
            struct.pack(
                "<ddI", self.spiegelhalter_numerator, self.spiegelhalter_variance, len(histograms)
            )
        ]
        for histogram in histograms:
            parts.append(struct.pack("<II", histogram.keys.size, histogram.n_columns))
            parts.append(histogram.keys.astype("<i4").tobytes())
            parts.append(histogram.values.astype("<f8").tobytes())
        raw = b"".join(parts)
        if not compress or len(raw) >= COMPRESS_BELOW_BYTES:
            return _MAGIC_RAW + raw
        return _MAGIC_COMPRESSED + zlib.compress(raw, level=1)

    @classmethod
    def from_bytes(
        cls, blob: bytes | memoryview, *, skip: frozenset[str] = frozenset()
    ) -> EventAggregate:
        """Read any format this or an earlier version wrote. The histograms named in
        ``skip`` (of :data:`HISTOGRAMS`) are left empty, not decoded: a reader that
        ignores them (the window caches read tens of thousands of small change records
        a tick) spares their arrays."""
        histograms, numerator, variance = _decode(blob, skip)
        for name in HISTOGRAMS:
            if name not in histograms:
                histograms[name] = SparseHistogram.empty(_COLUMNS[name])
        return cls(**histograms, spiegelhalter_numerator=numerator, spiegelhalter_variance=variance)

    def _histograms(self) -> tuple[SparseHistogram, ...]:
        return tuple(getattr(self, name) for name in HISTOGRAMS)


#: The histograms, in the order they are stored.
HISTOGRAMS = ("probabilities", "labelled", "scores", "label_delays", "raw_labelled")
_COLUMNS = {
    "probabilities": 1,
    "labelled": len(LABELLED_COLUMNS),
    "scores": 1,
    "label_delays": 1,
    "raw_labelled": len(RAW_LABELLED_COLUMNS),
}


def labelled_from_bytes(blob: bytes | memoryview) -> SparseHistogram:
    """A stored aggregate's labelled cells alone (what per-bucket residuals need)."""
    found = _decode(blob, _ALL_BUT_LABELLED)[0]
    return found.get("labelled") or SparseHistogram.empty(_COLUMNS["labelled"])


_ALL_BUT_LABELLED = frozenset(HISTOGRAMS) - {"labelled"}


def _decode(
    blob: bytes | memoryview, skip: frozenset[str]
) -> tuple[dict[str, SparseHistogram], float, float]:
    """The stored histograms not in ``skip`` (no empty ones made for the rest: they
    were a third of the time to read a small record), and Spiegelhalter's two sums."""
    form = _FORMATS.get(bytes(blob[:4]))
    if form is None:
        raise ValueError("not a calmon aggregate (bad magic); was it written by a newer version?")
    compressed, count = form
    raw: bytes | memoryview = zlib.decompress(blob[4:]) if compressed else memoryview(blob)[4:]
    numerator, variance = struct.unpack_from("<dd", raw, 0)
    offset = 16
    if count is None:
        (count,) = struct.unpack_from("<I", raw, offset)
        offset += 4
    histograms: dict[str, SparseHistogram] = {}
    for name in HISTOGRAMS[:count]:
        size, n_columns = struct.unpack_from("<II", raw, offset)
        offset += 8
        if name not in skip:
            keys = np.frombuffer(raw, dtype="<i4", count=size, offset=offset)
            values = np.frombuffer(
                raw, dtype="<f8", count=size * n_columns, offset=offset + 4 * size
            )
            histograms[name] = SparseHistogram(
                keys.astype(np.int64), values.reshape(size, n_columns).copy()
            )
        offset += 4 * size + 8 * size * n_columns
    return histograms, numerator, variance

"""Calibration metrics on arrays of probabilities and binary labels.

Calibration is measured on P(y=1), the convention of scikit-learn's
``calibration_curve``; ``top_label=True`` measures the confidence of the predicted class
instead (confidence = max(p, 1 - p), correct = prediction equals label).

Equal-width bins: bin index = min(floor(p * M), M - 1), empty bins skipped.
Equal-mass bins (ACE): events sorted by p, event i (0-based) goes to group
floor((i + 1/2) * M / n), the same rule the aggregates use on their fine bins.

>>> import numpy as np
>>> p = np.array([0.1, 0.1, 0.8, 0.8])
>>> y = np.array([0, 1, 1, 1])
>>> round(expected_calibration_error(p, y, n_bins=10), 6)
0.3
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from monitor.core.results import ReliabilityBin
from monitor.metrics import binned, grids
from monitor.metrics.binned import BinSums, BrierDecomposition
from monitor.metrics.clipping import (
    LOG_LOSS_EPS,
    clipped_logit,
    log_loss_and_logit,
    per_event_log_loss,
)
from monitor.metrics.errors import UndefinedMetricError
from monitor.metrics.validation import FloatArray, positive_int, probabilities_and_labels

# Re-exported: part of the public metrics API.
__all__ = ["LOG_LOSS_EPS", "clipped_logit", "log_loss_and_logit", "per_event_log_loss"]


def _prepare(p: ArrayLike, y: ArrayLike, top_label: bool) -> tuple[FloatArray, FloatArray]:
    probs, labels = probabilities_and_labels(p, y)
    if top_label:
        predicted = (probs >= 0.5).astype(np.float64)
        return np.maximum(probs, 1.0 - probs), (predicted == labels).astype(np.float64)
    return probs, labels


def equal_width_bin_index(p: FloatArray, n_bins: int) -> np.ndarray:
    """min(floor(p * M), M - 1): bin M - 1 is closed on the right, so p = 1 belongs to it."""
    return np.minimum(np.floor(p * n_bins).astype(np.int64), n_bins - 1)


def _bin_sums(p: FloatArray, y: FloatArray, index: np.ndarray, n_bins: int) -> BinSums:
    def total(weights: FloatArray | None) -> FloatArray:
        return np.bincount(index, weights=weights, minlength=n_bins).astype(np.float64)

    return BinSums(
        count=total(None),
        sum_p=total(p),
        sum_y=total(y),
        sum_p2=total(p * p),
        sum_py=total(p * y),
    )


def equal_width_bin_sums(p: FloatArray, y: FloatArray, n_bins: int) -> BinSums:
    return _bin_sums(p, y, equal_width_bin_index(p, n_bins), n_bins)


def equal_mass_group_index(p: FloatArray, n_bins: int) -> np.ndarray:
    """Group of each event: event of rank r (stable sort by p) -> floor((r + 1/2) M / n).

    A full sort is avoided: events are counted into the fine grid of ``grids`` (whose
    cells are ordered like p), every event of a cell that no group boundary cuts gets the
    cell's group, and only the few cut cells are sorted to rank their events.
    """
    n = p.size
    cells = grids.probability_cells(p)
    per_cell = np.bincount(cells, minlength=grids.PROBABILITY_CELLS)
    first_rank = np.cumsum(per_cell) - per_cell
    last_rank = first_rank + per_cell - 1
    first_group = ((2 * first_rank + 1) * n_bins) // (2 * n)
    last_group = ((2 * last_rank + 1) * n_bins) // (2 * n)
    groups = first_group[cells]
    for cell in np.flatnonzero((per_cell > 0) & (first_group != last_group)):
        members = np.flatnonzero(cells == cell)
        ranks = np.empty(members.size, dtype=np.int64)
        ranks[np.argsort(p[members], kind="stable")] = np.arange(members.size)
        groups[members] = ((2 * (first_rank[cell] + ranks) + 1) * n_bins) // (2 * n)
    return groups


def equal_mass_bin_sums(p: FloatArray, y: FloatArray, n_bins: int) -> BinSums:
    return _bin_sums(p, y, equal_mass_group_index(p, n_bins), n_bins)


def expected_calibration_error(
    p: ArrayLike, y: ArrayLike, *, n_bins: int = 10, top_label: bool = False
) -> float:
    """ECE over ``n_bins`` equal-width bins."""
    probs, labels = _prepare(p, y, top_label)
    return binned.expected_calibration_error_from_bins(
        equal_width_bin_sums(probs, labels, positive_int(n_bins, "n_bins"))
    )


def adaptive_calibration_error(
    p: ArrayLike, y: ArrayLike, *, n_bins: int = 10, top_label: bool = False
) -> float:
    """ACE: the ECE formula over ``n_bins`` equal-mass bins (weighted by bin size)."""
    probs, labels = _prepare(p, y, top_label)
    return binned.expected_calibration_error_from_bins(
        equal_mass_bin_sums(probs, labels, positive_int(n_bins, "n_bins"))
    )


def maximum_calibration_error(
    p: ArrayLike, y: ArrayLike, *, n_bins: int = 10, top_label: bool = False
) -> float:
    """MCE: the largest |observed - predicted| over occupied equal-width bins."""
    probs, labels = _prepare(p, y, top_label)
    return binned.maximum_calibration_error_from_bins(
        equal_width_bin_sums(probs, labels, positive_int(n_bins, "n_bins"))
    )


def rms_calibration_error(
    p: ArrayLike, y: ArrayLike, *, n_bins: int = 10, top_label: bool = False
) -> float:
    """RMSCE: the bin-size-weighted root mean square of |observed - predicted|."""
    probs, labels = _prepare(p, y, top_label)
    return binned.rms_calibration_error_from_bins(
        equal_width_bin_sums(probs, labels, positive_int(n_bins, "n_bins"))
    )


def reliability_bins_from_sums(bins: BinSums) -> list[ReliabilityBin]:
    n_bins = bins.count.size
    occupied = np.flatnonzero(bins.count > 0)
    count = bins.count[occupied]
    low, high = binned.wilson_interval(bins.sum_y[occupied], count)
    return [
        ReliabilityBin(
            index=int(m),
            lower=int(m) / n_bins,
            upper=(int(m) + 1) / n_bins,
            count=int(c),
            mean_predicted=float(bins.sum_p[m] / c),
            observed_ratio=float(bins.sum_y[m] / c),
            ci_low=float(lo),
            ci_high=float(hi),
        )
        for m, c, lo, hi in zip(occupied, count, low, high, strict=True)
    ]


def reliability_bins(
    p: ArrayLike, y: ArrayLike, *, n_bins: int = 10, top_label: bool = False
) -> list[ReliabilityBin]:
    """Occupied equal-width bins: count, mean p, observed frequency, Wilson 95% interval.

    ``mean_predicted`` and ``observed_ratio`` are what scikit-learn's
    ``calibration_curve(y, p, n_bins=M)`` returns as ``prob_pred`` and ``prob_true``, except
    for a p exactly on an interior edge m/M: it opens bin m here (floor rule) and closes
    bin m - 1 in scikit-learn.
    """
    probs, labels = _prepare(p, y, top_label)
    return reliability_bins_from_sums(
        equal_width_bin_sums(probs, labels, positive_int(n_bins, "n_bins"))
    )


def brier_score_loss(p: ArrayLike, y: ArrayLike) -> float:
    """Mean squared difference between probability and label."""
    probs, labels = probabilities_and_labels(p, y)
    return float(np.mean((probs - labels) ** 2))


def brier_decomposition(p: ArrayLike, y: ArrayLike, *, n_bins: int = 10) -> BrierDecomposition:
    """Murphy decomposition over equal-width bins; see :class:`BrierDecomposition`."""
    probs, labels = probabilities_and_labels(p, y)
    return binned.brier_decomposition_from_bins(
        equal_width_bin_sums(probs, labels, positive_int(n_bins, "n_bins"))
    )


def brier_skill_score(p: ArrayLike, y: ArrayLike) -> float:
    """Scaled Brier score against the prevalence forecast: 1 - BS / (obar (1 - obar))."""
    probs, labels = probabilities_and_labels(p, y)
    return binned.brier_skill_score_from_brier(
        float(np.mean((probs - labels) ** 2)), float(labels.mean())
    )


def log_loss(p: ArrayLike, y: ArrayLike) -> float:
    """Mean negative log-likelihood in nats, p clipped to [1e-15, 1 - 1e-15]."""
    probs, labels = probabilities_and_labels(p, y)
    return float(np.mean(per_event_log_loss(probs, labels)))


@dataclass(frozen=True)
class CalibrationInTheLarge:
    """mean p - mean y (positive: over-predicting) and observed / expected events."""

    difference: float
    observed_expected_ratio: float


def calibration_in_the_large(p: ArrayLike, y: ArrayLike) -> CalibrationInTheLarge:
    probs, labels = probabilities_and_labels(p, y)
    return in_the_large_from_sums(float(probs.sum()), float(labels.sum()), probs.size)


def in_the_large_from_sums(sum_p: float, sum_y: float, n: float) -> CalibrationInTheLarge:
    if sum_p == 0.0:
        raise UndefinedMetricError("observed/expected ratio is undefined: every p is 0")
    return CalibrationInTheLarge(
        difference=(sum_p - sum_y) / n, observed_expected_ratio=sum_y / sum_p
    )

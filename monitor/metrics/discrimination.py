"""Discrimination (ROC AUC, average precision) from per-cell counts of labelled events.

The aggregates keep, per probability cell, the number of labelled events and of
positives, and cells are numbered in increasing order of p. That orders every pair of
events in different cells exactly; only the order of the events *inside* one cell is
lost. Each cell is therefore treated as one tied score, and the error this makes is
bounded from the same counts.

ROC AUC: with P positives, N negatives, and pos_c, neg_c in cell c,
``AUC = (sum_c pos_c * (negatives below c) + pos_c * neg_c / 2) / (P N)`` (the
Mann-Whitney form with ties counted one half, as scikit-learn's ``roc_auc_score``
does). Exact AUC can differ only through the pos_c * neg_c pairs inside a cell, each of
which counts 0, 1/2 or 1, so ``|AUC_cells - AUC_exact| <= sum_c pos_c neg_c / (2 P N)``.

Average precision (scikit-learn's step-wise ``average_precision_score``,
``AP = sum over thresholds of (recall step) x precision``): with A positives and B events
in cells above c, the cells give each positive of c the precision
``(A + pos_c) / (B + n_c)``. However the events inside c are ordered or tied, a
positive's precision lies in ``[(A + 1) / (B + 1 + neg_c), (A + pos_c) / (B + pos_c)]``
(at least itself above the threshold, at most all of the cell's positives and none of its
negatives), so ``|AP_cells - AP_exact| <= sum_c pos_c x d_c / P`` with d_c the larger
distance from the cell's precision to an end of that interval.

Both bounds are zero when no cell holds more than one event (or, for AUC, no cell holds
both classes); a window of 10,000 events on the 10,240-cell grid has bounds of the order
of 1e-4.

>>> import numpy as np
>>> d = discrimination_from_cells(np.array([2.0, 2.0]), np.array([0.0, 2.0]))
>>> d.roc_auc, d.roc_auc_error_bound
(1.0, 0.0)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from monitor.metrics.binned import WILSON_Z_95
from monitor.metrics.errors import UndefinedMetricError
from monitor.metrics.validation import FloatArray


@dataclass(frozen=True)
class Discrimination:
    roc_auc: float
    #: Largest possible |roc_auc - the AUC of the events themselves| (ties inside cells).
    roc_auc_error_bound: float
    average_precision: float
    #: Largest possible |average_precision - the AP of the events themselves|.
    average_precision_error_bound: float
    #: DeLong's standard error of ``roc_auc`` (0 when it cannot be estimated).
    roc_auc_standard_error: float = 0.0

    def roc_auc_interval(self, z: float = WILSON_Z_95) -> tuple[float, float]:
        """95% interval of the events' AUC: DeLong's normal interval of the cell AUC,
        widened by the cell error bound, clipped to [0, 1]."""
        half = z * self.roc_auc_standard_error + self.roc_auc_error_bound
        return max(self.roc_auc - half, 0.0), min(self.roc_auc + half, 1.0)


def roc_auc_from_cells(positives: FloatArray, negatives: FloatArray) -> float:
    """The tied-cell AUC of per-cell (possibly expected, fractional) class counts."""
    below = np.cumsum(negatives) - negatives
    total = float(positives.sum()) * float(negatives.sum())
    if total <= 0.0:
        raise UndefinedMetricError("ROC AUC needs both labels in the window")
    return float((positives * (below + negatives / 2.0)).sum() / total)


def delong_standard_error(positives: FloatArray, negatives: FloatArray) -> float:
    """DeLong et al. (1988)'s standard error of the tied-cell AUC, from per-cell counts.

    Every positive of cell c has the same placement value, the share of negatives it
    outranks (ties one half): (negatives below c + neg_c / 2) / N; every negative,
    (positives above c + pos_c / 2) / P. Var(AUC) = S10 / P + S01 / N with S10, S01 the
    sample variances of those placements over positives and negatives.
    """
    n_pos, n_neg = float(positives.sum()), float(negatives.sum())
    if n_pos < 2 or n_neg < 2:
        return 0.0
    below = np.cumsum(negatives) - negatives
    above = n_pos - np.cumsum(positives)
    v10 = (below + negatives / 2.0) / n_neg
    v01 = (above + positives / 2.0) / n_pos

    def variance(placement: FloatArray, weight: FloatArray, n: float) -> float:
        mean = float((weight * placement).sum() / n)
        return float((weight * (placement - mean) ** 2).sum() / (n - 1.0))

    var = variance(v10, positives, n_pos) / n_pos + variance(v01, negatives, n_neg) / n_neg
    return float(np.sqrt(max(var, 0.0)))


def discrimination_from_cells(count: FloatArray, positives: FloatArray) -> Discrimination:
    """ROC AUC and average precision of events counted per cell, cells in increasing p.

    ``count`` and ``positives`` are per cell (label-weighted sums are fine: labels are 0 or
    1). Raises :class:`UndefinedMetricError` unless both classes occur.
    """
    count = np.asarray(count, dtype=np.float64)
    pos = np.asarray(positives, dtype=np.float64)
    # Labels are 0/1, so sums are whole numbers; rounding removes float-sum residue.
    count, pos = np.round(count), np.round(pos)
    neg = count - pos
    n_pos, n_neg = float(pos.sum()), float(neg.sum())
    if n_pos == 0.0 or n_neg == 0.0:
        raise UndefinedMetricError("ROC AUC and average precision need both labels in the window")
    auc = roc_auc_from_cells(pos, neg)
    auc_bound = float((pos * neg).sum() / (2.0 * n_pos * n_neg))

    # Thresholds from the highest cell down: events and positives at or above each cell.
    above_events = np.cumsum(count[::-1])[::-1] - count  # strictly above the cell
    above_pos = np.cumsum(pos[::-1])[::-1] - pos
    has_pos = pos > 0
    a, b = above_pos[has_pos], above_events[has_pos]
    p_c, n_c, neg_c = pos[has_pos], count[has_pos], neg[has_pos]
    precision = (a + p_c) / (b + n_c)
    highest = (a + p_c) / (b + p_c)
    lowest = (a + 1.0) / (b + 1.0 + neg_c)
    return Discrimination(
        roc_auc=auc,
        roc_auc_error_bound=auc_bound,
        average_precision=float((p_c * precision).sum() / n_pos),
        average_precision_error_bound=float(
            (p_c * np.maximum(highest - precision, precision - lowest)).sum() / n_pos
        ),
        roc_auc_standard_error=delong_standard_error(pos, neg),
    )

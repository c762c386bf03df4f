"""Goodness-of-fit tests for calibration: Spiegelhalter's Z and Hosmer-Lemeshow.

Spiegelhalter (1986): Z = sum (y - p)(1 - 2p) / sqrt(sum (1 - 2p)^2 p (1 - p)),
standard normal under perfect calibration; two-sided p-value.

Hosmer-Lemeshow: events sorted by p in G equal-mass groups (the ACE rule), statistic
sum_g (O_g - E_g)^2 / (E_g (1 - E_g / n_g)) against chi-square with G - 2 degrees of freedom.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from monitor.metrics.calibration import equal_mass_bin_sums
from monitor.metrics.errors import UndefinedMetricError
from monitor.metrics.validation import positive_int, probabilities_and_labels


@dataclass(frozen=True)
class GoodnessOfFit:
    statistic: float
    pvalue: float


def spiegelhalter_terms(p: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """The two sums of the statistic: numerator and variance under calibration."""
    numerator, variance = spiegelhalter_event_terms(p, y)
    return float(numerator.sum()), float(variance.sum())


def spiegelhalter_event_terms(p: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each event's part of :func:`spiegelhalter_terms`' two sums."""
    return (y - p) * (1.0 - 2.0 * p), (1.0 - 2.0 * p) ** 2 * p * (1.0 - p)


def spiegelhalter_from_terms(numerator: float, variance: float) -> GoodnessOfFit:
    if variance <= 0.0:
        raise UndefinedMetricError(
            "Spiegelhalter's Z is undefined when every p is 0, 1/2 or 1 (zero variance)"
        )
    z = numerator / np.sqrt(variance)
    return GoodnessOfFit(statistic=float(z), pvalue=float(2.0 * stats.norm.sf(abs(z))))


def spiegelhalter_z_test(p: ArrayLike, y: ArrayLike) -> GoodnessOfFit:
    probs, labels = probabilities_and_labels(p, y)
    return spiegelhalter_from_terms(*spiegelhalter_terms(probs, labels))


def hosmer_lemeshow_test(p: ArrayLike, y: ArrayLike, *, n_groups: int = 10) -> GoodnessOfFit:
    probs, labels = probabilities_and_labels(p, y)
    n_groups = positive_int(n_groups, "n_groups")
    if n_groups < 3:
        raise UndefinedMetricError("Hosmer-Lemeshow needs at least 3 groups (df = G - 2)")
    sums = equal_mass_bin_sums(probs, labels, n_groups)
    occupied = sums.count > 0
    expected = sums.sum_p[occupied]
    observed = sums.sum_y[occupied]
    n = sums.count[occupied]
    variance = expected * (1.0 - expected / n)
    if np.any(variance <= 0.0):
        raise UndefinedMetricError(
            "Hosmer-Lemeshow is undefined: a group's expected count is 0 or equals its size"
        )
    statistic = float(((observed - expected) ** 2 / variance).sum())
    return GoodnessOfFit(statistic=statistic, pvalue=float(stats.chi2.sf(statistic, n_groups - 2)))

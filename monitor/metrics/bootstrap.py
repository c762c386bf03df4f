"""Bootstrap confidence interval for ECE, at the cost of the bins, not of the events.

Resampling events with replacement is approximated bin by bin, as the Poisson bootstrap
does (each event drawn Poisson(1) times: bins independent, the way streaming systems
resample): a bin of n_k events gets Poisson(n_k) of them; the positives among them are
binomial(m_k, observed frequency of bin k); their summed forecasts are normal around
m_k * mean p_k with the bin's within-bin variance of p. A bin of at least
``NORMAL_FROM`` events draws its gap sum(y - p) from the normal limit of all three (one
draw instead of three; a tenth of the time, the interval 2-3x cheaper); smaller bins are
drawn as they are. It ignores the correlation of p and y inside one bin (small for
narrow bins), and costs O(resamples x bins) whatever n is, so it runs on aggregates too.
``tests/unit/metrics`` checks it against the event-level bootstrap, and that its 95%
interval covers a generating model's true ECE in 93-97% of seeds (measured 95.5%).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from monitor.metrics.binned import BinSums
from monitor.metrics.calibration import equal_width_bin_sums
from monitor.metrics.validation import positive_int, probabilities_and_labels

#: Bins with at least this many events draw their gap from its normal limit.
NORMAL_FROM = 50


@dataclass(frozen=True)
class Interval:
    lower: float
    upper: float


def ece_bootstrap_interval_from_bins(
    bins: BinSums, *, n_resamples: int = 1000, confidence: float = 0.95, seed: int = 0
) -> Interval:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    ece = ece_bootstrap_resamples_from_bins(bins, n_resamples=n_resamples, seed=seed)
    tail = (1.0 - confidence) / 2.0
    lower, upper = quantiles(ece, np.array([tail, 1.0 - tail]))
    return Interval(lower=float(lower), upper=float(upper))


def quantiles(values: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """``np.quantile(values, probabilities)`` (its default, linear interpolation between
    order statistics), without its overhead: an interval costs one sort of the resamples
    instead of about as much as drawing them."""
    ordered = np.sort(values)
    position = probabilities * (ordered.size - 1)
    below = np.floor(position).astype(np.int64)
    above = np.minimum(below + 1, ordered.size - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


def ece_bootstrap_resamples_from_bins(
    bins: BinSums, *, n_resamples: int = 1000, seed: int = 0
) -> np.ndarray:
    """The ECE of each bootstrap resample (for intervals of a difference of ECEs)."""
    n_resamples = positive_int(n_resamples, "n_resamples")
    occupied = bins.count > 0
    count = bins.count[occupied]
    mean_p = bins.sum_p[occupied] / count
    frequency = np.clip(bins.sum_y[occupied] / count, 0.0, 1.0)
    if bins.sum_p2 is not None:
        variance_p = np.maximum(bins.sum_p2[occupied] / count - mean_p**2, 0.0)
    else:
        variance_p = np.zeros_like(mean_p)
    rng = np.random.default_rng(seed)
    large = count >= NORMAL_FROM
    gap = np.empty((n_resamples, count.size))
    # A large bin's resampled gap sum(y - p): its Poisson count times the mean gap plus
    # the binomial positives' and the forecasts' noise, to first order one normal of
    # variance count x (gap^2 + f(1 - f) + var p).
    mean_gap = frequency[large] - mean_p[large]
    spread = count[large] * (mean_gap**2 + frequency[large] * (1 - frequency[large]))
    gap[:, large] = count[large] * mean_gap + np.sqrt(
        spread + count[large] * variance_p[large]
    ) * rng.standard_normal((n_resamples, int(large.sum())))
    # Small bins, where the normal limit is poor: drawn as they are.
    drawn = rng.poisson(count[~large], size=(n_resamples, int((~large).sum()))).astype(float)
    positives = rng.binomial(drawn.astype(np.int64), frequency[~large])
    gap[:, ~large] = positives - (
        drawn * mean_p[~large]
        + np.sqrt(drawn * variance_p[~large]) * rng.standard_normal(drawn.shape)
    )
    events = count[large].sum() + drawn.sum(axis=1)
    return np.abs(gap).sum(axis=1) / np.maximum(events, 1.0)


def ece_bootstrap_interval(
    p: ArrayLike,
    y: ArrayLike,
    *,
    n_bins: int = 10,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Interval:
    """Percentile bootstrap interval of ECE (equal-width bins), seeded and vectorised."""
    probs, labels = probabilities_and_labels(p, y)
    return ece_bootstrap_interval_from_bins(
        equal_width_bin_sums(probs, labels, positive_int(n_bins, "n_bins")),
        n_resamples=n_resamples,
        confidence=confidence,
        seed=seed,
    )

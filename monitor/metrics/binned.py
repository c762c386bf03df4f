"""Calibration metrics computed from per-bin sums.

The array API (``calibration.py``) and the aggregate API (``summary.py``) both reduce
events to the same per-bin sums and then call these functions, so the two agree
exactly whenever they put every event in the same bin.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from monitor.metrics.errors import UndefinedMetricError
from monitor.metrics.validation import FloatArray

# Two-sided 95% normal quantile, scipy.stats.norm.ppf(0.975).
WILSON_Z_95 = 1.959963984540054


@dataclass(frozen=True)
class BinSums:
    """Sufficient statistics of events grouped into bins (one entry per bin).

    ``sum_p2`` and ``sum_py`` are only needed for the Brier decomposition's within-bin
    terms; they may be ``None`` when only ECE-type metrics are wanted.
    """

    count: FloatArray
    sum_p: FloatArray
    sum_y: FloatArray
    sum_p2: FloatArray | None = None
    sum_py: FloatArray | None = None

    @property
    def total(self) -> float:
        return float(self.count.sum())


def _occupied(bins: BinSums) -> np.ndarray:
    return bins.count > 0


def expected_calibration_error_from_bins(bins: BinSums) -> float:
    """ECE = sum_m |B_m|/n * |mean y in B_m - mean p in B_m|, empty bins skipped."""
    return float(np.abs(bins.sum_y - bins.sum_p).sum() / bins.total)


def maximum_calibration_error_from_bins(bins: BinSums) -> float:
    """MCE = the largest |mean y - mean p| over occupied bins."""
    occupied = _occupied(bins)
    gaps = np.abs(bins.sum_y[occupied] - bins.sum_p[occupied]) / bins.count[occupied]
    return float(gaps.max())


def rms_calibration_error_from_bins(bins: BinSums) -> float:
    """RMSCE = sqrt(sum_m |B_m|/n * (mean y - mean p)^2)."""
    occupied = _occupied(bins)
    gap = (bins.sum_y[occupied] - bins.sum_p[occupied]) / bins.count[occupied]
    return float(np.sqrt((bins.count[occupied] * gap**2).sum() / bins.total))


def wilson_interval(
    successes: FloatArray, trials: FloatArray, z: float = WILSON_Z_95
) -> tuple[FloatArray, FloatArray]:
    """Wilson score interval for a binomial proportion, element-wise (trials > 0)."""
    phat = successes / trials
    denom = 1.0 + z**2 / trials
    centre = (phat + z**2 / (2.0 * trials)) / denom
    half = z * np.sqrt(phat * (1.0 - phat) / trials + z**2 / (4.0 * trials**2)) / denom
    return np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)


@dataclass(frozen=True)
class BrierDecomposition:
    """Murphy's decomposition of the Brier score over reliability bins.

    With bins B_k of n_k events, mean forecast pbar_k, observed frequency obar_k and
    overall frequency obar, the exact identity (Stephenson et al., 2008) is::

        brier = reliability - resolution + uncertainty
                + within_bin_variance - 2 * within_bin_covariance

    reliability = sum n_k (pbar_k - obar_k)^2 / n, resolution = sum n_k (obar_k - obar)^2 / n,
    uncertainty = obar (1 - obar), within_bin_variance = sum_k sum_i (p_i - pbar_k)^2 / n and
    within_bin_covariance = sum_k sum_i (p_i - pbar_k)(y_i - obar_k) / n. The last two
    vanish when every event in a bin has the same forecast (Murphy's original setting).
    """

    reliability: float
    resolution: float
    uncertainty: float
    within_bin_variance: float
    within_bin_covariance: float


def brier_decomposition_from_bins(bins: BinSums) -> BrierDecomposition:
    if bins.sum_p2 is None or bins.sum_py is None:
        raise ValueError("brier_decomposition_from_bins needs sum_p2 and sum_py per bin")
    n = bins.total
    occupied = _occupied(bins)
    count = bins.count[occupied]
    sum_p = bins.sum_p[occupied]
    sum_y = bins.sum_y[occupied]
    mean_p = sum_p / count
    mean_y = sum_y / count
    base_rate = float(bins.sum_y.sum() / n)
    within_var = bins.sum_p2[occupied] - sum_p * mean_p
    within_cov = bins.sum_py[occupied] - sum_p * mean_y
    return BrierDecomposition(
        reliability=float((count * (mean_p - mean_y) ** 2).sum() / n),
        resolution=float((count * (mean_y - base_rate) ** 2).sum() / n),
        uncertainty=base_rate * (1.0 - base_rate),
        within_bin_variance=float(within_var.sum() / n),
        within_bin_covariance=float(within_cov.sum() / n),
    )


def brier_skill_score_from_brier(brier: float, base_rate: float) -> float:
    """1 - brier / (base_rate (1 - base_rate)): 0 for the prevalence forecast, 1 perfect."""
    reference = base_rate * (1.0 - base_rate)
    if reference == 0.0:
        raise UndefinedMetricError(
            "brier skill score is undefined when every label is the same (prevalence 0 or 1)"
        )
    return 1.0 - brier / reference


def equal_mass_groups(counts: FloatArray, n_groups: int) -> np.ndarray:
    """Assign consecutive atoms (events, or fine bins of events) to equal-mass groups.

    Group g holds the atoms whose cumulative-count midpoint falls in
    [g n / G, (g + 1) n / G). With one event per atom this reproduces
    ``np.array_split`` of the sorted events, up to one event at each boundary.
    """
    cumulative = np.cumsum(counts)
    midpoints = cumulative - counts / 2.0
    groups = np.floor(midpoints * n_groups / cumulative[-1]).astype(np.int64)
    return np.minimum(groups, n_groups - 1)

"""The debiased ECE: zero on average for calibrated streams at every window size.

The reference for "calibrated" is the simulation itself (labels drawn as Bernoulli(p)),
and the exact binomial mean absolute deviation is checked against scipy.stats.binom.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from monitor.metrics.aggregates import EventAggregate
from monitor.metrics.binned import BinSums, expected_calibration_error_from_bins
from monitor.metrics.noise_floor import (
    binomial_mean_absolute_deviation,
    ece_noise_floor_from_bins,
    expected_absolute_gap,
)
from monitor.metrics.summary import calibration_summary

N_BINS = 10


def bin_sums(p: np.ndarray, y: np.ndarray) -> BinSums:
    index = np.minimum((p * N_BINS).astype(int), N_BINS - 1)

    def fold(weights: np.ndarray) -> np.ndarray:
        return np.bincount(index, weights=weights, minlength=N_BINS)

    return BinSums(
        count=fold(np.ones_like(p)),
        sum_p=fold(p),
        sum_y=fold(y),
        sum_p2=fold(p * p),
        sum_py=fold(p * y),
    )


@pytest.mark.parametrize(("n", "p"), [(1, 0.5), (7, 0.13), (40, 0.02), (300, 0.3), (5, 0.999)])
def test_binomial_deviation_matches_scipy(n: int, p: float) -> None:
    k = np.arange(n + 1)
    expected = float(np.dot(stats.binom.pmf(k, n, p), np.abs(k - n * p)))
    assert binomial_mean_absolute_deviation(n, p) == pytest.approx(expected, rel=1e-7)


def test_hand_computed_single_event_bin() -> None:
    # One event at p = 0.25: |y - p| is 0.75 with probability 0.25 and 0.25 otherwise.
    assert expected_absolute_gap(1, 0.25, 0.0625) == pytest.approx(0.25 * 0.75 + 0.75 * 0.25)


def test_large_bins_use_the_normal_limit() -> None:
    # 1e6 events at p = 0.3: sd = sqrt(210000); E|S| = sd * sqrt(2/pi) to ~1e-7 relative.
    count, p = 1_000_000, 0.3
    gap = expected_absolute_gap(count, count * p, count * p * p)
    assert gap == pytest.approx(np.sqrt(count * p * (1 - p)) * np.sqrt(2 / np.pi), rel=1e-6)


# Window sizes of the issue, and seeds per size: the tolerance below is 3 standard errors
# of the mean over these seeds plus 5% of the bias being removed.
CALIBRATED_STREAMS = [(200, 400), (2_000, 200), (20_000, 60), (200_000, 20)]


@pytest.mark.parametrize(("n", "seeds"), CALIBRATED_STREAMS)
def test_debiased_ece_is_unbiased_on_calibrated_streams(n: int, seeds: int) -> None:
    rng = np.random.default_rng(n)
    plug_in, debiased = [], []
    for _ in range(seeds):
        p = rng.beta(2.0, 5.0, n)
        y = (rng.random(n) < p).astype(float)
        bins = bin_sums(p, y)
        ece = expected_calibration_error_from_bins(bins)
        plug_in.append(ece)
        debiased.append(ece - ece_noise_floor_from_bins(bins))
    bias_before = float(np.mean(plug_in))
    bias_after = float(np.mean(debiased))
    standard_error = float(np.std(debiased) / np.sqrt(seeds))
    assert abs(bias_after) <= 3 * standard_error + 0.05 * bias_before
    # The plug-in ECE's bias is real and large at small n: the debiasing removes it.
    assert bias_before > 10 * abs(bias_after)


def test_noise_floor_does_not_hide_a_real_miscalibration() -> None:
    # Labels drawn at p + 0.1: the debiased ECE stays close to the true 0.1 gap.
    rng = np.random.default_rng(7)
    p = rng.uniform(0.2, 0.7, 20_000)
    y = (rng.random(p.size) < p + 0.1).astype(float)
    bins = bin_sums(p, y)
    debiased = expected_calibration_error_from_bins(bins) - ece_noise_floor_from_bins(bins)
    assert debiased == pytest.approx(0.1, abs=0.01)


def test_window_summary_reports_ece_minus_its_floor() -> None:
    rng = np.random.default_rng(3)
    p = rng.beta(2.0, 5.0, 500)
    y = (rng.random(p.size) < p).astype(int)
    aggregate = EventAggregate.empty()
    aggregate.add_labelled(p, y)
    values = calibration_summary(aggregate, n_bins=N_BINS, bootstrap_resamples=0).values
    bins = bin_sums(p, y.astype(float))
    assert values["ece"] == pytest.approx(expected_calibration_error_from_bins(bins), abs=1e-12)
    assert values["ece_noise_floor"] == pytest.approx(ece_noise_floor_from_bins(bins), rel=1e-9)
    assert values["ece_debiased"] == pytest.approx(values["ece"] - values["ece_noise_floor"])

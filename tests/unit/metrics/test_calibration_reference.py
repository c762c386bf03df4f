"""Calibration metrics on arrays, checked against independent references.

References: scikit-learn (calibration_curve, brier_score_loss, log_loss, LogisticRegression),
scipy (chi2, norm) and straightforward per-event Python loops written here from the
textbook definitions, on random data and on small hand-computed cases.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import stats
from sklearn.calibration import calibration_curve
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss as sk_brier
from sklearn.metrics import log_loss as sk_log_loss

from monitor.metrics import calibration as cal
from monitor.metrics.bootstrap import ece_bootstrap_interval
from monitor.metrics.recalibration import calibration_slope_intercept
from monitor.metrics.tests_of_fit import hosmer_lemeshow_test, spiegelhalter_z_test


def sample(shape: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities and labels drawn from a known truth (calibrated or distorted)."""
    rng = np.random.default_rng(seed)
    truth = rng.beta(2, 5, n)
    y = (rng.uniform(size=n) < truth).astype(float)
    if shape == "calibrated":
        return truth, y
    if shape == "overconfident":
        logit = np.log(truth / (1 - truth))
        return 1 / (1 + np.exp(-2.5 * logit)), y
    if shape == "extremes":  # exact 0s and 1s and values on bin edges
        p = np.round(truth, 1)
        p[:5] = [0.0, 1.0, 0.5, 0.1, 0.9]
        return p, y
    raise ValueError(shape)


SHAPES = ["calibrated", "overconfident", "extremes"]


def loop_bins(p: np.ndarray, y: np.ndarray, m: int) -> dict[int, list[tuple[float, float]]]:
    bins: dict[int, list[tuple[float, float]]] = {}
    for pi, yi in zip(p, y, strict=True):
        bins.setdefault(min(math.floor(pi * m), m - 1), []).append((pi, yi))
    return bins


def loop_ece_mce_rms(p: np.ndarray, y: np.ndarray, m: int) -> tuple[float, float, float]:
    n = len(p)
    ece = mce = sq = 0.0
    for members in loop_bins(p, y, m).values():
        mean_p = sum(q for q, _ in members) / len(members)
        gap = abs(mean_p - sum(t for _, t in members) / len(members))
        ece += len(members) / n * gap
        sq += len(members) / n * gap**2
        mce = max(mce, gap)
    return ece, mce, math.sqrt(sq)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("m", [5, 10, 15])
def test_binned_errors_match_a_per_event_loop(shape: str, m: int) -> None:
    p, y = sample(shape, 3000, seed=m)
    ece, mce, rms = loop_ece_mce_rms(p, y, m)
    assert cal.expected_calibration_error(p, y, n_bins=m) == pytest.approx(ece, abs=1e-12)
    assert cal.maximum_calibration_error(p, y, n_bins=m) == pytest.approx(mce, abs=1e-12)
    assert cal.rms_calibration_error(p, y, n_bins=m) == pytest.approx(rms, abs=1e-12)


@pytest.mark.parametrize("shape", ["calibrated", "overconfident"])
def test_reliability_bins_match_sklearn_calibration_curve(shape: str) -> None:
    p, y = sample(shape, 5000, seed=3)
    prob_true, prob_pred = calibration_curve(y, p, n_bins=10, strategy="uniform")
    bins = cal.reliability_bins(p, y, n_bins=10)
    np.testing.assert_allclose([b.observed_ratio for b in bins], prob_true, atol=1e-12)
    np.testing.assert_allclose([b.mean_predicted for b in bins], prob_pred, atol=1e-12)
    assert sum(b.count for b in bins) == len(p)


def test_values_on_an_interior_edge_go_up_unlike_sklearn() -> None:
    # Our rule (the issue's): bin = min(floor(p * M), M - 1), so p = 0.1 opens bin 1.
    # scikit-learn's calibration_curve closes bins on the right and puts 0.1 in bin 0.
    p_edge, y_edge = [0.05, 0.1, 0.15], [0, 1, 1]
    bins = cal.reliability_bins(p_edge, y_edge, n_bins=10)
    assert [(b.index, b.count) for b in bins] == [(0, 1), (1, 2)]
    assert [b.mean_predicted for b in bins] == pytest.approx([0.05, 0.125])
    _, sklearn_pred = calibration_curve(y_edge, p_edge, n_bins=10)
    assert list(sklearn_pred) == pytest.approx([0.075, 0.15])  # 0.1 joined 0.05 there
    p, y = sample("extremes", 3000, seed=1)
    ours = {b.index: b.count for b in cal.reliability_bins(p, y)}
    loop = {m: len(members) for m, members in loop_bins(p, y, 10).items()}
    assert ours == loop


def test_wilson_interval_matches_the_textbook_formula() -> None:
    # 7 successes in 10 trials: Wilson 95% interval (0.3968, 0.8922) (Wilson 1927; z=1.96).
    p = np.array([0.75] * 10)
    y = np.array([1] * 7 + [0] * 3)
    (only,) = cal.reliability_bins(p, y, n_bins=10)
    assert (only.ci_low, only.ci_high) == pytest.approx((0.396780, 0.892208), abs=1e-5)
    assert only.ci_low < 0.7 < only.ci_high


def test_ace_uses_equal_mass_groups_by_rank() -> None:
    # Sorted p; with n=6 and M=3, groups are ranks {0,1}, {2,3}, {4,5}.
    p = np.array([0.9, 0.1, 0.2, 0.6, 0.3, 0.8])
    y = np.array([1, 0, 0, 0, 1, 1])
    # groups: (0.1,0),(0.2,0) gap 0.15; (0.3,1),(0.6,0) gap 0.05; (0.8,1),(0.9,1) gap 0.15
    assert cal.adaptive_calibration_error(p, y, n_bins=3) == pytest.approx(
        (2 * 0.15 + 2 * 0.05 + 2 * 0.15) / 6, abs=1e-12
    )


@pytest.mark.parametrize("shape", SHAPES)
def test_brier_and_log_loss_match_sklearn(shape: str) -> None:
    p, y = sample(shape, 4000, seed=11)
    assert cal.brier_score_loss(p, y) == pytest.approx(sk_brier(y, p), abs=1e-14)
    clipped = np.clip(p, cal.LOG_LOSS_EPS, 1 - cal.LOG_LOSS_EPS)
    assert cal.log_loss(p, y) == pytest.approx(sk_log_loss(y, clipped, labels=[0, 1]), rel=1e-12)


def test_log_loss_clips_certain_mistakes_at_the_documented_epsilon() -> None:
    assert cal.log_loss([0.0], [1]) == pytest.approx(-math.log(1e-15), rel=1e-12)
    assert cal.log_loss([1.0], [1]) == pytest.approx(-math.log1p(-1e-15), abs=1e-18)


@pytest.mark.parametrize("shape", SHAPES)
def test_brier_decomposition_identity_holds_exactly(shape: str) -> None:
    p, y = sample(shape, 3000, seed=5)
    d = cal.brier_decomposition(p, y, n_bins=10)
    rebuilt = (
        d.reliability
        - d.resolution
        + d.uncertainty
        + d.within_bin_variance
        - 2 * d.within_bin_covariance
    )
    assert rebuilt == pytest.approx(sk_brier(y, p), abs=1e-12)


def test_brier_decomposition_is_murphys_when_forecasts_are_discrete() -> None:
    # Forecasts that take one value per bin: within-bin terms vanish, BS = REL - RES + UNC.
    p = np.array([0.1] * 10 + [0.7] * 10)
    y = np.array([0] * 9 + [1] + [1] * 6 + [0] * 4)
    d = cal.brier_decomposition(p, y, n_bins=10)
    assert d.within_bin_variance == pytest.approx(0.0, abs=1e-15)
    assert d.within_bin_covariance == pytest.approx(0.0, abs=1e-15)
    # REL: bin 0.1 observed 0.1 (gap 0), bin 0.7 observed 0.6 (gap 0.1): 0.5 * 0.01
    assert d.reliability == pytest.approx(0.005, abs=1e-15)
    # obar = 7/20 = 0.35; RES = 0.5 * (0.1-0.35)^2 + 0.5 * (0.6-0.35)^2 = 0.0625
    assert d.resolution == pytest.approx(0.0625, abs=1e-15)
    assert d.uncertainty == pytest.approx(0.35 * 0.65, abs=1e-15)
    assert d.reliability - d.resolution + d.uncertainty == pytest.approx(sk_brier(y, p), abs=1e-15)


def test_brier_skill_score_against_the_prevalence_forecast() -> None:
    p, y = sample("calibrated", 2000, seed=2)
    baseline = sk_brier(y, np.full_like(p, y.mean()))
    assert cal.brier_skill_score(p, y) == pytest.approx(1 - sk_brier(y, p) / baseline, rel=1e-12)
    # The prevalence forecast itself scores 0.
    assert cal.brier_skill_score(np.full_like(p, y.mean()), y) == pytest.approx(0.0, abs=1e-12)


def test_calibration_in_the_large_hand_computed() -> None:
    result = cal.calibration_in_the_large([0.2, 0.4, 0.6, 0.8], [0, 0, 1, 0])
    assert result.difference == pytest.approx(0.5 - 0.25, abs=1e-15)
    assert result.observed_expected_ratio == pytest.approx(1 / 2.0, abs=1e-15)


@pytest.mark.parametrize("shape", ["calibrated", "overconfident"])
def test_calibration_slope_matches_unpenalised_sklearn_logistic_fit(shape: str) -> None:
    p, y = sample(shape, 20000, seed=8)
    fit = calibration_slope_intercept(p, y)
    logit = np.log(p / (1 - p)).reshape(-1, 1)
    reference = LogisticRegression(C=np.inf, tol=1e-10, max_iter=1000).fit(logit, y)
    assert fit.slope == pytest.approx(reference.coef_[0, 0], abs=1e-5)
    assert fit.intercept == pytest.approx(reference.intercept_[0], abs=1e-5)
    if shape == "overconfident":  # over-confidence shows as a slope below 1
        assert fit.slope < 0.6


def test_spiegelhalter_matches_its_definition() -> None:
    p, y = sample("overconfident", 5000, seed=4)
    z = ((y - p) * (1 - 2 * p)).sum() / math.sqrt(((1 - 2 * p) ** 2 * p * (1 - p)).sum())
    result = spiegelhalter_z_test(p, y)
    assert result.statistic == pytest.approx(z, rel=1e-12)
    assert result.pvalue == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-9)


def test_hosmer_lemeshow_matches_a_deciles_loop() -> None:
    p, y = sample("overconfident", 2000, seed=6)
    order = np.argsort(p, kind="stable")
    statistic = 0.0
    for group in np.array_split(order, 10):  # 2000 / 10: equal groups, same as rank rule
        observed, expected, n = y[group].sum(), p[group].sum(), len(group)
        statistic += (observed - expected) ** 2 / (expected * (1 - expected / n))
    result = hosmer_lemeshow_test(p, y)
    assert result.statistic == pytest.approx(statistic, rel=1e-10)
    assert result.pvalue == pytest.approx(stats.chi2.sf(statistic, 8), rel=1e-9)


def test_goodness_of_fit_tests_separate_calibrated_from_distorted() -> None:
    p, y = sample("calibrated", 20000, seed=1)
    q, z = sample("overconfident", 20000, seed=1)
    assert spiegelhalter_z_test(q, z).pvalue < 1e-6 < spiegelhalter_z_test(p, y).pvalue
    assert hosmer_lemeshow_test(q, z).pvalue < 1e-6 < hosmer_lemeshow_test(p, y).pvalue


def test_ece_bootstrap_interval_is_seeded_and_covers_the_event_bootstrap() -> None:
    p, y = sample("overconfident", 20000, seed=9)
    interval = ece_bootstrap_interval(p, y, n_resamples=500, seed=1)
    assert interval == ece_bootstrap_interval(p, y, n_resamples=500, seed=1)
    # Reference: the plain event-level percentile bootstrap.
    rng = np.random.default_rng(2)
    draws = [
        cal.expected_calibration_error(p[i], y[i])
        for i in (rng.integers(0, p.size, p.size) for _ in range(300))
    ]
    low, high = np.quantile(draws, [0.025, 0.975])
    assert interval.lower == pytest.approx(low, abs=0.003)
    assert interval.upper == pytest.approx(high, abs=0.003)
    assert interval.lower < cal.expected_calibration_error(p, y) < interval.upper


def test_top_label_confidence_hand_computed() -> None:
    # p=0.2,y=0: predicts 0, correct, confidence 0.8; p=0.9,y=0: wrong, confidence 0.9.
    p = np.array([0.2, 0.9, 0.85])
    y = np.array([0, 0, 1])
    # top-label bins (M=10): 0.8 -> bin 8 (conf 0.8, acc 1); 0.9, 0.85 -> bins 9 and 8.
    # bin 8: conf mean (0.8 + 0.85)/2 = 0.825, accuracy 1 -> gap 0.175 (2 events)
    # bin 9: conf 0.9, accuracy 0 -> gap 0.9 (1 event)
    expected = (2 * 0.175 + 0.9) / 3
    assert cal.expected_calibration_error(p, y, top_label=True) == pytest.approx(expected)


probability_arrays = arrays(
    np.float64, st.integers(1, 200), elements=st.floats(0.0, 1.0, allow_nan=False)
)


@settings(max_examples=60, deadline=None)
@given(probability_arrays, st.integers(0, 2**32 - 1), st.integers(1, 20))
def test_properties_of_binned_errors(p: np.ndarray, seed: int, m: int) -> None:
    y = (np.random.default_rng(seed).uniform(size=p.size) < 0.4).astype(float)
    ece = cal.expected_calibration_error(p, y, n_bins=m)
    mce = cal.maximum_calibration_error(p, y, n_bins=m)
    rms = cal.rms_calibration_error(p, y, n_bins=m)
    # ECE <= RMSCE <= MCE (Jensen) and all within [0, 1]; ECE never exceeds MAE.
    assert 0.0 <= ece <= rms + 1e-12 <= mce + 2e-12 <= 1.0 + 2e-12
    assert ece <= np.abs(p - y).mean() + 1e-12
    # Permuting events never changes a metric.
    order = np.random.default_rng(seed).permutation(p.size)
    assert cal.expected_calibration_error(p[order], y[order], n_bins=m) == pytest.approx(ece)
    # Brier decomposition identity holds on any input.
    d = cal.brier_decomposition(p, y, n_bins=m)
    rebuilt = d.reliability - d.resolution + d.uncertainty
    rebuilt += d.within_bin_variance - 2 * d.within_bin_covariance
    assert rebuilt == pytest.approx(cal.brier_score_loss(p, y), abs=1e-12)


def test_a_perfectly_sharp_calibrated_forecast_scores_zero() -> None:
    y = np.array([0, 1, 1, 0, 1], dtype=float)
    assert cal.expected_calibration_error(y, y) == 0.0
    assert cal.brier_score_loss(y, y) == 0.0
    assert cal.log_loss(y, y) == pytest.approx(-math.log1p(-1e-15))

"""The metrics of a window computed from merged aggregates versus the metrics core run
on the window's events: exact where summary.py says exact, within the stated bound where
it says approximate."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from monitor.metrics import calibration as core
from monitor.metrics.aggregates import EventAggregate
from monitor.metrics.drift import ReferenceProfile, compare, histogram_of
from monitor.metrics.recalibration import calibration_slope_intercept
from monitor.metrics.summary import (
    calibration_summary,
    drift_summary,
    label_delay_quantiles,
)
from monitor.metrics.tests_of_fit import spiegelhalter_z_test


def _expit(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _window(seed: int, n: int, shape: str) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities of a given shape and labels from a miscalibrated truth."""
    rng = np.random.default_rng(seed)
    if shape == "beta":
        p = rng.beta(2.0, 5.0, n)
    elif shape == "tails":  # a fraud model: most mass far below 1e-3, some near 1
        p = np.concatenate(
            [10 ** rng.uniform(-9, -2, n - n // 10), 1 - 10 ** rng.uniform(-9, -1, n // 10)]
        )
    elif shape == "discrete":  # a calibrator with few distinct outputs (isotonic)
        p = rng.choice([0.0, 0.05, 0.1, 0.3, 0.5, 0.7, 1.0], n)
    else:
        raise AssertionError(shape)
    truth = _expit(0.8 * core.clipped_logit(p) + 0.3)
    y = (rng.uniform(size=n) < truth).astype(float)
    return p, y


def _aggregate_in_buckets(p: np.ndarray, y: np.ndarray, n_buckets: int) -> EventAggregate:
    buckets = []
    for part_p, part_y in zip(
        np.array_split(p, n_buckets), np.array_split(y, n_buckets), strict=True
    ):
        bucket = EventAggregate.empty()
        bucket.add_labelled(part_p, part_y)
        buckets.append(EventAggregate.from_bytes(bucket.to_bytes()))  # as the store keeps it
    return EventAggregate.merge_all(buckets)


SHAPES = ["beta", "tails", "discrete"]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("n_bins", [5, 10, 20, 40])
def test_exact_metrics_match_the_core_on_events(shape: str, n_bins: int) -> None:
    p, y = _window(seed=n_bins, n=50_000, shape=shape)
    summary = calibration_summary(
        _aggregate_in_buckets(p, y, 24), n_bins=n_bins, bootstrap_resamples=0
    )
    values = summary.values
    assert values["ece"] == pytest.approx(
        core.expected_calibration_error(p, y, n_bins=n_bins), abs=1e-12
    )
    assert values["mce"] == pytest.approx(
        core.maximum_calibration_error(p, y, n_bins=n_bins), abs=1e-12
    )
    assert values["rmsce"] == pytest.approx(
        core.rms_calibration_error(p, y, n_bins=n_bins), abs=1e-12
    )
    assert values["brier_score"] == pytest.approx(core.brier_score_loss(p, y), abs=1e-12)
    assert values["log_loss"] == pytest.approx(core.log_loss(p, y), abs=1e-10)
    decomposition = core.brier_decomposition(p, y, n_bins=n_bins)
    assert values["brier_reliability"] == pytest.approx(decomposition.reliability, abs=1e-12)
    assert values["brier_resolution"] == pytest.approx(decomposition.resolution, abs=1e-12)
    in_the_large = core.calibration_in_the_large(p, y)
    assert values["calibration_in_the_large"] == pytest.approx(in_the_large.difference, abs=1e-12)
    assert values["observed_expected_ratio"] == pytest.approx(
        in_the_large.observed_expected_ratio, rel=1e-12
    )
    assert values["spiegelhalter_pvalue"] == pytest.approx(
        spiegelhalter_z_test(p, y).pvalue, rel=1e-6, abs=1e-300
    )
    # The reliability diagram: the same occupied bins with the same numbers.
    expected_bins = core.reliability_bins(p, y, n_bins=n_bins)
    assert [b.index for b in summary.reliability_bins] == [b.index for b in expected_bins]
    for got, want in zip(summary.reliability_bins, expected_bins, strict=True):
        assert got.count == want.count
        assert got.mean_predicted == pytest.approx(want.mean_predicted, abs=1e-12)
        assert got.observed_ratio == pytest.approx(want.observed_ratio, abs=1e-12)
        assert got.ci_low == pytest.approx(want.ci_low, abs=1e-12)


def test_bin_edges_agree_with_the_core_on_values_at_bin_boundaries() -> None:
    # Values of the form k/M, and their float neighbours, are where floor(p*M) and a
    # cell-based fold could disagree; the power-of-two grid makes them agree.
    edges = np.arange(0, 41) / 40
    p = np.clip(np.concatenate([edges, np.nextafter(edges, 0), np.nextafter(edges, 1)]), 0, 1)
    y = np.arange(p.size) % 2
    for n_bins in (5, 10, 20, 40):
        values = calibration_summary(
            _aggregate_in_buckets(p, y.astype(float), 3), n_bins=n_bins, bootstrap_resamples=0
        ).values
        assert values["ece"] == pytest.approx(
            core.expected_calibration_error(p, y, n_bins=n_bins), abs=1e-12
        )
        assert values["mce"] == pytest.approx(
            core.maximum_calibration_error(p, y, n_bins=n_bins), abs=1e-12
        )


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_ace_is_within_its_stated_bound(shape: str, seed: int) -> None:
    p, y = _window(seed=seed, n=30_000, shape=shape)
    summary = calibration_summary(_aggregate_in_buckets(p, y, 5), bootstrap_resamples=0)
    exact = core.adaptive_calibration_error(p, y)
    assert abs(summary.values["ace"] - exact) <= summary.ace_error_bound + 1e-12
    if shape == "beta":  # continuous p: the bound is also small
        assert summary.ace_error_bound < 0.01


@pytest.mark.parametrize("shape", ["beta", "tails"])
def test_calibration_slope_from_cells_is_close_to_the_event_fit(shape: str) -> None:
    # Approximate by design (cell mean logits); 1e-3 is the bound we document.
    p, y = _window(seed=7, n=100_000, shape=shape)
    values = calibration_summary(_aggregate_in_buckets(p, y, 10), bootstrap_resamples=0).values
    exact = calibration_slope_intercept(p, y)
    assert values["calibration_slope"] == pytest.approx(exact.slope, abs=1e-3)
    assert values["calibration_intercept"] == pytest.approx(exact.intercept, abs=1e-3)


def test_undefined_metrics_are_absent_not_nan() -> None:
    aggregate = EventAggregate.empty()
    aggregate.add_labelled(np.array([0.2, 0.4, 0.9]), np.zeros(3))  # one class only
    values = calibration_summary(aggregate, bootstrap_resamples=0).values
    assert "brier_skill_score" not in values
    assert "calibration_slope" not in values
    assert all(np.isfinite(v) for v in values.values())
    assert values["brier_score"] == pytest.approx((0.04 + 0.16 + 0.81) / 3)


def test_empty_aggregate_has_no_metrics() -> None:
    summary = calibration_summary(EventAggregate.empty())
    assert summary.n_labelled == 0 and summary.values == {}


@pytest.mark.parametrize("kind", ["raw_score", "probability"])
def test_drift_from_aggregates_equals_drift_from_values(kind: str) -> None:
    rng = np.random.default_rng(11)
    if kind == "raw_score":
        reference_values, current = rng.normal(0, 2, 40_000), rng.normal(0.4, 2.3, 30_000)
    else:
        reference_values, current = rng.beta(2, 5, 40_000), rng.beta(2.5, 5, 30_000)
    reference = ReferenceProfile.fit(reference_values, kind=kind)  # type: ignore[arg-type]
    buckets = []
    for part in np.array_split(current, 12):
        bucket = EventAggregate.empty()
        if kind == "raw_score":
            bucket.add_scores(part)
        else:
            bucket.add_probabilities(part)
        buckets.append(bucket)
    from_aggregates = drift_summary(reference, EventAggregate.merge_all(buckets))
    direct = compare(reference, histogram_of(current, kind))  # type: ignore[arg-type]
    assert from_aggregates.psi == pytest.approx(direct.psi, abs=1e-12)
    assert from_aggregates.js_distance == pytest.approx(direct.js_distance, abs=1e-12)
    # And KS/Wasserstein are within their bounds of scipy on the raw samples.
    exact_ks = stats.ks_2samp(reference_values, current).statistic
    assert 0 <= exact_ks - from_aggregates.ks_statistic <= from_aggregates.ks_error_bound + 1e-12
    exact_w = stats.wasserstein_distance(reference_values, current)
    assert (
        abs(exact_w - from_aggregates.wasserstein_distance)
        <= from_aggregates.wasserstein_error_bound
    )


def test_label_delay_quantiles_within_sketch_accuracy() -> None:
    rng = np.random.default_rng(5)
    delays = rng.lognormal(mean=8, sigma=1.5, size=20_000)  # seconds: minutes to days
    aggregate = EventAggregate.empty()
    aggregate.add_label_delays(delays)
    quantiles = label_delay_quantiles(aggregate, (0.5, 0.9))
    for q, value in quantiles.items():
        exact = np.quantile(delays, q, method="inverted_cdf")
        assert abs(value - exact) <= 0.005 * exact * 1.0001

"""Bad input to the metrics core: a typed error naming the problem, never a silent NaN."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from monitor.metrics import calibration as cal
from monitor.metrics import drift
from monitor.metrics.bootstrap import ece_bootstrap_interval
from monitor.metrics.errors import (
    DegenerateReferenceError,
    MetricInputError,
    UndefinedMetricError,
)
from monitor.metrics.recalibration import calibration_slope_intercept
from monitor.metrics.tests_of_fit import hosmer_lemeshow_test, spiegelhalter_z_test

METRICS: list[Callable[[Any, Any], Any]] = [
    cal.expected_calibration_error,
    cal.adaptive_calibration_error,
    cal.maximum_calibration_error,
    cal.rms_calibration_error,
    cal.reliability_bins,
    cal.brier_score_loss,
    cal.brier_decomposition,
    cal.log_loss,
    cal.calibration_in_the_large,
    calibration_slope_intercept,
    spiegelhalter_z_test,
    hosmer_lemeshow_test,
    ece_bootstrap_interval,
]
GOOD_P = [0.1, 0.4, 0.6, 0.9]
GOOD_Y = [0, 1, 0, 1]


@pytest.mark.parametrize("metric", METRICS, ids=lambda m: m.__name__)
@pytest.mark.parametrize(
    ("p", "y", "message"),
    [
        ([0.1, float("nan"), 0.6, 0.9], GOOD_Y, r"probabilities: 1 value\(s\) are NaN.*index 1"),
        ([0.1, 0.4, float("inf"), 0.9], GOOD_Y, r"probabilities: .*NaN or infinite.*index 2"),
        ([0.1, 1.2, 0.6, -0.1], GOOD_Y, r"probabilities: 2 value\(s\) outside \[0, 1\].*1\.2"),
        (GOOD_P, [0, 1, 2, 1], r"labels: 1 label\(s\) are not 0 or 1.*index 2: 2\.0"),
        (GOOD_P, [0, 1, 0.5, 1], r"labels: .*not 0 or 1"),
        ([], [], r"probabilities: empty array"),
        (GOOD_P, [0, 1, 0], r"differ in length: 4 != 3"),
        ([[0.1, 0.2]], [[0, 1]], r"expected a 1-d array"),
        (["a", "b"], [0, 1], r"probabilities: not numeric"),
    ],
)
def test_invalid_arrays_raise_a_named_error(
    metric: Callable[[Any, Any], Any], p: Any, y: Any, message: str
) -> None:
    with pytest.raises(MetricInputError, match=message):
        metric(p, y)


@pytest.mark.parametrize("n_bins", [0, -3, 2.5, True])
def test_bad_bin_counts_are_rejected(n_bins: Any) -> None:
    with pytest.raises(MetricInputError, match="n_bins: expected a positive integer"):
        cal.expected_calibration_error(GOOD_P, GOOD_Y, n_bins=n_bins)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: calibration_slope_intercept([0.2, 0.7], [0, 0]), "every label"),
        (lambda: cal.brier_skill_score([0.2, 0.7], [1, 1]), "prevalence 0 or 1"),
        (lambda: cal.calibration_in_the_large([0.0, 0.0], [0, 1]), "every p is 0"),
        (lambda: spiegelhalter_z_test([0.5, 0.5], [0, 1]), "zero variance"),
        (lambda: hosmer_lemeshow_test(GOOD_P, GOOD_Y, n_groups=2), "at least 3 groups"),
    ],
)
def test_mathematically_undefined_metrics_say_why(call: Callable[[], Any], message: str) -> None:
    with pytest.raises(UndefinedMetricError, match=message):
        call()


def test_a_reference_with_a_single_distinct_value_is_degenerate() -> None:
    with pytest.raises(DegenerateReferenceError, match="single distinct value"):
        drift.ReferenceProfile.fit(np.full(1000, 0.3), kind="probability")
    with pytest.raises(DegenerateReferenceError, match="at least 2"):
        drift.ReferenceProfile.fit([1.5], kind="raw_score")


@pytest.mark.parametrize(
    ("values", "kind", "message"),
    [
        ([0.1, float("nan")], "raw_score", "NaN or infinite"),
        ([float("-inf"), 0.0], "raw_score", "NaN or infinite"),
        ([0.1, 1.5], "probability", r"outside \[0, 1\]"),
    ],
)
def test_drift_inputs_are_validated(values: list[float], kind: Any, message: str) -> None:
    profile = drift.ReferenceProfile.fit(np.linspace(0.01, 0.99, 200), kind=kind)
    with pytest.raises(MetricInputError, match=message):
        drift.population_stability_index(profile, values)
    with pytest.raises(MetricInputError, match=message):
        drift.ReferenceProfile.fit(values, kind=kind)


def test_ks_and_wasserstein_reject_empty_samples() -> None:
    with pytest.raises(MetricInputError, match="current: empty array"):
        drift.ks_2samp([0.1, 0.2], [])
    with pytest.raises(MetricInputError, match="reference: empty array"):
        drift.wasserstein_distance([], [0.1])


def test_an_empty_window_cannot_be_compared() -> None:
    profile = drift.ReferenceProfile.fit(np.linspace(-2, 2, 100), kind="raw_score")
    empty = drift.histogram_of([0.0], "raw_score")
    empty = type(empty)(empty.keys[:0], empty.values[:0])
    with pytest.raises(MetricInputError, match="no raw_score values in the current window"):
        drift.compare(profile, empty)


def test_probabilities_at_exactly_zero_and_one_are_valid() -> None:
    # Boundary values are legal input: finite results, log loss clipped.
    p, y = [0.0, 1.0, 1.0, 0.0], [0, 1, 0, 1]
    assert np.isfinite(cal.log_loss(p, y))
    # bin 0: p=0 twice, one positive (gap 0.5); bin 9: p=1 twice, one positive (0.5)
    assert cal.expected_calibration_error(p, y) == pytest.approx(0.5)
    assert np.isfinite(calibration_slope_intercept([0.0, 0.3, 0.7, 1.0], [0, 1, 0, 1]).slope)

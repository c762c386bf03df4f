"""Label-free estimates against simulations where the truth is known: labels drawn as
Bernoulli(p) make the model calibrated by construction, so each realised metric
(scikit-learn on the events) averages, over many label draws, to the estimate."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import accuracy_score, brier_score_loss, log_loss, roc_auc_score

from monitor.metrics.aggregates import EventAggregate
from monitor.metrics.estimates import (
    estimate_gaps,
    estimated_on_labelled,
    estimated_performance,
    expected_accuracy,
    expected_brier,
    expected_log_loss,
)
from monitor.metrics.summary import calibration_summary

SEEDS = 300


def _probabilities(seed: int, n: int, shape: str) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if shape == "beta":
        return rng.beta(2.0, 5.0, n)
    if shape == "tails":  # a fraud model: most p far below 1e-3, a few near 1
        return np.concatenate(
            [10 ** rng.uniform(-9, -3, n - n // 20), 1 - 10 ** rng.uniform(-6, -1, n // 20)]
        )
    assert shape == "spread"
    return rng.uniform(0, 1, n)


def _unlabelled(p: np.ndarray) -> EventAggregate:
    aggregate = EventAggregate.empty()
    for part in np.array_split(p, 7):  # merged buckets, as a window reads them
        bucket = EventAggregate.empty()
        bucket.add_probabilities(part)
        aggregate.merge(EventAggregate.from_bytes(bucket.to_bytes()))
    return aggregate


def _labelled(p: np.ndarray, y: np.ndarray) -> EventAggregate:
    aggregate = _unlabelled(p)
    aggregate.add_labelled(p, y)
    return aggregate


def _draws(p: np.ndarray, seed: int) -> np.ndarray:
    """SEEDS label vectors of a perfectly calibrated model, one per row."""
    rng = np.random.default_rng(seed)
    return (rng.uniform(size=(SEEDS, p.size)) < p).astype(float)


def _assert_mean_matches(realised: list[float], estimate: float, bound: float) -> None:
    mean = float(np.mean(realised))
    standard_error = float(np.std(realised, ddof=1) / np.sqrt(len(realised)))
    assert abs(mean - estimate) <= 4 * standard_error + bound, (mean, estimate, standard_error)


@pytest.mark.parametrize("shape", ["beta", "spread"])
def test_estimates_are_the_realised_metrics_in_expectation(shape: str) -> None:
    p = _probabilities(1, 4000, shape)
    estimate = estimated_performance(_unlabelled(p))
    draws = _draws(p, seed=2)
    _assert_mean_matches(
        [brier_score_loss(y, p) for y in draws],
        estimate.brier_score,
        estimate.brier_score_error_bound,
    )
    _assert_mean_matches(
        [log_loss(y, p, labels=[0, 1]) for y in draws],
        estimate.log_loss,
        estimate.log_loss_error_bound,
    )
    _assert_mean_matches(
        [accuracy_score(y, p >= 0.5) for y in draws],
        estimate.accuracy,
        estimate.accuracy_error_bound,
    )
    # CBPE's AUC is a ratio of expectations: 1e-3 allows for its O(1/n) bias.
    assert estimate.roc_auc is not None
    _assert_mean_matches([roc_auc_score(y, p) for y in draws], estimate.roc_auc, 1e-3)


@pytest.mark.parametrize("shape", ["beta", "tails", "spread"])
def test_cell_estimates_are_within_their_bound_of_the_exact_expectation(shape: str) -> None:
    p = _probabilities(3, 50_000, shape)
    estimate = estimated_performance(_unlabelled(p))
    for value, bound, expected in (
        (estimate.brier_score, estimate.brier_score_error_bound, expected_brier),
        (estimate.log_loss, estimate.log_loss_error_bound, expected_log_loss),
        (estimate.accuracy, estimate.accuracy_error_bound, expected_accuracy),
    ):
        assert abs(value - float(np.mean(expected(p)))) <= bound + 1e-12
    # The bounds the docs state.
    assert estimate.brier_score_error_bound <= 5e-5
    assert estimate.accuracy_error_bound <= 5e-5
    assert estimate.log_loss_error_bound <= 1e-3


def test_the_estimate_on_labelled_events_is_exact_for_brier_and_accuracy() -> None:
    p = _probabilities(4, 10_000, "spread")
    y = _draws(p, seed=5)[0]
    estimate = estimated_on_labelled(_labelled(p, y))
    assert estimate.brier_score == pytest.approx(float(np.mean(p * (1 - p))), abs=1e-12)
    assert estimate.accuracy == pytest.approx(float(np.mean(np.maximum(p, 1 - p))), abs=1e-12)
    assert abs(estimate.log_loss - float(np.mean(expected_log_loss(p)))) <= (
        estimate.log_loss_error_bound + 1e-12
    )


def test_the_gap_is_noise_when_calibrated_and_large_when_over_confident() -> None:
    p = _probabilities(6, 20_000, "beta")
    rng = np.random.default_rng(7)
    calibrated_y = (rng.uniform(size=p.size) < p).astype(float)
    # Over-confident: the truth is the model's logit shrunk by half.
    logit = np.log(p) - np.log1p(-p)
    truth = 1 / (1 + np.exp(-0.5 * logit))
    shrunk_y = (rng.uniform(size=p.size) < truth).astype(float)
    gaps = {}
    for name, y in (("calibrated", calibrated_y), ("over-confident", shrunk_y)):
        aggregate = _labelled(p, y)
        realised = calibration_summary(aggregate, bootstrap_resamples=0).values
        gaps[name] = estimate_gaps(aggregate, realised)
        assert gaps[name]["estimated_brier_score_gap"] == pytest.approx(
            brier_score_loss(y, p) - float(np.mean(p * (1 - p))), abs=1e-12
        )
        assert gaps[name]["estimated_accuracy_score_gap"] == pytest.approx(
            accuracy_score(y, p >= 0.5) - float(np.mean(np.maximum(p, 1 - p))), abs=1e-12
        )
    # Calibrated: within sampling noise (sd of the Brier gap is below 0.003 here).
    assert abs(gaps["calibrated"]["estimated_brier_score_gap"]) < 0.006
    assert abs(gaps["calibrated"]["estimated_roc_auc_score_gap"]) < 0.02
    # Over-confident: the model promised a lower Brier score than it delivers.
    assert gaps["over-confident"]["estimated_brier_score_gap"] > 0.02
    assert gaps["over-confident"]["estimated_log_loss_gap"] > 0.05


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31), st.integers(50, 2000), st.floats(0.2, 5.0), st.floats(0.2, 5.0))
def test_estimated_brier_is_the_realised_brier_in_expectation(
    seed: int, n: int, a: float, b: float
) -> None:
    p = np.random.default_rng(seed).beta(a, b, n)
    estimate = estimated_performance(_unlabelled(p))
    draws = _draws(p, seed + 1)
    realised = ((draws - p) ** 2).mean(axis=1)  # per draw, as brier_score_loss computes it
    _assert_mean_matches(list(realised), estimate.brier_score, estimate.brier_score_error_bound)

"""Calibrators refitted from the raw score, from the aggregate's raw-score cells, versus
the same methods fitted on the events by scikit-learn, and by hand on a few cells."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit, logit
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from monitor.metrics.aggregates import EventAggregate
from monitor.metrics.calibrators.candidates import fit_candidates
from monitor.metrics.calibrators.cells import LabelledCells
from monitor.metrics.calibrators.raw_fit import (
    RAW_METHODS,
    fit_raw_histogram,
    fit_raw_isotonic,
    fit_raw_platt,
)


def _cells(raw: np.ndarray, p: np.ndarray, y: np.ndarray) -> LabelledCells:
    aggregate = EventAggregate.empty()
    aggregate.add_labelled(p, y)
    aggregate.add_raw_labelled(raw, p, y)
    # As the store keeps it: serialised and read back.
    return LabelledCells.of(EventAggregate.from_bytes(aggregate.to_bytes()))


def _margins(seed: int, n: int, slope: float, intercept: float, scale: float = 1.0):
    """Margins s, the probability a (stale) calibrator serves, and labels whose truth is
    expit(intercept + slope * s / scale)."""
    rng = np.random.default_rng(seed)
    s = rng.normal(0.3, 2.0, n) * scale
    p = expit(0.8 * s / scale)
    y = (rng.uniform(size=n) < expit(intercept + slope * s / scale)).astype(float)
    return s, p, y


def _sklearn_line(feature: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    model = LogisticRegression(C=np.inf, tol=1e-10, max_iter=10_000).fit(feature[:, None], y)
    return float(model.intercept_[0]), float(model.coef_[0, 0])


@pytest.mark.parametrize("scale", [1.0, 1_000.0, 1e-3])
def test_platt_on_margins_matches_logistic_regression_on_the_events(scale: float) -> None:
    s, p, y = _margins(1, 40_000, 0.6, -0.4, scale)
    intercept, slope = _sklearn_line(s / scale, y)  # sklearn on the unscaled margin
    fitted = fit_raw_platt(_cells(s, p, y))
    assert fitted.map.space == "score_logit" and fitted.input == "raw_score"
    # Events sit at their cell's mean margin (cells 0.5% wide): measured 2e-5.
    assert fitted.parameters["intercept"] == pytest.approx(intercept, abs=2e-4)
    assert fitted.parameters["slope"] * scale == pytest.approx(slope, abs=2e-4)
    assert np.abs(fitted(s) - expit(intercept + slope * s / scale)).max() < 1e-4


def test_platt_on_scores_in_the_unit_interval_is_fitted_on_their_logit() -> None:
    rng = np.random.default_rng(2)
    s = rng.beta(0.7, 2.0, 40_000)  # an uncalibrated probability, piled up near 0
    p = np.clip(s * 0.9 + 0.02, 0, 1)
    y = (rng.uniform(size=s.size) < expit(0.3 + 0.7 * logit(s))).astype(float)
    intercept, slope = _sklearn_line(logit(s), y)
    fitted = fit_raw_platt(_cells(s, p, y))
    assert fitted.map.space == "logit"
    # Each cell's events sit at the logit of its mean score: the cells are at most 1/1024
    # wide and ln 2 in logit, so the bias is second order in that spread: measured 1e-4.
    assert fitted.parameters["intercept"] == pytest.approx(intercept, abs=1e-3)
    assert fitted.parameters["slope"] == pytest.approx(slope, abs=1e-3)
    assert np.abs(fitted(s) - expit(intercept + slope * logit(s))).max() < 5e-4


def test_isotonic_is_sklearn_isotonic_regression_on_the_cells() -> None:
    s, p, y = _margins(3, 5_000, 0.6, 0.0)
    raw = _cells(s, p, y).raw
    assert raw is not None
    reference = IsotonicRegression(out_of_bounds="clip").fit(
        raw.mean_score, raw.positives / raw.count, sample_weight=raw.count
    )
    fitted = fit_raw_isotonic(_cells(s, p, y))
    assert fitted.map.space == "score"
    anywhere = np.r_[np.linspace(-20, 20, 20_001), s]
    np.testing.assert_allclose(fitted(anywhere), reference.predict(anywhere), atol=1e-12)


def test_isotonic_from_cells_is_close_to_isotonic_on_the_events() -> None:
    s, p, y = _margins(4, 40_000, 0.6, 0.0)
    events = IsotonicRegression(out_of_bounds="clip").fit(s, y).predict(s)
    fitted = fit_raw_isotonic(_cells(s, p, y))(s)
    assert np.abs(fitted - events).mean() < 3e-3


def test_histogram_two_bins_by_hand() -> None:
    # Four events at each of s = -2, -0.5, 0.7, 3 with 1, 2, 1, 4 positives.
    s = np.repeat([-2.0, -0.5, 0.7, 3.0], 4)
    y = np.array([1, 0, 0, 0, 1, 1, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1], dtype=float)
    fitted = fit_raw_histogram(_cells(s, expit(s), y), n_bins=2)
    # Bins {-2, -0.5} (3 of 8) and {0.7, 3} (5 of 8): constant inside, linear between.
    assert fitted(np.array([-5.0, -2.0, -0.5, 0.7, 3.0, 9.0])) == pytest.approx(
        [3 / 8, 3 / 8, 3 / 8, 5 / 8, 5 / 8, 5 / 8]
    )
    assert fitted(np.array([0.1]))[0] == pytest.approx(3 / 8 + (0.6 / 1.2) * (2 / 8))


def test_a_refit_is_skipped_with_the_reason_when_some_events_lack_a_raw_score() -> None:
    s, p, y = _margins(5, 2_000, 0.6, 0.0)
    aggregate = EventAggregate.empty()
    aggregate.add_labelled(p, y)
    aggregate.add_raw_labelled(s[:1500], p[:1500], y[:1500])
    fitted, skipped = fit_candidates(LabelledCells.of(aggregate))
    assert set(RAW_METHODS) <= set(skipped) and not set(RAW_METHODS) & set(fitted)
    assert skipped["raw_platt"].startswith("only 1500 of the 2000 labelled events")
    aggregate = EventAggregate.empty()
    aggregate.add_labelled(p, y)
    _, skipped = fit_candidates(LabelledCells.of(aggregate))
    assert skipped["raw_isotonic"] == "the window's labelled events carry no raw score"


def test_labels_falling_with_the_raw_score_give_a_flat_platt() -> None:
    s = np.repeat([-1.0, 0.5, 2.0], 100)
    y = np.concatenate([np.r_[np.ones(k), np.zeros(100 - k)] for k in (60, 40, 30)])
    fitted = fit_raw_platt(_cells(s, expit(s), y))
    assert fitted.parameters["slope"] == 0.0
    assert fitted.parameters["intercept"] == pytest.approx(logit(130 / 300), abs=1e-6)

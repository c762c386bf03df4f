"""Candidate calibrators fitted from aggregates versus the same methods fitted on the
events by scikit-learn, and versus hand-computed fits on a few cells."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit, logit
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from monitor.metrics.aggregates import EventAggregate
from monitor.metrics.calibrators.candidates import METHODS, fit_candidates
from monitor.metrics.calibrators.cells import LabelledCells
from monitor.metrics.calibrators.fit import (
    BETA_KNOTS,
    fit_beta,
    fit_histogram,
    fit_identity,
    fit_isotonic,
    fit_platt,
    fit_temperature,
)


def _events(seed: int, n: int, slope: float, intercept: float) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities served by a model whose truth is expit(intercept + slope * logit p)."""
    rng = np.random.default_rng(seed)
    p = rng.beta(1.2, 2.5, n)
    y = (rng.uniform(size=n) < expit(intercept + slope * logit(p))).astype(float)
    return p, y


def _cells(p: np.ndarray, y: np.ndarray, raw: np.ndarray | None = None) -> LabelledCells:
    aggregate = EventAggregate.empty()
    aggregate.add_labelled(p, y)
    if raw is not None:
        aggregate.add_raw_labelled(raw, p, y)
    # As the store keeps it: serialised and read back.
    return LabelledCells.of(EventAggregate.from_bytes(aggregate.to_bytes()))


def _sklearn_logistic(features: np.ndarray, y: np.ndarray, *, intercept: bool) -> np.ndarray:
    model = LogisticRegression(C=np.inf, fit_intercept=intercept, tol=1e-10, max_iter=10_000)
    model.fit(features, y)
    return np.r_[model.intercept_, model.coef_[0]] if intercept else model.coef_[0]


# -- against scikit-learn on the events -------------------------------------------------


@pytest.mark.parametrize(("slope", "intercept"), [(0.6, 0.3), (1.5, -0.4), (1.0, 0.0)])
def test_platt_matches_logistic_regression_on_the_events(slope: float, intercept: float) -> None:
    p, y = _events(1, 40_000, slope, intercept)
    reference = _sklearn_logistic(logit(p)[:, None], y, intercept=True)
    fitted = fit_platt(_cells(p, y))
    # The one approximation: events sit at their cell's mean logit (cells 1/10240 wide).
    assert fitted.parameters["intercept"] == pytest.approx(reference[0], abs=2e-3)
    assert fitted.parameters["slope"] == pytest.approx(reference[1], abs=2e-3)
    assert np.abs(fitted(p) - expit(reference[0] + reference[1] * logit(p))).max() < 1e-3


@pytest.mark.parametrize("slope", [0.5, 1.8])
def test_temperature_matches_logistic_regression_without_intercept(slope: float) -> None:
    p, y = _events(2, 40_000, slope, 0.0)
    (reference,) = _sklearn_logistic(logit(p)[:, None], y, intercept=False)
    fitted = fit_temperature(_cells(p, y))
    assert 1.0 / fitted.parameters["temperature"] == pytest.approx(reference, abs=2e-3)
    assert np.abs(fitted(p) - expit(reference * logit(p))).max() < 1e-3


def test_beta_matches_logistic_regression_on_log_p_and_log_one_minus_p() -> None:
    """Kull et al.'s own recipe (the betacal package): a logistic regression on the two
    features ln p and -ln(1 - p)."""
    p, y = _events(3, 40_000, 0.7, 0.2)
    features = np.column_stack([np.log(p), -np.log1p(-p)])
    c, a, b = _sklearn_logistic(features, y, intercept=True)
    assert a > 0 and b > 0  # the unconstrained fit is monotone, so the constraint is idle
    fitted = fit_beta(_cells(p, y))
    assert fitted.parameters["a"] == pytest.approx(a, abs=3e-3)
    assert fitted.parameters["b"] == pytest.approx(b, abs=3e-3)
    assert fitted.parameters["c"] == pytest.approx(c, abs=3e-3)
    exact = expit(c + a * np.log(p) - b * np.log1p(-p))
    assert np.abs(fitted(p) - exact).max() < 2e-3


def test_beta_map_interpolates_its_formula_within_the_stated_bound() -> None:
    p, y = _events(4, 20_000, 0.4, 0.5)
    fitted = fit_beta(_cells(p, y))
    a, b, c = (fitted.parameters[k] for k in ("a", "b", "c"))
    grid = expit(np.linspace(-30, 30, 10_001))
    formula = c + a * np.log(grid) - b * np.log1p(-grid)
    step = BETA_KNOTS[1] - BETA_KNOTS[0]
    bound = abs(a - b) * step**2 / 32 + 1e-7
    assert np.abs(logit(fitted(grid)) - formula).max() <= bound


def test_isotonic_is_sklearn_isotonic_regression_on_the_cells() -> None:
    """PAVA over the cells weighted by count is scikit-learn's IsotonicRegression fitted
    on (cell mean p, cell rate, count): the same map everywhere, not only at the cells."""
    p, y = _events(5, 5_000, 0.6, 0.0)
    cells = _cells(p, y)
    reference = IsotonicRegression(out_of_bounds="clip").fit(
        cells.mean_p, cells.positives / cells.count, sample_weight=cells.count
    )
    fitted = fit_isotonic(cells)
    anywhere = np.r_[np.linspace(0, 1, 20_001), p]
    np.testing.assert_allclose(fitted(anywhere), reference.predict(anywhere), atol=1e-12)


def test_isotonic_from_cells_is_close_to_isotonic_on_the_events() -> None:
    p, y = _events(6, 40_000, 0.6, 0.0)
    events = IsotonicRegression(out_of_bounds="clip").fit(p, y).predict(p)
    fitted = fit_isotonic(_cells(p, y))(p)
    # Only events that share a cell can be pooled differently; on average the two maps
    # agree to well within the statistical noise of the fit itself.
    assert np.abs(fitted - events).mean() < 2e-3


# -- hand-computed on a few cells --------------------------------------------------------


def _four_cells() -> LabelledCells:
    # Four events at each of p = 0.1, 0.3, 0.6, 0.9 with 1, 2, 1, 4 positives.
    p = np.repeat([0.1, 0.3, 0.6, 0.9], 4)
    y = np.array([1, 0, 0, 0, 1, 1, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1], dtype=float)
    return _cells(p, y)


def test_histogram_two_bins_by_hand() -> None:
    fitted = fit_histogram(_four_cells(), n_bins=2)
    np.testing.assert_allclose(fitted.map.x, [0.1, 0.3, 0.6, 0.9])
    np.testing.assert_allclose(fitted.map.y, [3 / 8, 3 / 8, 5 / 8, 5 / 8])
    assert fitted(np.array([0.45]))[0] == pytest.approx(0.5)  # halfway between the bins


def test_histogram_pools_bins_that_break_monotonicity() -> None:
    # Rates 1/4, 2/4, 1/4, 4/4: the middle two pool to 3/8.
    fitted = fit_histogram(_four_cells(), n_bins=4)
    np.testing.assert_allclose(fitted.map.y, [0.25, 0.375, 0.375, 1.0])
    assert fitted.parameters["bins"] == 4


def test_isotonic_by_hand() -> None:
    fitted = fit_isotonic(_four_cells())
    assert fitted.parameters["blocks"] == 3
    np.testing.assert_allclose(fitted.map.x, [0.1, 0.3, 0.6, 0.9])
    np.testing.assert_allclose(fitted.map.y, [0.25, 0.375, 0.375, 1.0])


def test_platt_on_two_cells_fits_both_rates_exactly() -> None:
    # Two cells, two parameters: the maximum-likelihood line passes through both rates.
    p = np.repeat([0.2, 0.7], 10)
    y = np.r_[np.ones(3), np.zeros(7), np.ones(6), np.zeros(4)]
    fitted = fit_platt(_cells(p, y))
    slope = (logit(0.6) - logit(0.3)) / (logit(0.7) - logit(0.2))
    assert fitted.parameters["slope"] == pytest.approx(slope, abs=1e-6)
    assert fitted.parameters["intercept"] == pytest.approx(
        logit(0.3) - slope * logit(0.2), abs=1e-6
    )
    np.testing.assert_allclose(fitted(np.array([0.2, 0.7])), [0.3, 0.6], atol=1e-6)


def test_temperature_on_one_cell_fits_its_rate() -> None:
    p = np.full(10, 0.9)
    y = np.r_[np.ones(7), np.zeros(3)]
    fitted = fit_temperature(_cells(p, y))
    assert fitted.parameters["temperature"] == pytest.approx(logit(0.9) / logit(0.7), abs=1e-6)


def test_beta_on_three_cells_fits_every_rate() -> None:
    p = np.repeat([0.2, 0.5, 0.8], 20)
    y = np.concatenate([np.r_[np.ones(k), np.zeros(20 - k)] for k in (6, 10, 14)])
    fitted = fit_beta(_cells(p, y))
    np.testing.assert_allclose(fitted(np.array([0.2, 0.5, 0.8])), [0.3, 0.5, 0.7], atol=1e-5)


def test_identity_maps_every_p_to_itself() -> None:
    grid = np.r_[1e-12, np.linspace(0.001, 0.999, 999), 1 - 1e-12]
    np.testing.assert_allclose(fit_identity(_four_cells())(grid), grid, rtol=1e-9)


def test_one_class_window_offers_identity_only_and_says_why() -> None:
    p = np.linspace(0.1, 0.9, 50)
    fitted, skipped = fit_candidates(_cells(p, np.zeros(50), raw=logit(p)))
    assert list(fitted) == ["identity"]
    assert set(skipped) == set(METHODS) - {"identity"}
    assert all("every label is the same" in reason for reason in skipped.values())


def test_every_candidate_is_monotone() -> None:
    p, y = _events(7, 3_000, 0.5, 0.5)
    fitted, skipped = fit_candidates(_cells(p, y, raw=3 * logit(p) - 1))
    assert not skipped and list(fitted) == list(METHODS)
    grid = np.linspace(0, 1, 10_001)
    raw_grid = np.linspace(-100, 100, 10_001)
    for calibrator in fitted.values():
        values = grid if calibrator.input == "probability" else raw_grid
        assert np.all(np.diff(calibrator(values)) >= 0), calibrator.method


def test_labels_falling_with_p_give_flat_monotone_maps() -> None:
    """An anti-calibrated window: the unconstrained fits want a negative slope, which
    would reverse the ranking; Platt and beta are held at slope 0 (the base rate)."""
    p = np.repeat([0.2, 0.5, 0.8], 100)
    y = np.concatenate([np.r_[np.ones(k), np.zeros(100 - k)] for k in (60, 40, 30)])
    cells = _cells(p, y)
    platt = fit_platt(cells)
    assert platt.parameters["slope"] == 0.0
    assert platt.parameters["intercept"] == pytest.approx(logit(130 / 300), abs=1e-6)
    beta = fit_beta(cells)
    assert beta.parameters["a"] >= 0 and beta.parameters["b"] >= 0
    grid = np.linspace(0.001, 0.999, 999)
    assert np.all(np.diff(beta(grid)) >= -1e-12)
    _, skipped = fit_candidates(cells)
    assert "no positive slope" in skipped["temperature"]

"""Candidate calibrators fitted from a window's labelled cells, never from its events.

Each is a correction g of the probability the model serves now (new p = g(p)), fitted
by maximum likelihood or by least squares on the cells of ``cells.py``:

- ``identity``: keep the current calibrator (the baseline every other must beat);
- ``temperature``: logit g = logit(p) / T (one parameter);
- ``platt``: logit g = intercept + slope * logit(p), slope >= 0;
- ``beta`` (Kull, Silva Filho and Flach, 2017): logit g = c + a ln p - b ln(1 - p),
  with a, b >= 0 so that g is monotone;
- ``histogram``: equal-mass bins of whole cells, each mapped to its observed rate (bins
  that break monotonicity are pooled, so the map keeps the model's ranking);
- ``isotonic``: PAVA over the cells weighted by their counts (scipy's
  ``isotonic_regression``), interpolated linearly between each block's first and last
  cell, as scikit-learn's ``IsotonicRegression`` predicts.

The logistic fits (temperature, Platt, beta) maximise the binomial log-likelihood of the
cells with scipy's trust-region Newton (``trust-exact``): every event of a cell is put
at the cell's mean logit.

>>> import numpy as np
>>> from monitor.metrics.aggregates import EventAggregate
>>> rng = np.random.default_rng(1)
>>> p = rng.uniform(0.01, 0.99, 50_000)
>>> truth = 1 / (1 + np.exp(-0.5 * np.log(p / (1 - p))))  # the model is over-confident
>>> aggregate = EventAggregate.empty()
>>> aggregate.add_labelled(p, (rng.uniform(size=p.size) < truth).astype(float))
>>> round(fit_temperature(LabelledCells.of(aggregate)).parameters["temperature"], 1)
2.0
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import isotonic_regression, minimize
from scipy.special import expit, log_expit

from monitor.metrics.binned import equal_mass_groups
from monitor.metrics.calibrators.cells import LabelledCells
from monitor.metrics.calibrators.maps import PiecewiseLinearMap
from monitor.metrics.errors import UndefinedMetricError
from monitor.metrics.validation import FloatArray

#: Candidates from the simplest map to the most flexible: the order in which the
#: selection (``validate.py``) prefers them when their scores cannot be told apart.
METHODS = ("identity", "temperature", "platt", "beta", "histogram", "isotonic")
#: Bins of the histogram-binning candidate.
HISTOGRAM_BINS = 10
#: Knots of the beta map: logit(p) from -16 to 16 in steps of 0.25. Linear interpolation
#: is off by at most |a - b| * step^2 / 32 in logit (the map's second derivative is
#: (b - a) p (1 - p)); beyond +-16 the map is a straight line to within 1e-7.
BETA_KNOTS = np.linspace(-16.0, 16.0, 129)
_LARGEST_COEFFICIENT = 1e3
#: Gradient (of the mean log loss per event) below which a logistic fit has converged.
_GRADIENT_TOLERANCE = 1e-7


@dataclass(frozen=True)
class Calibrator:
    method: str
    parameters: dict[str, float]
    map: PiecewiseLinearMap
    #: Parameters a fit would have, counted as the selection's measure of simplicity.
    complexity: int = field(default=0, compare=False)

    def __call__(self, p: FloatArray) -> FloatArray:
        return self.map(np.asarray(p, dtype=np.float64))


def fit_identity(cells: LabelledCells) -> Calibrator:
    return Calibrator("identity", {}, _line(0.0, 1.0), 0)


def fit_temperature(cells: LabelledCells) -> Calibrator:
    cells = _for_logistic_fit(cells)
    (slope,) = _fit_logistic(cells.mean_logit[:, None], cells, start=[1.0])
    if slope <= 0:
        raise UndefinedMetricError("temperature: the labels fall as p rises (no positive slope)")
    return Calibrator("temperature", {"temperature": 1.0 / slope}, _line(0.0, slope), 1)


def fit_platt(cells: LabelledCells) -> Calibrator:
    cells = _for_logistic_fit(cells)
    features = np.column_stack([np.ones_like(cells.mean_logit), cells.mean_logit])
    intercept, slope = _fit_logistic(features, cells, start=[0.0, 1.0])
    if slope < 0:  # monotone only with slope >= 0: the constrained optimum has slope 0
        (intercept,), slope = _fit_logistic(features[:, :1], cells, start=[0.0]), 0.0
    return Calibrator("platt", {"intercept": intercept, "slope": slope}, _line(intercept, slope), 2)


def fit_beta(cells: LabelledCells) -> Calibrator:
    cells = _for_logistic_fit(cells)
    features = beta_features(cells.mean_logit)
    coefficients = _fit_logistic(features, cells, start=[0.0, 1.0, 1.0])
    # a, b >= 0 keeps the map monotone. As Kull et al.'s betacal does, a negative one is
    # set to 0 and the others refitted (the likelihood is concave, so this is the
    # constrained optimum when one bound is active; if both are, only c remains).
    free = [0, 1, 2]
    while any(coefficients[i] < 0 for i in range(1, len(free))):
        worst = min(range(1, len(free)), key=lambda i: coefficients[i])
        del free[worst]
        coefficients = _fit_logistic(features[:, free], cells, start=[0.0] * len(free))
    c, a, b = (coefficients[free.index(i)] if i in free else 0.0 for i in range(3))
    knots = beta_features(BETA_KNOTS) @ np.array([c, a, b])
    return Calibrator(
        "beta", {"a": a, "b": b, "c": c}, PiecewiseLinearMap("logit", BETA_KNOTS, knots), 3
    )


def beta_features(logit: FloatArray) -> FloatArray:
    """Columns 1, ln p, -ln(1 - p) of each logit (computed stably from the logit)."""
    return np.column_stack([np.ones_like(logit), log_expit(logit), -log_expit(-logit)])


def fit_isotonic(cells: LabelledCells) -> Calibrator:
    _require_both_labels(cells)
    result = isotonic_regression(cells.positives / cells.count, weights=cells.count)
    starts = np.asarray(result.blocks[:-1])
    values = np.asarray(result.x)[starts]
    return Calibrator(
        "isotonic",
        {"blocks": float(starts.size)},
        _blocks_map(cells.mean_p, starts, np.asarray(result.blocks[1:]), values),
        int(starts.size),
    )


def fit_histogram(cells: LabelledCells, *, n_bins: int = HISTOGRAM_BINS) -> Calibrator:
    _require_both_labels(cells)
    groups = equal_mass_groups(cells.count, n_bins)
    # Consecutive cells share a group; a cell heavier than a bin leaves some groups empty.
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    ends = np.r_[starts[1:], groups.size]
    count = np.add.reduceat(cells.count, starts)
    positives = np.add.reduceat(cells.positives, starts)
    pooled = np.asarray(isotonic_regression(positives / count, weights=count).x)
    return Calibrator(
        "histogram",
        {"bins": float(starts.size)},
        _blocks_map(cells.mean_p, starts, ends, pooled),
        int(starts.size),
    )


FITTERS: dict[str, Callable[[LabelledCells], Calibrator]] = {
    "identity": fit_identity,
    "temperature": fit_temperature,
    "platt": fit_platt,
    "beta": fit_beta,
    "histogram": fit_histogram,
    "isotonic": fit_isotonic,
}


def fit_candidates(cells: LabelledCells) -> tuple[dict[str, Calibrator], dict[str, str]]:
    """Every candidate that can be fitted, and why the others could not."""
    fitted: dict[str, Calibrator] = {}
    skipped: dict[str, str] = {}
    for method in METHODS:
        try:
            fitted[method] = FITTERS[method](cells)
        except UndefinedMetricError as error:
            skipped[method] = str(error)
    return fitted, skipped


def _line(intercept: float, slope: float) -> PiecewiseLinearMap:
    """logit g = intercept + slope * logit p: two knots, extended linearly."""
    x = np.array([-1.0, 1.0])
    return PiecewiseLinearMap("logit", x, intercept + slope * x)


def _blocks_map(
    mean_p: FloatArray, starts: np.ndarray, ends: np.ndarray, values: FloatArray
) -> PiecewiseLinearMap:
    """Constant ``values`` over each block of cells [start, end), linear between blocks:
    knots at each block's first and last cell mean (once if it has one cell)."""
    first, last = mean_p[starts], mean_p[ends - 1]
    x = np.column_stack([first, last]).ravel()
    y = np.repeat(values, 2)
    keep = np.r_[True, np.diff(x) > 0]
    return PiecewiseLinearMap("probability", x[keep], np.clip(y[keep], 0.0, 1.0))


def _for_logistic_fit(cells: LabelledCells) -> LabelledCells:
    _require_both_labels(cells)
    return cells.coarsened()


def _require_both_labels(cells: LabelledCells) -> None:
    if cells.n_positive == 0 or cells.n_positive == cells.n:
        raise UndefinedMetricError("no calibrator can be fitted when every label is the same")


def _fit_logistic(features: FloatArray, cells: LabelledCells, *, start: list[float]) -> list[float]:
    """Maximum-likelihood coefficients of logit P(y) = features @ beta on the cells.

    The log-likelihood is concave with an exact Hessian, so scipy's ``trust-exact``
    Newton steps reach the optimum in a few iterations over the cells.
    """
    n, s = cells.count, cells.positives
    total = float(n.sum())

    def loss_and_gradient(beta: FloatArray) -> tuple[float, FloatArray]:
        z = features @ beta
        loss = float((n * np.logaddexp(0.0, z) - s * z).sum()) / total
        return loss, features.T @ (n * expit(z) - s) / total

    def hessian(beta: FloatArray) -> FloatArray:
        mu = expit(features @ beta)
        return np.asarray((features.T * (n * mu * (1.0 - mu))) @ features / total)

    result = minimize(
        loss_and_gradient,
        np.array(start),
        jac=True,
        hess=hessian,
        method="trust-exact",
        options={"gtol": 1e-8, "maxiter": 200},
    )
    coefficients = np.asarray(result.x, dtype=np.float64)
    # Near the optimum the loss stops changing in floating point and trust-exact may
    # report that it cannot improve: the gradient says whether it got there.
    converged = result.success or np.abs(result.jac).max() < _GRADIENT_TOLERANCE
    if not converged or not np.all(np.isfinite(coefficients)):
        raise UndefinedMetricError(f"the logistic fit did not converge: {result.message}")
    if np.any(np.abs(coefficients) >= _LARGEST_COEFFICIENT):
        raise UndefinedMetricError("the logistic fit diverged (labels separable by p?)")
    return [float(c) for c in coefficients]

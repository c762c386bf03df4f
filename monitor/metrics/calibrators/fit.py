"""Candidate corrections fitted from a window's labelled cells, never from its events.

Each is a correction g of the probability the model serves now (new p = g(p)), fitted
by maximum likelihood or by least squares on the cells of ``cells.py`` (the refits of
the calibrator from the raw score are in ``raw_fit.py``, every candidate in
``candidates.py``):

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
cells by Newton's method (``newton.py``): every event of a cell is put at the cell's
mean logit.

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

from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np
from scipy.optimize import isotonic_regression
from scipy.special import log_expit

from monitor.metrics.binned import equal_mass_groups
from monitor.metrics.calibrators.cells import LabelledCells
from monitor.metrics.calibrators.maps import PiecewiseLinearMap, Space
from monitor.metrics.calibrators.newton import newton_logistic
from monitor.metrics.errors import UndefinedMetricError
from monitor.metrics.validation import FloatArray

#: Corrections of p from the simplest map to the most flexible: the order in which the
#: selection (``validate.py``) prefers them when their scores cannot be told apart.
CORRECTIONS = ("identity", "temperature", "platt", "beta", "histogram", "isotonic")
#: Bins of the histogram-binning candidate.
HISTOGRAM_BINS = 10
#: Knots of the beta map: logit(p) from -16 to 16 in steps of 0.25. Linear interpolation
#: is off by at most |a - b| * step^2 / 32 in logit (the map's second derivative is
#: (b - a) p (1 - p)); beyond +-16 the map is a straight line to within 1e-7.
BETA_KNOTS = np.linspace(-16.0, 16.0, 129)


#: What a calibrator maps: the probability served now, or the raw score.
Input = Literal["probability", "raw_score"]
INPUTS: tuple[Input, ...] = ("probability", "raw_score")


@dataclass(frozen=True)
class Calibrator:
    method: str
    parameters: dict[str, float]
    map: PiecewiseLinearMap
    #: Parameters a fit would have, counted as the selection's measure of simplicity.
    complexity: int = field(default=0, compare=False)
    input: Input = "probability"

    def __call__(self, values: FloatArray) -> FloatArray:
        """The new probabilities of the inputs (probabilities or raw scores)."""
        return self.map(np.asarray(values, dtype=np.float64))


class Binomial(Protocol):
    """Rows of events: how many, and how many positive (the cells of ``cells.py``)."""

    @property
    def count(self) -> FloatArray: ...

    @property
    def positives(self) -> FloatArray: ...


def fit_identity(cells: LabelledCells) -> Calibrator:
    return Calibrator("identity", {}, _line(0.0, 1.0), 0)


def fit_temperature(cells: LabelledCells) -> Calibrator:
    cells = _for_logistic_fit(cells)
    (slope,) = fit_logistic(cells.mean_logit[:, None], cells, start=[1.0])
    if slope <= 0:
        raise UndefinedMetricError("temperature: the labels fall as p rises (no positive slope)")
    return Calibrator("temperature", {"temperature": 1.0 / slope}, _line(0.0, slope), 1)


def fit_platt(cells: LabelledCells) -> Calibrator:
    cells = _for_logistic_fit(cells)
    features = np.column_stack([np.ones_like(cells.mean_logit), cells.mean_logit])
    intercept, slope = fit_logistic(features, cells, start=[0.0, 1.0])
    if slope < 0:  # monotone only with slope >= 0: the constrained optimum has slope 0
        (intercept,), slope = fit_logistic(features[:, :1], cells, start=[0.0]), 0.0
    return Calibrator("platt", {"intercept": intercept, "slope": slope}, _line(intercept, slope), 2)


def fit_beta(cells: LabelledCells) -> Calibrator:
    cells = _for_logistic_fit(cells)
    features = beta_features(cells.mean_logit)
    coefficients = fit_logistic(features, cells, start=[0.0, 1.0, 1.0])
    # a, b >= 0 keeps the map monotone. As Kull et al.'s betacal does, a negative one is
    # set to 0 and the others refitted (the likelihood is concave, so this is the
    # constrained optimum when one bound is active; if both are, only c remains).
    free = [0, 1, 2]
    while any(coefficients[i] < 0 for i in range(1, len(free))):
        worst = min(range(1, len(free)), key=lambda i: coefficients[i])
        del free[worst]
        coefficients = fit_logistic(features[:, free], cells, start=[0.0] * len(free))
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
    parameters, calibration_map = isotonic_map(cells.mean_p, cells, "probability")
    return Calibrator("isotonic", parameters, calibration_map, int(parameters["blocks"]))


def fit_histogram(cells: LabelledCells, *, n_bins: int = HISTOGRAM_BINS) -> Calibrator:
    _require_both_labels(cells)
    parameters, calibration_map = histogram_map(cells.mean_p, cells, "probability", n_bins)
    return Calibrator("histogram", parameters, calibration_map, int(parameters["bins"]))


def isotonic_map(
    x: FloatArray, rows: Binomial, space: Space
) -> tuple[dict[str, float], PiecewiseLinearMap]:
    """PAVA over rows at increasing ``x``, weighted by their counts."""
    result = isotonic_regression(rows.positives / rows.count, weights=rows.count)
    starts = np.asarray(result.blocks[:-1])
    values = np.asarray(result.x)[starts]
    ends = np.asarray(result.blocks[1:])
    return {"blocks": float(starts.size)}, _blocks_map(space, x, starts, ends, values)


def histogram_map(
    x: FloatArray, rows: Binomial, space: Space, n_bins: int
) -> tuple[dict[str, float], PiecewiseLinearMap]:
    """Equal-mass bins of whole rows at increasing ``x``, each mapped to its rate."""
    groups = equal_mass_groups(rows.count, n_bins)
    # Consecutive rows share a group; a row heavier than a bin leaves some groups empty.
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    ends = np.r_[starts[1:], groups.size]
    count = np.add.reduceat(rows.count, starts)
    positives = np.add.reduceat(rows.positives, starts)
    pooled = np.asarray(isotonic_regression(positives / count, weights=count).x)
    return {"bins": float(starts.size)}, _blocks_map(space, x, starts, ends, pooled)


def _line(intercept: float, slope: float) -> PiecewiseLinearMap:
    """logit g = intercept + slope * logit p: two knots, extended linearly."""
    x = np.array([-1.0, 1.0])
    return PiecewiseLinearMap("logit", x, intercept + slope * x)


def _blocks_map(
    space: Space, at: FloatArray, starts: np.ndarray, ends: np.ndarray, values: FloatArray
) -> PiecewiseLinearMap:
    """Constant ``values`` over each block of cells [start, end), linear between blocks:
    knots at each block's first and last cell (at its mean), once if it has one cell."""
    first, last = at[starts], at[ends - 1]
    x = np.column_stack([first, last]).ravel()
    y = np.repeat(values, 2)
    keep = np.r_[True, np.diff(x) > 0]
    return PiecewiseLinearMap(space, x[keep], np.clip(y[keep], 0.0, 1.0))


def _for_logistic_fit(cells: LabelledCells) -> LabelledCells:
    _require_both_labels(cells)
    return cells.logistic_rows


def _require_both_labels(cells: LabelledCells) -> None:
    require_both_labels(cells.n_positive, cells.n)


def require_both_labels(n_positive: int, n: int) -> None:
    if n_positive == 0 or n_positive == n:
        raise UndefinedMetricError("no calibrator can be fitted when every label is the same")


def fit_logistic(features: FloatArray, cells: Binomial, *, start: list[float]) -> list[float]:
    """Maximum-likelihood coefficients of logit P(y) = features @ beta on the cells
    (Newton's method, ``newton.py``)."""
    beta = newton_logistic(features, cells.count, cells.positives, np.array(start, dtype=float))
    return [float(c) for c in beta]

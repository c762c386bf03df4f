"""Calibration slope and intercept: the logistic recalibration fit y ~ a + b * logit(p).

A calibrated model has slope 1 and intercept 0; slope < 1 means over-confident
(predictions too extreme), slope > 1 under-confident.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> p = rng.uniform(0.05, 0.95, 200_000)
>>> y = (rng.uniform(size=p.size) < p).astype(float)
>>> fit = calibration_slope_intercept(p, y)
>>> abs(fit.slope - 1) < 0.03 and abs(fit.intercept) < 0.03
True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import expit

from monitor.metrics import grids
from monitor.metrics.clipping import clipped_logit
from monitor.metrics.errors import UndefinedMetricError
from monitor.metrics.validation import FloatArray, probabilities_and_labels

_MAX_ITERATIONS = 100
_TOLERANCE = 1e-12


@dataclass(frozen=True)
class RecalibrationFit:
    intercept: float
    slope: float


def calibration_slope_intercept(p: ArrayLike, y: ArrayLike) -> RecalibrationFit:
    """Unpenalised maximum-likelihood logistic fit of the labels on logit(p)."""
    probs, labels = probabilities_and_labels(p, y)
    x = clipped_logit(probs)
    # Newton converges quadratically: start from the cheap fit on grid cells (close to
    # the answer), and a few full-data steps reach the exact maximum likelihood.
    cells = grids.probability_cells(probs)
    trials = np.bincount(cells, minlength=grids.PROBABILITY_CELLS).astype(np.float64)
    occupied = trials > 0
    start = fit_grouped_logistic(
        np.bincount(cells, weights=x, minlength=grids.PROBABILITY_CELLS)[occupied]
        / trials[occupied],
        trials[occupied],
        np.bincount(cells, weights=labels, minlength=grids.PROBABILITY_CELLS)[occupied],
    )
    return fit_grouped_logistic(x, np.ones_like(x), labels, start=start)


def fit_grouped_logistic(
    x: FloatArray,
    trials: FloatArray,
    successes: FloatArray,
    *,
    start: RecalibrationFit | None = None,
) -> RecalibrationFit:
    """Newton-Raphson for a binomial logistic model with one covariate.

    Groups (x_j, n_j trials, s_j successes) make the same likelihood as the n_j events
    they stand for, so the aggregates fit on fine bins and the array API on events.
    """
    keep = trials > 0
    x, trials, successes = x[keep], trials[keep], successes[keep]
    n_successes = successes.sum()
    if n_successes == 0 or n_successes == trials.sum():
        raise UndefinedMetricError("calibration slope is undefined when every label is the same")
    if np.ptp(x) == 0:
        raise UndefinedMetricError("calibration slope is undefined when every p is the same")
    # Start from the constant model; centring x keeps the Hessian well conditioned.
    centre = float(np.average(x, weights=trials))
    xc = x - centre
    rate = n_successes / trials.sum()
    if start is None:
        beta = np.array([np.log(rate / (1 - rate)), 0.0])
    else:
        beta = np.array([start.intercept + start.slope * centre, start.slope])
    for _ in range(_MAX_ITERATIONS):
        eta = beta[0] + beta[1] * xc
        mu = expit(eta)  # no overflow warning where eta is far below zero (mu -> 0)
        w = trials * mu * (1.0 - mu)
        residual = successes - trials * mu
        gradient = np.array([residual.sum(), (residual * xc).sum()])
        hessian = np.array([[w.sum(), (w * xc).sum()], [(w * xc).sum(), (w * xc * xc).sum()]])
        try:
            step = np.linalg.solve(hessian, gradient)
        except np.linalg.LinAlgError:
            raise UndefinedMetricError("calibration slope: singular fit (separable data)") from None
        beta = beta + step
        if np.abs(step).max() < _TOLERANCE * (1.0 + np.abs(beta).max()):
            return RecalibrationFit(
                intercept=float(beta[0] - beta[1] * centre), slope=float(beta[1])
            )
        if not np.all(np.isfinite(beta)) or np.abs(beta).max() > 1e6:
            break
    raise UndefinedMetricError(
        "calibration slope: the logistic fit did not converge (separable data?)"
    )

"""Maximum-likelihood logistic fits on rows of events, by Newton's method.

The binomial log-likelihood of logit P(y) = X @ beta is concave with an exact Hessian,
so Newton steps (halved until the loss falls, as damped Newton does) reach the optimum
in a handful of iterations over the rows. Written out here rather than through
``scipy.optimize.minimize``: a fit has one to three coefficients, and scipy's per-call
and per-iteration overhead (its trust-region subproblem) was most of the time of
fitting every candidate of a window (``bench/bench_recalibration.py``).
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from monitor.metrics.errors import UndefinedMetricError
from monitor.metrics.validation import FloatArray

#: Gradient (of the mean log loss per event) below which a fit has converged.
GRADIENT_TOLERANCE = 1e-9
#: Near the optimum the loss stops falling in floating point before the gradient meets
#: GRADIENT_TOLERANCE; a gradient this small is then the optimum too.
FLOOR_TOLERANCE = 1e-7
#: A coefficient this large means the likelihood has no maximum (separable labels).
LARGEST_COEFFICIENT = 1e3
_MAX_STEPS = 100
_MAX_HALVINGS = 40


def newton_logistic(
    features: FloatArray, count: FloatArray, positives: FloatArray, start: FloatArray
) -> FloatArray:
    """Coefficients maximising sum(positives * z - count * log(1 + e^z)), z = features @ beta;
    raises :class:`UndefinedMetricError` when the fit diverges or does not converge."""
    total = float(count.sum())

    def loss(beta: FloatArray) -> float:
        z = features @ beta
        return float((count * np.logaddexp(0.0, z) - positives * z).sum()) / total

    beta = np.asarray(start, dtype=np.float64)
    current = loss(beta)
    for _ in range(_MAX_STEPS):
        mu = expit(features @ beta)
        gradient = features.T @ (count * mu - positives) / total
        largest = float(np.abs(gradient).max())
        if largest < GRADIENT_TOLERANCE:
            return _checked(beta)
        hessian = (features.T * (count * mu * (1.0 - mu))) @ features / total
        try:
            step = np.linalg.solve(hessian, gradient)
        except np.linalg.LinAlgError:  # a flat direction: the least-squares step
            step = np.linalg.lstsq(hessian, gradient, rcond=None)[0]
        for _ in range(_MAX_HALVINGS):
            candidate = beta - step
            trial = loss(candidate)
            if trial < current:
                break
            step = step / 2
        else:  # no step lowers the loss: at the optimum, to floating-point precision
            if largest < FLOOR_TOLERANCE:
                return _checked(beta)
            raise UndefinedMetricError("the logistic fit did not converge")
        beta, current = candidate, trial
        _checked(beta)
    raise UndefinedMetricError("the logistic fit did not converge")


def _checked(beta: FloatArray) -> FloatArray:
    if not np.all(np.isfinite(beta)) or np.any(np.abs(beta) >= LARGEST_COEFFICIENT):
        raise UndefinedMetricError("the logistic fit diverged (labels separable?)")
    return beta

"""The one form every calibrator takes: a monotone piecewise-linear map.

Whatever the method, the fitted calibrator is handed over as knots (x_k, y_k), with x
strictly increasing and y non-decreasing, joined by straight lines, in one of four
spaces, each saying what x is (a function of the calibrator's input v: the probability
served now, or the raw score) and what y is (a function of the new probability q):

- ``logit``: x = logit v, y = logit q, with f extended beyond the first and last knots
  along its first and last segments (``extrapolation: linear``). Temperature and Platt
  scaling are one straight line, so two knots are exact. v must be in [0, 1].
- ``probability``: x = v, y = q, constant beyond the end knots (``extrapolation:
  clip``), as scikit-learn's ``IsotonicRegression`` predicts. v must be in [0, 1].
- ``score``: as ``probability``, for a raw score v of any value.
- ``score_logit``: x = v, y = logit q, extended linearly: Platt scaling of a raw score
  that is a margin or log-odds.

Any language with a binary search applies it; ``apply`` in ``artifact.py`` is the
reference implementation.

>>> import numpy as np
>>> m = PiecewiseLinearMap("probability", np.array([0.2, 0.8]), np.array([0.1, 0.9]))
>>> m(np.array([0.0, 0.5, 1.0])).tolist()
[0.1, 0.5, 0.9]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.special import expit

from monitor.metrics.clipping import clipped_logit
from monitor.metrics.validation import FloatArray

Space = Literal["logit", "probability", "score", "score_logit"]
SPACES: tuple[Space, ...] = ("logit", "probability", "score", "score_logit")
EXTRAPOLATION: dict[Space, str] = {
    "logit": "linear",
    "probability": "clip",
    "score": "clip",
    "score_logit": "linear",
}
#: Spaces whose x is the logit of the input (which must then lie in [0, 1]).
LOGIT_INPUT: tuple[Space, ...] = ("logit",)
#: Spaces whose y is a probability (else a logit).
PROBABILITY_OUTPUT: tuple[Space, ...] = ("probability", "score")


class InvalidMapError(ValueError):
    """Knots that do not make a monotone piecewise-linear map."""


@dataclass(frozen=True)
class PiecewiseLinearMap:
    space: Space
    x: FloatArray
    y: FloatArray

    def __post_init__(self) -> None:
        check_knots(self.space, self.x, self.y)

    def __call__(self, v: FloatArray) -> FloatArray:
        """The new probability of each input value (probabilities or raw scores, as the
        space says; not checked here: ``artifact.apply`` checks them)."""
        if self.space in PROBABILITY_OUTPUT:
            return np.interp(v, self.x, self.y)
        z = clipped_logit(v) if self.space in LOGIT_INPUT else v
        return np.asarray(expit(interpolate_linear_ends(z, self.x, self.y)), dtype=np.float64)


def check_knots(space: object, x: FloatArray, y: FloatArray) -> None:
    """Raise :class:`InvalidMapError` naming the first problem with the knots."""
    if space not in SPACES:
        raise InvalidMapError(f"unknown map space {space!r}; expected one of {list(SPACES)}")
    if x.ndim != 1 or y.ndim != 1 or x.size != y.size:
        raise InvalidMapError(f"x and y must be two lists of one length, got {x.size} and {y.size}")
    minimum = 1 if space in PROBABILITY_OUTPUT else 2
    if x.size < minimum:
        raise InvalidMapError(f"a {space} map needs at least {minimum} knots, got {x.size}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise InvalidMapError("knots must be finite numbers (found NaN or infinity)")
    if np.any(np.diff(x) <= 0):
        raise InvalidMapError("knot x values must be strictly increasing")
    if np.any(np.diff(y) < 0):
        raise InvalidMapError("the map is not monotone: knot y values must never decrease")
    if space == "probability" and np.any((x < 0) | (x > 1) | (y < 0) | (y > 1)):
        raise InvalidMapError("a probability map's knots must lie in [0, 1]")
    if space == "score" and np.any((y < 0) | (y > 1)):
        raise InvalidMapError("a score map's knot y values are probabilities: in [0, 1]")


def interpolate_linear_ends(z: FloatArray, x: FloatArray, y: FloatArray) -> FloatArray:
    """Piecewise-linear interpolation, extended along the end segments."""
    out = np.interp(z, x, y)
    first_slope = (y[1] - y[0]) / (x[1] - x[0])
    last_slope = (y[-1] - y[-2]) / (x[-1] - x[-2])
    below, above = z < x[0], z > x[-1]
    out[below] = y[0] + (z[below] - x[0]) * first_slope
    out[above] = y[-1] + (z[above] - x[-1]) * last_slope
    return out

"""The one form every calibrator takes: a monotone piecewise-linear map.

Whatever the method, the fitted correction g is handed over as knots (x_k, y_k), with x
strictly increasing and y non-decreasing, joined by straight lines, in one of two
spaces:

- ``logit``: x and y are logits; g(p) = expit(f(logit p)), with f extended beyond the
  first and last knots along its first and last segments (``extrapolation: linear``).
  Temperature and Platt scaling are one straight line, so two knots are exact.
- ``probability``: x and y are probabilities; g(p) = f(p), constant beyond the end
  knots (``extrapolation: clip``), as scikit-learn's ``IsotonicRegression`` predicts.

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

Space = Literal["logit", "probability"]
SPACES: tuple[Space, ...] = ("logit", "probability")
EXTRAPOLATION: dict[Space, str] = {"logit": "linear", "probability": "clip"}


class InvalidMapError(ValueError):
    """Knots that do not make a monotone piecewise-linear map."""


@dataclass(frozen=True)
class PiecewiseLinearMap:
    space: Space
    x: FloatArray
    y: FloatArray

    def __post_init__(self) -> None:
        check_knots(self.space, self.x, self.y)

    def __call__(self, p: FloatArray) -> FloatArray:
        if self.space == "probability":
            return np.interp(p, self.x, self.y)
        z = clipped_logit(p)
        return np.asarray(expit(interpolate_linear_ends(z, self.x, self.y)), dtype=np.float64)


def check_knots(space: object, x: FloatArray, y: FloatArray) -> None:
    """Raise :class:`InvalidMapError` naming the first problem with the knots."""
    if space not in SPACES:
        raise InvalidMapError(f"unknown map space {space!r}; expected one of {list(SPACES)}")
    if x.ndim != 1 or y.ndim != 1 or x.size != y.size:
        raise InvalidMapError(f"x and y must be two lists of one length, got {x.size} and {y.size}")
    minimum = 2 if space == "logit" else 1
    if x.size < minimum:
        raise InvalidMapError(f"a {space} map needs at least {minimum} knots, got {x.size}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise InvalidMapError("knots must be finite numbers (found NaN or infinity)")
    if np.any(np.diff(x) <= 0):
        raise InvalidMapError("knot x values must be strictly increasing")
    if np.any(np.diff(y) < 0):
        raise InvalidMapError("the map is not monotone: knot y values must never decrease")
    outside = np.any((x < 0) | (x > 1) | (y < 0) | (y > 1))
    if space == "probability" and outside:
        raise InvalidMapError("a probability map's knots must lie in [0, 1]")


def interpolate_linear_ends(z: FloatArray, x: FloatArray, y: FloatArray) -> FloatArray:
    """Piecewise-linear interpolation, extended along the end segments."""
    out = np.interp(z, x, y)
    first_slope = (y[1] - y[0]) / (x[1] - x[0])
    last_slope = (y[-1] - y[-2]) / (x[-1] - x[-2])
    below, above = z < x[0], z > x[-1]
    out[below] = y[0] + (z[below] - x[0]) * first_slope
    out[above] = y[-1] + (z[above] - x[-1]) * last_slope
    return out

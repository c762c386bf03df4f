"""Input checks shared by every metric: validate first, then do the math."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from monitor.metrics.errors import MetricInputError

# float64 arrays in practice; typed loosely because numpy's stubs widen dtypes
# (bincount with weights, arithmetic on float64) in ways mypy cannot follow.
FloatArray = NDArray[Any]


def _as_1d_float(values: ArrayLike, name: str) -> FloatArray:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise MetricInputError(f"{name}: not numeric ({exc})") from None
    if array.ndim != 1:
        raise MetricInputError(f"{name}: expected a 1-d array, got shape {array.shape}")
    if array.size == 0:
        raise MetricInputError(f"{name}: empty array")
    return array


def _first_bad(mask: NDArray[np.bool_]) -> int:
    return int(np.flatnonzero(mask)[0])


def finite_values(values: ArrayLike, name: str = "values") -> FloatArray:
    """Return ``values`` as a float array; raise on empty input, NaN or infinity."""
    array = _as_1d_float(values, name)
    bad = ~np.isfinite(array)
    if bad.any():
        i = _first_bad(bad)
        raise MetricInputError(
            f"{name}: {int(bad.sum())} value(s) are NaN or infinite (first at index {i}: "
            f"{array[i]})"
        )
    return array


def probabilities(values: ArrayLike, name: str = "probabilities") -> FloatArray:
    """Return ``values`` as floats in [0, 1]; raise on anything else."""
    array = finite_values(values, name)
    bad = (array < 0.0) | (array > 1.0)
    if bad.any():
        i = _first_bad(bad)
        raise MetricInputError(
            f"{name}: {int(bad.sum())} value(s) outside [0, 1] (first at index {i}: {array[i]})"
        )
    return array


def binary_labels(values: ArrayLike, name: str = "labels") -> FloatArray:
    """Return labels as floats 0.0/1.0; raise if any label is not 0 or 1."""
    array = finite_values(values, name)
    bad = (array != 0.0) & (array != 1.0)
    if bad.any():
        i = _first_bad(bad)
        raise MetricInputError(
            f"{name}: {int(bad.sum())} label(s) are not 0 or 1 (first at index {i}: {array[i]})"
        )
    return array


def probabilities_and_labels(p: ArrayLike, y: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Validate a (probability, label) pair of arrays of the same length."""
    p_checked = probabilities(p)
    y_checked = binary_labels(y)
    if p_checked.size != y_checked.size:
        raise MetricInputError(
            f"probabilities and labels differ in length: {p_checked.size} != {y_checked.size}"
        )
    return p_checked, y_checked


def positive_int(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise MetricInputError(f"{name}: expected a positive integer, got {value!r}")
    return int(value)

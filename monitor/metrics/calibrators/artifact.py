"""The portable calibrator artifact: a small versioned JSON document, and ``apply``.

Format ``calmon.calibrator/v1`` (``docs/recalibration.md`` has the schema)::

    {"format": "calmon.calibrator/v1",
     "method": "platt",
     "parameters": {"intercept": -0.2, "slope": 0.61},
     "map": {"space": "logit", "x": [-1, 1], "y": [-0.81, 0.41], "extrapolation": "linear"},
     "fitted_on": {"model": "fraud", "model_version": "v3", "segment": "region=eu", ...}}

``map`` is the monotone piecewise-linear map of ``maps.py``; it alone decides what the
artifact does, so any language can apply it. ``parameters`` say what was fitted, for
people and for rebuilding the method natively (scikit-learn, see the docs).

>>> artifact = {"format": FORMAT, "method": "identity", "parameters": {},
...             "map": {"space": "logit", "x": [-1, 1], "y": [-1, 1],
...                     "extrapolation": "linear"}}
>>> apply(artifact, [0.25]).round(12).tolist()
[0.25]
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, cast

import numpy as np
from numpy.typing import ArrayLike

from monitor.metrics.calibrators.fit import METHODS, Calibrator
from monitor.metrics.calibrators.maps import (
    EXTRAPOLATION,
    SPACES,
    InvalidMapError,
    PiecewiseLinearMap,
    Space,
)
from monitor.metrics.calibrators.validate import Recommendation

FORMAT = "calmon.calibrator/v1"


class InvalidArtifactError(ValueError):
    """An artifact that ``apply`` refuses, with the reason."""


def to_artifact(calibrator: Calibrator, fitted_on: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON-ready artifact of a fitted calibrator."""
    return {
        "format": FORMAT,
        "method": calibrator.method,
        "parameters": dict(calibrator.parameters),
        "map": {
            "space": calibrator.map.space,
            "x": calibrator.map.x.tolist(),
            "y": calibrator.map.y.tolist(),
            "extrapolation": EXTRAPOLATION[calibrator.map.space],
        },
        "fitted_on": dict(fitted_on),
    }


def load_map(artifact: Mapping[str, Any] | str) -> PiecewiseLinearMap:
    """Check an artifact (a parsed document, or its JSON text) and return its map."""
    if isinstance(artifact, str):
        try:
            artifact = json.loads(artifact)
        except json.JSONDecodeError as error:
            raise InvalidArtifactError(f"calibrator artifact is not JSON: {error}") from None
    if not isinstance(artifact, Mapping):
        raise InvalidArtifactError("calibrator artifact must be a JSON object")
    if artifact.get("format") != FORMAT:
        raise InvalidArtifactError(
            f"unknown artifact format {artifact.get('format')!r}; this version reads {FORMAT!r}"
        )
    method = artifact.get("method")
    if method not in METHODS:
        raise InvalidArtifactError(
            f"unknown calibration method {method!r}; expected one of {list(METHODS)}"
        )
    spec = artifact.get("map")
    if not isinstance(spec, Mapping):
        raise InvalidArtifactError("calibrator artifact has no 'map' object")
    space = spec.get("space")
    if space not in SPACES:
        raise InvalidArtifactError(f"unknown map space {space!r}; expected one of {list(SPACES)}")
    space = cast(Space, space)
    if spec.get("extrapolation") != EXTRAPOLATION[space]:
        raise InvalidArtifactError(
            f"a {space} map extrapolates {EXTRAPOLATION[space]!r}, "
            f"not {spec.get('extrapolation')!r}"
        )
    try:
        x = np.asarray(spec.get("x"), dtype=np.float64)
        y = np.asarray(spec.get("y"), dtype=np.float64)
        return PiecewiseLinearMap(space, x, y)
    except (TypeError, ValueError) as error:  # InvalidMapError is a ValueError
        reason = error if isinstance(error, InvalidMapError) else "x and y must be lists of numbers"
        raise InvalidArtifactError(f"calibrator artifact map: {reason}") from None


def apply(artifact: Mapping[str, Any] | str, p: ArrayLike) -> np.ndarray:
    """The recalibrated probabilities g(p) of an artifact (checked first)."""
    calibration_map = load_map(artifact)
    probabilities = np.asarray(p, dtype=np.float64)
    if not np.all(np.isfinite(probabilities)):
        raise ValueError("p must be finite probabilities (found NaN or infinity)")
    if np.any((probabilities < 0) | (probabilities > 1)):
        raise ValueError("p must be probabilities in [0, 1]")
    return calibration_map(probabilities.ravel()).reshape(probabilities.shape)


def recommendation_to_json(
    recommendation: Recommendation, fitted_on: Mapping[str, Any]
) -> dict[str, Any]:
    """The recommended artifact and every candidate's held-out scores, JSON-ready."""
    return {
        "status": "recommended",
        "recommended": to_artifact(recommendation.recommended, fitted_on),
        "candidates": [
            {
                "method": score.method,
                "parameters": dict(score.calibrator.parameters),
                "held_out": {
                    "log_loss": score.log_loss.to_json(),
                    "brier_score": score.brier_score.to_json(),
                    "ece": score.ece.to_json(),
                    "log_loss_above_best": score.log_loss_above_best.to_json(),
                },
            }
            for score in recommendation.candidates
        ],
        "skipped": dict(recommendation.skipped),
    }

"""The portable calibrator artifact: a small versioned JSON document, and ``apply``.

Format ``calmon.calibrator/v2`` (``docs/recalibration.md`` has the schema)::

    {"format": "calmon.calibrator/v2",
     "input": "probability",
     "method": "platt",
     "parameters": {"intercept": -0.2, "slope": 0.61},
     "map": {"space": "logit", "x": [-1, 1], "y": [-0.81, 0.41], "extrapolation": "linear"},
     "fitted_on": {"model": "fraud", "model_version": "v3", "segment": "region=eu", ...}}

``input`` says what the map takes: the probability the model serves now (a correction
after its calibrator) or the raw score (a new calibrator, replacing it); ``apply``
refuses the wrong one. ``map`` is the monotone piecewise-linear map of ``maps.py``; it
alone decides what the artifact does, so any language can apply it. ``parameters`` say
what was fitted, for people and for rebuilding the method natively (scikit-learn, see
the docs). Version 1 (no ``input``: always the probability) is still read.

>>> artifact = {"format": FORMAT, "input": "probability", "method": "identity",
...             "parameters": {}, "map": {"space": "logit", "x": [-1, 1], "y": [-1, 1],
...                                       "extrapolation": "linear"}}
>>> apply(artifact, [0.25]).round(12).tolist()
[0.25]
>>> apply(artifact, raw_score=[1.5])  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
monitor...InvalidInputError: this artifact maps the probability the model serves (...); ...
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, cast

import numpy as np
from numpy.typing import ArrayLike

from monitor.metrics.calibrators.candidates import METHODS
from monitor.metrics.calibrators.fit import INPUTS, Calibrator, Input
from monitor.metrics.calibrators.maps import (
    EXTRAPOLATION,
    LOGIT_INPUT,
    SPACES,
    InvalidMapError,
    PiecewiseLinearMap,
    Space,
)
from monitor.metrics.calibrators.validate import Recommendation

FORMAT = "calmon.calibrator/v2"
#: The first format: no ``input``, the map always takes the served probability.
FORMAT_V1 = "calmon.calibrator/v1"
#: The map spaces each input may use (``maps.py``).
INPUT_SPACES: dict[Input, tuple[Space, ...]] = {
    "probability": ("logit", "probability"),
    "raw_score": ("logit", "score", "score_logit"),
}


class InvalidArtifactError(ValueError):
    """An artifact that ``apply`` refuses, with the reason."""


class InvalidInputError(ValueError):
    """Values ``apply`` refuses: the wrong input for the artifact, or not finite, or
    outside [0, 1] where the map needs probabilities."""


def to_artifact(calibrator: Calibrator, fitted_on: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON-ready artifact of a fitted calibrator."""
    return {
        "format": FORMAT,
        "input": calibrator.input,
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


def load(artifact: Mapping[str, Any] | str) -> tuple[Input, PiecewiseLinearMap]:
    """Check an artifact (a parsed document, or its JSON text): its input and its map."""
    document = _document(artifact)
    kind = _input(document)
    method = document.get("method")
    if method not in METHODS:
        raise InvalidArtifactError(
            f"unknown calibration method {method!r}; expected one of {list(METHODS)}"
        )
    spec = document.get("map")
    if not isinstance(spec, Mapping):
        raise InvalidArtifactError("calibrator artifact has no 'map' object")
    return kind, _map(spec, kind)


def _document(artifact: Mapping[str, Any] | str) -> Mapping[str, Any]:
    if isinstance(artifact, str):
        try:
            artifact = json.loads(artifact)
        except json.JSONDecodeError as error:
            raise InvalidArtifactError(f"calibrator artifact is not JSON: {error}") from None
    if not isinstance(artifact, Mapping):
        raise InvalidArtifactError("calibrator artifact must be a JSON object")
    return artifact


def _input(artifact: Mapping[str, Any]) -> Input:
    """What the artifact's map takes, from its format (and ``input``, since v2)."""
    form = artifact.get("format")
    if form == FORMAT_V1:
        return "probability"
    if form != FORMAT:
        raise InvalidArtifactError(
            f"unknown artifact format {form!r}; this version reads {FORMAT!r} and {FORMAT_V1!r}"
        )
    kind = artifact.get("input")
    if kind not in INPUTS:
        raise InvalidArtifactError(
            f"unknown artifact input {kind!r}; expected one of {list(INPUTS)}"
        )
    return cast(Input, kind)


def _map(spec: Mapping[str, Any], kind: Input) -> PiecewiseLinearMap:
    """The map of an artifact's ``map`` object, checked against its input."""
    space = spec.get("space")
    if space not in SPACES:
        raise InvalidArtifactError(f"unknown map space {space!r}; expected one of {list(SPACES)}")
    space = cast(Space, space)
    if space not in INPUT_SPACES[kind]:
        raise InvalidArtifactError(
            f"a {space} map cannot take input {kind!r}; expected one of {list(INPUT_SPACES[kind])}"
        )
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


def load_map(artifact: Mapping[str, Any] | str) -> PiecewiseLinearMap:
    """Check an artifact (a parsed document, or its JSON text) and return its map."""
    return load(artifact)[1]


def apply(
    artifact: Mapping[str, Any] | str,
    p: ArrayLike | None = None,
    *,
    raw_score: ArrayLike | None = None,
) -> np.ndarray:
    """The recalibrated probabilities of an artifact (checked first), from what its
    ``input`` says it maps: ``p``, the probability the model serves now, or
    ``raw_score``. Pass both if you have both: the artifact takes the one it maps."""
    kind, calibration_map = load(artifact)
    values = _checked_input(kind, calibration_map, p if kind == "probability" else raw_score)
    return calibration_map(values.ravel()).reshape(values.shape)


#: How apply names an input it was not given.
_WANTED = {
    "probability": "the probability the model serves (input: probability); pass it as p",
    "raw_score": (
        "the raw score (input: raw_score), not the served probability; pass it as raw_score="
    ),
}


def _checked_input(
    kind: Input, calibration_map: PiecewiseLinearMap, given: ArrayLike | None
) -> np.ndarray:
    if given is None:
        raise InvalidInputError(f"this artifact maps {_WANTED[kind]}")
    values = np.asarray(given, dtype=np.float64)
    name = "p" if kind == "probability" else "raw_score"
    if not np.all(np.isfinite(values)):
        raise InvalidInputError(f"{name} must be finite (found NaN or infinity)")
    unit = kind == "probability" or calibration_map.space in LOGIT_INPUT
    if unit and np.any((values < 0) | (values > 1)):
        raise InvalidInputError(
            "p must be probabilities in [0, 1]"
            if kind == "probability"
            else "this map takes the logit of the raw score: raw scores must be in [0, 1]"
        )
    return values


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

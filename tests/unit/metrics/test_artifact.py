"""The portable artifact: ``apply`` gives what the fitted calibrator gives, the
scikit-learn recipe of docs/recalibration.md gives what ``apply`` gives, bad artifacts
are refused by name, and an artifact from a drifted window fixes held-out events."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from scipy.special import expit, logit
from sklearn.metrics import log_loss

from monitor.metrics.aggregates import EventAggregate
from monitor.metrics.calibrators import FORMAT, InvalidArtifactError, apply
from monitor.metrics.calibrators.artifact import recommendation_to_json, to_artifact
from monitor.metrics.calibrators.cells import LabelledCells
from monitor.metrics.calibrators.fit import METHODS, fit_candidates
from monitor.metrics.calibrators.validate import recommend

DOCS = Path(__file__).parents[3] / "docs" / "recalibration.md"
FITTED_ON = {"model": "m", "model_version": "v1", "segment": "__all__", "window": "1h"}


def _cells(rng: np.random.Generator, n: int, slope: float = 0.6) -> LabelledCells:
    p, y = _events(rng, n, slope)
    aggregate = EventAggregate.empty()
    aggregate.add_labelled(p, y)
    return LabelledCells.of(aggregate)


def _events(rng: np.random.Generator, n: int, slope: float = 0.6):
    p = rng.beta(1.2, 2.5, n)
    return p, (rng.uniform(size=n) < expit(slope * logit(p) + 0.2)).astype(float)


def _artifacts() -> dict[str, dict[str, Any]]:
    fitted, skipped = fit_candidates(_cells(np.random.default_rng(0), 5_000))
    assert not skipped
    # Through JSON text, as a receiver gets it.
    return {m: json.loads(json.dumps(to_artifact(c, FITTED_ON))) for m, c in fitted.items()}


P = np.r_[0.0, 1e-9, np.linspace(0.001, 0.999, 500), 1 - 1e-9, 1.0]


@pytest.mark.parametrize("method", METHODS)
def test_apply_gives_what_the_fitted_calibrator_gives(method: str) -> None:
    fitted, _ = fit_candidates(_cells(np.random.default_rng(0), 5_000))
    artifact = json.dumps(to_artifact(fitted[method], FITTED_ON))
    np.testing.assert_array_equal(apply(artifact, P), fitted[method](P))
    assert apply(artifact, P.reshape(2, -1)).shape == (2, P.size // 2)


def _sklearn_recipe() -> dict[str, Any]:
    text = DOCS.read_text()
    section = text[text.index("With scikit-learn") :]
    (block,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)[:1]
    namespace: dict[str, Any] = {}
    exec(block, namespace)
    return namespace


@pytest.mark.parametrize("method", METHODS)
def test_the_documented_sklearn_recipe_gives_what_apply_gives(method: str) -> None:
    recipe = _sklearn_recipe()
    artifact = _artifacts()[method]
    model, features = recipe["to_sklearn"](artifact)
    inside = P[(P > 0) & (P < 1)]
    mine = apply(artifact, inside)
    theirs = recipe["predict"](model, features, inside)
    # Beta: sklearn evaluates the formula, apply its knots (off by the documented bound).
    np.testing.assert_allclose(theirs, mine, atol=1e-3 if method == "beta" else 1e-9)


def _broken(change: str) -> dict[str, Any]:
    artifact = copy.deepcopy(_artifacts()["isotonic"])
    knots = artifact["map"]
    if change == "not monotone":
        knots["y"][0], knots["y"][-1] = knots["y"][-1], knots["y"][0]
    elif change == "NaN":
        knots["y"][1] = float("nan")
    elif change == "unknown method":
        artifact["method"] = "magic"
    elif change == "unknown format":
        artifact["format"] = "calmon.calibrator/v9"
    elif change == "unknown space":
        knots["space"] = "odds"
    elif change == "wrong extrapolation":
        knots["extrapolation"] = "linear"
    elif change == "x not increasing":
        knots["x"][1] = knots["x"][0]
    elif change == "lengths differ":
        knots["y"] = knots["y"][:-1]
    elif change == "no map":
        del artifact["map"]
    return artifact


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("not monotone", "not monotone"),
        ("NaN", "NaN"),
        ("unknown method", "unknown calibration method 'magic'"),
        ("unknown format", "unknown artifact format 'calmon.calibrator/v9'"),
        ("unknown space", "unknown map space 'odds'"),
        ("wrong extrapolation", "extrapolates 'clip'"),
        ("x not increasing", "strictly increasing"),
        ("lengths differ", "one length"),
        ("no map", "no 'map' object"),
    ],
)
def test_a_bad_artifact_is_refused_by_name(change: str, message: str) -> None:
    with pytest.raises(InvalidArtifactError, match=re.escape(message)):
        apply(_broken(change), [0.5])


def test_not_json_and_bad_probabilities_are_refused_by_name() -> None:
    with pytest.raises(InvalidArtifactError, match="not JSON"):
        apply("{", [0.5])
    artifact = _artifacts()["platt"]
    assert artifact["format"] == FORMAT
    with pytest.raises(ValueError, match="NaN"):
        apply(artifact, [0.5, float("nan")])
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        apply(artifact, [1.5])


def _ece(p: np.ndarray, y: np.ndarray, n_bins: int = 10) -> float:
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
    return (
        sum(
            abs(y[bins == k].sum() - p[bins == k].sum()) for k in range(n_bins) if (bins == k).any()
        )
        / p.size
    )


def test_the_recommended_artifact_improves_held_out_events() -> None:
    rng = np.random.default_rng(11)
    earlier, later = _cells(rng, 6_000), _cells(rng, 6_000)
    recommendation = recommendation_to_json(recommend(earlier, later), FITTED_ON)
    # orjson, as the daemon writes the webhook body: it refuses numpy scalars.
    document = orjson.loads(orjson.dumps(recommendation))
    assert document["status"] == "recommended"
    assert [c["method"] for c in document["candidates"]] == list(METHODS)
    artifact = document["recommended"]
    assert artifact["method"] != "identity"
    p, y = _events(rng, 30_000)  # fresh events, after the fit
    fixed = apply(artifact, p)
    assert _ece(fixed, y) < 0.4 * _ece(p, y)
    assert log_loss(y, fixed) < log_loss(y, p) - 0.005

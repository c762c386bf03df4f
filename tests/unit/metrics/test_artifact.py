"""The portable artifact: ``apply`` gives what the fitted calibrator gives, the
scikit-learn recipe of docs/recalibration.md gives what ``apply`` gives, bad artifacts
are refused by name, and an artifact from a drifted window fixes held-out events."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import orjson
import pytest
from scipy.special import expit, logit
from sklearn.metrics import log_loss

from monitor.metrics.aggregates import EventAggregate
from monitor.metrics.calibrators import FORMAT, InvalidArtifactError, InvalidInputError, apply
from monitor.metrics.calibrators.artifact import recommendation_to_json, to_artifact
from monitor.metrics.calibrators.candidates import METHODS, fit_candidates
from monitor.metrics.calibrators.cells import LabelledCells
from monitor.metrics.calibrators.fit import CORRECTIONS
from monitor.metrics.calibrators.raw_fit import fit_raw_platt
from monitor.metrics.calibrators.validate import recommend

DOCS = Path(__file__).parents[3] / "docs" / "recalibration.md"
FITTED_ON = {"model": "m", "model_version": "v1", "segment": "__all__", "window": "1h"}


def _cells(rng: np.random.Generator, n: int, slope: float = 0.6, raw=None) -> LabelledCells:
    """Served p (and raw scores: a margin, 2 logit p - 1, unless ``raw`` maps p to others)."""
    p, y = _events(rng, n, slope)
    aggregate = EventAggregate.empty()
    aggregate.add_labelled(p, y)
    aggregate.add_raw_labelled(2 * logit(p) - 1 if raw is None else raw(p), p, y)
    return LabelledCells.of(aggregate)


def _events(rng: np.random.Generator, n: int, slope: float = 0.6):
    p = rng.beta(1.2, 2.5, n)
    return p, (rng.uniform(size=n) < expit(slope * logit(p) + 0.2)).astype(float)


def _fitted() -> dict[str, Any]:
    """Every candidate, and raw_platt on raw scores in [0, 1] (a map on their logit)."""
    fitted, skipped = fit_candidates(_cells(np.random.default_rng(0), 5_000))
    assert not skipped
    unit = _cells(np.random.default_rng(0), 5_000, raw=lambda p: np.sqrt(p))
    return {**fitted, "raw_platt on [0, 1]": fit_raw_platt(unit)}


def _artifacts() -> dict[str, dict[str, Any]]:
    # Through JSON text, as a receiver gets it.
    return {m: json.loads(json.dumps(to_artifact(c, FITTED_ON))) for m, c in _fitted().items()}


P = np.r_[0.0, 1e-9, np.linspace(0.001, 0.999, 500), 1 - 1e-9, 1.0]
RAW = np.r_[-1e6, np.linspace(-40.0, 40.0, 501), 1e6]
ARTIFACTS = [*METHODS, "raw_platt on [0, 1]"]


def _inputs(artifact: dict[str, Any] | str) -> tuple[str, np.ndarray]:
    """The keyword and values this artifact's map takes."""
    document = json.loads(artifact) if isinstance(artifact, str) else artifact
    if document["input"] == "probability":
        return "p", P
    return "raw_score", P if document["map"]["space"] == "logit" else RAW


@pytest.mark.parametrize("method", ARTIFACTS)
def test_apply_gives_what_the_fitted_calibrator_gives(method: str) -> None:
    calibrator = _fitted()[method]
    artifact = json.dumps(to_artifact(calibrator, FITTED_ON))
    keyword, values = _inputs(artifact)
    assert keyword == ("p" if method in CORRECTIONS else "raw_score")
    np.testing.assert_array_equal(apply(artifact, **{keyword: values}), calibrator(values))
    even = values[: values.size // 2 * 2]
    shaped = apply(artifact, **{keyword: even.reshape(2, -1)})
    assert shaped.shape == (2, even.size // 2)


def _sklearn_recipe() -> dict[str, Any]:
    text = DOCS.read_text()
    section = text[text.index("With scikit-learn") :]
    (block,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)[:1]
    namespace: dict[str, Any] = {}
    exec(block, namespace)
    return namespace


@pytest.mark.parametrize("method", ARTIFACTS)
def test_the_documented_sklearn_recipe_gives_what_apply_gives(method: str) -> None:
    recipe = _sklearn_recipe()
    artifact = _artifacts()[method]
    model, features = recipe["to_sklearn"](artifact)
    keyword, values = _inputs(artifact)
    inside = values[(values > 0) & (values < 1)] if artifact["map"]["space"] == "logit" else values
    mine = apply(artifact, **{keyword: inside})
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
    elif change == "unknown input":
        artifact["input"] = "logits"
    elif change == "a raw-score space for p":
        knots["space"] = "score"
    elif change == "a v1 raw-score map":  # v1 artifacts map p: a score space is refused
        artifact["format"] = "calmon.calibrator/v1"
        knots["space"] = "score"
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
        ("unknown input", "unknown artifact input 'logits'"),
        ("a raw-score space for p", "a score map cannot take input 'probability'"),
        ("a v1 raw-score map", "a score map cannot take input 'probability'"),
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
    with pytest.raises(InvalidInputError, match="NaN"):
        apply(artifact, [0.5, float("nan")])
    with pytest.raises(InvalidInputError, match=r"in \[0, 1\]"):
        apply(artifact, [1.5])


def test_an_artifact_takes_only_the_input_it_maps() -> None:
    """A raw-score refit applied to the served p (or the reverse) would give plausible
    numbers and wrong probabilities: apply refuses it, naming the input wanted."""
    refit, correction = _artifacts()["raw_platt"], _artifacts()["platt"]
    assert (refit["input"], correction["input"]) == ("raw_score", "probability")
    with pytest.raises(InvalidInputError, match=r"maps the raw score .*pass it as raw_score="):
        apply(refit, [0.2, 0.7])
    with pytest.raises(InvalidInputError, match="maps the probability the model serves"):
        apply(correction, raw_score=[0.2, 0.7])
    # Given both, each artifact takes its own.
    p, raw = np.array([0.2, 0.7]), np.array([-3.0, 4.0])
    np.testing.assert_array_equal(apply(refit, p, raw_score=raw), apply(refit, raw_score=raw))
    np.testing.assert_array_equal(apply(correction, p, raw_score=raw), apply(correction, p))
    with pytest.raises(InvalidInputError, match="raw_score must be finite"):
        apply(refit, raw_score=[float("inf")])
    on_logit = _artifacts()["raw_platt on [0, 1]"]
    assert on_logit["map"]["space"] == "logit"
    with pytest.raises(InvalidInputError, match=r"raw scores must be in \[0, 1\]"):
        apply(on_logit, raw_score=[1.5])


def test_a_version_1_artifact_still_applies_to_p() -> None:
    artifact = _artifacts()["platt"]
    earlier = {k: v for k, v in artifact.items() if k != "input"}
    earlier["format"] = "calmon.calibrator/v1"
    np.testing.assert_array_equal(apply(earlier, P), apply(artifact, P))


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
    # The raw score is an affine map of logit p: its Platt refit is Platt's correction,
    # which comes first.
    assert artifact["method"] != "identity" and artifact["input"] == "probability"
    p, y = _events(rng, 30_000)  # fresh events, after the fit
    fixed = apply(artifact, p, raw_score=2 * logit(p) - 1)
    assert _ece(fixed, y) < 0.4 * _ece(p, y)
    assert log_loss(y, fixed) < log_loss(y, p) - 0.005


def _artifact_schema() -> dict[str, Any]:
    schema = json.loads((DOCS.parent / "webhook.schema.json").read_text())
    return {**schema["$defs"]["artifact"], "$defs": schema["$defs"]}


@pytest.mark.parametrize("method", ARTIFACTS)
def test_every_artifact_follows_the_documented_schema(method: str) -> None:
    artifact = _artifacts()[method]
    artifact["fitted_on"] = {
        **FITTED_ON,
        "fit": {"start": "2026-12-03T09:00:00+00:00", "end": "2026-12-03T09:30:00+00:00"},
        "validation": {"start": "2026-12-03T09:30:00+00:00", "end": "2026-12-03T10:00:00+00:00"},
        "refit": {"start": "2026-12-03T09:00:00+00:00", "end": "2026-12-03T10:00:00+00:00"},
        "fit_labelled": 10,
        "validation_labelled": 10,
        "refit_labelled": 20,
    }
    jsonschema.validate(artifact, _artifact_schema())
    # The schema pairs input and space as apply does.
    wrong = copy.deepcopy(artifact)
    wrong["input"] = "raw_score" if artifact["input"] == "probability" else "probability"
    if artifact["map"]["space"] != "logit":  # the one space both inputs may use
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(wrong, _artifact_schema())

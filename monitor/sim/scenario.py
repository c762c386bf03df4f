"""Traffic scenarios for ``calmon simulate``: models, segments, label delays, and drifts
that start at a given time, loaded from YAML (examples under ``config/scenarios/``).

The generative model: each event draws a latent raw score ``s ~ Normal(mean, sd)`` and
its true probability is ``expit(s + bias)``; the label is drawn from the truth. The model
reports ``raw_score = s`` and a calibrated ``probability = expit(k * s)``. Healthy:
``bias = 0``, ``k = 1`` (calibrated). Drifts change one of them from their start on:

- ``overconfidence`` (``strength`` = k > 1): the model's 90% means less than 90%;
- ``underconfidence`` (k < 1);
- ``prior_shift`` (``strength`` = bias): the base rate moves, the model does not know;
- ``score_shift`` (``strength`` = added to s): the raw-score distribution moves, the
  model moves with it (input drift, calibration intact);
- ``ranking_loss`` (``strength`` = sd of noise added to the s the model sees): a broken
  feature; the model ranks events worse (ROC AUC falls) and, not knowing it, is also
  over-confident. Recalibration cannot fix it (the webhook's ``recommendation``).

A drift may be limited to one model and to segment values (``segment: {region: eu}``).

A model with ``classes`` is multi-class: each event draws a logit per class,
``z_k ~ Normal(score_mean + k * class_spread, score_sd)``; the truth is softmax(z), the
label is drawn from it (a class name), and the model reports softmax(slope * z) as
``probabilities``. ``overconfidence`` (slope > 1) is then the over-confident softmax of
an uncalibrated network, and ``class_shift`` (``class: name``, ``strength`` added to that
class's logit in the truth and in what the model sees) makes one class drift: its
probability's distribution moves, calibration intact.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from monitor.settings import Duration


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelSpec(_Strict):
    model_id: str
    model_version: str = "v1"
    #: Segment key -> values (drawn uniformly).
    segments: dict[str, list[str]] = Field(default_factory=dict)
    score_mean: float = -1.5
    score_sd: float = Field(1.3, gt=0)
    #: Share of this model's traffic.
    weight: float = Field(1.0, gt=0)
    #: A multi-class model's classes (at least 2); None: a binary model.
    classes: list[str] | None = Field(None, min_length=2)
    #: Multi-class: how far apart the classes' mean logits are (class k: + k * spread).
    class_spread: float = 0.5


class LabelSpec(_Strict):
    #: Label delay ~ lognormal with this median and log-sd.
    median_delay: Duration = 30.0
    delay_sigma: float = Field(1.0, ge=0)
    #: Share of events whose label never arrives.
    never: float = Field(0.05, ge=0, le=1)
    #: Share of labels sent before their prediction (out of order).
    before_prediction: float = Field(0.02, ge=0, le=1)


class DriftSpec(_Strict):
    kind: Literal[
        "overconfidence",
        "underconfidence",
        "prior_shift",
        "score_shift",
        "ranking_loss",
        "class_shift",
    ]
    #: Seconds after the simulation starts.
    start: Duration | Literal[0] = 0
    strength: float
    model_id: str | None = None
    segment: dict[str, str] = Field(default_factory=dict)
    #: ``class_shift``: the class whose logit moves (``class`` in YAML).
    class_name: str | None = Field(None, alias="class")


class Scenario(_Strict):
    description: str = ""
    models: list[ModelSpec] = Field(min_length=1)
    labels: LabelSpec = LabelSpec()
    #: Share of messages that are malformed (each one of several kinds of bad input).
    malformed: float = Field(0.01, ge=0, le=1)
    drifts: list[DriftSpec] = Field(default_factory=list)


class ScenarioError(ValueError):
    pass


def load_scenario(path: str | Path) -> Scenario:
    try:
        return Scenario.model_validate(yaml.safe_load(Path(path).read_text()))
    except (OSError, yaml.YAMLError) as exc:
        raise ScenarioError(f"cannot read scenario {path}: {exc}") from None
    except ValidationError as exc:
        problems = [f"  {'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise ScenarioError(f"invalid scenario {path}:\n" + "\n".join(problems)) from None


@dataclass(frozen=True)
class Events:
    """A batch of simulated events of one model (arrays of equal length)."""

    model: ModelSpec
    segments: list[dict[str, str]]
    raw_score: np.ndarray
    probability: np.ndarray
    truth: np.ndarray
    label: np.ndarray
    #: A multi-class model's (events, classes) probabilities; ``label`` is then the
    #: class index, and ``raw_score``/``probability`` are unused.
    probabilities: np.ndarray | None = None


def _expit(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _applies(drift: DriftSpec, model: ModelSpec, segment: Mapping[str, str], t: float) -> bool:
    return (
        t >= drift.start
        and drift.model_id in (None, model.model_id)
        and all(segment.get(k) == v for k, v in drift.segment.items())
    )


def generate(
    rng: np.random.Generator, scenario: Scenario, model: ModelSpec, n: int, t: float
) -> Events:
    """``n`` events of ``model`` at ``t`` seconds into the scenario."""
    segments = [
        {key: str(rng.choice(values)) for key, values in model.segments.items()} for _ in range(n)
    ]
    if model.classes is not None:
        return _multiclass_events(rng, scenario, model, segments, t)
    score = rng.normal(model.score_mean, model.score_sd, n)
    shift = np.zeros(n)
    bias = np.zeros(n)
    slope = np.ones(n)
    noise_sd = np.zeros(n)
    for drift in scenario.drifts:
        mask = np.array([_applies(drift, model, s, t) for s in segments], dtype=bool)
        if not mask.any():
            continue
        if drift.kind == "score_shift":
            shift[mask] += drift.strength
        elif drift.kind == "prior_shift":
            bias[mask] += drift.strength
        elif drift.kind == "ranking_loss":
            noise_sd[mask] = np.hypot(noise_sd[mask], drift.strength)
        else:
            slope[mask] *= drift.strength
    score = score + shift
    truth = _expit(score + bias)
    # What the model sees; without a ranking_loss drift, exactly the score (no draw, so
    # the other scenarios' traffic is unchanged for a given seed).
    seen = score + noise_sd * rng.standard_normal(n) if noise_sd.any() else score
    probability = _expit(slope * seen)
    label = (rng.uniform(size=n) < truth).astype(np.int64)
    return Events(model, segments, seen, probability, truth, label)


def _softmax(z: np.ndarray) -> np.ndarray:
    shifted = np.exp(z - z.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def _multiclass_events(
    rng: np.random.Generator,
    scenario: Scenario,
    model: ModelSpec,
    segments: list[dict[str, str]],
    t: float,
) -> Events:
    assert model.classes is not None
    n, k = len(segments), len(model.classes)
    means = model.score_mean + model.class_spread * np.arange(k)
    logits = rng.normal(means, model.score_sd, (n, k))
    slope = np.ones((n, 1))
    for drift in scenario.drifts:
        mask = np.array([_applies(drift, model, s, t) for s in segments], dtype=bool)
        if not mask.any():
            continue
        if drift.kind == "class_shift" and drift.class_name in model.classes:
            logits[mask, model.classes.index(drift.class_name)] += drift.strength
        elif drift.kind in ("overconfidence", "underconfidence"):
            slope[mask] *= drift.strength
    truth = _softmax(logits)
    label = (truth.cumsum(axis=1) < rng.uniform(size=(n, 1))).sum(axis=1)
    label = np.minimum(label, k - 1)
    probabilities = _softmax(slope * logits)
    confidence = probabilities.max(axis=1)
    return Events(model, segments, np.zeros(n), confidence, truth.max(axis=1), label, probabilities)

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


class LabelSpec(_Strict):
    #: Label delay ~ lognormal with this median and log-sd.
    median_delay: Duration = 30.0
    delay_sigma: float = Field(1.0, ge=0)
    #: Share of events whose label never arrives.
    never: float = Field(0.05, ge=0, le=1)
    #: Share of labels sent before their prediction (out of order).
    before_prediction: float = Field(0.02, ge=0, le=1)


class DriftSpec(_Strict):
    kind: Literal["overconfidence", "underconfidence", "prior_shift", "score_shift", "ranking_loss"]
    #: Seconds after the simulation starts.
    start: Duration | Literal[0] = 0
    strength: float
    model_id: str | None = None
    segment: dict[str, str] = Field(default_factory=dict)


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

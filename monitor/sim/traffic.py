"""Synthetic prediction traffic with a known truth, and drifts injected on purpose.

The true probability of an event is ``expit(logit)`` of a latent score; the model's
calibrated probability is the truth passed through a distortion. Labels are drawn from
the truth, so the calibration error is whatever the distortion makes it:

- ``healthy``: probability = truth (calibrated);
- ``overconfident``: probability = expit(k * logit(truth)) with k > 1 on the chosen
  segment (the model's "90%" means less than 90%);
- ``score_shift``: the raw-score distribution moves (the calibrator's input drifts).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

REGIONS = ("eu", "us", "apac")


@dataclass(frozen=True)
class Drift:
    overconfidence: float = 1.0  # k in expit(k * logit(p)); 1 = none
    overconfident_region: str | None = None  # None: every region
    score_shift: float = 0.0  # added to the raw score (logit units)


@dataclass(frozen=True)
class Event:
    event_id: str
    region: str
    raw_score: float
    probability: float
    label: int


def _expit(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def generate(rng: np.random.Generator, n: int, start_id: int, drift: Drift) -> list[Event]:
    regions = rng.choice(REGIONS, n)
    raw = rng.normal(-1.2, 1.3, n) + drift.score_shift
    truth = _expit(raw)
    probability = truth.copy()
    if drift.overconfidence != 1.0:
        affected = (
            np.ones(n, dtype=bool)
            if drift.overconfident_region is None
            else regions == drift.overconfident_region
        )
        probability[affected] = _expit(drift.overconfidence * raw[affected])
    labels = (rng.uniform(size=n) < truth).astype(int)
    return [
        Event(
            f"e{start_id + i}",
            str(regions[i]),
            float(raw[i]),
            float(probability[i]),
            int(labels[i]),
        )
        for i in range(n)
    ]

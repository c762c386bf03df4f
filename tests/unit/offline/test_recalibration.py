"""The recalibration of a file's report (``offline/recalibration.py``), fitted from the
evaluation's aggregates, against scikit-learn and numpy on the events themselves: a
model made over-confident by a known map, p = expit(3 logit(q)) with y ~ Bernoulli(q),
whose correction is temperature 3."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit, logit
from sklearn.linear_model import LogisticRegression

from monitor import evaluate
from monitor.offline.slices import MAX_SLICES, MINUTE_MS, Slices

START = pd.Timestamp("2026-11-02T00:00Z")
HOUR_MS = 3_600_000


def over_confident(n: int = 20_000, seed: int = 0, hours: int = 2) -> pd.DataFrame:
    """Events spread over ``hours`` from START, the first at START and the last 1 ms
    before its end (so the window is [START, START + hours))."""
    rng = np.random.default_rng(seed)
    q = rng.uniform(0.05, 0.95, n)
    ms = np.sort(rng.integers(0, hours * HOUR_MS, n))
    ms[0], ms[-1] = 0, hours * HOUR_MS - 1
    return pd.DataFrame(
        {
            "event_id": np.arange(n).astype(str),
            "model_id": "model",
            "model_version": "v1",
            "timestamp": START + pd.to_timedelta(ms, unit="ms"),
            "probability": expit(3.0 * logit(q)),
            "label": (rng.uniform(size=n) < q).astype(int),
        }
    )


def sklearn_logistic(p: np.ndarray, y: np.ndarray, *, intercept: bool) -> tuple[float, float]:
    """(intercept, slope) of an unpenalised logistic regression of y on logit(p)."""
    model = LogisticRegression(C=np.inf, fit_intercept=intercept, tol=1e-10, max_iter=10_000)
    model.fit(logit(p)[:, None], y)
    return float(model.intercept_[0]) if intercept else 0.0, float(model.coef_[0, 0])


def numpy_ece(q: np.ndarray, y: np.ndarray, n_bins: int = 10) -> float:
    """ECE over equal-width bins: sum over bins of |sum q - sum y| / n."""
    index = np.minimum(np.floor(q * n_bins).astype(int), n_bins - 1)
    gap = np.bincount(index, q, n_bins) - np.bincount(index, y, n_bins)
    return float(np.abs(gap).sum() / q.size)


def test_an_over_confident_file_gets_temperature_checked_against_scikit_learn() -> None:
    frame = over_confident()
    recommendation = evaluate(frame).recalibration
    assert recommendation is not None and recommendation["status"] == "recommended"
    # The split: a 2-hour window is covered by 60 two-minute slices (64 one-minute ones
    # would not reach), and the boundary nearest its middle is the middle itself.
    fitted_on = recommendation["recommended"]["fitted_on"]
    split = START + pd.Timedelta(hours=1)
    assert pd.Timestamp(fitted_on["fit"]["end"]) == split
    early = (frame.timestamp < split).to_numpy()
    assert fitted_on["fit_labelled"] == early.sum()
    assert fitted_on["validation_labelled"] == (~early).sum()
    p, y = frame.probability.to_numpy(), frame.label.to_numpy()
    by_method = {c["method"]: c for c in recommendation["candidates"]}

    # Platt and temperature against scikit-learn on the fit part's events. Tolerance
    # 2e-3: the one approximation is that each event sits at its cell's mean logit (the
    # logistic fits' rows are 1/1024 wide in p), as in test_calibrators.py.
    intercept, slope = sklearn_logistic(p[early], y[early], intercept=True)
    platt = by_method["platt"]["parameters"]
    assert platt["intercept"] == pytest.approx(intercept, abs=2e-3)
    assert platt["slope"] == pytest.approx(slope, abs=2e-3)
    _, inverse_temperature = sklearn_logistic(p[early], y[early], intercept=False)
    temperature = by_method["temperature"]["parameters"]["temperature"]
    assert 1.0 / temperature == pytest.approx(inverse_temperature, abs=2e-3)
    assert temperature == pytest.approx(3.0, abs=0.15)  # the map the data was made with

    # The recommendation: temperature, the simplest map that fits; the artifact is it
    # refitted on the whole window (scikit-learn on every event).
    recommended = recommendation["recommended"]
    assert recommended["method"] == "temperature"
    _, inverse_all = sklearn_logistic(p, y, intercept=False)
    assert 1.0 / recommended["parameters"]["temperature"] == pytest.approx(inverse_all, abs=2e-3)

    # Held-out ECE on the later part's events, by numpy. Identity: exact (cells nest in
    # the ten bins and keep the sum of p). Temperature: within 5e-3, the bound of
    # docs/recalibration.md for putting each event at its cell's mean p before mapping
    # (an event near a bin edge may land in the neighbouring bin); the map is
    # scikit-learn's on the fit part, so its own 2e-3 above is part of the difference.
    later = ~early
    identity = numpy_ece(p[later], y[later])
    mapped = numpy_ece(expit(inverse_temperature * logit(p[later])), y[later])
    assert by_method["identity"]["held_out"]["ece"]["value"] == pytest.approx(identity, abs=1e-9)
    assert by_method["temperature"]["held_out"]["ece"]["value"] == pytest.approx(mapped, abs=5e-3)
    assert mapped < identity / 5 and identity > 0.1


def test_with_every_the_latest_period_is_split_in_its_middle() -> None:
    frame = over_confident(n=30_000, seed=1, hours=3)
    recommendation = evaluate(frame, every="1h").recalibration
    assert recommendation is not None and recommendation["status"] == "recommended"
    fitted_on = recommendation["recommended"]["fitted_on"]
    # Slices of a 1h period: one minute each; the last hour is split at 02:30.
    assert pd.Timestamp(fitted_on["fit"]["start"]) == START + pd.Timedelta(hours=2)
    assert pd.Timestamp(fitted_on["fit"]["end"]) == START + pd.Timedelta(hours=2.5)
    last_hour = frame.timestamp >= START + pd.Timedelta(hours=2)
    early = last_hour & (frame.timestamp < START + pd.Timedelta(hours=2.5))
    assert fitted_on["fit_labelled"] == early.sum()
    assert fitted_on["validation_labelled"] == (last_hour & ~early).sum()


def test_without_a_recommendation_the_reason_is_given() -> None:
    frame = over_confident(n=20_000)
    # No timestamps: every event at one instant, nothing to split.
    untimed = evaluate(probability=frame.probability, label=frame.label).recalibration
    assert untimed == {
        "status": "unavailable",
        "reason": "every event has the same time, so there is no earlier part to fit on "
        "and later part to score on (give each event its timestamp)",
    }
    # Too few labels in a half: the daemon's rule (half of evaluation.min_labelled).
    few = frame.assign(label=frame.label.where(frame.index % 500 == 0))
    reason = evaluate(few, min_labelled=100).recalibration
    assert reason == {
        "status": "unavailable",
        "reason": "each half of the window needs 50 labelled events (half of "
        "evaluation.min_labelled); it has 20 and 20",
    }
    # Shorter than two slices: no boundary inside.
    short = frame.assign(timestamp=START + pd.to_timedelta(np.arange(len(frame)), unit="ms"))
    assert evaluate(short).recalibration == {
        "status": "unavailable",
        "reason": "the window spans 20 s, too short to split into an earlier part to fit "
        "on and a later part to score on (a minute at least)",
    }


@pytest.mark.parametrize("span_ms", [1, MINUTE_MS, 64 * MINUTE_MS, 65 * MINUTE_MS, 30 * 86_400_000])
def test_slices_cover_the_span_and_the_split_is_near_the_middle(span_ms: int) -> None:
    slices = Slices(every_ms=span_ms)  # the width a period of span_ms gets
    width = slices.slice_ms
    assert width * MAX_SLICES >= span_ms and (
        width == MINUTE_MS or width * MAX_SLICES < 2 * span_ms
    )
    start = 1_700_000_000_000
    split = Slices.split_point_ms(start, start + span_ms, width)
    assert split % width == 0
    if span_ms >= 2 * width:
        assert start < split < start + span_ms
        assert abs(split - (start + span_ms / 2)) <= span_ms / MAX_SLICES

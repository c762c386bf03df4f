"""Refits from the raw score in the recommendation: scored on the same held-out events
as the corrections of p, chosen by the same rule, checked on fresh events with
scikit-learn's log loss and a hand-written ECE."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit
from sklearn.metrics import log_loss

from monitor.metrics.aggregates import EventAggregate
from monitor.metrics.calibrators.candidates import METHODS
from monitor.metrics.calibrators.cells import LabelledCells
from monitor.metrics.calibrators.fit import CORRECTIONS
from monitor.metrics.calibrators.validate import recommend

#: A coarse calibrator: five equal-width steps of the margin (as a 5-bin histogram
#: calibrator fitted long ago serves). Every correction of its p has five values at most.
STEPS = np.array([-2.0, -0.5, 0.5, 2.0])


def _coarse(s: np.ndarray) -> np.ndarray:
    return expit(np.array([-3.0, -1.2, 0.0, 1.2, 3.0]))[np.searchsorted(STEPS, s)]


def _draw(rng: np.random.Generator, n: int, serve=_coarse, slope: float = 1.0):
    s = rng.normal(0.0, 1.8, n)
    y = (rng.uniform(size=n) < expit(slope * s)).astype(float)
    return s, serve(s), y


def _cells(s: np.ndarray, p: np.ndarray, y: np.ndarray, with_raw: int | None = None):
    aggregate = EventAggregate.empty()
    aggregate.add_labelled(p, y)
    k = s.size if with_raw is None else with_raw
    aggregate.add_raw_labelled(s[:k], p[:k], y[:k])
    return LabelledCells.of(aggregate)


def _ece(p: np.ndarray, y: np.ndarray, n_bins: int = 10) -> float:
    """Equal-width ECE written out, independent of the metrics core."""
    total = 0.0
    for k in range(n_bins):
        upper = (k + 1) / n_bins
        in_bin = (p >= k / n_bins) & ((p < upper) if k < n_bins - 1 else (p <= 1.0))
        if in_bin.any():
            total += in_bin.sum() * abs(y[in_bin].mean() - p[in_bin].mean())
    return total / p.size


def test_a_refit_beats_every_correction_of_a_coarse_calibrator_on_fresh_events() -> None:
    for seed in range(4):
        rng = np.random.default_rng(seed)
        earlier, later = (_cells(*_draw(rng, 4_000)) for _ in range(2))
        result = recommend(earlier, later, seed=seed)
        assert [c.method for c in result.candidates] == list(METHODS)
        chosen = result.recommended
        assert chosen.method == "raw_platt" and chosen.input == "raw_score", seed
        s, p, y = _draw(rng, 20_000)  # after the fit: never seen by it
        refit = chosen(s)
        best_correction = min(
            (c for c in result.candidates if c.method in CORRECTIONS),
            key=lambda c: c.log_loss.value,
        ).calibrator
        corrected = best_correction(p)
        assert log_loss(y, refit) < log_loss(y, corrected) - 0.01, seed
        assert _ece(refit, y) < 0.03, seed


def test_a_calibrated_stream_with_raw_scores_recommends_identity_in_95_percent() -> None:
    seeds, kept = 60, 0
    for seed in range(seeds):
        rng = np.random.default_rng(2000 + seed)
        earlier, later = (_cells(*_draw(rng, 3_000, serve=expit)) for _ in range(2))
        result = recommend(earlier, later, seed=seed)
        assert len(result.candidates) == len(METHODS)
        kept += result.recommended.method == "identity"
    assert kept >= 0.95 * seeds


def test_held_out_scores_of_a_refit_are_those_of_its_events() -> None:
    rng = np.random.default_rng(4)
    earlier = _cells(*_draw(rng, 5_000))
    s, p, y = _draw(rng, 5_000)
    result = recommend(earlier, _cells(s, p, y))
    for method in ("raw_platt", "raw_histogram", "raw_isotonic"):
        score = result.score_of(method)
        q = score.calibrator(s)
        assert score.log_loss.value == pytest.approx(log_loss(y, q), abs=1e-3), method
        assert score.brier_score.value == pytest.approx(np.mean((q - y) ** 2), abs=1e-4)
        assert score.ece.value == pytest.approx(_ece(q, y), abs=5e-3), method


def test_a_refit_and_a_correction_are_compared_event_by_event() -> None:
    """The paired difference of a correction with a refit: the mean, over the held-out
    events, of the correction's loss minus the refit's, each event with its own p and
    raw score."""
    rng = np.random.default_rng(5)
    earlier = _cells(*_draw(rng, 5_000))
    s, p, y = _draw(rng, 5_000)
    result = recommend(earlier, _cells(s, p, y))
    assert min(result.candidates, key=lambda c: c.log_loss.value).method.startswith("raw_")
    best = min(result.candidates, key=lambda c: c.log_loss.value).calibrator

    def loss(q: np.ndarray) -> np.ndarray:
        q = np.clip(q, 1e-15, 1 - 1e-15)
        return -(y * np.log(q) + (1 - y) * np.log1p(-q))

    for method in CORRECTIONS:
        score = result.score_of(method)
        per_event = loss(score.calibrator(p)) - loss(best(s))
        half = 1.96 * per_event.std() / np.sqrt(per_event.size)
        difference = score.log_loss_above_best
        assert difference.value == pytest.approx(per_event.mean(), abs=1e-3), method
        assert difference.upper - difference.value == pytest.approx(half, rel=0.05), method


def test_refits_are_skipped_when_the_later_part_lacks_raw_scores() -> None:
    rng = np.random.default_rng(6)
    earlier = _cells(*_draw(rng, 4_000))
    later = _cells(*_draw(rng, 4_000), with_raw=3_000)
    result = recommend(earlier, later)
    assert [c.method for c in result.candidates] == list(CORRECTIONS)
    assert result.skipped["raw_platt"] == (
        "the later part: only 3000 of the 4000 labelled events carry a raw score "
        "(buckets written before aggregate format 3 keep none)"
    )


def test_a_refit_recommended_is_refitted_on_the_whole_window() -> None:
    rng = np.random.default_rng(7)
    parts = [_draw(rng, 4_000) for _ in range(2)]
    whole = _cells(*(np.r_[a, b] for a, b in zip(*parts, strict=True)))
    result = recommend(_cells(*parts[0]), _cells(*parts[1]), refit_on=whole)
    assert result.recommended.method == "raw_platt"
    validated = result.score_of("raw_platt").calibrator
    assert result.recommended.parameters != validated.parameters

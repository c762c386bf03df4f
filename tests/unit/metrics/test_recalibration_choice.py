"""The recommendation: fitted on the earlier part of a window, scored on the later part,
checked on fresh events drawn after the fit with scikit-learn's log loss and a
hand-written ECE."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit, logit
from sklearn.metrics import log_loss

from monitor.metrics.aggregates import EventAggregate
from monitor.metrics.calibrators.cells import LabelledCells
from monitor.metrics.calibrators.fit import CORRECTIONS
from monitor.metrics.calibrators.validate import recommend

#: The truth behind the served p, as (slope, intercept) on logit p.
DRIFTS = {
    "over-confident": (0.55, 0.0),
    "under-confident": (1.7, 0.0),
    "prior shift": (1.0, 0.8),
}


def _draw(rng: np.random.Generator, n: int, slope: float, intercept: float):
    p = rng.beta(1.2, 2.5, n)
    y = (rng.uniform(size=n) < expit(intercept + slope * logit(p))).astype(float)
    return p, y


def _cells(p: np.ndarray, y: np.ndarray) -> LabelledCells:
    aggregate = EventAggregate.empty()
    aggregate.add_labelled(p, y)
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


@pytest.mark.parametrize("drift", list(DRIFTS))
def test_the_recommended_map_fixes_fresh_events(drift: str) -> None:
    slope, intercept = DRIFTS[drift]
    for seed in range(5):
        rng = np.random.default_rng(seed)
        earlier, later = (_cells(*_draw(rng, 4_000, slope, intercept)) for _ in range(2))
        chosen = recommend(earlier, later, seed=seed).recommended
        assert chosen.method != "identity", (drift, seed)
        p, y = _draw(rng, 20_000, slope, intercept)  # after the fit: never seen by it
        fixed = chosen(p)
        assert log_loss(y, fixed) < log_loss(y, p) - 0.005, (drift, seed)
        assert _ece(fixed, y) < 0.5 * _ece(p, y), (drift, seed)


def test_a_calibrated_stream_recommends_identity_in_95_percent_of_seeds() -> None:
    seeds = 60
    kept = 0
    for seed in range(seeds):
        rng = np.random.default_rng(1000 + seed)
        earlier, later = (_cells(*_draw(rng, 3_000, 1.0, 0.0)) for _ in range(2))
        kept += recommend(earlier, later, seed=seed).recommended.method == "identity"
    assert kept >= 0.95 * seeds


def test_every_candidate_is_scored_and_ordered_simplest_first() -> None:
    rng = np.random.default_rng(3)
    earlier, later = (_cells(*_draw(rng, 5_000, 0.6, 0.2)) for _ in range(2))
    result = recommend(earlier, later)
    # No raw scores in these windows: the corrections of p only.
    assert [c.method for c in result.candidates] == list(CORRECTIONS)
    assert (result.n_fit, result.n_validation) == (5_000, 5_000)
    best = min(result.candidates, key=lambda c: c.log_loss.value)
    assert best.log_loss_above_best.value == 0.0
    for score in result.candidates:
        for estimate in (score.log_loss, score.brier_score, score.ece):
            assert estimate.lower <= estimate.value <= estimate.upper


def test_held_out_scores_from_cells_are_those_of_the_events() -> None:
    rng = np.random.default_rng(4)
    earlier = _cells(*_draw(rng, 5_000, 0.6, 0.2))
    p, y = _draw(rng, 5_000, 0.6, 0.2)
    result = recommend(earlier, _cells(p, y))
    for score in result.candidates:
        q = score.calibrator(p)
        assert score.log_loss.value == pytest.approx(log_loss(y, q), abs=1e-3), score.method
        assert score.brier_score.value == pytest.approx(np.mean((q - y) ** 2), abs=1e-4)
        assert score.ece.value == pytest.approx(_ece(q, y), abs=5e-3), score.method


def test_the_log_loss_interval_is_the_one_a_bootstrap_of_the_events_gives() -> None:
    rng = np.random.default_rng(5)
    earlier = _cells(*_draw(rng, 5_000, 0.7, 0.0))
    p, y = _draw(rng, 5_000, 0.7, 0.0)
    result = recommend(earlier, _cells(p, y))
    identity = result.score_of("identity")
    difference = identity.log_loss_above_best
    best = min(result.candidates, key=lambda c: c.log_loss.value).calibrator
    q_identity, q_best = np.clip(p, 1e-15, 1 - 1e-15), best(p)

    def loss(q: np.ndarray) -> np.ndarray:
        return -(y * np.log(q) + (1 - y) * np.log1p(-q))

    per_event = loss(q_identity) - loss(q_best)
    resampled = rng.integers(0, p.size, size=(2_000, p.size))
    boot = per_event[resampled].mean(axis=1)
    lower, upper = np.quantile(boot, [0.025, 0.975])
    width = upper - lower
    assert difference.lower == pytest.approx(lower, abs=0.1 * width)
    assert difference.upper == pytest.approx(upper, abs=0.1 * width)
    single = loss(q_identity)[resampled].mean(axis=1)
    assert identity.log_loss.lower == pytest.approx(np.quantile(single, 0.025), rel=0.01)


def test_an_improvement_inside_the_margin_keeps_identity() -> None:
    rng = np.random.default_rng(6)
    earlier, later = (_cells(*_draw(rng, 5_000, 0.7, 0.0)) for _ in range(2))
    assert recommend(earlier, later).recommended.method != "identity"
    assert recommend(earlier, later, margin=1.0).recommended.method == "identity"


def test_an_empty_later_part_is_refused_by_name() -> None:
    rng = np.random.default_rng(7)
    earlier = _cells(*_draw(rng, 1_000, 1.0, 0.0))
    with pytest.raises(ValueError, match="later part of the window has no labelled events"):
        recommend(earlier, LabelledCells.of(EventAggregate.empty()))


def test_the_recommended_method_is_refitted_on_the_whole_window() -> None:
    rng = np.random.default_rng(8)
    p1, y1 = _draw(rng, 4_000, 0.6, 0.0)
    p2, y2 = _draw(rng, 4_000, 0.4, 0.0)  # the drift went on: the later part is worse
    earlier, later, whole = _cells(p1, y1), _cells(p2, y2), _cells(np.r_[p1, p2], np.r_[y1, y2])
    validated = recommend(earlier, later)
    refitted = recommend(earlier, later, refit_on=whole)
    method = validated.recommended.method
    assert method == refitted.recommended.method == "temperature"
    # The scores are those of the fits on the earlier part.
    assert [c.log_loss for c in refitted.candidates] == [c.log_loss for c in validated.candidates]
    (truth,) = _sklearn_slope(np.r_[p1, p2], np.r_[y1, y2])
    assert 1 / refitted.recommended.parameters["temperature"] == pytest.approx(truth, abs=5e-3)
    assert refitted.recommended.parameters != validated.recommended.parameters


def _sklearn_slope(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=np.inf, fit_intercept=False, tol=1e-10, max_iter=10_000)
    return model.fit(logit(p)[:, None], y).coef_[0]

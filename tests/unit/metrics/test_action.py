"""Recalibrate, retrain or neither, on simulated periods whose truth is known: the same
population scored by a model that turned over-confident (a monotone change: ranking
kept), by one whose scores got noisier (ranking lost), and by an unchanged model."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from monitor.metrics.action import NONE, RECALIBRATE, RETRAIN, recommend_action
from monitor.metrics.aggregates import EventAggregate
from monitor.metrics.calibration import expected_calibration_error


def _period(
    rng: np.random.Generator, n: int, *, sharpen: float = 1.0, noise: float = 0.0
) -> tuple[EventAggregate, np.ndarray, np.ndarray]:
    truth = rng.beta(2, 3, n)
    logit = np.log(truth / (1 - truth))
    p = 1 / (1 + np.exp(-(sharpen * logit + noise * rng.normal(size=n))))
    y = (rng.uniform(size=n) < truth).astype(float)
    aggregate = EventAggregate.empty()
    aggregate.add_labelled(p, y)
    return aggregate, p, y


def test_over_confident_with_the_same_ranking_is_recalibrate() -> None:
    rng = np.random.default_rng(1)
    reference, p0, y0 = _period(rng, 20_000)
    current, p1, y1 = _period(rng, 20_000, sharpen=2.5)
    found = recommend_action(current, reference)
    assert found.action == RECALIBRATE
    assert found.ece.lower > 0
    assert found.auc is not None and found.auc.lower < 0 < found.auc.upper
    # The values it compares are those of the events (scikit-learn, the metrics core).
    assert found.auc.current == pytest.approx(roc_auc_score(y1, p1), abs=1e-3)
    assert found.ece.current == pytest.approx(expected_calibration_error(p1, y1), abs=1e-12)
    assert found.ece.reference == pytest.approx(expected_calibration_error(p0, y0), abs=1e-12)
    assert "ECE rose" in found.reasons[0]


def test_a_noisier_ranking_is_retrain_even_when_ece_rose_too() -> None:
    rng = np.random.default_rng(2)
    reference, _, _ = _period(rng, 20_000)
    current, _, _ = _period(rng, 20_000, noise=1.5)
    found = recommend_action(current, reference)
    assert found.action == RETRAIN
    assert found.auc is not None and found.auc.upper < -0.01
    assert "ROC AUC fell" in found.reasons[0]


def test_an_unchanged_model_is_almost_always_none() -> None:
    rng = np.random.default_rng(3)
    actions = [
        recommend_action(_period(rng, 5000)[0], _period(rng, 5000)[0], resamples=300).action
        for _ in range(40)
    ]
    assert actions.count(NONE) >= 38


def test_one_class_in_a_period_leaves_auc_out() -> None:
    rng = np.random.default_rng(4)
    reference = EventAggregate.empty()
    reference.add_labelled(rng.uniform(0, 0.2, 500), np.zeros(500))
    current, _, _ = _period(rng, 2000)
    found = recommend_action(current, reference)
    assert found.auc is None
    assert found.to_json()["roc_auc"] is None

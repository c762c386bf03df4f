"""A multi-class series' window values against references on the same events:
scikit-learn where it has the metric, event-level loops where it does not (top-label and
classwise ECE), and PSI of the events themselves for drift."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

from monitor.metrics.drift import ReferenceProfile, population_stability_index
from monitor.metrics.multiclass import MulticlassAggregate
from monitor.settings import EvaluationSettings
from monitor.windows.multiclass import evaluate_multiclass

CLASSES = ("billing", "other", "sales", "tech")
SETTINGS = EvaluationSettings(min_labelled=100, min_predictions=100)


def _events(seed: int, n: int, *, temperature: float = 1.0, shift: float = 0.0):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 1.5, (n, 4)) + 0.4 * np.arange(4)
    logits[:, 3] += shift
    truth = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = np.minimum((truth.cumsum(axis=1) < rng.uniform(size=(n, 1))).sum(axis=1), 3)
    p = np.exp(logits / temperature)
    return p / p.sum(axis=1, keepdims=True), y


def _aggregate(p: np.ndarray, y: np.ndarray, labelled: int) -> MulticlassAggregate:
    aggregate = MulticlassAggregate.empty(CLASSES)
    aggregate.add_predictions(p)
    aggregate.add_labelled(p[:labelled], y[:labelled])
    return aggregate


def _ece_loop(confidence: np.ndarray, hit: np.ndarray, n_bins: int = 10) -> float:
    totals = np.zeros((n_bins, 3))
    for c, h in zip(confidence, hit, strict=True):
        totals[min(int(np.floor(c * n_bins)), n_bins - 1)] += (1.0, c, h)
    return float(np.abs(totals[:, 1] - totals[:, 2]).sum() / len(confidence))


def test_values_overall_and_per_class_match_references() -> None:
    p, y = _events(1, 5000, temperature=0.6)
    labelled = 4000  # a fifth of the window still waits for its labels
    reference_p, _ = _events(2, 5000)
    current_p, _ = _events(3, 5000, shift=1.5)  # "tech" drifts
    out = evaluate_multiclass(_aggregate(p, y, labelled), _aggregate(reference_p, y, 0), SETTINGS)
    pl, yl = p[:labelled], y[:labelled]
    values = out.values
    assert values["window_labelled"] == labelled
    assert values["label_coverage_ratio"] == pytest.approx(0.8)
    hit = (pl.argmax(axis=1) == yl).astype(float)
    assert values["top_label_ece"] == pytest.approx(_ece_loop(pl.max(axis=1), hit), abs=1e-12)
    classwise = np.mean([_ece_loop(pl[:, k], (yl == k).astype(float)) for k in range(4)])
    assert values["classwise_ece"] == pytest.approx(classwise, abs=1e-12)
    assert values["log_loss"] == pytest.approx(log_loss(yl, pl, labels=range(4)), abs=1e-12)
    assert values["multiclass_brier_score"] == pytest.approx(
        brier_score_loss(yl, pl, labels=range(4)), abs=1e-12
    )
    assert values["accuracy_score"] == pytest.approx(hit.mean(), abs=1e-12)
    assert values["estimated_accuracy_score"] == pytest.approx(p.max(axis=1).mean(), abs=1e-12)
    assert values["estimated_accuracy_score_gap"] == pytest.approx(
        hit.mean() - pl.max(axis=1).mean(), abs=1e-12
    )
    for k, name in enumerate(CLASSES):
        found = out.classes[name].values
        assert found["class_brier_score"] == pytest.approx(
            brier_score_loss(yl == k, pl[:, k]), abs=1e-12
        )
        exact = roc_auc_score(yl == k, pl[:, k])
        assert abs(found["class_roc_auc_score"] - exact) <= found["class_roc_auc_error_bound"]
        assert found["class_observed_ratio"] == pytest.approx(np.mean(yl == k))
        assert sum(b.count for b in out.classes[name].reliability_bins) == labelled
    # drift of the confidence and of each class's probability, against the events' PSI
    # (the class grid is 1/1280 wide: reference quantiles differ by at most a cell)
    drifted = evaluate_multiclass(
        _aggregate(current_p, y, 0), _aggregate(reference_p, y, 0), SETTINGS
    )
    confidence_psi = population_stability_index(
        ReferenceProfile.fit(reference_p.max(axis=1), kind="probability"), current_p.max(axis=1)
    )
    assert drifted.values["psi_confidence"] == pytest.approx(confidence_psi, rel=1e-9)
    for k, name in enumerate(CLASSES):
        psi = population_stability_index(
            ReferenceProfile.fit(reference_p[:, k], kind="probability"), current_p[:, k]
        )
        assert drifted.classes[name].values["class_psi"] == pytest.approx(psi, rel=0.03, abs=0.003)
    assert drifted.classes["tech"].values["class_psi"] > 0.25
    assert (
        drifted.classes["billing"].values["class_psi"]
        < drifted.classes["tech"].values["class_psi"] / 2
    )


def test_too_few_events_leave_the_metrics_out() -> None:
    p, y = _events(4, 80)
    out = evaluate_multiclass(_aggregate(p, y, 80), _aggregate(p, y, 0), SETTINGS)
    assert "top_label_ece" not in out.values and "psi_confidence" not in out.values
    assert out.values["window_labelled"] == 80
    assert all(not c.values for c in out.classes.values())


def test_a_class_the_reference_never_named_has_no_drift_value() -> None:
    p, y = _events(5, 2000)
    three = MulticlassAggregate.empty(CLASSES[:3])
    q = p[:, :3] / p[:, :3].sum(axis=1, keepdims=True)
    three.add_predictions(q)
    out = evaluate_multiclass(_aggregate(p, y, 0), three, SETTINGS)
    assert "class_psi" in out.classes["billing"].values
    assert "class_psi" not in out.classes["tech"].values  # all reference events at p = 0

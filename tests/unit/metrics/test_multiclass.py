"""Multi-class metrics from merged aggregates versus references on the same events:
scikit-learn where it has the metric, a per-event loop of our own (Kull et al.'s and
netcal's definitions) where it does not. netcal itself pulls in torch and CUDA, too
heavy a dev dependency for a reference of a few lines."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import accuracy_score, brier_score_loss, log_loss, roc_auc_score

from monitor.metrics.drift import ReferenceProfile, compare
from monitor.metrics.errors import MetricInputError
from monitor.metrics.multiclass import MulticlassAggregate
from monitor.metrics.multiclass_summary import multiclass_estimates, multiclass_summary


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def _stream(
    seed: int, n: int, k: int, *, temperature: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from softmax(logits); the model reports softmax(logits / T): T < 1 is
    the over-confident softmax of an uncalibrated network, T = 1 is calibrated."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2.0, (n, k)) + np.linspace(0, 1, k)
    truth = _softmax(logits)
    y = (truth.cumsum(axis=1) < rng.uniform(size=(n, 1))).sum(axis=1)
    return _softmax(logits / temperature), np.minimum(y, k - 1)


def _aggregate(p: np.ndarray, y: np.ndarray, n_buckets: int) -> MulticlassAggregate:
    k = p.shape[1]
    buckets = []
    for part_p, part_y in zip(
        np.array_split(p, n_buckets), np.array_split(y, n_buckets), strict=True
    ):
        bucket = MulticlassAggregate.empty(k)
        bucket.add_predictions(part_p)
        bucket.add_labelled(part_p, part_y)
        buckets.append(MulticlassAggregate.from_bytes(bucket.to_bytes()))  # as stored
    return MulticlassAggregate.merge_all(buckets)


def _ece_loop(confidence: np.ndarray, hit: np.ndarray, n_bins: int) -> float:
    """ECE by a loop over events: bin = min(floor(c * M), M - 1)."""
    totals = np.zeros((n_bins, 3))
    for c, h in zip(confidence, hit, strict=True):
        m = min(int(np.floor(c * n_bins)), n_bins - 1)
        totals[m] += (1.0, c, h)
    occupied = totals[:, 0] > 0
    gaps = np.abs(totals[occupied, 1] - totals[occupied, 2])
    return float(gaps.sum() / len(confidence))


@pytest.mark.parametrize(("k", "temperature"), [(2, 1.0), (4, 0.5), (10, 0.7), (100, 1.0)])
@pytest.mark.parametrize("n_bins", [10, 20])
def test_metrics_match_references_on_the_events(k: int, temperature: float, n_bins: int) -> None:
    p, y = _stream(k, 6000, k, temperature=temperature)
    summary = multiclass_summary(_aggregate(p, y, 9), n_bins=n_bins)
    values = summary.values
    predicted = p.argmax(axis=1)
    confidence = p.max(axis=1)
    hit = (predicted == y).astype(float)
    assert values["top_label_ece"] == pytest.approx(_ece_loop(confidence, hit, n_bins), abs=1e-12)
    classwise = np.mean([_ece_loop(p[:, c], (y == c).astype(float), n_bins) for c in range(k)])
    assert values["classwise_ece"] == pytest.approx(classwise, abs=1e-12)
    labels = list(range(k))
    # scikit-learn sums over classes, except for two classes, where it gives the binary
    # score of the second class: half the sum.
    scale = 2.0 if k == 2 else 1.0
    assert values["multiclass_brier_score"] == pytest.approx(
        scale * brier_score_loss(y, p, labels=labels), abs=1e-12
    )
    assert values["log_loss"] == pytest.approx(log_loss(y, p, labels=labels), abs=1e-10)
    assert values["accuracy_score"] == pytest.approx(accuracy_score(y, predicted), abs=1e-15)
    for c, per_class in summary.classes.items():
        assert per_class.values["brier_score"] == pytest.approx(
            brier_score_loss(y == c, p[:, c]), abs=1e-12
        )
        if 0 < (y == c).sum() < y.size:
            exact = roc_auc_score(y == c, p[:, c])
            assert abs(per_class.values["roc_auc_score"] - exact) <= (
                per_class.values["roc_auc_error_bound"] + 1e-12
            )
    if len(set(y)) == k:  # scikit-learn's macro OvR needs every class in y
        exact = (
            roc_auc_score(y, p[:, 1])  # two classes: both one-vs-rest AUCs are this one
            if k == 2
            else roc_auc_score(y, p, multi_class="ovr", average="macro", labels=labels)
        )
        assert abs(values["roc_auc_ovr_macro_score"] - exact) <= (
            values["roc_auc_ovr_macro_error_bound"] + 1e-12
        )
    # Reliability bins of the confidence: count and observed accuracy per occupied bin.
    bins = np.minimum(np.floor(confidence * n_bins).astype(int), n_bins - 1)
    for b in summary.reliability_bins:
        assert b.count == (bins == b.index).sum()
        assert b.observed_ratio == pytest.approx(hit[bins == b.index].mean(), abs=1e-12)


def test_an_over_confident_softmax_shows_in_top_label_ece() -> None:
    calibrated = multiclass_summary(_aggregate(*_stream(1, 20_000, 5), 4)).values
    over = multiclass_summary(_aggregate(*_stream(1, 20_000, 5, temperature=0.4), 4)).values
    assert calibrated["top_label_ece"] < 0.02
    assert over["top_label_ece"] > 0.1
    assert over["classwise_ece"] > 3 * calibrated["classwise_ece"]
    # Same ranking: the temperature does not change the argmax or the class orders.
    assert over["accuracy_score"] == calibrated["accuracy_score"]
    assert over["roc_auc_ovr_macro_score"] == pytest.approx(
        calibrated["roc_auc_ovr_macro_score"], abs=2 * over["roc_auc_ovr_macro_error_bound"]
    )


def test_the_drifting_class_is_the_one_whose_probability_drifts() -> None:
    k = 6
    reference = MulticlassAggregate.empty(k)
    reference.add_predictions(_stream(2, 20_000, k)[0])
    rng = np.random.default_rng(3)
    logits = rng.normal(0, 2.0, (20_000, k)) + np.linspace(0, 1, k)
    logits[:, 4] += 1.5  # class 4 becomes more likely
    current = MulticlassAggregate.empty(k)
    current.add_predictions(_softmax(logits))
    psi = {}
    for c in range(k):
        profile = ReferenceProfile.from_histogram(
            reference.class_probability_histogram(c), kind="probability"
        )
        psi[c] = compare(profile, current.class_probability_histogram(c)).psi
    assert max(psi, key=psi.__getitem__) == 4
    assert psi[4] > 0.2
    # The confidence drifts too, and is measured like a binary model's probability.
    profile = ReferenceProfile.from_histogram(reference.top.probabilities, kind="probability")
    assert compare(profile, current.top.probabilities).psi > 0.01


def test_estimates_are_the_realised_metrics_in_expectation_when_calibrated() -> None:
    p, _ = _stream(4, 3000, 5)
    aggregate = MulticlassAggregate.empty(5)
    aggregate.add_predictions(p)
    estimate = multiclass_estimates(aggregate)
    rng = np.random.default_rng(5)
    realised: dict[str, list[float]] = {"accuracy": [], "brier": [], "log_loss": []}
    for _ in range(200):  # labels drawn from p itself: calibrated by construction
        y = np.minimum((p.cumsum(axis=1) < rng.uniform(size=(p.shape[0], 1))).sum(axis=1), 4)
        realised["accuracy"].append(accuracy_score(y, p.argmax(axis=1)))
        realised["brier"].append(brier_score_loss(y, p, labels=range(5)))
        realised["log_loss"].append(log_loss(y, p, labels=range(5)))
    for key, name in (
        ("accuracy", "estimated_accuracy_score"),
        ("brier", "estimated_multiclass_brier_score"),
        ("log_loss", "estimated_log_loss"),
    ):
        values = np.asarray(realised[key])
        standard_error = values.std(ddof=1) / np.sqrt(values.size)
        assert abs(values.mean() - estimate[name]) <= 4 * standard_error, key


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31), st.integers(2, 12), st.integers(1, 400), st.integers(1, 6))
def test_merged_aggregates_equal_one_aggregate(seed: int, k: int, n: int, parts: int) -> None:
    p, y = _stream(seed, n, k, temperature=0.8)
    whole = MulticlassAggregate.empty(k)
    whole.add_predictions(p)
    whole.add_labelled(p, y)
    merged = _aggregate(p, y, parts)
    at_once, from_parts = multiclass_summary(whole).values, multiclass_summary(merged).values
    assert at_once.keys() == from_parts.keys()
    for key, value in at_once.items():
        assert from_parts[key] == pytest.approx(value, abs=1e-9), key
    assert multiclass_estimates(merged) == pytest.approx(multiclass_estimates(whole), abs=1e-9)


def test_bad_input_is_a_clear_error() -> None:
    aggregate = MulticlassAggregate.empty(3)
    with pytest.raises(MetricInputError, match=r"\(events, 3\)"):
        aggregate.add_predictions(np.ones((2, 4)) / 4)
    with pytest.raises(MetricInputError, match="class indices"):
        aggregate.add_labelled(np.ones((1, 3)) / 3, np.array([3]))
    with pytest.raises(MetricInputError, match="in \\[0, 1\\]"):
        aggregate.add_predictions(np.array([[1.5, -0.5, 0.0]]))
    with pytest.raises(MetricInputError, match="2 or more"):
        MulticlassAggregate.empty(1)
    with pytest.raises(MetricInputError, match="distinct and sorted"):
        MulticlassAggregate.empty(["dog", "cat"])
    assert multiclass_summary(aggregate).values == {}


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31), st.integers(1, 300), st.integers(1, 5))
def test_aggregates_of_other_class_sets_merge_by_name(seed: int, n: int, parts: int) -> None:
    # Events naming only some of the classes (an object without a key) count at
    # probability 0 for the others: merged by name, the parts give what one aggregate
    # of the zero-filled vectors gives.
    names = ("ant", "bee", "cat", "dog", "eel")
    rng = np.random.default_rng(seed)
    p, y = _stream(seed, n, len(names), temperature=0.8)
    subsets = [
        np.sort(rng.choice(len(names), rng.integers(2, 6), replace=False)) for _ in range(parts)
    ]
    whole = MulticlassAggregate.empty(names)
    buckets = []
    for subset, rows in zip(subsets, np.array_split(np.arange(n), parts), strict=True):
        part = p[np.ix_(rows, subset)]
        part = part / part.sum(axis=1, keepdims=True)
        # a label joins only a class the vector names: keep the events labelled within it
        keep = np.isin(y[rows], subset)
        labels = np.searchsorted(subset, y[rows][keep])
        bucket = MulticlassAggregate.empty([names[k] for k in subset])
        bucket.add_predictions(part)
        bucket.add_labelled(part[keep], labels)
        buckets.append(MulticlassAggregate.from_bytes(bucket.to_bytes()))
        full = np.zeros((rows.size, len(names)))
        full[:, subset] = part
        whole.add_predictions(full)
        whole.add_labelled(full[keep], y[rows][keep])
    merged = MulticlassAggregate.merge_all(buckets).aligned(names)
    at_once, from_parts = multiclass_summary(whole).values, multiclass_summary(merged).values
    assert at_once.keys() == from_parts.keys()
    for key, value in at_once.items():
        assert from_parts[key] == pytest.approx(value, abs=1e-9), key
    for k in range(len(names)):
        assert np.array_equal(
            merged.class_probability_histogram(k).values,
            whole.class_probability_histogram(k).values,
        )

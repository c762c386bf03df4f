"""ROC AUC and average precision from merged aggregates versus scikit-learn on the raw
events: within the stated bound always, and the bound itself tight and small."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import norm
from sklearn.metrics import average_precision_score, roc_auc_score

from monitor.metrics.aggregates import COLUMN, EventAggregate
from monitor.metrics.discrimination import discrimination_from_cells
from monitor.metrics.errors import UndefinedMetricError
from monitor.metrics.summary import calibration_summary, discrimination_values


def _aggregate(p: np.ndarray, y: np.ndarray, n_buckets: int) -> EventAggregate:
    buckets = []
    for part_p, part_y in zip(
        np.array_split(p, n_buckets), np.array_split(y, n_buckets), strict=True
    ):
        bucket = EventAggregate.empty()
        if part_p.size:
            bucket.add_labelled(part_p, part_y)
        buckets.append(EventAggregate.from_bytes(bucket.to_bytes()))  # as the store keeps it
    return EventAggregate.merge_all(buckets)


def _assert_within_bounds(p: np.ndarray, y: np.ndarray, values: dict[str, float]) -> None:
    exact_auc = roc_auc_score(y, p)
    exact_ap = average_precision_score(y, p)
    assert abs(values["roc_auc_score"] - exact_auc) <= values["roc_auc_error_bound"] + 1e-12
    assert (
        abs(values["average_precision_score"] - exact_ap)
        <= values["average_precision_error_bound"] + 1e-12
    )


def _events(seed: int, n: int, shape: str) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    if shape == "beta":
        p = rng.beta(2.0, 5.0, n)
    elif shape == "tails":  # a fraud model: most mass far below 1e-3
        p = np.concatenate([10 ** rng.uniform(-9, -2, n - n // 10), rng.uniform(0.5, 1, n // 10)])
    elif shape == "discrete":  # few distinct outputs: real ties, the cells change nothing
        p = rng.choice([0.0, 0.05, 0.1, 0.3, 0.5, 0.7, 1.0], n)
    else:  # narrow: every event in a handful of cells, the worst case for the bound
        p = 0.5 + rng.uniform(0, 4 / 10240, n)
    y = (rng.uniform(size=n) < np.clip(p * 1.3, 0, 1)).astype(float)
    return p, y


@pytest.mark.parametrize("shape", ["beta", "tails", "discrete", "narrow"])
@pytest.mark.parametrize("seed", [1, 2])
def test_auc_and_ap_are_within_their_bound_of_scikit_learn(shape: str, seed: int) -> None:
    p, y = _events(seed, 20_000, shape)
    values = calibration_summary(_aggregate(p, y, 12), bootstrap_resamples=0).values
    _assert_within_bounds(p, y, values)
    if shape == "discrete":  # ties in the events are ties in the cells: exact
        assert values["roc_auc_score"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
        assert values["average_precision_score"] == pytest.approx(
            average_precision_score(y, p), abs=1e-12
        )
    if shape == "beta":  # continuous p, 20,000 events on 10,240 cells: a small bound
        assert values["roc_auc_error_bound"] < 1e-3
        assert values["average_precision_error_bound"] < 1e-3


def test_the_auc_bound_is_reached_when_a_cell_hides_a_perfect_ranking() -> None:
    # All events in one cell; every positive above every negative: exact AUC 1, the cell
    # sees a tie (0.5), and the bound says 0.5: tight, not merely safe.
    p = 0.5 + np.array([0, 1, 2, 3]) * 1e-6
    y = np.array([0.0, 0.0, 1.0, 1.0])
    values = discrimination_values(_aggregate(p, y, 1))
    assert values["roc_auc_score"] == 0.5
    assert values["roc_auc_error_bound"] == 0.5
    assert roc_auc_score(y, p) == 1.0
    # AP: the cell gives each positive precision 2/4; exactly ordered they have 1 and 1.
    assert values["average_precision_score"] == 0.5
    assert average_precision_score(y, p) == 1.0
    assert values["average_precision_error_bound"] >= 0.5


def test_one_event_per_cell_is_exact_with_a_zero_bound() -> None:
    p = (np.arange(200) + 0.5) / 200
    y = (np.random.default_rng(3).uniform(size=200) < p).astype(float)
    values = discrimination_values(_aggregate(p, y, 3))
    assert values["roc_auc_error_bound"] == 0.0
    assert values["average_precision_error_bound"] == 0.0
    assert values["roc_auc_score"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert values["average_precision_score"] == pytest.approx(
        average_precision_score(y, p), abs=1e-12
    )


@settings(max_examples=60, deadline=None)
@given(
    st.integers(0, 2**31),
    st.integers(2, 400),
    st.integers(1, 6),
    st.sampled_from([3, 30, 10240, 10**6]),
)
def test_within_bound_on_arbitrary_windows(seed: int, n: int, parts: int, levels: int) -> None:
    # ``levels`` distinct values: from heavy real ties to several events per cell.
    rng = np.random.default_rng(seed)
    p = np.round(rng.uniform(0, 1, n) * levels) / levels
    y = (rng.uniform(size=n) < p).astype(float)
    if y.min() == y.max():
        return
    _assert_within_bounds(p, y, discrimination_values(_aggregate(p, y, parts)))


def test_one_class_only_has_no_discrimination() -> None:
    with pytest.raises(UndefinedMetricError):
        discrimination_from_cells(np.array([3.0, 2.0]), np.array([0.0, 0.0]))
    aggregate = EventAggregate.empty()
    aggregate.add_labelled(np.array([0.2, 0.4, 0.9]), np.ones(3))
    values = calibration_summary(aggregate, bootstrap_resamples=0).values
    assert "roc_auc_score" not in values and "average_precision_score" not in values


def _delong_events(p: np.ndarray, y: np.ndarray) -> float:
    """DeLong's standard error from the events themselves (O(P N) pairs)."""
    positive, negative = p[y == 1], p[y == 0]
    psi = (positive[:, None] > negative[None, :]) + 0.5 * (positive[:, None] == negative[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    return float(np.sqrt(v10.var(ddof=1) / positive.size + v01.var(ddof=1) / negative.size))


@pytest.mark.parametrize("levels", [7, 10**6])
def test_the_auc_standard_error_is_delongs(levels: int) -> None:
    # Few distinct values (real ties) or spread ones: either way cells hold the events'
    # exact ordering up to ties, and DeLong's variance is the same computed on cells.
    rng = np.random.default_rng(levels)
    p = np.round(rng.beta(2, 3, 1500) * levels) / levels
    y = (rng.uniform(size=p.size) < p).astype(float)
    aggregate = _aggregate(p, y, 4)
    cells = aggregate.labelled.values
    found = discrimination_from_cells(cells[:, COLUMN["count"]], cells[:, COLUMN["sum_y"]])
    if levels == 7:
        assert found.roc_auc_standard_error == pytest.approx(_delong_events(p, y), rel=1e-9)
    else:  # some cells hold two events: close, not equal
        assert found.roc_auc_standard_error == pytest.approx(_delong_events(p, y), rel=1e-2)


def test_the_auc_interval_covers_the_true_auc_about_95_percent_of_the_time() -> None:
    # Scores N(1, 1) for positives and N(0, 1) for negatives: true AUC = Phi(1 / sqrt 2).
    true_auc = norm.cdf(1 / np.sqrt(2))
    rng = np.random.default_rng(8)
    covered = 0
    for _ in range(400):
        y = (rng.uniform(size=300) < 0.3).astype(float)
        score = rng.normal(y, 1.0)
        p = 1 / (1 + np.exp(-score))
        values = discrimination_values(_aggregate(p, y, 2))
        covered += values["roc_auc_ci_lower"] <= true_auc <= values["roc_auc_ci_upper"]
    assert 0.92 <= covered / 400 <= 0.98

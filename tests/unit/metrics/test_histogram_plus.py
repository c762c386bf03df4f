"""Adding and taking out histograms in place (the window cache's updates): counts exact,
emptied cells dropped, and each float sum within the recursive-summation bound
gamma_k x (sum of the magnitudes added and taken out), gamma_k = k u / (1 - k u),
u = 2**-53, k the updates of the cell (``monitor/windows/incremental.py``)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.metrics.aggregates import EventAggregate
from monitor.metrics.histogram import SparseHistogram

U = 2.0**-53


def _part(rng: np.random.Generator, cells: int) -> SparseHistogram:
    keys = np.sort(rng.choice(40, size=cells, replace=False)).astype(np.int64)
    counts = rng.integers(1, 50, size=cells).astype(float)
    # Sums of very different magnitudes, signed (logits are), to provoke cancellation.
    scale = 10.0 ** rng.integers(-6, 9, size=(cells, 1))
    sums = rng.normal(size=(cells, 2)) * scale * counts[:, None]
    return SparseHistogram(keys, np.column_stack([counts, sums]))


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), steps=st.integers(1, 120))
def test_in_place_updates_stay_within_the_summation_bound(seed: int, steps: int) -> None:
    rng = np.random.default_rng(seed)
    state = SparseHistogram.empty(3)
    present: list[SparseHistogram] = []
    exact: dict[int, list[Fraction]] = {}
    magnitude: dict[int, np.ndarray] = {}
    updates: dict[int, int] = {}
    for _ in range(steps):
        if present and rng.uniform() < 0.45:
            part, sign = present.pop(int(rng.integers(len(present)))), -1.0
        else:
            part, sign = _part(rng, int(rng.integers(1, 12))), 1.0
            present.append(part)
        state = state.plus(part, sign)
        for key, row in zip(part.keys.tolist(), part.values, strict=True):
            sums = exact.setdefault(key, [Fraction(0)] * 3)
            exact[key] = [s + Fraction(sign * v) for s, v in zip(sums, row, strict=True)]
            magnitude[key] = magnitude.get(key, np.zeros(3)) + np.abs(row)
            updates[key] = updates.get(key, 0) + 1
    alive = sorted(k for k, sums in exact.items() if sums[0] != 0)
    assert state.keys.tolist() == alive  # a cell whose events all left is gone
    for key, row in zip(state.keys.tolist(), state.values, strict=True):
        assert row[0] == float(exact[key][0])  # counts: exact
        k = updates[key]
        bound = k * U / (1 - k * U) * magnitude[key]
        error = np.abs(row - np.array([float(s) for s in exact[key]]))
        assert (error <= bound).all(), (key, error, bound)


def test_taking_out_cells_never_added_is_refused() -> None:
    state = SparseHistogram(np.array([1, 2]), np.array([[1.0], [2.0]]))
    with pytest.raises(ValueError, match="cells that hold none"):
        state.plus(SparseHistogram(np.array([3]), np.array([[1.0]])), -1.0)


def test_adding_then_taking_out_an_aggregate_leaves_exact_zeros() -> None:
    rng = np.random.default_rng(1)
    kept, passing = EventAggregate.empty(), EventAggregate.empty()
    p = rng.uniform(size=500)
    kept.add_labelled(p[:300], (rng.uniform(size=300) < p[:300]).astype(int))
    passing.add_labelled(p[300:], (rng.uniform(size=200) < p[300:]).astype(int))
    state = kept.copy()
    state.add(passing)
    state.add(passing, -1.0)
    assert state.labelled.keys.tolist() == kept.labelled.keys.tolist()
    assert state.n_labelled == kept.n_labelled
    np.testing.assert_allclose(state.labelled.values, kept.labelled.values, rtol=1e-13)
    emptied = passing.copy()
    emptied.add(passing, -1.0)
    assert emptied.labelled.keys.size == 0
    assert (emptied.spiegelhalter_numerator, emptied.spiegelhalter_variance) == (0.0, 0.0)

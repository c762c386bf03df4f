"""SparseHistogram.merge_many against a plain-Python sum per cell, on both of its paths:
dense (cells that share a compact range, the usual case) and sorted (few cells spread
over a wide range)."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.metrics.histogram import SparseHistogram


def _histogram(cells: dict[int, list[float]], n_columns: int) -> SparseHistogram:
    keys = np.array(sorted(cells), dtype=np.int64)
    values = np.array([cells[k] for k in sorted(cells)], dtype=np.float64)
    return SparseHistogram(keys, values.reshape(len(keys), n_columns))


def _reference(parts: list[dict[int, list[float]]], n_columns: int) -> dict[int, list[float]]:
    sums: dict[int, list[float]] = defaultdict(lambda: [0.0] * n_columns)
    for part in parts:
        for key, row in part.items():
            sums[key] = [a + b for a, b in zip(sums[key], row, strict=True)]
    return dict(sums)


cell_rows = st.dictionaries(
    st.integers(-50, 50),
    st.lists(st.integers(-1000, 1000).map(float), min_size=2, max_size=2),
    max_size=30,
)


@settings(max_examples=200, deadline=None)
@given(st.lists(cell_rows, min_size=2, max_size=6), st.integers(0, 10**6))
def test_merge_many_sums_each_cell(parts: list[dict[int, list[float]]], spread: int) -> None:
    # ``spread`` pushes the last part's cells away, so hypothesis tries both paths
    # (the test below takes each for certain).
    parts = [*parts[:-1], {key + spread: row for key, row in parts[-1].items()}]
    merged = SparseHistogram.merge_many([_histogram(part, 2) for part in parts])
    expected = _reference(parts, 2)
    assert merged.keys.tolist() == sorted(expected)
    # Integer-valued sums are exact in float64 whatever the order of addition.
    assert merged.values.tolist() == [expected[k] for k in sorted(expected)]


def test_a_cell_whose_sums_cancel_is_kept() -> None:
    """A cell present in a part stays in the merge even if its sums add up to zero
    (the sorted path keeps it; so must the dense one)."""
    a = _histogram({3: [1.0], 4: [2.0], 5: [1.0]}, 1)
    b = _histogram({4: [-2.0], 5: [1.0]}, 1)
    merged = SparseHistogram.merge_many([a, b])
    assert merged.keys.tolist() == [3, 4, 5]
    assert merged.values[:, 0].tolist() == [1.0, 0.0, 2.0]


@pytest.mark.parametrize("spread", [0, 10**9])  # dense path, then the sorted one
def test_dense_and_sorted_paths_agree_on_real_valued_sums(spread: int) -> None:
    rng = np.random.default_rng(7)
    parts = []
    for _ in range(5):
        keys = np.unique(rng.integers(0, 400, 300)) + spread * len(parts)
        parts.append(SparseHistogram(keys, rng.normal(size=(keys.size, 3))))
    merged = SparseHistogram.merge_many(parts)
    keys = np.concatenate([p.keys for p in parts])
    values = np.concatenate([p.values for p in parts])
    expected_keys = np.unique(keys)
    expected = np.stack([values[keys == k].sum(axis=0) for k in expected_keys])
    np.testing.assert_array_equal(merged.keys, expected_keys)
    np.testing.assert_allclose(merged.values, expected, rtol=1e-13, atol=1e-13)

"""The score grid of labelled raw scores (``grids.score_cells``): cells in increasing
order of the score, narrow enough for a refit whatever the raw score looks like."""

from __future__ import annotations

import numpy as np
from scipy.special import logit

from monitor.metrics import grids


def _scores() -> np.ndarray:
    rng = np.random.default_rng(3)
    edges = [0.0, 1.0, -0.0, 1e-16, 1 - 1e-16, -1e-10, 1 + 1e-12, 1.006, -1e13, 1e13]
    return np.concatenate(
        [
            rng.normal(0, 3, 20_000),  # margins and log-odds
            rng.uniform(0, 1, 20_000),  # scores in [0, 1]
            rng.beta(0.05, 0.05, 5_000),  # ... piled up near 0 and 1
            np.array(edges),
        ]
    )


def test_cells_increase_with_the_score_and_stay_on_the_grid() -> None:
    s = np.sort(_scores())
    cells = grids.score_cells(s)
    assert np.all(np.diff(cells) >= 0)
    assert cells.min() >= 0 and cells.max() < grids.SCORE_CELLS
    assert grids.score_cells(np.array([-1e13]))[0] == 0
    assert grids.score_cells(np.array([1e13]))[0] == grids.SCORE_CELLS - 1


def test_scores_in_the_unit_interval_have_cells_of_their_own() -> None:
    s = _scores()
    unit = grids.unit_interval_score_cells(grids.score_cells(s))
    inside = (s >= 0) & (s <= 1) | (np.abs(s) < grids.ZERO_THRESHOLD)
    assert np.array_equal(unit, inside)


def test_a_cell_is_narrow_in_the_measure_that_matters_where_it_lies() -> None:
    s = _scores()
    cells = grids.score_cells(s)
    for cell in np.unique(cells):
        members = s[cells == cell]
        low, high = members.min(), members.max()
        if low > 1 or high < 0:  # margins: 0.5% relative (the value grid)
            assert high - low <= 0.01 * max(abs(low), abs(high)) + 1e-9
        elif high <= 1 / 64:  # near 0: 1% relative (margins), 0.01 in logit
            assert high - low <= 0.01 * high + 2e-9  # the zero cell: |s| < 1e-9
        elif low >= 1 - 1 / 64:  # near 1: 1% of 1 - s, 0.01 in logit
            assert high - low <= 0.01 * (1 - low) + 2e-9  # and 1 - s < 1e-9
        else:  # in between: 1/1024 in s, at most 0.064 in logit
            assert high - low < 1 / 1024
            assert logit(high) - logit(low) <= 0.064

"""Fixed fine grids that turn values into integer cells, so events can be summed into
mergeable histograms and every window is binned identically.

``ProbabilityGrid``: G = 10240 equal cells on [0, 1], cell = min(floor(p * G), G - 1),
with the two outermost cells split further in logit space (steps of 0.5 down to the
1e-15 clip), since fraud and click models live in the far tail. Because
G = 10 * 2**10, the equal-width bins of the metrics core for any M with G / M a power
of two (M = 5, 10, 20, 40, ...) are unions of cells: floor(p * G) and floor(p * M)
differ only by an exact power-of-two scaling, so folding cells into M bins puts every
event in the bin ``min(floor(p * M), M - 1)`` would — exactly, not approximately.

``ValueSketch``: log-spaced cells for unbounded values (raw scores, label delays), as
in DDSketch: every value is within a relative error ALPHA = 0.5% of its cell's
representative value; |x| < 1e-9 shares one zero cell; |x| > 1e12 is clamped to the
outermost cell.

Cells are numbered in increasing order of value on both grids, so a cumulative sum over
cells is a CDF evaluated at cell boundaries.
"""

from __future__ import annotations

import math

import numpy as np

from monitor.metrics.clipping import LOG_LOSS_EPS, clipped_logit
from monitor.metrics.validation import FloatArray

# --- probabilities -------------------------------------------------------------------

GRID_CELLS = 10240
TAIL_STEP = 0.5
_TAIL_EDGE_LOGIT = math.log(1.0 / GRID_CELLS) - math.log1p(-1.0 / GRID_CELLS)
# The deepest tail cell holds everything clipped to LOG_LOSS_EPS (and p = 0 or 1).
TAIL_CELLS = math.floor((-math.log(LOG_LOSS_EPS) + _TAIL_EDGE_LOGIT) / TAIL_STEP) + 1
#: Layout: [low tail (deepest first)] [G uniform cells] [high tail]. Uniform cells 0 and
#: G - 1 stay empty: their events live in the tails.
PROBABILITY_CELLS = TAIL_CELLS + GRID_CELLS + TAIL_CELLS


def probability_cells(p: FloatArray) -> np.ndarray:
    """Cell index of each probability (validated to [0, 1] by the caller)."""
    uniform = np.minimum(np.floor(p * GRID_CELLS).astype(np.int64), GRID_CELLS - 1)
    cells = uniform + TAIL_CELLS
    low = uniform == 0
    if low.any():
        depth = np.floor((-_TAIL_EDGE_LOGIT - (-clipped_logit(p[low]))) / -TAIL_STEP)
        depth = np.clip(depth, 0, TAIL_CELLS - 1).astype(np.int64)
        cells[low] = TAIL_CELLS - 1 - depth
    high = uniform == GRID_CELLS - 1
    if high.any():
        depth = np.floor((clipped_logit(p[high]) + _TAIL_EDGE_LOGIT) / TAIL_STEP)
        depth = np.clip(depth, 0, TAIL_CELLS - 1).astype(np.int64)
        cells[high] = TAIL_CELLS + GRID_CELLS + depth
    return cells


def _probability_cell_bounds() -> tuple[FloatArray, FloatArray]:
    lower = np.empty(PROBABILITY_CELLS)
    upper = np.empty(PROBABILITY_CELLS)
    j = np.arange(GRID_CELLS)
    lower[TAIL_CELLS : TAIL_CELLS + GRID_CELLS] = j / GRID_CELLS
    upper[TAIL_CELLS : TAIL_CELLS + GRID_CELLS] = (j + 1) / GRID_CELLS
    depth = np.arange(TAIL_CELLS)
    edge = -_TAIL_EDGE_LOGIT  # logit(1 - 1/G); logit(1/G) = -edge
    low_upper_logit = -edge - depth * TAIL_STEP
    low_lower_logit = low_upper_logit - TAIL_STEP
    low_index = TAIL_CELLS - 1 - depth
    upper[low_index] = _expit(low_upper_logit)
    lower[low_index] = _expit(low_lower_logit)
    lower[low_index[-1]] = 0.0
    high_index = TAIL_CELLS + GRID_CELLS + depth
    lower[high_index] = _expit(edge + depth * TAIL_STEP)
    upper[high_index] = _expit(edge + (depth + 1) * TAIL_STEP)
    upper[high_index[-1]] = 1.0
    return lower, upper


def _expit(x: FloatArray) -> FloatArray:
    return 1.0 / (1.0 + np.exp(-x))


PROBABILITY_CELL_LOWER, PROBABILITY_CELL_UPPER = _probability_cell_bounds()


def probability_cell_to_bin(n_bins: int) -> np.ndarray:
    """Map every probability cell to its equal-width bin among ``n_bins``.

    Exact (see the module docstring) when GRID_CELLS / n_bins is a power of two.
    """
    if GRID_CELLS % n_bins:
        raise ValueError(
            f"n_bins={n_bins} does not divide the aggregate grid of {GRID_CELLS} cells; "
            "use 5, 10, 20, 40, 80... (exact) or another divisor of 10240"
        )
    mapping = np.empty(PROBABILITY_CELLS, dtype=np.int64)
    mapping[:TAIL_CELLS] = 0
    mapping[TAIL_CELLS + GRID_CELLS :] = n_bins - 1
    mapping[TAIL_CELLS : TAIL_CELLS + GRID_CELLS] = np.arange(GRID_CELLS) // (GRID_CELLS // n_bins)
    return mapping


# --- unbounded values ----------------------------------------------------------------

ALPHA = 0.005
GAMMA = (1.0 + ALPHA) / (1.0 - ALPHA)
_LOG_GAMMA = math.log(GAMMA)
ZERO_THRESHOLD = 1e-9
MAX_MAGNITUDE = 1e12
MAGNITUDE_CELLS = math.ceil(math.log(MAX_MAGNITUDE / ZERO_THRESHOLD) / _LOG_GAMMA)
#: Layout: [negative values, most negative first] [zero cell] [positive values].
VALUE_CELLS = 2 * MAGNITUDE_CELLS + 1


def value_cells(x: FloatArray) -> np.ndarray:
    """Cell index of each finite value."""
    magnitude = np.abs(x)
    nonzero = magnitude >= ZERO_THRESHOLD
    k = np.zeros(x.size, dtype=np.int64)
    k[nonzero] = np.ceil(np.log(magnitude[nonzero] / ZERO_THRESHOLD) / _LOG_GAMMA).astype(np.int64)
    k = np.clip(k, 1, MAGNITUDE_CELLS) * nonzero
    return MAGNITUDE_CELLS + np.where(x < 0, -k, k)


def value_cell_representatives() -> FloatArray:
    """The value each cell stands for: within ALPHA relative error of all its members."""
    k = np.arange(1, MAGNITUDE_CELLS + 1)
    positive = ZERO_THRESHOLD * 2.0 * GAMMA**k / (GAMMA + 1.0)
    return np.concatenate([-positive[::-1], [0.0], positive])


VALUE_CELL_REPRESENTATIVE = value_cell_representatives()


def value_cell_upper_bounds() -> FloatArray:
    """Largest value of each cell (cells are right-closed in magnitude)."""
    k = np.arange(1, MAGNITUDE_CELLS + 1)
    positive = ZERO_THRESHOLD * GAMMA**k
    negative_upper = -ZERO_THRESHOLD * GAMMA ** (k[::-1] - 1)
    return np.concatenate([negative_upper, [ZERO_THRESHOLD], positive])


# --- raw scores of labelled events ---------------------------------------------------

#: Where the score grid's cells of [0, 1] stop being relative to the nearer end.
UNIT_EDGE = 1.0 / 64
#: Width of the score grid's cells inside [UNIT_EDGE, 1 - UNIT_EDGE].
UNIT_STEP = 1.0 / 1024


def _magnitude_cell(m: FloatArray) -> np.ndarray:
    """0 for |m| < ZERO_THRESHOLD, else k >= 1 with |m| in (1e-9 GAMMA^(k-1), 1e-9 GAMMA^k]."""
    return np.abs(value_cells(m) - MAGNITUDE_CELLS)


#: Magnitude cells below UNIT_EDGE (and above 1 - UNIT_EDGE, mirrored).
_EDGE_CELLS = int(_magnitude_cell(np.array([np.nextafter(UNIT_EDGE, 0.0)]))[0]) + 1
_MIDDLE_CELLS = round((1.0 - 2 * UNIT_EDGE) / UNIT_STEP) + 1
#: Cells of [0, 1] on the score grid.
UNIT_CELLS = 2 * _EDGE_CELLS + _MIDDLE_CELLS
#: The value cell of 1.0, which also holds scores a little above 1.
_FIRST_ABOVE_ONE = int(value_cells(np.array([1.0]))[0])
#: Layout: [s < 0: value grid] [0 <= s <= 1: unit cells] [s > 1: value grid].
SCORE_CELLS = MAGNITUDE_CELLS + UNIT_CELLS + VALUE_CELLS - _FIRST_ABOVE_ONE


def score_cells(s: FloatArray) -> np.ndarray:
    """Cell index of each finite raw score on the score grid, in increasing order of s.

    Raw scores are margins or log-odds (any real) or scores in [0, 1]. Outside [0, 1]
    the cells are those of the value grid (0.5% relative width). Inside, a score may be
    a margin near 0 or a probability, whose logit matters near 0 and 1: cells are 1%
    wide relative to the nearer end within 1/64 of it (0.01 in logit), and 1/1024 wide
    in between (at most 0.064 in logit).
    """
    cells = value_cells(s)
    out = cells.copy()  # negative values keep their value cells
    unit = (cells >= MAGNITUDE_CELLS) & (s <= 1.0)  # |s| < 1e-9 counts as 0
    if unit.any():
        out[unit] = MAGNITUDE_CELLS + _unit_cells(s[unit])
    above = s > 1.0
    out[above] = MAGNITUDE_CELLS + UNIT_CELLS + cells[above] - _FIRST_ABOVE_ONE
    return out


def _unit_cells(s: FloatArray) -> np.ndarray:
    """Cells of scores in [0, 1] (and |s| < 1e-9), numbered from 0."""
    low, high = s < UNIT_EDGE, s > 1.0 - UNIT_EDGE
    out = np.empty(s.size, dtype=np.int64)
    out[low] = _magnitude_cell(s[low])
    out[high] = UNIT_CELLS - 1 - _magnitude_cell(1.0 - s[high])
    middle = ~(low | high)
    steps = np.floor((s[middle] - UNIT_EDGE) / UNIT_STEP).astype(np.int64)
    out[middle] = _EDGE_CELLS + np.clip(steps, 0, _MIDDLE_CELLS - 1)
    return out


def unit_interval_score_cells(cells: np.ndarray) -> np.ndarray:
    """Which score-grid cells hold scores in [0, 1]."""
    return (cells >= MAGNITUDE_CELLS) & (cells < MAGNITUDE_CELLS + UNIT_CELLS)

"""A sequential calibration-drift detector: a two-sided CUSUM over per-bucket residuals.

Each time bucket of a series gives one standardised calibration residual

    z = sum(y - p) / sqrt(sum p (1 - p))

over its labelled events: about N(0, 1) for a calibrated model, shifted by
sqrt(n) x (mean y - mean p) when calibration drifts. The CUSUM pair

    upper_t = max(0, upper_{t-1} + z_t - k),  lower_t = max(0, lower_{t-1} - z_t - k)

accumulates evidence of labels above (``under``: the model under-predicts) or below
(``over``) the probabilities; ``k`` (in standard deviations) is half the shift it is tuned
to detect fastest. A bucket with no labelled events adds no step.

Stateless by design: at every evaluation the CUSUM is recomputed from zero over the
buckets of the detector's lookback, so a late label, a restart or another replica
taking over the job gives the same statistic (the store is the only state). Under a
calibrated model the CUSUM returns to 0 every few buckets, so starting it at the
lookback's first bucket changes the statistic only in a drift that began before the
lookback — where it is already far above its limit.

The decision limit ``h`` comes from the average run length between false alarms the user
asks for (``arl``, in evaluations): it is found by simulating this exact procedure on
calibrated buckets — evaluations that see ``buckets_per_evaluation`` new buckets (below 1:
the newest bucket is still filling), the lookback, and an alarm counted when the
statistic first crosses ``h`` after being below it — and cached. Deterministic (fixed
seed), so every replica derives the same limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.ndimage import minimum_filter1d

from monitor.metrics.validation import FloatArray

#: Normal draws simulated at once (8 bytes each, and a few copies while filtering).
SIMULATION_BLOCK = 1 << 22


@dataclass(frozen=True)
class CusumState:
    under: float  # evidence that labels run above the probabilities
    over: float  # evidence that labels run below them
    buckets: int  # buckets with labelled events that contributed

    @property
    def statistic(self) -> float:
        return max(self.under, self.over)


def standardised_residuals(residual_sums: FloatArray, variances: FloatArray) -> np.ndarray:
    """z per bucket: sum(y - p) / sqrt(sum p(1-p)); buckets without variance dropped."""
    residual_sums = np.asarray(residual_sums, dtype=float)
    variances = np.asarray(variances, dtype=float)
    keep = variances > 0
    return residual_sums[keep] / np.sqrt(variances[keep])


def cusum(z: FloatArray, k: float) -> CusumState:
    """The two-sided CUSUM of ``z`` started at zero, at its last step."""
    under = over = 0.0
    for value in np.asarray(z, dtype=float).tolist():
        under = max(0.0, under + value - k)
        over = max(0.0, over - value - k)
    return CusumState(under=under, over=over, buckets=int(np.size(z)))


def windowed_cusum_paths(z: np.ndarray, k: float, lookback: int) -> np.ndarray:
    """For each step t of each row of ``z``, the two-sided CUSUM restarted ``lookback``
    steps back, at step t: max over j of sum_{j..t}(z - k), floored at 0, each side."""
    under, over = _windowed_sides(z, k, lookback)
    return np.maximum(under, over)


def _windowed_sides(z: np.ndarray, k: float, lookback: int) -> tuple[np.ndarray, np.ndarray]:
    return _windowed_side(z - k, lookback), _windowed_side(-z - k, lookback)


def _windowed_side(steps: np.ndarray, lookback: int) -> np.ndarray:
    pad = np.zeros((*steps.shape[:-1], 1))
    cumulative = np.concatenate([pad, np.cumsum(steps, axis=-1)], axis=-1)
    size = lookback + 1
    # The smallest of the `lookback` cumulative sums before t and t's own (the origin
    # puts the filter's window at the left of t): S_t = C_t - min C_j.
    lowest = minimum_filter1d(
        cumulative, size=size, axis=-1, origin=(size - 1) // 2, mode="nearest"
    )
    return (cumulative - lowest)[..., 1:]


@lru_cache(maxsize=64)
def decision_limit(
    arl: float,
    k: float,
    *,
    lookback: int,
    buckets_per_evaluation: float,
    seed: int = 0,
) -> float:
    """The limit h at which the detector, evaluated every ``buckets_per_evaluation``
    buckets over the last ``lookback`` buckets, raises one false alarm per ``arl``
    evaluations on a calibrated model (simulated, about 400 false alarms' worth)."""
    statistic = simulate_calibrated_statistic(
        n_evaluations=int(400 * arl),
        k=k,
        lookback=lookback,
        buckets_per_evaluation=buckets_per_evaluation,
        seed=seed,
    )
    return limit_for_arl(statistic, arl)


def simulate_calibrated_statistic(
    *,
    n_evaluations: int,
    k: float,
    lookback: int,
    buckets_per_evaluation: float,
    seed: int = 0,
) -> np.ndarray:
    """The detector's statistic at each of ``n_evaluations`` evaluations of a calibrated
    stream, in ``rows`` of consecutive evaluations (shape: rows x evaluations)."""
    rng = np.random.default_rng(seed)
    rows = 200
    per_row = max(n_evaluations // rows, 1)
    if buckets_per_evaluation >= 1:
        step = round(buckets_per_evaluation)
        # A few rows at a time: the same numbers (the generator fills rows in order),
        # memory bounded whatever the step and lookback.
        per_block = max(1, SIMULATION_BLOCK // (per_row * step + lookback))
        blocks = []
        for first in range(0, rows, per_block):
            z = rng.standard_normal((min(per_block, rows - first), per_row * step + lookback))
            paths = windowed_cusum_paths(z, k, lookback)
            blocks.append(paths[:, lookback + step - 1 :: step][:, :per_row])
        return np.concatenate(blocks)
    # Several evaluations per bucket: the newest bucket is partial, its z the standardised
    # sum of the pieces that have arrived (still N(0, 1), correlated across evaluations).
    pieces = round(1.0 / buckets_per_evaluation)
    n_buckets = per_row // pieces + lookback + 1
    increments = rng.standard_normal((rows, n_buckets, pieces)) / np.sqrt(pieces)
    partial = np.cumsum(increments, axis=-1)  # bucket sum after each piece
    complete = partial[:, :, -1]
    # The newest bucket's step adds to the full buckets' CUSUM (lookback - 1 of them):
    # S = max(0, z_newest - k + S_history) on each side.
    history_under, history_over = _windowed_sides(complete, k, max(lookback - 1, 1))
    by_piece = np.empty((rows, n_buckets - lookback, pieces))
    for piece in range(pieces):
        newest = partial[:, lookback:, piece] / np.sqrt((piece + 1) / pieces)
        under = np.maximum(0.0, newest - k + history_under[:, lookback - 1 : -1])
        over = np.maximum(0.0, -newest - k + history_over[:, lookback - 1 : -1])
        by_piece[:, :, piece] = np.maximum(under, over)
    return by_piece.reshape(rows, -1)[:, :per_row]


def false_alarms(statistic: np.ndarray, limit: float) -> int:
    """Rising edges of ``statistic > limit`` along each row (an alarm that stays up counts once)."""
    above = statistic > limit
    rising = above[:, 1:] & ~above[:, :-1]
    return int(rising.sum() + above[:, 0].sum())


def limit_for_arl(statistic: np.ndarray, arl: float) -> float:
    """The smallest limit with at most one rising edge per ``arl`` evaluations (bisection)."""
    target = statistic.size / arl
    low, high = 0.0, float(statistic.max()) + 1.0
    for _ in range(40):
        middle = (low + high) / 2
        if false_alarms(statistic, middle) > target:
            low = middle
        else:
            high = middle
    return high

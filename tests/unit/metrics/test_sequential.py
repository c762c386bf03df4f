"""The CUSUM detector: hand-computed steps, the windowed form against a plain loop, and its
decision limit checked on fresh simulated streams (a seed the limit was not fitted on)."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.metrics.sequential import (
    cusum,
    decision_limit,
    false_alarms,
    simulate_calibrated_statistic,
    standardised_residuals,
    windowed_cusum_paths,
)


def test_hand_computed_cusum() -> None:
    # k = 0.5: under = max(0, u + z - 0.5), over = max(0, o - z - 0.5).
    state = cusum([1.0, 2.0, -0.5, -3.0], 0.5)
    # under: 0.5, 2.0, 1.0, 0.0; over: 0, 0, 0, 2.5
    assert (state.under, state.over, state.buckets) == (0.0, 2.5, 4)
    assert state.statistic == 2.5
    # Plain floats: the values go into JSON webhook payloads as they are.
    assert type(state.under) is float and type(state.over) is float


def test_standardised_residual_drops_buckets_without_variance() -> None:
    z = standardised_residuals(np.array([2.0, 1.0, 0.0]), np.array([4.0, 0.0, 1.0]))
    assert z.tolist() == [1.0, 0.0]


def test_windowed_paths_equal_a_cusum_restarted_lookback_steps_back() -> None:
    rng = np.random.default_rng(1)
    z = rng.standard_normal((3, 80))
    paths = windowed_cusum_paths(z, 0.5, 12)
    for row in range(3):
        for t in range(80):
            expected = cusum(z[row, max(0, t - 11) : t + 1], 0.5).statistic
            assert paths[row, t] == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(
    ("lookback", "buckets_per_evaluation"),
    [(60, 1.0), (24, 1 / 12), (168, 0.25)],  # the default 1h, 24h and 7d windows
)
def test_false_alarm_rate_matches_the_target_arl(
    lookback: int, buckets_per_evaluation: float
) -> None:
    arl = 200.0
    limit = decision_limit(
        arl, 0.5, lookback=lookback, buckets_per_evaluation=buckets_per_evaluation
    )
    fresh = simulate_calibrated_statistic(
        n_evaluations=int(400 * arl),
        k=0.5,
        lookback=lookback,
        buckets_per_evaluation=buckets_per_evaluation,
        seed=12345,
    )
    measured_arl = fresh.size / false_alarms(fresh, limit)
    # 400 expected alarms: a standard error of ~5%, alarms cluster a little more.
    assert measured_arl == pytest.approx(arl, rel=0.2)


def test_a_shift_is_detected_after_the_change_in_95_percent_of_seeds() -> None:
    # One bucket per evaluation, 60 buckets back; a shift of 1 sd per bucket from step 30
    # (e.g. 400 labels a minute at p = 0.3 and labels 0.023 higher). At ARL 1000, about
    # 3% of seeds raise a false alarm in the 30 evaluations before the change.
    limit = decision_limit(1000, 0.5, lookback=60, buckets_per_evaluation=1.0)
    rng = np.random.default_rng(99)
    z = rng.standard_normal((400, 90))
    z[:, 30:] += 1.0
    paths = windowed_cusum_paths(z, 0.5, 60)
    fired = paths > limit
    before = fired[:, :30].any(axis=1)
    first_after = np.argmax(fired[:, 30:], axis=1)
    detected = fired[:, 30:].any(axis=1)
    assert (detected & ~before).mean() >= 0.95
    # Theory for k = delta / 2: about (h + 1.166) / (delta - k) ~ 15 buckets.
    assert np.median(first_after[detected]) <= 20

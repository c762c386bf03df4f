"""The CUSUM of `--every` periods against an event-level computation of what the
daemon's job computes at each period's end (``windows/jobs.py``: the lookback's buckets,
the newest starting at the end), and the decision limit of a window one period long."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from monitor import evaluate
from monitor.metrics.sequential import decision_limit

T0 = 1_790_035_200_000  # a UTC midnight
HOUR, DAY = 3_600_000, 86_400_000


def frame(days: int = 3, n: int = 30_000, drift_from_day: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(11)
    times = T0 + rng.integers(0, days * DAY, n)
    p = rng.beta(2, 5, n)
    truth = np.where(times >= T0 + drift_from_day * DAY, np.clip(p + 0.08, 0, 1), p)
    return pd.DataFrame(
        {
            "event_id": [f"e{i}" for i in range(n)],
            "model_id": "m",
            "model_version": "v1",
            "timestamp": times,
            "probability": p,
            "label": (rng.uniform(size=n) < truth).astype(int),
        }
    )


def cusum_by_hand(events: pd.DataFrame, end: int, k: float = 0.5) -> tuple[float, float]:
    """Hour buckets starting in [end - 23h, end); z per bucket; the recursion."""
    inside = events[(events.timestamp >= end - 23 * HOUR) & (events.timestamp < end)]
    under = over = 0.0
    for _, bucket in sorted(inside.groupby(inside.timestamp // HOUR)):
        variance = float((bucket.probability * (1 - bucket.probability)).sum())
        z = float((bucket.label - bucket.probability).sum()) / math.sqrt(variance)
        under, over = max(0.0, under + z - k), max(0.0, over - z - k)
    return under, over


def test_each_period_gets_the_cusum_the_daemon_computes_at_its_end() -> None:
    events = frame()
    result = evaluate(events, every="1d")
    summary = result.summary()
    whole = summary[summary.model_version.eq("v1") & summary.segment.eq("__all__")]
    limit = decision_limit(2000, 0.5, lookback=24, buckets_per_evaluation=24.0)
    assert len(whole) == 3
    for row in whole.itertuples():
        end = int(row.window_end.timestamp() * 1000)
        under, over = cusum_by_hand(events, end)
        assert row.calibration_cusum_under == pytest.approx(under, rel=1e-9, abs=1e-12)
        assert row.calibration_cusum_over == pytest.approx(over, rel=1e-9, abs=1e-12)
        assert row.calibration_cusum_limit == limit
        assert row.calibration_cusum_ratio == pytest.approx(max(under, over) / limit)
    ratios = whole.calibration_cusum_ratio.tolist()
    assert ratios[0] < 1 and ratios[1] < 1 and ratios[2] > 1  # the drifted day alarms


def test_a_whole_file_window_has_no_cusum() -> None:
    summary = evaluate(frame(days=1)).summary()
    assert "calibration_cusum_ratio" not in summary


def test_the_detector_can_be_turned_off() -> None:
    from monitor.settings import Settings

    settings = Settings.model_validate({"evaluation": {"sequential": {"enabled": False}}})
    summary = evaluate(frame(days=1), every="1d", settings=settings).summary()
    assert "calibration_cusum_ratio" not in summary

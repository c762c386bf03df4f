"""The sequential detector of one window: which buckets it reads and what it exports.

The CUSUM itself and its decision limit are pure (``monitor/metrics/sequential.py``);
this module fixes, per configured window, the bucket resolution it runs on and how many
buckets it looks back, and turns a series' bucket residuals into result values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from monitor.metrics.sequential import cusum, decision_limit, standardised_residuals
from monitor.settings import SequentialSettings, WindowSettings
from monitor.store.aggregates import BucketResiduals
from monitor.store.buckets import HOUR_S, MINUTE_S

#: Windows up to this long run the detector on minute buckets, longer ones on hours.
MINUTE_BUCKETS_UP_TO_S = 3 * HOUR_S


@dataclass(frozen=True)
class DetectorPlan:
    resolution_s: int
    lookback: int  # buckets
    buckets_per_evaluation: float

    @property
    def resolution_ms(self) -> int:
        return self.resolution_s * 1000

    @property
    def lookback_ms(self) -> int:
        return self.lookback * self.resolution_ms


def plan_for(window: WindowSettings, settings: SequentialSettings) -> DetectorPlan:
    resolution = MINUTE_S if window.length <= MINUTE_BUCKETS_UP_TO_S else HOUR_S
    lookback = min(max(math.ceil(window.length / resolution), 2), settings.max_lookback_buckets)
    return DetectorPlan(resolution, lookback, window.every / resolution)


def limit_for(plan: DetectorPlan, settings: SequentialSettings) -> float:
    # Evaluations at least a lookback apart read disjoint buckets: their statistics are
    # independent whatever the gap, so the limit of a gap of one lookback is theirs,
    # simulated at a fraction of the cost (``calmon evaluate --every 1w``: 168 hours).
    return decision_limit(
        settings.arl,
        settings.k,
        lookback=plan.lookback,
        buckets_per_evaluation=round(min(plan.buckets_per_evaluation, plan.lookback), 6),
    )


def detector_values(
    residuals: BucketResiduals, plan: DetectorPlan, settings: SequentialSettings
) -> dict[str, float]:
    """The CUSUM pair, its limit and their ratio; nothing if no bucket has labels."""
    z = standardised_residuals(residuals.residual_sums, residuals.variances)
    if z.size == 0:
        return {}
    state = cusum(z, settings.k)
    limit = limit_for(plan, settings)
    return {
        "calibration_cusum_under": state.under,
        "calibration_cusum_over": state.over,
        "calibration_cusum_limit": limit,
        "calibration_cusum_ratio": state.statistic / limit,
    }

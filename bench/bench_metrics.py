"""Cost of all calibration metrics for one window, as a ratio to the floor.

The floor is one ``np.bincount`` pass over the same arrays (bin index and summed
labels): the least any binned calibration metric must do. Two paths are measured:

- the array API (``monitor.metrics.calibration`` & co.), every metric from events;
- the production path: events folded into an ``EventAggregate`` (paid once, at ingest),
  then ``calibration_summary`` on the aggregate (paid per evaluation; independent of n).

Run: ``.venv/bin/python bench/bench_metrics.py`` (or ``make bench``).
"""

from __future__ import annotations

import numpy as np
from streams import aggregate_of, best_of, calibrated

from monitor.metrics import calibration as core
from monitor.metrics.bootstrap import ece_bootstrap_interval
from monitor.metrics.recalibration import calibration_slope_intercept
from monitor.metrics.summary import calibration_summary
from monitor.metrics.tests_of_fit import hosmer_lemeshow_test, spiegelhalter_z_test


def floor(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.bincount(np.minimum((p * 10).astype(np.int64), 9), weights=y, minlength=10)


def all_array_metrics(p: np.ndarray, y: np.ndarray) -> None:
    core.reliability_bins(p, y)
    core.expected_calibration_error(p, y)
    core.adaptive_calibration_error(p, y)
    core.maximum_calibration_error(p, y)
    core.rms_calibration_error(p, y)
    core.brier_score_loss(p, y)
    core.brier_decomposition(p, y)
    core.log_loss(p, y)
    core.calibration_in_the_large(p, y)
    calibration_slope_intercept(p, y)
    spiegelhalter_z_test(p, y)
    hosmer_lemeshow_test(p, y)
    ece_bootstrap_interval(p, y)


def main() -> None:
    rng = np.random.default_rng(0)
    print(f"{'events':>10} {'floor ms':>9} {'array API':>10} {'aggregate':>10} {'summary':>9}")
    for n in (1_000_000, 10_000_000):
        p, y = calibrated(rng, n)
        t_floor = best_of(lambda: floor(p, y))  # noqa: B023
        t_array = best_of(lambda: all_array_metrics(p, y), repeats=1)  # noqa: B023
        t_build = best_of(lambda: aggregate_of(p, y), repeats=1)  # noqa: B023
        aggregate = aggregate_of(p, y)
        t_summary = best_of(lambda: calibration_summary(aggregate))  # noqa: B023
        print(
            f"{n:>10,} {t_floor * 1e3:>9.1f} {t_array / t_floor:>9.1f}x "
            f"{t_build / t_floor:>9.1f}x {t_summary / t_floor:>8.2f}x"
        )
    print("ratios are to the floor of the same row; summary = one evaluation of a built window")


if __name__ == "__main__":
    main()

"""Cost of fitting and validating every candidate calibrator for one window, as a ratio
to ``calibration_summary`` on the same aggregate (goal: within 5x, so it can run on
every firing alert without slowing the window job).

Both halves of the window are aggregates of n/2 labelled events each (their occupied
probability cells are what the cost grows with, at most ~10,300 whatever n); the
summary runs on the whole window with its default 1000 bootstrap resamples.

Run: ``.venv/bin/python bench/bench_recalibration.py`` (or ``make bench``).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from scipy.special import expit, logit

from monitor.metrics.aggregates import EventAggregate
from monitor.metrics.calibrators.cells import LabelledCells
from monitor.metrics.calibrators.validate import recommend
from monitor.metrics.summary import calibration_summary


def best_of(fn: Callable[[], object], repeats: int = 15) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def half_window(rng: np.random.Generator, n: int) -> EventAggregate:
    p = rng.beta(1.2, 2.5, n)
    y = (rng.uniform(size=n) < expit(0.6 * logit(p) + 0.2)).astype(float)
    aggregate = EventAggregate.empty()
    aggregate.add_labelled(p, y)
    return aggregate


def main() -> None:
    rng = np.random.default_rng(0)
    print(f"{'labelled':>10} {'cells':>7} {'summary ms':>11} {'recommend ms':>13} {'ratio':>6}")
    for n in (10_000, 100_000, 1_000_000):
        earlier, later = half_window(rng, n // 2), half_window(rng, n // 2)
        window = EventAggregate.merge_all([earlier, later])
        summary = best_of(lambda window=window: calibration_summary(window))
        cells = (LabelledCells.of(earlier), LabelledCells.of(later))
        validated = best_of(lambda cells=cells: recommend(*cells))
        print(
            f"{n:>10} {window.labelled.keys.size:>7} {summary * 1e3:>11.1f} "
            f"{validated * 1e3:>13.1f} {validated / summary:>6.1f}"
        )


if __name__ == "__main__":
    main()

"""Cost of fitting and validating every candidate calibrator for one window, as a ratio
to ``calibration_summary`` on the same aggregate (goal: within 5x, so it can run on
every firing alert without slowing the window job).

Both halves of the window are aggregates of n/2 labelled events each (their occupied
cells are what the cost grows with, at most ~10,300 probability cells whatever n); the
summary runs on the whole window with its default 1000 bootstrap resamples. Two rows
per n: the six corrections of p alone (events without a raw score), and all nine
candidates (the events carry their raw score, so the three refits run too). Times are
this process's CPU time (``time.process_time``), best of 20 runs of each taken in turn:
both computations are single-threaded, and on a shared machine wall time mostly
measured the wait for a core.

Run: ``.venv/bin/python bench/bench_recalibration.py`` (or ``make bench``).
"""

from __future__ import annotations

import time

import numpy as np
from streams import aggregate_of, best_of_each, over_confident

from monitor.metrics.aggregates import EventAggregate
from monitor.metrics.calibrators.cells import LabelledCells
from monitor.metrics.calibrators.validate import recommend
from monitor.metrics.summary import calibration_summary


def main() -> None:
    rng = np.random.default_rng(0)
    header = ("labelled", "candidates", "cells", "raw cells", "summary ms", "recommend ms")
    print(" ".join(f"{h:>12}" for h in header), f"{'ratio':>6}")
    for n in (10_000, 100_000, 1_000_000):
        halves = [over_confident(rng, n // 2) for _ in range(2)]
        for with_raw in (False, True):
            parts = [aggregate_of(p, y, raw if with_raw else None) for p, y, raw in halves]
            window = EventAggregate.merge_all(parts)
            cells = [LabelledCells.of(part) for part in parts]
            result = recommend(*cells)
            fastest = best_of_each(
                {
                    "summary": lambda w=window: calibration_summary(w),
                    "recommend": lambda c=cells: recommend(*c),
                },
                repeats=20,
                clock=time.process_time,  # CPU time: the machine is shared
            )
            summary, validated = fastest["summary"], fastest["recommend"]
            row = (
                n,
                len(result.candidates),
                window.labelled.keys.size,
                window.raw_labelled.keys.size,
                f"{summary * 1e3:.1f}",
                f"{validated * 1e3:.1f}",
            )
            print(" ".join(f"{v:>12}" for v in row), f"{validated / summary:>6.1f}")


if __name__ == "__main__":
    main()

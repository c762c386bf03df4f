"""What the benchmarks share: a timer, the labelled streams they measure, and the
aggregate the store would keep of them (imported by the ``bench_*.py`` scripts, which
run with ``bench/`` on the path)."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from scipy.special import expit, logit

from monitor.metrics.aggregates import EventAggregate


def best_of(
    fn: Callable[[], object], repeats: int = 3, clock: Callable[[], float] = time.perf_counter
) -> float:
    """The fastest of ``repeats`` runs of ``fn``, in seconds of ``clock`` (the least
    disturbed by a shared machine's other work). ``time.process_time`` counts only this
    process's CPU time: on a loaded machine, a single-threaded computation's cost without
    the time it waited for a core."""
    times = []
    for _ in range(repeats):
        start = clock()
        fn()
        times.append(clock() - start)
    return min(times)


def best_of_each(
    fns: dict[str, Callable[[], object]],
    repeats: int = 15,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, float]:
    """The fastest run of each of ``fns``, run in turn ``repeats`` times: a ratio of two
    is then measured under the same load, not one before and one after a change of it."""
    fastest = dict.fromkeys(fns, float("inf"))
    for _ in range(repeats):
        for name, fn in fns.items():
            fastest[name] = min(fastest[name], best_of(fn, repeats=1, clock=clock))
    return fastest


def calibrated(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """p ~ Beta(2, 5) and labels drawn from p: a calibrated model."""
    p = rng.beta(2.0, 5.0, n)
    return p, (rng.uniform(size=n) < p).astype(np.float64)


def over_confident(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A served p ~ Beta(1.2, 2.5), labels from expit(0.6 logit p + 0.2) (over-confident
    and shifted), and the raw score the calibrator served p from (its log-odds)."""
    p = rng.beta(1.2, 2.5, n)
    y = (rng.uniform(size=n) < expit(0.6 * logit(p) + 0.2)).astype(np.float64)
    return p, y, logit(p)


def aggregate_of(p: np.ndarray, y: np.ndarray, raw: np.ndarray | None = None) -> EventAggregate:
    """The labelled events as a window's aggregate (with their raw scores, if given)."""
    aggregate = EventAggregate.empty()
    aggregate.add_labelled(p, y)
    if raw is not None:
        aggregate.add_raw_labelled(raw, p, y)
    return aggregate

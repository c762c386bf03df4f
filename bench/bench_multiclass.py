"""Multi-class aggregates: bytes per bucket as classes grow, and the cost of a window's
evaluation as a ratio to the binary evaluation of the same events.

Sizes: one bucket of N labelled events (each also counted as a prediction) at 2, 10 and
100 classes, serialised as stored (zlib), next to the binary ``EventAggregate`` of the
same number of events of a binary model, and the worst case the class grid allows.

Time: 24 buckets merged into a window, then every metric (``multiclass_summary`` and the
estimates; drift of the confidence and of each class against a reference fitted on the
same window). Floor: the binary window of as many events (``EventAggregate``:
``merge_all`` + ``calibration_summary`` without bootstrap + drift of the probability).

Run: ``.venv/bin/python bench/bench_multiclass.py [--quick]``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import numpy as np

from monitor.metrics import grids
from monitor.metrics.aggregates import LABELLED_COLUMNS, EventAggregate
from monitor.metrics.drift import ReferenceProfile, compare
from monitor.metrics.multiclass import CLASS_CELLS, CLASS_COLUMNS, MulticlassAggregate
from monitor.metrics.multiclass_summary import multiclass_estimates, multiclass_summary
from monitor.metrics.summary import calibration_summary


def best_of(fn: Callable[[], object], repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def events(n: int, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2.0, (n, k))
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    y = np.minimum((p.cumsum(axis=1) < rng.uniform(size=(n, 1))).sum(axis=1), k - 1)
    return p, y


def multiclass_buckets(p: np.ndarray, y: np.ndarray, parts: int) -> list[MulticlassAggregate]:
    buckets = []
    for part_p, part_y in zip(np.array_split(p, parts), np.array_split(y, parts), strict=True):
        bucket = MulticlassAggregate.empty(p.shape[1])
        bucket.add_predictions(part_p)
        bucket.add_labelled(part_p, part_y)
        buckets.append(bucket)
    return buckets


def binary_buckets(n: int, parts: int) -> list[EventAggregate]:
    # The floor: a binary model's n events (the 2-class stream, p of class 1).
    p, y = events(n, 2)
    buckets = []
    for part_p, part_y in zip(np.array_split(p, parts), np.array_split(y, parts), strict=True):
        bucket = EventAggregate.empty()
        bucket.add_probabilities(part_p[:, 1])
        bucket.add_labelled(part_p[:, 1], part_y.astype(float))
        buckets.append(bucket)
    return buckets


def worst_case_bytes(k: int) -> int:
    top = 2 * grids.PROBABILITY_CELLS * 4 + grids.PROBABILITY_CELLS * 8 * (
        1 + len(LABELLED_COLUMNS)
    )
    per_class = CLASS_CELLS * (4 + 8) + CLASS_CELLS * (4 + 8 * len(CLASS_COLUMNS))
    return top + k * per_class


def sizes(n: int) -> None:
    print(f"bucket of {n:,} labelled events: bytes as stored (zlib)")
    print(f"{'classes':>8} {'binary':>10} {'multi-class':>12} {'ratio':>7} {'worst case':>12}")
    for k in (2, 10, 100):
        p, y = events(n, k)
        multi = len(multiclass_buckets(p, y, 1)[0].to_bytes())
        binary = len(binary_buckets(n, 1)[0].to_bytes())
        print(
            f"{k:>8} {binary:>10,} {multi:>12,} {multi / binary:>6.1f}x {worst_case_bytes(k):>12,}"
        )


def evaluation(n: int) -> None:
    print(f"window of 24 buckets, {n:,} labelled events: evaluation time")
    print(f"{'classes':>8} {'binary ms':>10} {'multi-class ms':>15} {'ratio':>7}")
    for k in (2, 10, 100):
        p, y = events(n, k, seed=1)
        multi_parts = multiclass_buckets(p, y, 24)
        binary_parts = binary_buckets(n, 24)
        window = MulticlassAggregate.merge_all(multi_parts)
        references = [
            ReferenceProfile.from_histogram(
                window.class_probability_histogram(c), kind="probability"
            )
            for c in range(k)
        ]
        confidence_reference = ReferenceProfile.from_histogram(
            window.top.probabilities, kind="probability"
        )
        binary_reference = ReferenceProfile.from_histogram(
            EventAggregate.merge_all(binary_parts).probabilities, kind="probability"
        )

        def multi() -> None:
            merged = MulticlassAggregate.merge_all(multi_parts)  # noqa: B023
            multiclass_summary(merged)
            multiclass_estimates(merged)
            compare(confidence_reference, merged.top.probabilities)  # noqa: B023
            for c, reference in enumerate(references):  # noqa: B023
                compare(reference, merged.class_probability_histogram(c))

        def binary() -> None:
            merged = EventAggregate.merge_all(binary_parts)  # noqa: B023
            calibration_summary(merged, bootstrap_resamples=0)
            compare(binary_reference, merged.probabilities)  # noqa: B023

        t_binary, t_multi = best_of(binary), best_of(multi)
        print(f"{k:>8} {t_binary * 1e3:>10.1f} {t_multi * 1e3:>15.1f} {t_multi / t_binary:>6.1f}x")


def main() -> None:
    quick = "--quick" in sys.argv
    sizes(1_000 if quick else 10_000)
    evaluation(10_000 if quick else 100_000)


if __name__ == "__main__":
    main()

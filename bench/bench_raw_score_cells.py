"""What the raw-score refit costs every aggregate bucket: the histogram of labelled
events by raw-score cell (``EventAggregate.raw_labelled``: count, sums of y, of the raw
score and of p per occupied cell of ``grids.score_cells``, a 4-byte key and four 8-byte
sums, 36 bytes a cell), measured as stored (``to_bytes``) against the same bucket
without it.

Two kinds of raw score: log-odds (normal, as the demo's model) and scores in [0, 1]
(an uncalibrated probability, Beta-distributed). Every event is labelled, the worst
case for the bucket's size.

Run: ``.venv/bin/python bench/bench_raw_score_cells.py``.
"""

from __future__ import annotations

import numpy as np

from monitor.metrics.aggregates import EventAggregate


def _bucket(raw: np.ndarray, p: np.ndarray, y: np.ndarray, *, with_raw: bool) -> EventAggregate:
    bucket = EventAggregate.empty()
    bucket.add_scores(raw)
    bucket.add_probabilities(p)
    bucket.add_labelled(p, y)
    if with_raw:
        bucket.add_raw_labelled(raw, p, y)
    return bucket


def _scores(kind: str, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    if kind == "log-odds":
        raw = rng.normal(-1.2, 1.3, n)
        return raw, 1 / (1 + np.exp(-raw))
    raw = rng.beta(0.6, 2.0, n)
    return raw, np.clip(raw * 0.8 + 0.05, 0, 1)


def main() -> None:
    rng = np.random.default_rng(0)
    columns = ("raw score", "labelled", "cells", "bucket", "added", "share")
    print(" ".join(f"{c:>9}" for c in columns) + "   (bytes as stored: zlib below 64 KiB)")
    for kind in ("log-odds", "[0, 1]"):
        for n in (100, 1_000, 10_000, 100_000):
            raw, p = _scores(kind, rng, n)
            y = (rng.uniform(size=n) < p).astype(float)
            without = len(_bucket(raw, p, y, with_raw=False).to_bytes())
            bucket = _bucket(raw, p, y, with_raw=True)
            added = len(bucket.to_bytes()) - without
            cells = bucket.raw_labelled.keys.size
            share = f"{100 * added / without:.1f}%"
            print(" ".join(f"{v:>9}" for v in (kind, n, cells, without, added, share)))


if __name__ == "__main__":
    main()

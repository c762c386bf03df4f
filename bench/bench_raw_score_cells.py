"""What a raw-score refit would add to every aggregate bucket: label sums per raw-score
cell (the design in docs/recalibration.md, "Refitting from the raw score": not built).

For a bucket of n labelled events with raw scores, the added histogram has one row per
occupied value cell (``grids.value_cells``, 0.5% relative width): a 4-byte key and two
8-byte sums (count, sum of labels), 20 bytes a row, as the aggregate serialises its
histograms. Measured here against the bucket as it is stored today (``to_bytes``).

Run: ``.venv/bin/python bench/bench_raw_score_cells.py``.
"""

from __future__ import annotations

import numpy as np

from monitor.metrics import grids
from monitor.metrics.aggregates import EventAggregate
from monitor.metrics.histogram import SparseHistogram


def main() -> None:
    rng = np.random.default_rng(0)
    print(f"{'labelled':>9} {'bucket bytes':>13} {'added bytes':>12} {'added %':>8}")
    for n in (100, 1_000, 10_000, 100_000):
        raw = rng.normal(-1.2, 1.3, n)  # logit-like raw scores, as the demo's model
        p = 1 / (1 + np.exp(-raw))
        y = (rng.uniform(size=n) < p).astype(float)
        bucket = EventAggregate.empty()
        bucket.add_scores(raw)
        bucket.add_probabilities(p)
        bucket.add_labelled(p, y)
        stored = len(bucket.to_bytes(compress=False))
        added = SparseHistogram.from_cells(grids.value_cells(raw), [None, y])
        extra = added.keys.size * (4 + 8 * 2) + 8  # rows, plus the histogram's header
        print(f"{n:>9} {stored:>13} {extra:>12} {100 * extra / stored:>7.1f}%")


if __name__ == "__main__":
    main()

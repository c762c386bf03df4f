"""ECE's noise floor on calibrated streams: plug-in ECE, the floor, and ece_debiased.

Reproduces the numbers in docs/windows-and-metrics.md ("ECE at small n"): p ~ Beta(2, 5),
labels ~ Bernoulli(p), 10 equal-width bins, n = 200 ... 200,000 labelled events.
Run: ``.venv/bin/python bench/bench_noise_floor.py`` (about 30 s).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.metrics.binned import BinSums, expected_calibration_error_from_bins
from monitor.metrics.noise_floor import ece_noise_floor_from_bins

N_BINS = 10
SEEDS = {200: 400, 2_000: 400, 20_000: 200, 200_000: 50}


def bin_sums(p: np.ndarray, y: np.ndarray) -> BinSums:
    index = np.minimum((p * N_BINS).astype(int), N_BINS - 1)

    def fold(weights: np.ndarray) -> np.ndarray:
        return np.bincount(index, weights=weights, minlength=N_BINS)

    return BinSums(count=fold(np.ones_like(p)), sum_p=fold(p), sum_y=fold(y), sum_p2=fold(p * p))


def main() -> None:
    print(f"{'n':>8} {'ECE':>8} {'floor':>8} {'debiased':>10} {'std err':>8}")
    for n, seeds in SEEDS.items():
        rng = np.random.default_rng(n)
        ece, floor = [], []
        for _ in range(seeds):
            p = rng.beta(2.0, 5.0, n)
            bins = bin_sums(p, (rng.random(n) < p).astype(float))
            ece.append(expected_calibration_error_from_bins(bins))
            floor.append(ece_noise_floor_from_bins(bins))
        debiased = np.array(ece) - np.array(floor)
        print(
            f"{n:>8} {np.mean(ece):>8.4f} {np.mean(floor):>8.4f} {debiased.mean():>10.5f} "
            f"{debiased.std() / np.sqrt(seeds):>8.5f}"
        )


if __name__ == "__main__":
    main()

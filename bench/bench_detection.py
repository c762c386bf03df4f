"""False alarms and detection delay of calmon's calibration detectors, on simulated streams.

A window of 60 buckets is evaluated once per bucket (the default 1h window evaluated every
minute), at 200, 2,000 and 20,000 labelled events per window; probabilities ~ Beta(2, 5).
Detectors, each with calmon's own code (``monitor/metrics``):

- fixed: the shipped ``CalibrationErrorHigh`` rule, ECE > 0.05 with min_samples 1000;
- debiased: ``ece_debiased > 0.02`` (ECE minus its noise floor), no sample floor;
- reference: ECE > mean + 3 sd of ECE over 50 reference windows of the same size (what a
  ``from_reference: 3 sigma`` threshold computes);
- sequential: the CUSUM of ``evaluation.sequential`` at its defaults (k = 0.5, ARL 2000).

Scenarios: stationary and calibrated (false alarms per 1,000 evaluations, an alarm being a
rising edge), and from a change point after a full stationary window: labels drawn at
p + 0.02, 0.05, 0.10 (ECE rises by that much), or a prior shift (+0.5 on the logit).
Delay: evaluations from the change to the first alarm (median over seeds; "miss" if none
within 120). Run: ``.venv/bin/python bench/bench_detection.py`` (about 2 minutes).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.metrics.binned import BinSums, expected_calibration_error_from_bins
from monitor.metrics.noise_floor import ece_noise_floor_from_bins
from monitor.metrics.sequential import decision_limit, windowed_cusum_paths
from monitor.settings import SequentialSettings

WINDOW = 60  # buckets
N_BINS = 10
LEVELS = (200, 2_000, 20_000)
STATIONARY_EVALUATIONS = 20_000
#: The CUSUM's false alarms are rarer than a window metric's: counted on a longer run.
SEQUENTIAL_STATIONARY_EVALUATIONS = 200_000
SEEDS = 40
AFTER_CHANGE = 120
#: The shipped defaults of evaluation.sequential.
K, ARL = SequentialSettings().k, SequentialSettings().arl

Shift = Callable[[np.ndarray], np.ndarray]
SCENARIOS: dict[str, Shift] = {
    "ECE +0.02": lambda p: np.clip(p + 0.02, 0, 1),
    "ECE +0.05": lambda p: np.clip(p + 0.05, 0, 1),
    "ECE +0.10": lambda p: np.clip(p + 0.10, 0, 1),
    "prior shift": lambda p: 1 / (1 + np.exp(-(np.log(p / (1 - p)) + 0.5))),
}


def buckets(
    rng: np.random.Generator,
    n_buckets: int,
    per_bucket: int,
    change_at: int | None,
    shift: Shift | None,
) -> np.ndarray:
    """Per bucket and bin: count, sum_p, sum_y, sum_p2 (shape buckets x 4 x bins)."""
    out = np.zeros((n_buckets, 4, N_BINS))
    chunk = max(1, 2_000_000 // per_bucket)  # bound the draws held at once
    for first in range(0, n_buckets, chunk):
        rows = min(chunk, n_buckets - first)
        p = rng.beta(2.0, 5.0, (rows, per_bucket))
        rate = p
        if shift is not None and change_at is not None:
            changed = (first + np.arange(rows) >= change_at)[:, None]
            rate = np.where(changed, shift(p), p)
        y = (rng.random(p.shape) < rate).astype(float)
        index = np.minimum((p * N_BINS).astype(int), N_BINS - 1) + N_BINS * np.arange(rows)[:, None]
        for column, weights in enumerate((np.ones_like(p), p, y, p * p)):
            out[first : first + rows, column] = np.bincount(
                index.ravel(), weights=weights.ravel(), minlength=rows * N_BINS
            ).reshape(rows, N_BINS)
    return out


def window_sums(per_bucket: np.ndarray) -> np.ndarray:
    """Sliding sums over WINDOW buckets, one per evaluation once the window is full."""
    cumulative = np.cumsum(per_bucket, axis=0)
    padded = np.concatenate([np.zeros((1, *per_bucket.shape[1:])), cumulative])
    return padded[WINDOW:] - padded[:-WINDOW]


def ece_and_floor(window: np.ndarray) -> tuple[float, float]:
    bins = BinSums(count=window[0], sum_p=window[1], sum_y=window[2], sum_p2=window[3])
    return expected_calibration_error_from_bins(bins), ece_noise_floor_from_bins(bins)


def residual_z(per_bucket: np.ndarray) -> np.ndarray:
    residual = per_bucket[:, 2].sum(axis=1) - per_bucket[:, 1].sum(axis=1)
    variance = per_bucket[:, 1].sum(axis=1) - per_bucket[:, 3].sum(axis=1)
    return residual / np.sqrt(variance)


def alarms(per_bucket: np.ndarray, labelled: int, reference_limit: float) -> dict[str, np.ndarray]:
    """Per detector, whether it is in alarm at each evaluation (window full)."""
    windows = window_sums(per_bucket)
    pairs = np.array([ece_and_floor(w) for w in windows])
    ece, floor = pairs[:, 0], pairs[:, 1]
    cusum = windowed_cusum_paths(residual_z(per_bucket)[None, :], K, WINDOW)[0, WINDOW - 1 :]
    limit = decision_limit(ARL, K, lookback=WINDOW, buckets_per_evaluation=1.0)
    return {
        "fixed": (ece > 0.05) & (labelled >= 1000),
        "debiased": (ece - floor) > 0.02,
        "reference": ece > reference_limit,
        "sequential": cusum > limit,
    }


def rising_edges(alarm: np.ndarray) -> int:
    return int(alarm[0]) + int((alarm[1:] & ~alarm[:-1]).sum())


def reference_limit(rng: np.random.Generator, per_bucket: int) -> float:
    """mean + 3 sd of ECE over 50 non-overlapping reference windows."""
    reference = buckets(rng, 50 * WINDOW, per_bucket, None, None)
    eces = [
        ece_and_floor(reference[i * WINDOW : (i + 1) * WINDOW].sum(axis=0))[0] for i in range(50)
    ]
    return float(np.mean(eces) + 3 * np.std(eces, ddof=1))


def main() -> None:
    started = time.perf_counter()
    print(f"window {WINDOW} buckets, one evaluation per bucket; k={K}, ARL={ARL:.0f}")
    header = f"{'labelled/window':>15} {'detector':>10} {'FA/1000':>8} " + " ".join(
        f"{name:>12}" for name in SCENARIOS
    )
    print(header)
    for labelled in LEVELS:
        per_bucket = labelled // WINDOW
        rng = np.random.default_rng(labelled)
        limit = reference_limit(rng, per_bucket)
        stationary = alarms(
            buckets(rng, STATIONARY_EVALUATIONS + WINDOW - 1, per_bucket, None, None),
            labelled,
            limit,
        )
        delays: dict[str, dict[str, list[float]]] = {
            d: {s: [] for s in SCENARIOS} for d in stationary
        }
        for name, shift in SCENARIOS.items():
            for _ in range(SEEDS):
                stream = buckets(
                    rng, 2 * WINDOW + AFTER_CHANGE - 1, per_bucket, 2 * WINDOW - 1, shift
                )
                for detector, alarm in alarms(stream, labelled, limit).items():
                    after = alarm[WINDOW:]  # evaluations from the first with changed data
                    hits = np.flatnonzero(after)
                    delays[detector][name].append(float(hits[0] + 1) if hits.size else np.inf)
        long_run = buckets(
            rng, SEQUENTIAL_STATIONARY_EVALUATIONS + WINDOW - 1, per_bucket, None, None
        )
        cusum = windowed_cusum_paths(residual_z(long_run)[None, :], K, WINDOW)[0, WINDOW - 1 :]
        stationary["sequential"] = cusum > decision_limit(
            ARL, K, lookback=WINDOW, buckets_per_evaluation=1.0
        )
        for detector, alarm in stationary.items():
            rate = 1000 * rising_edges(alarm) / alarm.size
            cells = []
            for name in SCENARIOS:
                values = np.array(delays[detector][name])
                missed = np.isinf(values).mean()
                median = np.median(values)
                cells.append(
                    "miss" if np.isinf(median) else f"{median:.0f}" + ("*" if missed else "")
                )
            print(
                f"{labelled:>15} {detector:>10} {rate:>8.2f} " + " ".join(f"{c:>12}" for c in cells)
            )
    print(
        "delay: median evaluations after the change (* some seeds missed within "
        f"{AFTER_CHANGE}); {time.perf_counter() - started:.0f} s"
    )


if __name__ == "__main__":
    main()

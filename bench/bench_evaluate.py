"""`calmon evaluate` on Parquet files of 1M and 10M rows against scikit-learn's
calibration_curve + brier_score_loss + log_loss on the same arrays, with a floor.

Like for like, in one run, reading excluded from every row:

- **floor**: numpy alone over the arrays in memory, in pieces of 256k: 10 bins by
  bincount (count, sum of p, sum of y), Brier and log loss (one pass each). Nothing
  that computes these three can be much faster.
- **scikit-learn**: ``calibration_curve(n_bins=10)``, ``brier_score_loss``, ``log_loss``
  on the same arrays.
- **calmon, the same metrics**: the same arrays through calmon's aggregate (its fine
  probability grid, a piece of 256k events at a time, as ``calmon evaluate`` reads a
  file), then the 10 reliability bins, Brier and log loss from it.
- **calmon API, every metric**: ``monitor.evaluate(probability=p, label=y)``: the checks,
  one series, every window metric (ECE and its 1,000-resample bootstrap interval, ACE,
  MCE, Brier decomposition, slope, Spiegelhalter, ROC AUC and DeLong interval,
  label-free estimates...).
- **calmon evaluate, every metric**: a real ``calmon evaluate FILE --segment-keys region
  --format json`` process: every column checked, 12 series (2 versions and all versions
  x 3 regions and the whole model), every metric, raw-score histograms; its time less
  the time pyarrow alone takes to decode the same file.
- Evidently (``--compare-python PATH``: the interpreter of a separate virtualenv with
  ``evidently`` installed, never a dependency of calmon: ``python -m venv /tmp/ev &&
  /tmp/ev/bin/pip install evidently "pandas<3"``): ``LogLoss`` alone (the one of the
  three metrics it has) and ``ClassificationPreset`` (its every classification metric)
  on a DataFrame of the same arrays. NannyML is left out: it installs without torch but
  pulls xgboost, lightgbm and NVIDIA's NCCL wheel, and its realized binary metrics have
  neither a Brier score, a log loss nor a reliability curve.

Times are wall clock and CPU (user + system) seconds; the machine is shared, so the
load average is printed with them (on a loaded machine the CPU times are the ones to
compare). Peak memory: the ``calmon evaluate`` process's peak resident set (``VmHWM``),
the same after its imports alone, and the file read as a pandas DataFrame
(``memory_usage(deep=True)``).

Run: ``.venv/bin/python bench/bench_evaluate.py [ROWS ...] [--compare-python PATH]``
(default 1000000 10000000).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss, log_loss

ROW_GROUP = 1_000_000
PIECE = 1 << 18  # rows per piece, as monitor/offline/read.py reads a file
T0 = 1_790_000_000_000


def write_file(path: Path, rows: int, *, t0: int = T0, days: int = 30) -> None:
    """Rows in row groups of a million, as a pipeline writing a month would (``days``
    from ``t0``, epoch ms)."""
    rng = np.random.default_rng(0)
    with pq.ParquetWriter(path, schema=_schema()) as writer:
        for start in range(0, rows, ROW_GROUP):
            n = min(ROW_GROUP, rows - start)
            score = rng.normal(-1.0, 1.3, n)
            p = 1 / (1 + np.exp(-score))
            table = pa.table(
                {
                    "event_id": pa.array(np.arange(start, start + n).astype(str)),
                    "model_id": pa.array(["fraud"] * n),
                    "model_version": pa.array(np.where(rng.uniform(size=n) < 0.5, "v1", "v2")),
                    "timestamp": pa.array(t0 + rng.integers(0, days * 86_400_000, n)),
                    "raw_score": score,
                    "probability": p,
                    "label": (rng.uniform(size=n) < p).astype(np.int8),
                    "region": pa.array(rng.choice(["eu", "us", "apac"], n)),
                },
                schema=_schema(),
            )
            writer.write_table(table)


def _schema() -> pa.Schema:
    return pa.schema(
        [
            ("event_id", pa.string()),
            ("model_id", pa.string()),
            ("model_version", pa.string()),
            ("timestamp", pa.int64()),
            ("raw_score", pa.float64()),
            ("probability", pa.float64()),
            ("label", pa.int8()),
            ("region", pa.string()),
        ]
    )


# -- on the arrays in memory ------------------------------------------------------------
def floor(p: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """In pieces of 256k, as calmon reads a file: whole 80 MB arrays would spill the
    caches and make a slower floor."""
    counts, sum_p, sum_y = np.zeros(10), np.zeros(10), np.zeros(10)
    squared = loss = 0.0
    for start in range(0, p.size, PIECE):
        pp, yy = p[start : start + PIECE], y[start : start + PIECE]
        bins = np.minimum((pp * 10).astype(np.int64), 9)
        counts += np.bincount(bins, minlength=10)
        sum_p += np.bincount(bins, pp, 10)
        sum_y += np.bincount(bins, yy, 10)
        squared += float(((pp - yy) ** 2).sum())
        q = np.clip(pp, 1e-15, 1 - 1e-15)
        loss -= float(np.where(yy == 1, np.log(q), np.log1p(-q)).sum())
    return squared / p.size, loss / p.size


def scikit_learn(p: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    calibration_curve(y, p, n_bins=10)
    return float(brier_score_loss(y, p)), float(log_loss(y, p))


def calmon_same_metrics(p: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    from monitor.metrics.aggregates import COLUMN, EventAggregate
    from monitor.metrics.calibration import reliability_bins_from_sums
    from monitor.metrics.summary import folded_bin_sums

    aggregate = EventAggregate.empty()
    for start in range(0, p.size, PIECE):
        aggregate.add_labelled(p[start : start + PIECE], y[start : start + PIECE])
    reliability_bins_from_sums(folded_bin_sums(aggregate, 10))
    totals = aggregate.labelled.values.sum(axis=0)
    n = totals[COLUMN["count"]]
    return totals[COLUMN["sum_squared_error"]] / n, totals[COLUMN["sum_log_loss"]] / n


def calmon_api(p: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    from monitor import evaluate

    row = evaluate(probability=p, label=y).summary().iloc[0]
    return float(row.brier_score), float(row.log_loss)


def timed(work: Callable[[], object]) -> tuple[float, float, object]:
    """Wall and CPU seconds of ``work()``, and what it returned."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = work()
    return time.perf_counter() - wall, time.process_time() - cpu, result


# -- a real calmon evaluate process ----------------------------------------------------
CHILD = """
import resource, sys, time
def peak_kib():
    # VmHWM: this process image's peak resident set. Not ru_maxrss, which a child
    # inherits from the parent it was forked from (the bench holds the arrays).
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
from monitor.cli import main
import pandas, monitor.commands.evaluate, monitor.offline.run, monitor.offline.output  # not timed
after_imports = peak_kib()
usage = resource.getrusage(resource.RUSAGE_SELF)
cpu = usage.ru_utime + usage.ru_stime
started = time.perf_counter()
code = main(sys.argv[1:])
usage = resource.getrusage(resource.RUSAGE_SELF)
print(time.perf_counter() - started, usage.ru_utime + usage.ru_stime - cpu, peak_kib(),
      after_imports, file=sys.stderr)
"""


EVALUATE_ARGS = ("--segment-keys", "region", "--format", "json")


def calmon_evaluate(path: Path) -> tuple[float, float, float, float]:
    """Wall and CPU seconds (after the imports), peak RSS and RSS after the imports in
    MiB, of a `calmon evaluate` process."""
    run = subprocess.run(
        [sys.executable, "-c", CHILD, "evaluate", str(path), *EVALUATE_ARGS],
        capture_output=True,
        text=True,
        check=True,
    )
    wall, cpu, peak_kib, imports_kib = run.stderr.strip().splitlines()[-1].split()
    assert len(json.loads(run.stdout)["results"]) == 12, "expected 12 series"
    return float(wall), float(cpu), int(peak_kib) / 1024, int(imports_kib) / 1024


def read_only(path: Path) -> tuple[float, float, object]:
    """Decoding the file as ``calmon evaluate`` reads it: every column, by row group."""

    def read() -> None:
        for _ in pq.ParquetFile(path).iter_batches(batch_size=PIECE):
            pass

    return timed(read)


# -- Evidently, in its own virtualenv ----------------------------------------------------
EVIDENTLY = """
import sys, time, numpy as np, pandas as pd
from evidently import BinaryClassification, DataDefinition, Dataset, Report
from evidently.metrics import LogLoss
from evidently.presets import ClassificationPreset
data = np.load(sys.argv[1])
frame = pd.DataFrame({"target": data["y"].astype(int), "prediction": data["p"]})
definition = DataDefinition(classification=[BinaryClassification(
    target="target", prediction_probas="prediction")])
for name, metrics in (("LogLoss", [LogLoss()]), ("ClassificationPreset", [ClassificationPreset()])):
    Report(metrics).run(Dataset.from_pandas(frame[:10_000], data_definition=definition), None)
    wall, cpu = time.perf_counter(), time.process_time()
    dataset = Dataset.from_pandas(frame, data_definition=definition)
    Report(metrics).run(dataset, None)
    print(name, time.perf_counter() - wall, time.process_time() - cpu)
"""


def evidently(python: str, p: np.ndarray, y: np.ndarray, directory: Path) -> Measured:
    """Evidently's LogLoss alone (the one of the three metrics it has: no Brier score,
    no reliability curve) and its ClassificationPreset (every classification metric)."""
    arrays = directory / "arrays.npz"
    np.savez(arrays, p=p, y=y)
    run = subprocess.run(
        [python, "-c", EVIDENTLY, str(arrays)], capture_output=True, text=True, check=False
    )
    arrays.unlink()
    if run.returncode != 0:
        raise RuntimeError(f"evidently failed: {run.stderr.strip().splitlines()[-1:]}")
    measured: Measured = {}
    for line in run.stdout.strip().splitlines()[-2:]:
        name, wall, cpu = line.split()
        measured[f"Evidently {name}"] = (float(wall), float(cpu), None)
    return measured


def dataframe_mib(path: Path) -> float:
    frame = pq.read_table(path).to_pandas()
    return float(frame.memory_usage(deep=True).sum() / 2**20)


Measured = dict[str, tuple[float, float, object]]


def on_arrays(path: Path, directory: Path, compare_python: str | None) -> Measured:
    """Every variant that gets the arrays in memory (the arrays are freed on return)."""
    columns = pq.read_table(path, columns=["probability", "label"])
    p = columns["probability"].to_numpy()
    y = columns["label"].to_numpy().astype(np.float64)
    del columns
    for warm_up in (floor, scikit_learn, calmon_same_metrics, calmon_api):
        warm_up(p[:10_000], y[:10_000])  # imports and first-call costs: not timed
    measured: Measured = {
        "floor (numpy bincount)": timed(lambda: floor(p, y)),
        "scikit-learn": timed(lambda: scikit_learn(p, y)),
        "calmon, the same metrics": timed(lambda: calmon_same_metrics(p, y)),
        "calmon API, every metric": timed(lambda: calmon_api(p, y)),
    }
    expected = measured["scikit-learn"][2]
    for name, (_, _, values) in measured.items():  # the same Brier and log loss, or no row
        assert np.allclose(values, expected, rtol=1e-9), (name, values, expected)  # type: ignore[arg-type]
    if compare_python:
        measured.update(evidently(compare_python, p, y, directory))
    return measured


def bench(rows: int, directory: Path, compare_python: str | None) -> None:
    path = directory / f"{rows}.parquet"
    write_file(path, rows)
    print(f"\n{rows:,} rows (load average {os.getloadavg()[0]:.1f})")
    measured = on_arrays(path, directory, compare_python)
    wall, cpu, peak, imports = calmon_evaluate(path)
    read_wall, read_cpu, _ = read_only(path)
    measured["calmon evaluate, read excluded"] = (wall - read_wall, cpu - read_cpu, None)
    sk_wall, sk_cpu = measured["scikit-learn"][:2]
    floor_wall, floor_cpu = measured["floor (numpy bincount)"][:2]
    print(f"{'what':<34} {'wall_s':>8} {'cpu_s':>8} {'sklearn/it':>10} {'it/floor':>9}")
    for name, (wall_s, cpu_s, _) in measured.items():
        print(
            f"{name:<34} {wall_s:8.3f} {cpu_s:8.3f} "
            f"{sk_wall / wall_s:9.1f}x {wall_s / floor_wall:8.1f}x"
            f"   (cpu: {sk_cpu / cpu_s:.1f}x, {cpu_s / floor_cpu:.1f}x)"
        )
    print(
        f"calmon evaluate: {wall:.2f} s wall, {cpu:.2f} s cpu with the read "
        f"(read alone {read_wall:.2f} s wall, {read_cpu:.2f} s cpu; "
        f"load average now {os.getloadavg()[0]:.1f})"
    )
    frame = dataframe_mib(path)
    print(
        f"peak RSS {peak:.0f} MiB (after the imports {imports:.0f} MiB); "
        f"the DataFrame {frame:.0f} MiB; peak/DataFrame {peak / frame:.2f}"
    )
    path.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("rows", type=int, nargs="*", default=[1_000_000, 10_000_000])
    parser.add_argument("--compare-python", help="python of a virtualenv with evidently")
    args = parser.parse_args()
    print(f"bench_evaluate, peak RSS of this process so far: {_rss():.0f} MiB")
    with tempfile.TemporaryDirectory() as tmp:
        for rows in args.rows:
            bench(rows, Path(tmp), args.compare_python)


def _rss() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    main()

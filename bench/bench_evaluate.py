"""`calmon evaluate` on Parquet files of 1M and 10M rows: time, and peak memory (flat in
the file's size), against scikit-learn's calibration_curve + brier_score_loss + log_loss
on the same arrays.

Both sides exclude reading: scikit-learn gets the arrays in memory; calmon's time is its
whole run on the file less the time to decode the same file with pyarrow alone (the
checks, the aggregates and every metric of every series remain). Peak memory is the
resident set of a real `calmon evaluate` process (``ru_maxrss``), next to the size of the
same file as a pandas DataFrame.

Run: ``.venv/bin/python bench/bench_evaluate.py [ROWS ...]`` (default 1000000 10000000).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss, log_loss

ROW_GROUP = 1_000_000
T0 = 1_790_000_000_000


def write_file(path: Path, rows: int) -> None:
    """Rows in row groups of a million, as a pipeline writing a month would."""
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
                    "timestamp": pa.array(T0 + rng.integers(0, 30 * 86_400_000, n)),
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


CHILD = """
import resource, sys, time
from monitor.cli import main
import pandas, monitor.commands.evaluate, monitor.offline.run, monitor.offline.output  # not timed
started = time.perf_counter()
code = main(sys.argv[1:])
print(time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
      file=sys.stderr)
"""


def calmon_evaluate(path: Path) -> tuple[float, float]:
    """Seconds (after the imports) and peak RSS in MiB of a `calmon evaluate` process."""
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD,
            "evaluate",
            str(path),
            "--segment-keys",
            "region",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    seconds, rss_kib = run.stderr.strip().splitlines()[-1].split()
    assert json.loads(run.stdout)["results"], "no results"
    return float(seconds), int(rss_kib) / 1024


def read_only(path: Path) -> float:
    started = time.perf_counter()
    for _ in pq.ParquetFile(path).iter_batches(batch_size=1 << 20):
        pass
    return time.perf_counter() - started


def scikit_learn(path: Path) -> tuple[float, float]:
    """Seconds of the three calls on the arrays, and the DataFrame's size in MiB."""
    frame = pq.read_table(path).to_pandas()
    size = frame.memory_usage(deep=True).sum() / 2**20
    p, y = frame.probability.to_numpy(), frame.label.to_numpy()
    del frame
    started = time.perf_counter()
    calibration_curve(y, p, n_bins=10)
    brier_score_loss(y, p)
    log_loss(y, p)
    return time.perf_counter() - started, size


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [1_000_000, 10_000_000]
    print(
        "rows  calmon_s  read_s  calmon_minus_read_s  sklearn_s  speedup  rss_mib  df_mib  rss/df"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for rows in sizes:
            path = Path(tmp) / f"{rows}.parquet"
            write_file(path, rows)
            seconds, rss = calmon_evaluate(path)
            read = read_only(path)
            sklearn, frame_mib = scikit_learn(path)
            own = seconds - read
            print(
                f"{rows:,}  {seconds:.2f}  {read:.2f}  {own:.2f}  {sklearn:.2f}  "
                f"{sklearn / own:.1f}x  {rss:.0f}  {frame_mib:.0f}  {rss / frame_mib:.2f}",
                flush=True,
            )
            path.unlink()


if __name__ == "__main__":
    main()

"""`calmon backfill FILE` on a Parquet file of predictions with labels, against reading
the same file with pyarrow (the ceiling: no backfill can be faster than decoding its
input), on SQLite and on PostgreSQL, in one run.

- **ceiling**: pyarrow decoding every column of the file by pieces of 256k rows, as
  ``calmon backfill`` reads it, nothing else (best of three).
- **calmon backfill**: a real ``calmon backfill -c CONFIG FILE`` process (the config:
  ``store.segment_keys: [region]``, so the store keeps the region series too) on a
  fresh, migrated store (a temporary SQLite file; a new PostgreSQL database on the
  server at 127.0.0.1:5432, dropped afterwards): the file checked whole, then every row
  checked again and written as ingest writes messages (a prediction and its label per
  row, batches of ``ingest.max_batch_records``, one transaction each, with the
  aggregates and the series). Timed from after its imports to its exit.

The file is ``bench_evaluate.py``'s (2 versions, 3 regions, every row labelled) over
the 7 days before the last day: within the store's label horizon and event retention
(30 and 35 days by default), so that every label joins its prediction.

Printed: rows/s of each and the ratio calmon / ceiling (wall clock), with the process's
CPU seconds (PostgreSQL's own work is in its server, not in them) and the load average,
since the machine is shared.

The rows are in random time order (each batch then touches most of the week's minute
buckets of every series); ``--sorted`` writes them in time order, as an export of a
table ordered by time would be.

Run: ``.venv/bin/python bench/bench_backfill.py [ROWS] [--store sqlite|postgresql]
[--sorted]`` (default 1000000, both stores).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq
from bench_evaluate import ROW_GROUP, read_only, write_file
from bench_ingest import fresh_database

DAY_MS = 86_400_000
CHILD = """
import resource, sys, time
from monitor.cli import main
import monitor.commands.backfill, monitor.offline.backfill  # not timed
import monitor.store.write.event_store
usage = resource.getrusage(resource.RUSAGE_SELF)
cpu = usage.ru_utime + usage.ru_stime
started = time.perf_counter()
code = main(sys.argv[1:])
usage = resource.getrusage(resource.RUSAGE_SELF)
print(time.perf_counter() - started, usage.ru_utime + usage.ru_stime - cpu, code, file=sys.stderr)
"""


CONFIG = "store:\n  segment_keys: [region]\n"


def calmon(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CALMON__STORE__URL": url}
    return subprocess.run(
        [sys.executable, "-c", CHILD, *args], capture_output=True, text=True, env=env, check=False
    )


def backfill(path: Path, url: str, rows: int) -> tuple[float, float]:
    """Wall and CPU seconds of ``calmon backfill`` on a fresh store at ``url``."""
    config = path.with_suffix(".yaml")
    config.write_text(CONFIG)
    migrated = calmon(url, "migrate", "-c", str(config))
    if migrated.returncode != 0:
        raise RuntimeError(f"calmon migrate: {migrated.stderr.strip()}")
    run = calmon(url, "backfill", "-c", str(config), str(path))
    if run.returncode != 0:
        raise RuntimeError(f"calmon backfill: {run.stderr.strip()}")
    assert f"predictions: {rows:,} new" in run.stdout, run.stdout
    assert f"labels: {rows:,} joined" in run.stdout, run.stdout
    wall, cpu, _ = run.stderr.strip().splitlines()[-1].split()
    return float(wall), float(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("rows", type=int, nargs="?", default=1_000_000)
    parser.add_argument("--store", choices=("sqlite", "postgresql"), action="append")
    parser.add_argument(
        "--sorted", action="store_true", help="the file's rows in time order (default: random)"
    )
    args = parser.parse_args()
    stores = args.store or ["sqlite", "postgresql"]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{args.rows}.parquet"
        now_ms = int(time.time() * 1000)
        write_file(path, args.rows, t0=now_ms - 8 * DAY_MS, days=7)
        if args.sorted:
            pq.write_table(pq.read_table(path).sort_by("timestamp"), path, row_group_size=ROW_GROUP)
        order = "in time order" if args.sorted else "in random time order"
        print(f"bench_backfill: {args.rows:,} rows {order}, {path.stat().st_size / 2**20:.0f} MiB")
        read_only(path)  # warm the page cache
        reads = [read_only(path)[:2] for _ in range(3)]
        read_wall, read_cpu = min(reads)
        ceiling = args.rows / read_wall
        print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        print(f"{'what':<28} {'wall_s':>8} {'cpu_s':>8} {'rows/s':>12} {'/ ceiling':>10}")
        print(
            f"{'pyarrow read (ceiling)':<28} {read_wall:8.3f} {read_cpu:8.3f} "
            f"{ceiling:12,.0f} {1.0:10.4f}"
        )
        for store in stores:
            with fresh_database(store) as url:
                wall, cpu = backfill(path, url, args.rows)
            rate = args.rows / wall
            print(
                f"{'calmon backfill, ' + store:<28} {wall:8.3f} {cpu:8.3f} "
                f"{rate:12,.0f} {rate / ceiling:10.4f}"
            )
            print(f"  load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()

"""A fleet of 1,000 series evaluated on schedule: what the window jobs cost per tick.

Builds a store (SQLite and/or PostgreSQL) of 100 models x (the whole model + 9 region
values) = 1,000 stored series with 8 days of traffic, then runs the daemon's window
jobs (``WindowJob.evaluate_now``: evaluation and saving the results) for the default
windows 1h/1m, 24h/5m and 7d/15m at default evaluation settings (500 bootstrap
resamples, every model also over all its versions: 2,000 evaluated series per window)
while ingest writes new traffic and late labels through the real write path and
compaction runs every 15 s, all on a simulated clock. Reported, in one run:

- cold start: the first evaluation of each window, caches empty (one read per series);
- per steady tick and evaluated series, for each window, and its ratio to the floor:
  ``calibration_summary`` on a pre-built aggregate of the same series (the window's
  own aggregate, read cold), timed in the same process;
- the share of one core the window jobs take in steady state: per window the mean tick
  CPU / ``every``, summed (client CPU; on PostgreSQL plus the server backends' CPU,
  read from /proc);
- peak RSS of the process that ran the jobs (caches warm at the end);
- the store: rows and bytes of the change log.

Traffic: model rates are log-normal (median 0.2 predictions/s, mean 0.33: the fleet
ingests ~33/s, 2.9M a day), split over 9 regions by Dirichlet(2) shares; 80% of events
get a label, after an exponential delay (mean 30 min); 200 predictions per model from
the past week get their label during the run (late labels into old buckets). The store
holds what the windows read: day and hour rows for 8 days, minute rows where the
windows' edges fall during the run; each row is a pre-built aggregate of as many
simulated events as its bucket's Poisson count (rows of similar counts share one of a
few templates, so building takes a minute, not hours).

Run: ``.venv/bin/python bench/bench_fleet.py [--backend sqlite|postgres|both]
[--models 100] [--minutes 20]``. The run phase is a fresh subprocess (its peak RSS is
the jobs', not the store builder's).
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine, create_engine, func, insert, select, text

from monitor.core.records import Label, Prediction, Record
from monitor.core.series import ALL
from monitor.heap import limit_heap_fragmentation
from monitor.metrics.aggregates import EventAggregate
from monitor.metrics.summary import calibration_summary
from monitor.settings import Settings, StoreSettings
from monitor.store.aggregates import load_window
from monitor.store.buckets import DAY_S, HOUR_S, MINUTE_S
from monitor.store.changes import prune_changes
from monitor.store.db import migrate
from monitor.store.db.engine import make_engine
from monitor.store.db.sql import insert_rows
from monitor.store.db.tables import Aggregate, AggregateChange, Series
from monitor.store.maintenance.compaction import compact_aggregates
from monitor.store.write.event_store import EventStore
from monitor.windows.incremental import change_log_kept_s
from monitor.windows.jobs import JobMetrics, WindowJob
from monitor.windows.spans import spans_at

MINUTE, HOUR, DAY = 60_000, 3_600_000, 86_400_000
#: Mid-day, as most ticks are (a window ending on a day boundary is the cheap case).
NOW = 1_790_035_200_000 - 1_790_035_200_000 % DAY + 13 * HOUR + 37 * MINUTE
HISTORY_DAYS = 8
REGIONS = [f"r{i}" for i in range(9)]
POSTGRES_ADMIN = os.environ.get(
    "CALMON_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
BATCH_S = 5
COMPACTION_S = 15
LABELLED = 0.8
LABEL_DELAY_S = 1800.0


# -- the fleet -------------------------------------------------------------------------


@dataclass(frozen=True)
class Fleet:
    rates: np.ndarray  # predictions/s per model
    shares: np.ndarray  # model x region

    @property
    def models(self) -> list[str]:
        return [f"model-{i:03d}" for i in range(self.rates.size)]

    def series(self) -> Iterator[tuple[str, str, float]]:
        """(model, segment, rate) of every stored series."""
        for index, model in enumerate(self.models):
            yield model, ALL, float(self.rates[index])
            for region, share in zip(REGIONS, self.shares[index], strict=True):
                yield model, f"region={region}", float(self.rates[index] * share)


def make_fleet(models: int, seed: int = 0) -> Fleet:
    rng = np.random.default_rng(seed)
    return Fleet(
        rates=np.exp(rng.normal(np.log(0.2), 1.0, models)),
        shares=rng.dirichlet(np.full(len(REGIONS), 2.0), models),
    )


def settings() -> Settings:
    return Settings(store=StoreSettings(segment_keys=["region"]))


# -- building the store ----------------------------------------------------------------


def simulated_events(rng: np.random.Generator, n: int) -> EventAggregate:
    raw = rng.normal(-1.2, 1.3, n)
    p = 1.0 / (1.0 + np.exp(-raw))
    aggregate = EventAggregate.empty()
    aggregate.add_scores(raw)
    aggregate.add_probabilities(p)
    labelled = rng.uniform(size=n) < LABELLED
    if not labelled.any():
        return aggregate
    y = (rng.uniform(size=int(labelled.sum())) < p[labelled]).astype(np.int64)
    aggregate.add_labelled(p[labelled], y)
    aggregate.add_raw_labelled(raw[labelled], p[labelled], y)
    aggregate.add_label_delays(rng.exponential(LABEL_DELAY_S, int(labelled.sum())))
    return aggregate


class Templates:
    """A few pre-built aggregates per power of two of events: a row of N events uses
    one of those of its class (the store's content realistic in cells, not in values)."""

    def __init__(self, rng: np.random.Generator, per_class: int = 3) -> None:
        self._rng = rng
        self._per_class = per_class
        self._pool: dict[int, list[tuple[int, bytes]]] = {}

    def row(self, events: int) -> tuple[int, bytes]:
        size_class = round(np.log2(events))
        if size_class not in self._pool:
            self._pool[size_class] = []
            for _ in range(self._per_class):
                n = max(1, round(2.0**size_class * self._rng.uniform(0.8, 1.2)))
                self._pool[size_class].append((n, simulated_events(self._rng, n).to_bytes()))
        found = self._pool[size_class]
        return found[int(self._rng.integers(len(found)))]


def needed_buckets(run_minutes: int) -> list[tuple[int, int]]:
    """Every day and hour of the history, and the minutes the windows, references and
    detector read at any tick of the run."""
    first = NOW - HISTORY_DAYS * DAY
    first -= first % DAY
    buckets = {(DAY_S, t) for t in range(first, NOW, DAY)}
    buckets |= {(HOUR_S, t) for t in range(first, NOW, HOUR)}
    config = settings()
    for now in range(NOW, NOW + (run_minutes + 1) * MINUTE, MINUTE):
        for window in config.windows:
            spans = spans_at(window, config, now)
            buckets |= {b for b in spans.every_bucket if b[0] == MINUTE_S}
    return sorted(b for b in buckets if first <= b[1] < NOW)


def build_store(engine: Engine, fleet: Fleet, run_minutes: int) -> int:
    """Rows of every stored series; returns how many aggregate rows."""
    rng = np.random.default_rng(1)
    templates = Templates(rng)
    buckets = needed_buckets(run_minutes)
    table = Aggregate.__table__
    names = [
        "model_id",
        "model_version",
        "segment",
        "resolution_s",
        "bucket_start_ms",
        "predictions",
        "blob",
        "updated_ms",
    ]
    written = 0
    for model, segment, rate in fleet.series():
        rows = []
        for resolution, start in buckets:
            size_s = min(resolution, (NOW - start) // 1000)  # the current bucket is partial
            events = int(rng.poisson(rate * size_s))
            if events:
                predictions, blob = templates.row(events)
                rows.append((model, "v1", segment, resolution, start, predictions, blob, NOW))
        with engine.begin() as connection:
            insert_rows(connection, table, names, rows, [])  # type: ignore[arg-type]
            connection.execute(
                insert(Series),
                [
                    {
                        "model_id": model,
                        "model_version": "v1",
                        "segment": segment,
                        "first_seen_ms": NOW - HISTORY_DAYS * DAY,
                        "last_prediction_ms": NOW,
                        "last_label_ms": NOW,
                    }
                ],
            )
        written += len(rows)
    write_old_predictions(engine, fleet, rng)
    return written


def write_old_predictions(engine: Engine, fleet: Fleet, rng: np.random.Generator) -> None:
    """200 predictions per model from the past week, labelled during the run."""
    records: list[Record] = []
    for index, model in enumerate(fleet.models):
        for i in range(200):
            time_ms = NOW - int(rng.integers(HOUR, 7 * DAY))
            records.append(_prediction(rng, fleet, index, model, f"old-{i}", time_ms))
    EventStore(engine, segment_keys=["region"], clock_ms=lambda: NOW).write_batch(records)
    compact_aggregates(engine, NOW)


def _prediction(
    rng: np.random.Generator, fleet: Fleet, index: int, model: str, event: str, time_ms: int
) -> Prediction:
    raw = float(rng.normal(-1.2, 1.3))
    region = REGIONS[int(rng.choice(len(REGIONS), p=fleet.shares[index]))]
    return Prediction(
        model, event, "v1", time_ms, raw, 1.0 / (1.0 + np.exp(-raw)), {"region": region}
    )


# -- the steady state -------------------------------------------------------------------


@dataclass
class Traffic:
    """New predictions at each model's rate, and their labels when they are due."""

    fleet: Fleet
    engine: Engine
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(2))
    due: list[tuple[int, str, str, int]] = field(default_factory=list)  # heap
    written: int = 0

    def __post_init__(self) -> None:
        for model in self.fleet.models:
            for i in range(200):  # the old predictions: labelled during the run
                when = NOW + int(self.rng.integers(0, 20 * MINUTE))
                heapq.heappush(self.due, (when, model, f"old-{i}", int(self.rng.uniform() < 0.3)))

    def write_until(self, until_ms: int, now_ms: int) -> None:
        records: list[Record] = []
        for index, model in enumerate(self.fleet.models):
            for _ in range(int(self.rng.poisson(self.fleet.rates[index] * BATCH_S))):
                event = f"e{self.written}"
                self.written += 1
                time_ms = now_ms - int(self.rng.integers(0, BATCH_S * 1000))
                prediction = _prediction(self.rng, self.fleet, index, model, event, time_ms)
                records.append(prediction)
                if self.rng.uniform() < LABELLED:
                    delay = int(self.rng.exponential(LABEL_DELAY_S) * 1000)
                    y = int(self.rng.uniform() < (prediction.probability or 0.0))
                    heapq.heappush(self.due, (time_ms + delay, model, event, y))
        while self.due and self.due[0][0] <= until_ms:
            when, model, event, y = heapq.heappop(self.due)
            records.append(Label(model, event, y, when))
        store = EventStore(self.engine, segment_keys=["region"], clock_ms=lambda: now_ms)
        store.write_batch(records)


class ServerCpu:
    """CPU seconds of the PostgreSQL backends serving this database (0 on SQLite)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def seconds(self) -> float:
        if self._engine.dialect.name != "postgresql":
            return 0.0
        with self._engine.connect() as connection:
            pids = connection.scalars(
                text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
            ).all()
        total = 0.0
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total


@dataclass
class Tick:
    window: str
    wall_s: float
    cpu_s: float
    series: int
    cold: int


def timed_tick(job: WindowJob, now_ms: int, server: ServerCpu) -> Tick:
    wall, cpu, server_before = time.perf_counter(), time.process_time(), server.seconds()
    results = job.evaluate_now(now_ms)
    cpu = time.process_time() - cpu + server.seconds() - server_before
    cold = job.cache_stats()[0]
    return Tick(job.window_name, time.perf_counter() - wall, cpu, len(results), cold)


def run_steady(engine: Engine, fleet: Fleet, jobs: list[WindowJob], minutes: int) -> list[Tick]:
    traffic, server = Traffic(fleet, engine), ServerCpu(engine)
    kept_ms = int(change_log_kept_s(settings()) * 1000)
    ticks = []
    for second in range(BATCH_S, minutes * 60 + 1, BATCH_S):
        now = NOW + second * 1000
        traffic.write_until(now, now)
        if second % COMPACTION_S == 0:
            compact_aggregates(engine, now)
            prune_changes(engine, now, kept_ms)
        for job in jobs:
            if second % int(job.every_s) == 0:
                ticks.append(timed_tick(job, now, server))
    return ticks


def floor_per_series(engine: Engine, fleet: Fleet, now_ms: int, length_s: float) -> float:
    """Mean CPU of ``calibration_summary`` (defaults: 10 bins, 500 resamples) on the
    window aggregates of a sample of the fleet's series, read cold beforehand."""
    aggregates = []
    for model, segment, _ in list(fleet.series())[::5]:
        window = load_window(
            engine,
            model_id=model,
            model_version="v1",
            segment=segment,
            start_ms=now_ms - int(length_s * 1000),
            end_ms=now_ms,
            now_ms=now_ms,
        )
        aggregates.append((f"{model}/{segment}", window.aggregate))
    started = time.process_time()
    for name, aggregate in aggregates:
        calibration_summary(
            aggregate, n_bins=10, bootstrap_resamples=500, seed=zlib.crc32(name.encode())
        )
    return (time.process_time() - started) / len(aggregates)


#: Further measurements of the same run, each returning (what, value) rows for the report
#: (fleet-export: /metrics size and scrape time at the default export choice). Called
#: once the steady state is over, with the engine and the jobs (their latest results are
#: in the store and in ``job``'s callbacks).
EXTRA_MEASUREMENTS: list[Callable[[Engine, list[WindowJob]], list[tuple[str, str]]]] = []


def run_phase(url: str, models: int, minutes: int) -> dict[str, object]:
    # The daemon's C heap settings (``calmon run`` makes them at start-up): without
    # them glibc serves the large blocks freed over and over (aggregate blobs, a tick's
    # arrays) from a fragmented heap it never hands back, and the peak measured is
    # that of a process the daemon is not.
    limit_heap_fragmentation()
    engine = make_engine(url)
    fleet = make_fleet(models)
    config = settings()
    jobs = [
        WindowJob(
            engine,
            config,
            window,
            owner="bench",
            metrics=JobMetrics(CollectorRegistry()),
            clock_ms=lambda: NOW,
        )
        for window in config.windows
    ]
    server = ServerCpu(engine)
    cold = {job.window_name: timed_tick(job, NOW, server) for job in jobs}
    rss_cold = _rss_mib()
    ticks = run_steady(engine, fleet, jobs, minutes)
    end = NOW + minutes * MINUTE
    floors = {w.name: floor_per_series(engine, fleet, end, w.length) for w in config.windows}
    with engine.connect() as connection:
        log_rows = connection.execute(select(func.count()).select_from(AggregateChange)).scalar()
    extra = [row for measure in EXTRA_MEASUREMENTS for row in measure(engine, jobs)]
    return {
        "cold": {k: vars(v) for k, v in cold.items()},
        "ticks": [vars(t) for t in ticks],
        "floors": floors,
        "every": {w.name: w.every for w in config.windows},
        "rss_after_cold_mib": rss_cold,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "change_log_rows": log_rows,
        "extra": extra,
    }


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# -- the report --------------------------------------------------------------------------


def report(backend: str, rows: int, build_s: float, found: dict[str, object]) -> None:
    ticks = found["ticks"]
    floors, every = found["floors"], found["every"]
    print(f"\n== {backend}: {rows:,} aggregate rows built in {build_s:.0f} s")
    print(
        f"{'window':>7} {'series':>7} {'cold start s':>13} {'ticks':>6} {'tick wall s':>12}"
        f" {'tick cpu s':>11} {'cpu/series ms':>14} {'floor ms':>9} {'ratio':>6}"
    )
    share = 0.0
    for window, cold in found["cold"].items():  # type: ignore[attr-defined]
        steady = [t for t in ticks if t["window"] == window]  # type: ignore[attr-defined]
        wall = np.mean([t["wall_s"] for t in steady])
        cpu = np.mean([t["cpu_s"] for t in steady])
        per_series = cpu / np.mean([t["series"] for t in steady]) * 1000
        floor = floors[window] * 1000  # type: ignore[index]
        share += cpu / every[window]  # type: ignore[index]
        print(
            f"{window:>7} {cold['series']:>7} {cold['wall_s']:>13.1f} {len(steady):>6}"
            f" {wall:>12.2f} {cpu:>11.2f} {per_series:>14.2f} {floor:>9.2f}"
            f" {per_series / floor:>5.2f}x"
        )
    print(f"share of one core on window jobs (steady): {100 * share:.1f}%")
    print(
        f"cold start, all windows: {sum(c['wall_s'] for c in found['cold'].values()):.1f} s"  # type: ignore[attr-defined]
    )
    print(
        f"RSS after cold start {found['rss_after_cold_mib']:.0f} MiB,"
        f" peak {found['peak_rss_mib']:.0f} MiB; change log rows {found['change_log_rows']:,}"
    )
    for what, value in found["extra"]:  # type: ignore[attr-defined]
        print(f"{what}: {value}")


@dataclass
class Store:
    """Where a backend's store is built, and the copy a run changes (ingest, results):
    with ``--keep`` the built store stays as built and each run works on a fresh copy."""

    backend: str
    name: str
    kept: str | None
    scratch: Path

    def built_url(self) -> str:
        if self.backend == "sqlite":
            return f"sqlite:///{Path(self.kept or self.scratch) / f'{self.name}.db'}"
        return POSTGRES_ADMIN.rsplit("/", 1)[0] + f"/{self.name}"

    def is_built(self) -> bool:
        if self.backend == "sqlite":
            return self.kept is not None and Path(self.built_url()[10:]).exists()
        return self.kept is not None and self._database_exists(self.name)

    def create(self) -> None:
        if self.backend == "postgres":
            self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            self._admin(f'CREATE DATABASE "{self.name}"')

    def run_copy(self) -> str:
        """The URL the run phase uses: the built store itself, or a copy of it."""
        if self.kept is None:
            return self.built_url()
        if self.backend == "sqlite":
            copy = self.scratch / f"{self.name}.run.db"
            shutil.copyfile(self.built_url()[10:], copy)
            return f"sqlite:///{copy}"
        self._admin(f'DROP DATABASE IF EXISTS "{self.name}_run" WITH (FORCE)')
        self._admin(f'CREATE DATABASE "{self.name}_run" TEMPLATE "{self.name}"')
        return POSTGRES_ADMIN.rsplit("/", 1)[0] + f"/{self.name}_run"

    def drop(self) -> None:
        if self.backend == "postgres":
            self._admin(f'DROP DATABASE IF EXISTS "{self.name}_run" WITH (FORCE)')
            if self.kept is None:
                self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    def _admin(self, sql: str) -> None:
        admin = create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(sql))
        admin.dispose()

    def _database_exists(self, name: str) -> bool:
        admin = create_engine(POSTGRES_ADMIN)
        with admin.connect() as connection:
            found = connection.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            ).first()
        admin.dispose()
        return found is not None


def prepare(store: Store, models: int, minutes: int) -> int:
    """Build the store unless it is kept from an earlier run; returns its aggregate rows."""
    if not store.is_built():
        store.create()
        engine = make_engine(store.built_url())
        migrate.upgrade(engine)
        build_store(engine, make_fleet(models), minutes)
        engine.dispose()
    engine = make_engine(store.built_url())
    with engine.connect() as connection:
        rows = int(connection.execute(select(func.count()).select_from(Aggregate)).scalar_one())
    engine.dispose()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--models", type=int, default=100)
    parser.add_argument("--minutes", type=int, default=20)
    parser.add_argument(
        "--keep",
        metavar="DIR",
        help="keep the SQLite store in DIR (and the PostgreSQL database): a later run with "
        "the same --models and --minutes reuses them instead of building again",
    )
    parser.add_argument("--run-phase", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run_phase:
        print(json.dumps(run_phase(args.run_phase, args.models, args.minutes)))
        return 0
    print(f"load average before: {os.getloadavg()}")
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    for backend in backends:
        with tempfile.TemporaryDirectory() as scratch:
            name = f"calmon_bench_fleet_{args.models}_{args.minutes}"
            store = Store(backend, name, args.keep, Path(scratch))
            try:
                started = time.perf_counter()
                rows = prepare(store, args.models, args.minutes)
                built = time.perf_counter() - started
                command = [sys.executable, __file__, "--run-phase", store.run_copy()]
                command += ["--models", str(args.models), "--minutes", str(args.minutes)]
                output = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True)
                report(backend, rows, built, json.loads(output.stdout.splitlines()[-1]))
            finally:
                store.drop()
    print(f"load average after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

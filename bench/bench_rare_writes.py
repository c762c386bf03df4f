"""The write path's rarer cases: what they cost, and how many statements they run.

``bench_ingest.py``'s patterns send every record set-at-a-time (``common_cases.py``): no
record of them reaches the path for the others. These batches do, straight into an
``EventStore`` (no Kafka), on SQLite and PostgreSQL:

- ``split``: raw score and probability in two messages (the default topics keep them
  apart), the probability a batch after the raw score: each probability is that of an
  event already predicted;
- ``split-together``: both messages of an event in one batch, then its label;
- ``three``: an event's prediction, label and a second label in one batch (a duplicate
  or a conflicting one);
- ``replay``: a steady stream's batches written again (a consumer restarted before its
  offset commit): every record a duplicate.

For each: microseconds per record of ``write_batch``, in wall clock and in CPU time
(this process's, plus on PostgreSQL its server processes' for the database, read from
``/proc``: the server must run on this machine; CPU time is what a shared machine's load
disturbs least), the records the common cases left, the share of the wall clock spent
on them, and the SQL statements the database ran per batch (SQLite's own count, each row
of an ``executemany`` one statement; on PostgreSQL, each statement and each ``COPY`` the
client sent, each row of an ``executemany`` one). The timed batches are written
``--repeat`` times (default 3), each time to a fresh database; the best is printed.

Run: ``.venv/bin/python bench/bench_rare_writes.py [N] [--batch B] [--pattern P]
[--repeat R]`` (default N = 20,000 events, batches of 5,000 records, every pattern;
PostgreSQL at 127.0.0.1:5432).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from bench_ingest import fresh_database
from sqlalchemy import Engine, event, text

from monitor.core.records import Label, Prediction, Record
from monitor.store.db import migrate
from monitor.store.db.engine import make_engine
from monitor.store.write import event_store
from monitor.store.write.event_store import EventStore

NOW = 1_790_000_000_000
HOUR_MS = 3_600_000


def _prediction(i: int, **values: Any) -> Prediction:
    p = (i * 7919 % 1000) / 1000
    fields = {"raw_score": p * 8 - 4, "probability": p, **values}
    segment = {"region": "eu" if i % 2 else "us"}
    return Prediction("fraud", f"e{i}", "v1", NOW - HOUR_MS + i, segment=segment, **fields)


def _label(i: int, label: int | None = None) -> Label:
    return Label("fraud", f"e{i}", int(i % 3 == 0) if label is None else label, NOW - 1000)


def _batches(records: list[Record], size: int) -> list[list[Record]]:
    return [records[start : start + size] for start in range(0, len(records), size)]


def split(n: int, size: int) -> tuple[list[list[Record]], list[list[Record]]]:
    """(batches written first, untimed; the timed ones)."""
    raw = [_prediction(i, probability=None) for i in range(n)]
    probabilities = [_prediction(i, raw_score=None) for i in range(n)]
    return _batches(raw, size), _batches(probabilities, size)


def split_together(n: int, size: int) -> tuple[list[list[Record]], list[list[Record]]]:
    records: list[Record] = []
    for i in range(n):
        records += [_prediction(i, probability=None), _prediction(i, raw_score=None)]
    labels: list[Record] = [_label(i) for i in range(n)]
    return [], _batches(records, size) + _batches(labels, size)


def three(n: int, size: int) -> tuple[list[list[Record]], list[list[Record]]]:
    records: list[Record] = []
    for i in range(n):
        records += [_prediction(i), _label(i), _label(i, i % 2)]
    return [], _batches(records, size)


def replay(n: int, size: int) -> tuple[list[list[Record]], list[list[Record]]]:
    records: list[Record] = [_prediction(i) for i in range(n)] + [_label(i) for i in range(n)]
    return _batches(records, size), _batches(records, size)


PATTERNS: dict[str, Callable[[int, int], tuple[list[list[Record]], list[list[Record]]]]] = {
    "split": split,
    "split-together": split_together,
    "three": three,
    "replay": replay,
}


class Statements:
    """Statements the database runs, counted as they are sent."""

    count = 0

    @contextmanager
    def counting(self, engine: Any) -> Iterator[None]:
        if engine.dialect.name == "sqlite":
            with self._sqlite(engine):
                yield
        else:
            with self._postgres():
                yield

    @contextmanager
    def _sqlite(self, engine: Any) -> Iterator[None]:
        def trace(_: str) -> None:
            self.count += 1  # once per executed statement, each executemany row too

        def on_connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.set_trace_callback(trace)

        engine.dispose()  # new connections, each traced
        event.listen(engine, "connect", on_connect)
        try:
            yield
        finally:
            event.remove(engine, "connect", on_connect)
            engine.dispose()

    @contextmanager
    def _postgres(self) -> Iterator[None]:
        cursor = psycopg.Cursor
        real = {name: getattr(cursor, name) for name in ("execute", "executemany", "copy")}

        def execute(this: Any, query: Any, params: Any = None, **kwargs: Any) -> Any:
            self.count += 1
            return real["execute"](this, query, params, **kwargs)

        def executemany(this: Any, query: Any, params_seq: Any, **kwargs: Any) -> Any:
            params_seq = list(params_seq)
            self.count += len(params_seq)
            return real["executemany"](this, query, params_seq, **kwargs)

        def copy(this: Any, statement: Any, params: Any = None, **kwargs: Any) -> Any:
            self.count += 1
            return real["copy"](this, statement, params, **kwargs)

        for name, function in (("execute", execute), ("executemany", executemany)):
            setattr(cursor, name, function)
        cursor.copy = copy  # type: ignore[method-assign,assignment]
        try:
            yield
        finally:
            for name, function in real.items():
                setattr(cursor, name, function)


def server_cpu_s(engine: Engine) -> float:
    """CPU seconds used so far by the server processes of ``engine``'s database (0 on
    SQLite, in-process)."""
    if engine.dialect.name == "sqlite":
        return 0.0
    with engine.connect() as connection:
        pids = connection.execute(
            text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        ).scalars()
        total = 0
        for pid in pids:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
    return total / os.sysconf("SC_CLK_TCK")


def measure(url: str, pattern: str, n: int, size: int) -> tuple[float, float, float, str]:
    """(wall clock, CPU time, the server's part of it: per record; the other numbers,
    as text)."""
    engine = make_engine(url)
    migrate.upgrade(engine)
    store = EventStore(engine, segment_keys=["region"], clock_ms=lambda: NOW)
    before, timed = PATTERNS[pattern](n, size)
    for batch in before:
        store.write_batch(batch)
    left = [0, 0.0]  # records, seconds
    real = event_store.one_by_one.write

    def one_by_one(connection: Any, records: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return real(connection, records, **kwargs)
        finally:
            left[0] += len(records)
            left[1] += time.perf_counter() - start

    statements = Statements()
    event_store.one_by_one.write = one_by_one  # type: ignore[method-assign]
    try:
        with statements.counting(engine):
            store.write_batch(timed[0][:1])  # connect (and count) before timing
            statements.count, left[:] = 0, [0, 0.0]
            server = server_cpu_s(engine)
            start, cpu = time.perf_counter(), time.process_time()
            for batch in timed:
                store.write_batch(batch)
            elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
            server = server_cpu_s(engine) - server
    finally:
        event_store.one_by_one.write = real  # type: ignore[method-assign]
        engine.dispose()
    records = sum(len(batch) for batch in timed)
    return (
        elapsed / records * 1e6,
        (cpu + server) / records * 1e6,
        server / records * 1e6,
        f"{left[0]:,} of {records:,} records one by one ({left[1] / elapsed:.0%} of the time), "
        f"{statements.count / len(timed):,.0f} statements per batch of {size:,}",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("n", nargs="?", type=int, default=20_000, help="events")
    parser.add_argument("--batch", type=int, default=5_000, help="records per batch")
    parser.add_argument("--pattern", choices=list(PATTERNS), action="append")
    parser.add_argument("--repeat", type=int, default=3, help="runs per pattern and store")
    args = parser.parse_args()
    for pattern in args.pattern or PATTERNS:
        for store in ("sqlite", "postgres"):
            runs = []
            for _ in range(args.repeat):
                with fresh_database(store) as url:
                    runs.append(measure(url, pattern, args.n, args.batch))
            wall, (_, cpu, server, counts) = min(r[0] for r in runs), min(runs, key=lambda r: r[1])
            print(
                f"{pattern:>15} {store:>8}: {wall:6.2f} us/record wall, {cpu:6.2f} CPU"
                f" ({server:.2f} server); {counts}",
                flush=True,
            )


if __name__ == "__main__":
    main()

"""The store's set-at-a-time SQL, on real SQLite and PostgreSQL, and SQLite's plans for it."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine, event

from monitor.core.records import Prediction
from monitor.store.aggregates import load_window
from monitor.store.db import migrate
from monitor.store.db.engine import make_engine
from monitor.store.db.sql import CHUNK, _few_sizes, insert_ignoring_existing, select_for_update
from monitor.store.db.tables import Aggregate, Event
from monitor.store.errors import StoreUnavailable
from monitor.store.maintenance.retention import table_row_counts
from monitor.store.results import metric_history
from monitor.store.write.event_store import EventStore

EVENTS = Event.__table__
KEYS = ["model_id", "event_id"]


def _insert_events(engine: Engine, keys: list[tuple[str, str]]) -> None:
    with engine.begin() as connection:
        insert_ignoring_existing(
            connection,
            EVENTS,  # type: ignore[arg-type]
            [{"model_id": m, "event_id": e, "created_ms": 0} for m, e in keys],
            KEYS,
        )


def test_select_for_update_returns_the_stored_rows_in_key_order(migrated_engine: Engine) -> None:
    stored = [(f"m{i % 3}", f"e{i}") for i in range(3 * CHUNK)]
    _insert_events(migrated_engine, stored)
    # More keys than one SQLite chunk, some absent, in random order.
    wanted = [*random.Random(7).sample(stored, 2 * CHUNK), ("m0", "absent"), ("zz", "e1")]
    with migrated_engine.begin() as connection:
        found = select_for_update(
            connection,
            EVENTS,  # type: ignore[arg-type]
            KEYS,
            sorted(wanted),
            ["model_id", "event_id", "created_ms"],
        )
    expected = sorted(key for key in wanted if key in set(stored))
    assert [(row.model_id, row.event_id) for row in found] == expected
    assert all(row.created_ms == 0 for row in found)


def test_a_database_error_on_the_write_path_is_store_unavailable(database_url: str) -> None:
    """Ingest retries on ``StoreUnavailable``; PostgreSQL's raw-cursor path must raise it
    too (it raised psycopg's own errors, which ended the ingest thread)."""
    # lock_timeout / busy timeout: fail in a fraction of a second instead of waiting.
    options = (
        {"connect_args": {"options": "-c lock_timeout=200"}}
        if database_url.startswith("postgresql")
        else {}
    )
    engine = make_engine(database_url, **options)
    migrate.upgrade(engine)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", lambda dbapi, _: dbapi.execute("PRAGMA busy_timeout=200"))
    store = EventStore(engine)
    locker = engine.connect()
    if engine.dialect.name == "sqlite":
        locker.exec_driver_sql("BEGIN EXCLUSIVE")
    else:
        locker.exec_driver_sql("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
    record = Prediction("m", "e1", "v1", 1_000, probability=0.5)
    try:
        with pytest.raises(StoreUnavailable, match="lock"):
            store.write_batch([record])
    finally:
        locker.rollback()
        locker.close()
    store.write_batch([record])  # the same store writes once the lock is gone
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM events").scalar_one() == 1
    engine.dispose()


def _plans_of(engine: Engine, run: Callable[[], object]) -> list[str]:
    """SQLite's EXPLAIN QUERY PLAN lines for the SELECTs that ``run`` executes."""
    statements: list[tuple[str, Any]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if "SELECT" in statement:
            statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        run()
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    assert statements, "no SELECT ran"
    with engine.connect() as connection:
        return [
            str(line[3])
            for statement, parameters in statements
            for line in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
        ]


def _plans_of_lookups(engine: Engine, table: Any, keys: list[str], values: Any) -> list[str]:
    def lookup() -> None:
        with engine.begin() as connection:
            select_for_update(connection, table, keys, values)

    return _plans_of(engine, lookup)


def test_sqlite_lookups_search_the_key_index_instead_of_scanning_the_table(
    sqlite_engine: Engine,
) -> None:
    """A batch's cost must not grow with the table: each key is one index search.

    ``(a, b) IN (VALUES ...)`` made SQLite scan the whole key index per statement
    (0.43 s per 500 keys at a million events); the plan is what regresses, so the
    plan is what this test reads.
    """
    _insert_events(sqlite_engine, [("m", f"e{i}") for i in range(2000)])
    event_plan = _plans_of_lookups(sqlite_engine, EVENTS, KEYS, [("m", "e1"), ("m", "e5")])
    aggregate_keys = ["model_id", "model_version", "segment", "resolution_s", "bucket_start_ms"]
    aggregate_plan = _plans_of_lookups(
        sqlite_engine, Aggregate.__table__, aggregate_keys, [("m", "v1", "__all__", 60, 0)]
    )

    assert any(line.startswith("SEARCH t USING") for line in event_plan), event_plan
    assert not any(line.startswith("SCAN t") for line in event_plan), event_plan
    # Every key column bound, not just a prefix (a series' buckets grow with time).
    searched = next(line for line in aggregate_plan if line.startswith("SEARCH t"))
    assert all(f"{name}=?" in searched for name in aggregate_keys), aggregate_plan


def test_sqlite_reads_a_window_over_all_versions_with_the_key_prefix_bound(
    sqlite_engine: Engine,
) -> None:
    """Only model_id bound made SQLite walk every version's and segment's buckets."""
    EventStore(sqlite_engine).write_batch(
        [Prediction("m", "e", "v1", 1_790_000_000_000, probability=0.5)]
    )
    plan = _plans_of(
        sqlite_engine,
        lambda: load_window(
            sqlite_engine,
            model_id="m",
            model_version=None,
            segment="__all__",
            start_ms=1_789_999_000_000,
            end_ms=1_790_001_000_000,
            now_ms=1_790_001_000_000,
        ),
    )
    # Both the buckets' rows and their deltas not compacted yet are searched by prefix.
    searched = [line for line in plan if "aggregates" in line or "aggregate_deltas" in line]
    assert any("aggregate_deltas" in line for line in searched), plan
    assert any("aggregates" in line for line in searched), plan
    assert all("model_id=? AND model_version=? AND segment=?" in line for line in searched), plan


def test_sqlite_reads_metric_history_by_model_metric_and_time(sqlite_engine: Engine) -> None:
    """The history table gains a row per metric, series and evaluation: never walk it."""
    plan = _plans_of(
        sqlite_engine,
        lambda: metric_history(sqlite_engine, model_id="m", metric="ece", window="1h", since_ms=5),
    )
    index = "ix_metric_points_model_metric_time (model_id=? AND metric=? AND evaluated_ms>?)"
    assert any(f"USING INDEX {index}" in line for line in plan), plan


def test_store_row_counts_are_exact_on_sqlite_and_estimated_after_analyze_on_postgres(
    migrated_engine: Engine,
) -> None:
    tables = ["events", "aggregates", "metric_points"]
    _insert_events(migrated_engine, [("m", f"e{i}") for i in range(1234)])
    # Never analyzed: PostgreSQL has no estimate (-1), so the table is counted.
    assert table_row_counts(migrated_engine, tables) == {
        "events": 1234,
        "aggregates": 0,
        "metric_points": 0,
    }
    if migrated_engine.dialect.name == "postgresql":
        _insert_events(migrated_engine, [("m", f"f{i}") for i in range(766)])
        with migrated_engine.connect() as connection:
            connection.exec_driver_sql("ANALYZE events")  # what autovacuum does
            connection.commit()
        # 2000 rows now; the estimate is exact after ANALYZE of a table this small.
        assert table_row_counts(migrated_engine, ["events"]) == {"events": 2000}
        # It is the estimate that is read, not a count: rows since ANALYZE do not show.
        _insert_events(migrated_engine, [("m", "late")])
        assert table_row_counts(migrated_engine, ["events"]) == {"events": 2000}


@pytest.mark.parametrize("count", [0, 1, 7, 499, 500, 501, 1234, 10_000])
def test_sqlite_statements_are_built_for_few_row_counts(count: int) -> None:
    # SQLite caches a compiled statement per SQL text (~200 KB for 400 VALUES rows):
    # chunks of 500, then powers of two, keep the texts few; the rows stay in order.
    items = list(range(count))
    parts = list(_few_sizes(items))
    assert [item for part in parts for item in part] == items
    assert {len(part) for part in parts} <= {500, 256, 128, 64, 32, 16, 8, 4, 2, 1}
    assert sum(len(part) < 500 for part in parts) <= 8

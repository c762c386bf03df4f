"""Alembic: empty -> head -> base on both backends, and the models match the migrations."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from monitor.store.db import migrate
from monitor.store.db.base import Base
from monitor.store.db.engine import make_engine

TABLES = {
    "events",
    "aggregates",
    "aggregate_deltas",
    "series",
    "metric_points",
    "window_results",
    "references",
    "job_runs",
}


def test_upgrade_to_head_and_downgrade_to_base(database_url: str) -> None:
    engine = make_engine(database_url)
    assert migrate.current_revision(engine) is None
    migrate.upgrade(engine)
    assert migrate.is_at_head(engine)
    assert set(inspect(engine).get_table_names()) >= TABLES
    # What the migrations built is what the models describe (no pending autogenerate diff).
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == []
    migrate.downgrade(engine)
    assert migrate.current_revision(engine) is None
    assert not TABLES & set(inspect(engine).get_table_names())
    engine.dispose()


def test_postgresql_stores_aggregate_blobs_uncompressed(postgres_url: str) -> None:
    # STORAGE EXTERNAL (revision 0005): PostgreSQL's pglz compression of every blob on
    # write cost three times the rest of inserting a batch's aggregate deltas.
    engine = make_engine(postgres_url)
    migrate.upgrade(engine)
    query = text(
        "SELECT attstorage FROM pg_attribute "
        "WHERE attrelid = CAST(:table AS regclass) AND attname = 'blob'"
    )
    with engine.connect() as connection:
        for table in ("aggregates", "aggregate_deltas"):
            assert connection.execute(query, {"table": table}).scalar_one() == "e", table
    migrate.downgrade(engine, "0004_history_index")
    with engine.connect() as connection:
        assert connection.execute(query, {"table": "aggregates"}).scalar_one() == "x"
    engine.dispose()

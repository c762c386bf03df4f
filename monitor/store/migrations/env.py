"""Alembic environment: runs on the connection ``monitor.store.db.migrate`` passes in."""

from __future__ import annotations

from alembic import context

from monitor.store.db import tables  # noqa: F401  (registers the tables on Base.metadata)
from monitor.store.db.base import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    # SQLite cannot ALTER most things; batch mode rewrites the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()

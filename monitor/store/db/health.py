"""Is the store usable: reachable, and at the latest migration (readiness)."""

from __future__ import annotations

from sqlalchemy import Engine, text

from monitor.store.db import migrate


def store_problem(engine: Engine) -> str | None:
    """What keeps the store from serving, or None."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        if not migrate.is_at_head(engine):
            return "schema is not at the latest revision"
    except Exception as exc:  # any failure means not ready
        return str(exc)[:200]
    return None

"""Is the store usable: reachable, and at the latest migration (readiness).

/readyz asks this on every pod every few seconds, so the answer is cheap and quiet:

- at most one check per ``recheck_s``, on a pooled connection; in between, the last
  answer (a probe that comes while a check is running gets the last answer too);
- the revision is read from Alembic's version table with plain SQL: Alembic's
  ``MigrationContext`` logs two INFO lines each time it is made (two lines per pod per
  probe period, once);
- the reason is generic ("store unreachable"): the database's own error names hosts
  and users, and /readyz answers anyone who can reach the port. The error goes to the
  log instead, at most once a minute.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from sqlalchemy import Engine, inspect, text

from monitor.store.db import migrate

logger = logging.getLogger(__name__)

#: How long a store check's answer is reused.
RECHECK_S = 5.0
#: At most one log line per this many seconds while the store is unreachable.
LOG_INTERVAL_S = 60.0
UNREACHABLE = "store unreachable"
NOT_MIGRATED = "store schema is not at the latest migration: run `calmon migrate`"


class StoreHealth:
    def __init__(
        self,
        engine: Engine,
        *,
        recheck_s: float = RECHECK_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._recheck_s = recheck_s
        self._clock = clock
        self._head = migrate.head_revision()  # reads the migration scripts: once
        self._lock = threading.Lock()
        self._checked_at: float | None = None
        self._problem: str | None = "store not checked yet"
        self._logged_at: float | None = None

    def problem(self) -> str | None:
        """What keeps the store from serving, or None."""
        now = self._clock()
        if self._checked_at is not None and now - self._checked_at < self._recheck_s:
            return self._problem
        if not self._lock.acquire(blocking=False):
            return self._problem  # another probe is checking
        try:
            self._problem = self._check()
            self._checked_at = self._clock()
            return self._problem
        finally:
            self._lock.release()

    def _check(self) -> str | None:
        try:
            with self._engine.connect() as connection:
                if not inspect(connection).has_table("alembic_version"):
                    return NOT_MIGRATED
                revision = connection.execute(
                    text("SELECT version_num FROM alembic_version")
                ).scalar()
        except Exception as exc:  # any failure means not ready
            now = self._clock()
            if self._logged_at is None or now - self._logged_at >= LOG_INTERVAL_S:
                self._logged_at = now
                logger.warning("store unreachable", extra={"error": str(exc)[:500]})
            return UNREACHABLE
        return None if revision == self._head else NOT_MIGRATED


def store_problem(engine: Engine) -> str | None:
    """One uncached check, for callers that ask once."""
    return StoreHealth(engine).problem()

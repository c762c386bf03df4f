"""The store's own errors: what callers may catch, without knowing the database driver.

Ingest decides between dead-lettering and retrying on these two alone.
"""

from __future__ import annotations

from monitor.core.errors import UserError


class StoreError(Exception):
    """Something the store could not do."""


class RecordsRefused(StoreError):
    """The database refused the data itself (a value out of its range, a constraint):
    writing it again would fail the same way. The message says what it refused."""


class StoreUnavailable(StoreError):
    """The database could not do the work now (down, timed out, deadlocked for good):
    worth retrying."""


class StoreUnreachable(StoreUnavailable, UserError):
    """The store could not be reached at all (a command's or the daemon's first contact):
    the message names the store, without its credentials, and the driver's reason."""

"""Schema migrations through Alembic (``calmon migrate``): the only way tables are made."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.exc import InterfaceError, OperationalError

from monitor.core.redaction import redact_url
from monitor.store.errors import StoreUnreachable

MIGRATIONS = Path(__file__).parent.parent / "migrations"


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    with engine.begin() as connection:
        config = _config()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def downgrade(engine: Engine, revision: str = "base") -> None:
    with engine.begin() as connection:
        config = _config()
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The store's revision (None: empty); the first thing every command and the daemon
    ask the store, so a store that cannot be reached is reported here, in one line."""
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    except (OperationalError, InterfaceError) as error:
        reason = str(error.orig or error).strip().splitlines()[0]
        url = engine.url.render_as_string(hide_password=False)
        # A SQLite URL holds a path, never a secret (and a URL parser would mangle it).
        where = url if engine.url.get_backend_name() == "sqlite" else redact_url(url)
        raise StoreUnreachable(f"cannot reach the store at {where}: {reason}") from None


def is_at_head(engine: Engine) -> bool:
    return current_revision(engine) == head_revision()

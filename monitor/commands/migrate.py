"""`calmon migrate`: bring the store's schema to the latest Alembic revision."""

from __future__ import annotations

import argparse

from monitor.commands.common import add_config_argument, settings_from


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument("--revision", default="head", help="target revision (default: head)")
    parser.add_argument(
        "--downgrade", action="store_true", help="downgrade to --revision instead (e.g. base)"
    )


def run(args: argparse.Namespace) -> int:
    # Imported here, not at the top, so that `--help` does not wait for it (monitor/cli.py).
    from monitor.store.db import migrate
    from monitor.store.db.engine import make_engine

    settings = settings_from(args)
    engine = make_engine(settings.store.url.get_secret_value())
    before = migrate.current_revision(engine)
    if args.downgrade:
        migrate.downgrade(engine, args.revision)
    else:
        migrate.upgrade(engine, args.revision)
    print(f"store schema: {before or 'empty'} -> {migrate.current_revision(engine) or 'empty'}")
    engine.dispose()
    return 0

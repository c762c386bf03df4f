"""`calmon run`: the daemon (ingest, window jobs, HTTP)."""

from __future__ import annotations

import argparse

from monitor.commands.common import add_config_argument, settings_from
from monitor.logs import configure_logging


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument(
        "--no-ingest",
        action="store_true",
        help="do not consume from Kafka (a replica that only evaluates and serves)",
    )
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING (default INFO)")


def run(args: argparse.Namespace) -> int:
    # Imported here, not at the top, so that `--help` does not wait for it (monitor/cli.py).
    from monitor.app import App

    configure_logging(json=True, level=args.log_level)
    settings = settings_from(args)
    return App(settings).run(ingest=not args.no_ingest)

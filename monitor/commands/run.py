"""`calmon run`: the daemon (ingest, window jobs, HTTP)."""

from __future__ import annotations

import argparse

from monitor.app import App
from monitor.commands.common import add_config_argument, settings_from
from monitor.logs import configure_logging

NAME = "run"
HELP = "run the daemon: Kafka ingest, scheduled window jobs, /metrics and the JSON API"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument(
        "--no-ingest",
        action="store_true",
        help="do not consume from Kafka (a replica that only evaluates and serves)",
    )
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING (default INFO)")


def run(args: argparse.Namespace) -> int:
    configure_logging(json=True, level=args.log_level)
    settings = settings_from(args)
    return App(settings).run(ingest=not args.no_ingest)

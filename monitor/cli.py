"""The `calmon` command line: one sub-command per module in `monitor.commands`.

Each command module exposes two functions: ``add_arguments(parser)`` and
``run(args) -> int`` (the process exit code). Keeping one module per command lets each
stage own its own CLI surface.

Only the chosen command's module is imported. The daemon's modules pull in pydantic,
scipy, SQLAlchemy and Alembic (seconds on a small machine), and `calmon --help` should
not wait for any of them.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from monitor import __version__
from monitor.core.errors import UserError


@dataclass(frozen=True)
class Command:
    name: str
    module: str
    help: str


# Order is the order shown in `calmon --help`.
COMMANDS = (
    Command(
        "run",
        "monitor.commands.run",
        "run the daemon: Kafka ingest, scheduled window jobs, /metrics and the JSON API",
    ),
    Command(
        "demo",
        "monitor.commands.demo",
        "run everything embedded (broker, SQLite, daemon, traffic) and inject a drift",
    ),
    Command(
        "migrate",
        "monitor.commands.migrate",
        "create or upgrade the store's tables (Alembic); safe to run on every deploy",
    ),
    Command(
        "compute",
        "monitor.commands.compute",
        "evaluate every configured window now, store the results and print them",
    ),
    Command(
        "baseline",
        "monitor.commands.baseline",
        "store the raw-score and probability distributions of a period as a model version's "
        "reference",
    ),
    Command(
        "recalibrate",
        "monitor.commands.recalibrate",
        "fit and validate candidate calibrators on a window ending now; print the comparison, "
        "write the recommended artifact",
    ),
    Command(
        "check-config",
        "monitor.commands.check_config",
        "validate the config, environment overrides and rule files; print the result",
    ),
    Command(
        "simulate",
        "monitor.commands.simulate",
        "produce simulated predictions and delayed labels (with drifts) into Kafka",
    ),
    Command(
        "evaluate",
        "monitor.commands.evaluate",
        "every window metric of a Parquet, CSV or JSON Lines file of predictions, no Kafka needed",
    ),
    Command(
        "backfill",
        "monitor.commands.backfill",
        "load a file of past predictions and labels into the store, as ingest writes them",
    ),
    Command(
        "report",
        "monitor.commands.report",
        "write an HTML report (reliability diagram, metrics over time, segments, drift) "
        "for a model",
    ),
)


def chosen_command(argv: Sequence[str]) -> str | None:
    """The sub-command named on the command line, if any.

    The top-level parser has only flags (``--help``, ``--version``), so the first word
    that is not a flag is the command.
    """
    return next((word for word in argv if not word.startswith("-")), None)


def build_parser(chosen: str | None) -> argparse.ArgumentParser:
    """The parser, with the arguments of the `chosen` command only."""
    parser = argparse.ArgumentParser(
        prog="calmon",
        description=(
            "Monitor the calibration of probability models in production: "
            "ECE, Brier and log loss once labels arrive, PSI and KS drift before."
        ),
    )
    parser.add_argument("--version", action="version", version=f"calmon {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        sub = subparsers.add_parser(command.name, help=command.help, description=command.help)
        if command.name == chosen:
            module = importlib.import_module(command.module)
            module.add_arguments(sub)
            sub.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(chosen_command(words))
    args = parser.parse_args(words)
    try:
        return int(args._run(args))
    except UserError as problem:
        # A mistake in the config, rules or environment: the message says what and where;
        # a traceback would only hide it.
        print(f"calmon {args.command}: {problem}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

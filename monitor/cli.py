"""The `calmon` command line: one sub-command per module in `monitor.commands`.

Each command module exposes ``NAME``, ``HELP`` and two functions:
``add_arguments(parser)`` and ``run(args) -> int`` (the process exit code).
Keeping one module per command lets each stage own its own CLI surface.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from types import ModuleType

from monitor import __version__
from monitor.app import SchemaNotReady
from monitor.notify.webhooks import MissingWebhookSecret
from monitor.rules.model import RulesError
from monitor.settings import ConfigError

USER_ERRORS = (ConfigError, RulesError, MissingWebhookSecret, SchemaNotReady)

# Order is the order shown in `calmon --help`.
COMMAND_MODULES = (
    "monitor.commands.run",
    "monitor.commands.demo",
    "monitor.commands.migrate",
    "monitor.commands.compute",
    "monitor.commands.baseline",
    "monitor.commands.check_config",
    "monitor.commands.simulate",
    "monitor.commands.report",
)


def _load_commands() -> list[ModuleType]:
    return [importlib.import_module(name) for name in COMMAND_MODULES]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="calmon",
        description=(
            "Monitor the calibration of probability models in production: "
            "ECE, Brier and log loss once labels arrive, PSI and KS drift before."
        ),
    )
    parser.add_argument("--version", action="version", version=f"calmon {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in _load_commands():
        sub = subparsers.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(sub)
        sub.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._run(args))
    except USER_ERRORS as problem:
        # A mistake in the config, rules or environment: the message says what and where;
        # a traceback would only hide it.
        print(f"calmon {args.command}: {problem}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""`calmon check-config` (placeholder until its issue lands)."""

from __future__ import annotations

import argparse

NAME = "check-config"
HELP = "(not built yet)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser


def run(args: argparse.Namespace) -> int:
    raise SystemExit("calmon check-config: not built yet")

"""`calmon run` (placeholder until its issue lands)."""

from __future__ import annotations

import argparse

NAME = "run"
HELP = "(not built yet)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser


def run(args: argparse.Namespace) -> int:
    raise SystemExit("calmon run: not built yet")

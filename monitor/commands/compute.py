"""`calmon compute` (placeholder until its issue lands)."""

from __future__ import annotations

import argparse

NAME = "compute"
HELP = "(not built yet)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser


def run(args: argparse.Namespace) -> int:
    raise SystemExit("calmon compute: not built yet")

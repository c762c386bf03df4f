"""`calmon demo`: watch calmon catch a calibration drift, with nothing else installed."""

from __future__ import annotations

import argparse
from pathlib import Path

from monitor.logs import configure_logging
from monitor.settings import parse_duration


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--duration",
        type=parse_duration,
        default=None,
        help="stop after this long (e.g. 90s); default: until Ctrl-C",
    )
    parser.add_argument(
        "--healthy",
        type=parse_duration,
        default=45.0,
        help="healthy traffic before the drift starts (default 45s)",
    )
    parser.add_argument("--dir", type=Path, help="keep the SQLite store in this directory")


def run(args: argparse.Namespace) -> int:
    configure_logging(json=False, level="WARNING")
    from monitor.demo.run import run_demo  # needs the embedded extra: import late

    return run_demo(duration_s=args.duration, healthy_s=args.healthy, directory=args.dir)

"""Arguments and helpers shared by the sub-commands."""

from __future__ import annotations

import argparse
import os

from monitor.settings import Settings, load_settings


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-c",
        "--config",
        default=os.environ.get("CALMON_CONFIG") or None,  # empty: no file
        help="YAML config file (default: $CALMON_CONFIG; without one, built-in defaults "
        "plus CALMON__SECTION__KEY environment overrides)",
    )


def settings_from(args: argparse.Namespace) -> Settings:
    return load_settings(args.config)

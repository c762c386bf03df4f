"""`calmon check-config`: validate the config file and report every problem."""

from __future__ import annotations

import argparse

from monitor.commands.common import add_config_argument
from monitor.settings import ConfigError, load_settings

NAME = "check-config"
HELP = "validate the config (and environment overrides) and print the result"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)


def run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.config)
    except ConfigError as problem:
        print(problem)
        return 1
    print(f"config OK ({args.config or 'built-in defaults'})")
    print(f"  kafka: {', '.join(settings.kafka.bootstrap_servers)} group {settings.kafka.group_id}")
    print(f"  topics: {', '.join(settings.kafka.topics.unique())}")
    print(f"  segment keys: {', '.join(settings.store.segment_keys) or '(none)'}")
    return 0

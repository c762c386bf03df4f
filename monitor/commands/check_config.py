"""`calmon check-config`: validate the config file and report every problem."""

from __future__ import annotations

import argparse

from monitor.commands.common import add_config_argument
from monitor.settings import ConfigError, ReferenceSettings, load_settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)


def run(args: argparse.Namespace) -> int:
    # Imported here, not at the top, so that `--help` does not wait for it (monitor/cli.py).
    from monitor.alerts.webhooks import MissingWebhookSecret, webhook_key
    from monitor.rules.model import RulesError, load_rules

    try:
        settings = load_settings(args.config)
    except ConfigError as problem:
        print(problem)
        return 1
    try:
        rules = load_rules(settings.rules, webhooks=settings.webhooks)
    except RulesError as problem:
        print(problem)
        return 1
    missing = []
    for name, hook in settings.webhooks.items():
        try:
            webhook_key(hook, name)
        except MissingWebhookSecret as problem:
            missing.append(str(problem))
    if missing:
        print("\n".join(missing))
        return 1
    print(f"config OK ({args.config or 'built-in defaults'})")
    print(f"  kafka: {', '.join(settings.kafka.bootstrap_servers)} group {settings.kafka.group_id}")
    print(f"  topics: {', '.join(settings.kafka.topics.unique())}")
    print(f"  segment keys: {', '.join(settings.store.segment_keys) or '(none)'}")
    print(f"  windows: {', '.join(w.name for w in settings.windows)}")
    print(f"  drift reference: {_reference(settings.reference)}")
    print(f"  rules: {len(rules)} from {', '.join(settings.rules) or '(no rule files)'}")
    print(f"  alertmanager: {', '.join(settings.alertmanager.urls) or '(not configured)'}")
    print(f"  webhooks: {', '.join(settings.webhooks) or '(none)'}")
    return 0


def _reference(reference: ReferenceSettings) -> str:
    if reference.mode == "fixed" and reference.start and reference.end:
        period = f"{reference.start.isoformat()} to {reference.end.isoformat()}"
        return f"fixed period {period}, {reference.psi_bins} PSI bins"
    return f"trailing window, {reference.psi_bins} PSI bins"

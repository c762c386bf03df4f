"""`calmon check-config`: validate everything `calmon run` reads and report every problem.

One run lists every problem: of the config file, of its environment overrides (naming
the variable), of every rule file and rule, of the webhooks' signing keys, and rules
that can match no configured window or segment. A bad part of the config does not hide
the rest: it is set aside (its default is used) and the other checks go on.
"""

from __future__ import annotations

import argparse
import copy
import os
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from monitor.commands.common import add_config_argument
from monitor.settings import (
    RawConfig,
    ReferenceSettings,
    Settings,
    describe_problems,
    read_config,
    validation_problems,
)

EXIT_CODES = """exit codes:
  0  no problem: the summary of what `calmon run` would use is printed
  1  problems found: each is printed on its own line, with the key's path, the file
     and line, or the environment variable it comes from
  2  usage error (unknown option)"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.epilog = EXIT_CODES
    parser.formatter_class = argparse.RawDescriptionHelpFormatter


def run(args: argparse.Namespace) -> int:
    # Imported here, not at the top, so that `--help` does not wait for it (monitor/cli.py).
    from monitor.alerts.alertmanager import AlertmanagerTLSError, tls_context
    from monitor.alerts.webhooks import MissingWebhookSecret, webhook_key
    from monitor.core.redaction import redact_url
    from monitor.export.choice import export_problems
    from monitor.export.exposition import METRICS
    from monitor.rules.model import RulesError, load_rules
    from monitor.windows.reference_thresholds import configuration_problems

    raw = read_config(args.config, os.environ)
    settings, config_problems = _best_effort(raw)
    problems = raw.problems + config_problems
    rules = []
    try:
        rules = load_rules(
            settings.rules,
            webhooks=settings.webhooks,
            windows=[window.name for window in settings.windows],
            segment_keys=settings.store.segment_keys,
        )
    except RulesError as error:
        problems += error.problems
    problems += configuration_problems(
        {rule.name: rule.windows_from_reference(settings.windows) for rule in rules},
        settings.reference,
    )
    problems += export_problems(
        settings.export,
        metrics=METRICS,
        windows=[window.name for window in settings.windows],
        segment_keys=settings.store.segment_keys,
    )
    for name, hook in settings.webhooks.items():
        try:
            webhook_key(hook, name)
        except MissingWebhookSecret as problem:
            problems.append(str(problem))
    try:
        tls_context(settings.alertmanager)
    except AlertmanagerTLSError as problem:
        problems.append(str(problem))
    if problems:
        print(describe_problems(problems))
        return 1
    print(f"config OK ({args.config or 'built-in defaults'})")
    print(f"  kafka: {', '.join(settings.kafka.bootstrap_servers)} group {settings.kafka.group_id}")
    print(f"  topics: {', '.join(settings.kafka.topics.unique())}")
    print(f"  segment keys: {', '.join(settings.store.segment_keys) or '(none)'}")
    print(f"  windows: {', '.join(w.name for w in settings.windows)}")
    print(f"  drift reference: {_reference(settings.reference)}")
    print(f"  rules: {len(rules)} from {', '.join(settings.rules) or '(no rule files)'}")
    print(f"  alertmanager: {_alertmanager(settings, redact_url)}")
    print(f"  webhooks: {', '.join(settings.webhooks) or '(none)'}")
    return 0


def _best_effort(raw: RawConfig) -> tuple[Settings, list[str]]:
    """The settings with every invalid key set aside, and the problems of those keys.

    The rule files and webhooks are then checked against what is left, so that one bad
    key does not hide their problems. A bad key may take its section's neighbours with
    it (a window without its length goes as a whole); never more than that.
    """
    data = copy.deepcopy(raw.data)
    problems: list[str] = []
    for _ in range(10):
        try:
            return Settings.model_validate(data), problems
        except ValidationError as exc:
            problems = problems or validation_problems(exc, raw.origins)
            for error in exc.errors():
                _set_aside(data, error["loc"])
            data = _without_dropped(data)
    return Settings(), problems


_DROPPED = object()


def _set_aside(data: Any, loc: tuple[str | int, ...]) -> None:
    """Remove the value at ``loc``; a missing one takes its parent with it."""
    parents = [data]
    for part in loc[:-1]:
        try:
            parents.append(parents[-1][part])
        except (KeyError, IndexError, TypeError):
            return
    for depth in range(len(loc), 0, -1):
        parent, part = parents[depth - 1], loc[depth - 1]
        if isinstance(parent, dict) and part in parent:
            del parent[part]
            return
        if isinstance(parent, list) and isinstance(part, int) and part < len(parent):
            parent[part] = _DROPPED  # removed afterwards: the other errors' indices hold
            return
    data.clear()  # the top level itself is wrong


def _without_dropped(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_dropped(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_dropped(v) for v in value if v is not _DROPPED]
    return value


def _alertmanager(settings: Settings, redact_url: Callable[[str], str]) -> str:
    """The URLs as calmon shows them everywhere, credentials masked, and how it logs in."""
    alertmanager = settings.alertmanager
    if not alertmanager.urls:
        return "(not configured)"
    if alertmanager.username:
        auth = f"basic auth as {alertmanager.username}"
    elif alertmanager.bearer_token is not None:
        auth = "bearer token"
    else:
        auth = "no auth"
    tls = ", TLS verification OFF" if alertmanager.insecure_skip_verify else ""
    return f"{', '.join(redact_url(url) for url in alertmanager.urls)} ({auth}{tls})"


def _reference(reference: ReferenceSettings) -> str:
    if reference.mode == "fixed" and reference.start and reference.end:
        period = f"{reference.start.isoformat()} to {reference.end.isoformat()}"
        return f"fixed period {period}, {reference.psi_bins} PSI bins"
    return f"trailing window, {reference.psi_bins} PSI bins"

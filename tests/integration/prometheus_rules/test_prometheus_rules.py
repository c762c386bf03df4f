"""The Prometheus alerting rules under alerts/: valid for promtool, passing their unit
tests, and using only metric names a calmon daemon really exports."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine

from monitor.app import App
from monitor.settings import Settings, StoreSettings, WebhookSettings

pytestmark = pytest.mark.integration

ALERTS = Path(__file__).resolve().parents[3] / "alerts"


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        raise RuntimeError("promtool is not installed: run `make system-deps`")
    return found


def test_promtool_checks_the_rules() -> None:
    run = subprocess.run(
        [promtool(), "check", "rules", str(ALERTS / "prometheus-rules.yaml")],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "SUCCESS: 11 rules found" in run.stdout


def test_promtool_unit_tests_of_the_rules_pass() -> None:
    run = subprocess.run(
        [promtool(), "test", "rules", "prometheus-rules.test.yaml"],
        cwd=ALERTS,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout + run.stderr


def exported_names(registry: CollectorRegistry) -> set[str]:
    names = set()
    for family in registry.collect():
        names.add(family.name)
        if family.type == "counter":
            names.add(f"{family.name}_total")
        if family.type == "histogram":
            names |= {f"{family.name}_{s}" for s in ("bucket", "sum", "count")}
    return names


def test_rules_use_only_metrics_the_daemon_exports(
    sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALMON_WEBHOOK_SECRET", "k")
    settings = Settings(
        store=StoreSettings(segment_keys=["region"]),
        webhooks={"recalibrate": WebhookSettings(url="http://127.0.0.1:9/hook")},
    )
    app = App(settings, engine=sqlite_engine)
    # The window families are rendered apart from the registry; /metrics serves both.
    window_families = text_string_to_metric_families(app.exposition.body().decode())
    exported = exported_names(app.registry) | {family.name for family in window_families}
    groups = yaml.safe_load((ALERTS / "prometheus-rules.yaml").read_text())["groups"]
    used = {
        name
        for group in groups
        for rule in group["rules"]
        for name in re.findall(r"\bcalmon_[a-z_]+", rule["expr"])
    }
    assert used and used <= exported, sorted(used - exported)

"""The Grafana dashboards: generated from scripts/build_dashboards.py (tests/unit/test_docs.py
checks the committed copies are current), laid out on the
grid, every query parsed by promtool, every metric name exported by a real running
daemon, and a real Prometheus (Debian package) scraping that daemon returns data for
every panel query and every template variable.

Grafana itself cannot run here (not in Debian or PyPI), so the panels' rendering is the
one thing not exercised; the JSON follows Grafana 11.3's dashboard model.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import promql_parser
import pytest
import yaml
from kafka import KafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from monitor.demo.broker import free_loopback_port
from monitor.settings import KafkaSettings
from tests.fixtures.http_receiver import Receiver
from tests.integration.deploy.chart import CHART, REPO
from tests.integration.ingest.helpers import send_all, wait_until

pytestmark = pytest.mark.integration
DASHBOARDS = sorted((CHART / "dashboards").glob("*.json"))
#: What the test's Prometheus stands in for Grafana's variables.
SUBSTITUTIONS = {
    "$__rate_interval": "1m",
    "$model": "fraud",
    "$version": "__all__",
    "$segment": "__all__",
    "$window": "1h",
    "${datasource}": "prometheus",
}
#: Per dashboard, what stands in for its own variables (the multi-class drill-down shows
#: the daemon's multi-class model).
DASHBOARD_SUBSTITUTIONS = {"calmon-multiclass.json": {"$model": "intent", "$class": "tech"}}
#: Made by Prometheus's rule evaluation (alerts/prometheus-rules.yaml), not by calmon.
PROMETHEUS_SERIES = {"ALERTS"}


def _dashboards() -> dict[str, dict[str, Any]]:
    return {path.name: json.loads(path.read_text()) for path in DASHBOARDS}


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def _queries(dashboard: dict[str, Any], name: str = "") -> list[tuple[str, str]]:
    """(where, PromQL) of every panel target, annotation and variable of a dashboard,
    with its own variables (``DASHBOARD_SUBSTITUTIONS``) substituted."""
    found = [
        (f"panel {panel['title']!r} {target['refId']}", target["expr"])
        for panel in _panels(dashboard)
        for target in panel["targets"]
    ]
    found += [(f"annotation {a['name']!r}", a["expr"]) for a in dashboard["annotations"]["list"]]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            # label_values(<selector>, <label>): the selector is the PromQL part.
            match = re.fullmatch(r"label_values\((.*), (\w+)\)", variable["definition"])
            assert match, variable["definition"]
            found.append((f"variable {variable['name']}", match.group(1)))
    for variable, value in DASHBOARD_SUBSTITUTIONS.get(name, {}).items():
        found = [(where, expr.replace(variable, value)) for where, expr in found]
    return found


def _substitute(expr: str) -> str:
    for variable, value in SUBSTITUTIONS.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"unknown variable in {expr}"
    return expr


def metric_names(expr: str) -> set[str]:
    """Metric names an expression selects, from its syntax tree (promql-parser)."""

    def walk(node: Any) -> set[str]:
        if type(node).__name__ == "VectorSelector":
            if node.name:
                return {node.name}
            return {m.value for m in node.matchers.matchers if m.name == "__name__"}
        found: set[str] = set()
        for attribute in ("lhs", "rhs", "expr", "args", "param", "vector_selector"):
            child = getattr(node, attribute, None)
            children = child if isinstance(child, list | tuple) else [child]
            for c in children:
                if c is not None:
                    found |= walk(c)
        return found

    return walk(promql_parser.parse(_substitute(expr)))


@pytest.mark.parametrize("name", [p.name for p in DASHBOARDS])
def test_layout_variables_and_data_source(name: str) -> None:
    dashboard = _dashboards()[name]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        covered = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not covered & cells, f"{panel['title']} overlaps another panel"
        cells |= covered
    defined = {v["name"] for v in dashboard["templating"]["list"]}
    assert {"datasource", "model", "version", "segment", "window"} <= defined
    text = json.dumps(dashboard)
    used = set(re.findall(r"\$\{?(\w+)", text)) - {"__rate_interval"}
    assert used <= defined, f"undefined variables: {used - defined}"
    for panel in _panels(dashboard):
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"] and panel["description"]


def test_overview_has_the_panels_users_look_for() -> None:
    titles = {p["title"] for p in _panels(_dashboards()["calmon-overview.json"])}
    assert {
        "ECE",
        "ACE",
        "Brier score",
        "Label coverage",
        "Label delay",
        "PSI",
        "KS statistic",
        "Events ingested",
        "Events rejected",
        "Consumer lag",
        "Window job duration (p90)",
    } <= titles
    model = {p["type"] for p in _panels(_dashboards()["calmon-model.json"])}
    assert {"xychart", "table", "barchart"} <= model


def test_every_query_parses_with_promtool(tmp_path: Path) -> None:
    rules = [
        {"record": f"dashboard:query:{i}", "expr": _substitute(expr)}
        for i, (_, expr) in enumerate(
            q for name, d in _dashboards().items() for q in _queries(d, name)
        )
    ]
    path = tmp_path / "queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    done = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(rules)} rules found" in done.stdout


# --- A running daemon, scraped by a real Prometheus ------------------------------------

N = 3000


def _produce(producer: KafkaProducer, kafka: KafkaSettings, now_ms: int) -> None:
    """Two hours of predictions with labels; the second hour's raw scores are shifted."""
    rng = np.random.default_rng(7)
    p = rng.beta(2, 5, N)
    y = (rng.uniform(size=N) < p).astype(int)
    raw = np.log(p / (1 - p)) + np.where(np.arange(N) >= N // 2, 0.7, 0.0)
    start = now_ms - 2 * 3_600_000
    step = 2 * 3_600_000 // N
    send_all(
        producer,
        kafka.topics.probabilities,
        [
            orjson.dumps(
                {
                    "event_id": f"e{i}",
                    "model_id": "fraud",
                    "model_version": "v1",
                    "timestamp": start + i * step,
                    "raw_score": float(raw[i]),
                    "probability": float(p[i]),
                    "segment": {"region": ["eu", "us"][i % 2]},
                }
            )
            for i in range(N)
        ],
    )
    send_all(
        producer,
        kafka.topics.labels,
        [
            orjson.dumps(
                {
                    "event_id": f"e{i}",
                    "model_id": "fraud",
                    "label": int(y[i]),
                    "timestamp": start + i * step + 60_000,
                }
            )
            for i in range(N)
        ]
        + [b"not json"],  # one rejected message: the rejected panel has a non-zero rate
    )
    _produce_multiclass(producer, kafka, now_ms)


def _produce_multiclass(producer: KafkaProducer, kafka: KafkaSettings, now_ms: int) -> None:
    """A multi-class model over the same two hours, labelled; class "tech" grows in the
    second hour (the fixed reference is the first)."""
    rng = np.random.default_rng(8)
    classes = ["billing", "other", "tech"]
    logits = rng.normal(0, 1.5, (N, 3))
    logits[N // 2 :, 2] += 1.0
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = (p.cumsum(axis=1) < rng.uniform(size=(N, 1))).sum(axis=1).clip(0, 2)
    start = now_ms - 2 * 3_600_000
    step = 2 * 3_600_000 // N
    send_all(
        producer,
        kafka.topics.probabilities,
        [
            orjson.dumps(
                {
                    "event_id": f"m{i}",
                    "model_id": "intent",
                    "model_version": "v1",
                    "timestamp": start + i * step,
                    "probabilities": dict(zip(classes, p[i].tolist(), strict=True)),
                }
            )
            for i in range(N)
        ],
    )
    send_all(
        producer,
        kafka.topics.labels,
        [
            orjson.dumps(
                {
                    "event_id": f"m{i}",
                    "model_id": "intent",
                    "label": classes[int(y[i])],
                    "timestamp": start + i * step + 60_000,
                }
            )
            for i in range(N)
        ],
    )


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat()


def _scrape_names(port: int) -> set[str]:
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return {
        sample.name for family in text_string_to_metric_families(body) for sample in family.samples
    }


@pytest.fixture
def daemon(
    kafka_settings: KafkaSettings,
    producer: KafkaProducer,
    http_receiver: Receiver,
    tmp_path: Path,
) -> Iterator[int]:
    now_ms = int(time.time() * 1000)
    _produce(producer, kafka_settings, now_ms)
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        yaml.safe_dump(
            {
                "rules": [
                    {
                        # Fires on any ECE: the alert panels and annotations get data.
                        "name": "AnyCalibrationError",
                        "select": {"window": "1h"},
                        "metric": "ece",
                        "op": ">",
                        "threshold": 0.0,
                        "for": "1s",
                        "severity": "info",
                        "actions": ["recalibrate"],
                    },
                    {
                        # Likewise for the multi-class model (its drill-down's annotations).
                        "name": "AnyClassProbabilityDrift",
                        "select": {"window": "1h", "model": "intent"},
                        "metric": "class_psi",
                        "op": ">",
                        "threshold": 0.0,
                        "for": "1s",
                        "severity": "info",
                    },
                ]
            }
        )
    )
    port = free_loopback_port()
    config = tmp_path / "calmon.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "kafka": kafka_settings.model_dump(mode="json", exclude_none=True),
                "store": {"segment_keys": ["region"]},
                "windows": [{"name": "1h", "length": "1h", "every": "2s"}],
                "evaluation": {
                    "min_labelled": 50,
                    "min_predictions": 50,
                    "bootstrap_resamples": 100,
                },
                "reference": {
                    "mode": "fixed",
                    "start": _iso(now_ms - 2 * 3_600_000),
                    "end": _iso(now_ms - 3_600_000),
                },
                "http": {"host": "127.0.0.1", "port": port},
                "rules": [str(rules)],
                "webhooks": {"recalibrate": {"url": f"{http_receiver.url}/recalibrate"}},
            }
        )
    )
    database = f"sqlite:///{tmp_path / 'calmon.db'}"
    env = {**os.environ, "CALMON_STORE_URL": database, "CALMON_WEBHOOK_SECRET": "k"}
    subprocess.run(
        [sys.executable, "-m", "monitor", "migrate", "--config", str(config)],
        env=env,
        check=True,
        capture_output=True,
    )
    log = tmp_path / "calmon.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "monitor", "run", "--config", str(config)],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        yield port
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        assert process.returncode == 0, log.read_text()[-3000:]


def prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if not found:
        raise RuntimeError("Prometheus is not installed: run `make system-deps`")
    return found


@pytest.fixture
def prometheus(daemon: int, tmp_path: Path) -> Iterator[str]:
    """A real Prometheus scraping the daemon every second, with calmon's alert rules."""
    port = free_loopback_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(REPO / "alerts" / "prometheus-rules.yaml")],
                # Scraped as two jobs: the series every replica exports twice over, as
                # with several replicas behind a ServiceMonitor.
                "scrape_configs": [
                    {
                        "job_name": job,
                        "static_configs": [{"targets": [f"127.0.0.1:{daemon}"]}],
                    }
                    for job in ("calmon", "calmon-replica-b")
                ],
            }
        )
    )
    log = tmp_path / "prometheus.log"
    process = subprocess.Popen(
        [
            prometheus_binary(),
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _ready(url, process, log), timeout_s=60, what="Prometheus ready")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def _ready(url: str, process: subprocess.Popen[bytes], log: Path) -> bool:
    assert process.poll() is None, log.read_text()[-3000:]
    try:
        return httpx.get(f"{url}/-/ready", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _query(url: str, expr: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{url}/api/v1/query", params={"query": _substitute(expr)}, timeout=10)
    body = response.json()
    assert body["status"] == "success", body
    return list(body["data"]["result"])


def _deploy_a_calibrator(producer: KafkaProducer, kafka: KafkaSettings) -> None:
    """After the alert's webhook: predictions served through calibrator version 2, the
    switch the drill-down's annotation marks."""
    now_ms = int(time.time() * 1000)
    send_all(
        producer,
        kafka.topics.probabilities,
        [
            orjson.dumps(
                {
                    "event_id": f"cal2-{i}",
                    "model_id": "fraud",
                    "model_version": "v1",
                    "calibrator_version": "2",
                    "timestamp": now_ms - i,
                    "probability": 0.3,
                    "segment": {"region": "eu"},
                }
            )
            for i in range(20)
        ],
    )


def test_every_dashboard_query_returns_data_from_a_scraped_daemon(
    daemon: int,
    prometheus: str,
    http_receiver: Receiver,
    producer: KafkaProducer,
    kafka_settings: KafkaSettings,
) -> None:
    # The daemon has evaluated the window with labels, drift and a firing alert.
    def evaluated() -> bool:
        try:
            names = _scrape_names(daemon)
        except OSError:
            return False
        return {"calmon_ece", "calmon_psi", "calmon_drift_bin_fraction"} <= names

    wait_until(evaluated, timeout_s=120, what="first evaluation with drift")
    http_receiver.wait_for(lambda accepted: len(accepted) >= 1, timeout=60)
    _deploy_a_calibrator(producer, kafka_settings)
    wait_until(
        lambda: "calmon_recalibration_switch_timestamp_seconds" in _scrape_names(daemon),
        timeout_s=60,
        what="the calibrator switch exported",
    )

    # Every metric a dashboard selects is one the daemon exports.
    exported = _scrape_names(daemon)
    queries = [
        (f"{name}: {where}", expr)
        for name, d in _dashboards().items()
        for where, expr in _queries(d, name)
    ]
    used = {metric for _, expr in queries for metric in metric_names(expr)}
    never_exported = used - exported - PROMETHEUS_SERIES
    assert not never_exported, f"dashboards use metrics no daemon exports: {never_exported}"

    # Through Prometheus: every query (after the scrapes a rate needs) returns series.
    def all_answer() -> list[str]:
        return [
            where
            for where, expr in queries
            if metric_names(expr) - PROMETHEUS_SERIES and not _query(prometheus, expr)
        ]

    deadline = time.monotonic() + 90
    empty = all_answer()
    while empty and time.monotonic() < deadline:
        time.sleep(2)
        empty = all_answer()
    assert not empty, f"no data for: {empty}"

    # Two scrape targets, yet one line per calmon series: no two results of a query
    # differ only in the labels of the target they were scraped from.
    target_labels = {"job", "instance"}
    for where, expr in queries:
        if (
            where.split(": ")[1].startswith("variable")
            or not metric_names(expr) - PROMETHEUS_SERIES
        ):
            continue  # label_values() lists distinct values anyway
        results = [
            frozenset((k, v) for k, v in r["metric"].items() if k not in target_labels)
            for r in _query(prometheus, expr)
        ]
        assert len(results) == len(set(results)), f"{where}: one line per scrape target"

    # Spot values: the reliability diagram's points are the exported bins, the drift
    # chart's reference bars are the reference's deciles, drift is visible.
    def one_series(selector: str) -> list[dict[str, Any]]:
        return _query(prometheus, f"max without (job, instance) ({selector})")

    observed = one_series(
        'calmon_reliability_bin_observed_ratio{model="fraud", model_version="__all__", '
        'segment="__all__", window="1h"}'
    )
    assert 5 <= len(observed) <= 10 and all(0 <= float(r["value"][1]) <= 1 for r in observed)
    reference = one_series(
        'calmon_drift_bin_fraction{model="fraud", model_version="__all__", segment="__all__", '
        'distribution="raw_score", source="reference"}'
    )
    assert len(reference) == 10
    assert sum(float(r["value"][1]) for r in reference) == pytest.approx(1.0)
    psi = one_series(
        'calmon_psi{model="fraud", model_version="__all__", segment="__all__", '
        'distribution="raw_score"}'
    )
    assert len(psi) == 1 and float(psi[0]["value"][1]) > 0.1  # the second hour shifted
    for label in ("model", "model_version", "segment", "window"):
        values = httpx.get(
            f"{prometheus}/api/v1/label/{label}/values",
            params={"match[]": "calmon_window_predictions"},
            timeout=10,
        ).json()["data"]
        assert values, label

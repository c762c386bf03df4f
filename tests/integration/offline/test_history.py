"""`calmon backfill --history` from outside: a real subprocess writes the past windows'
results into the metric history and an OpenMetrics file; the real `promtool` turns the
file into blocks and a real Prometheus, started on them, answers a query at a past
time with the value the history holds, which is the ECE of the raw events of that
window computed here with numpy."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import yaml

from monitor.demo.broker import free_loopback_port
from monitor.store.db.engine import make_engine
from monitor.store.results import metric_history
from tests.integration.ingest.helpers import wait_until

HOUR = 3_600_000
#: One window, evaluated hourly: a day of history is 24 evaluations.
ENV = {
    "CALMON__STORE__SEGMENT_KEYS": '["region"]',
    "CALMON__WINDOWS": '[{"name": "6h", "length": "6h", "every": "1h"}]',
}


def calmon(url: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **ENV, "CALMON_STORE_URL": url},
    )


def history_file(path: Path) -> pd.DataFrame:
    """A day of events ending two hours ago, all labelled an hour after."""
    now = int(time.time() * 1000)
    start = now - now % HOUR - 26 * HOUR
    rng = np.random.default_rng(8)
    n = 6000
    times = start + np.sort(rng.integers(0, 24 * HOUR, n))
    p = rng.beta(2, 5, n)
    frame = pd.DataFrame(
        {
            "event_id": [f"e{i}" for i in range(n)],
            "model_id": "fraud",
            "model_version": "v1",
            "timestamp": times,
            "probability": p,
            "label": (rng.uniform(size=n) < np.clip(p + 0.05, 0, 1)).astype(int),
            "label_timestamp": times + HOUR,
            "region": rng.choice(["eu", "us"], n),
        }
    )
    frame.to_parquet(path)
    return frame


def ece_of(frame: pd.DataFrame, end_ms: int) -> float:
    """ECE (10 equal-width bins) of the events in [end - 6h, end)."""
    inside = frame[(frame.timestamp >= end_ms - 6 * HOUR) & (frame.timestamp < end_ms)]
    p, y = inside.probability.to_numpy(), inside.label.to_numpy()
    bins = np.minimum((p * 10).astype(int), 9)
    return float(
        sum(
            abs(y[bins == b].sum() - p[bins == b].sum()) / len(p)
            for b in range(10)
            if (bins == b).any()
        )
    )


def test_history_reaches_the_store_and_prometheus(sqlite_url: str, tmp_path: Path) -> None:
    frame = history_file(tmp_path / "history.parquet")
    assert calmon(sqlite_url, "migrate").returncode == 0
    run = calmon(
        sqlite_url, "backfill", tmp_path / "history.parquet", "--history",
        "--openmetrics", tmp_path / "history.om",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    first_step = (int(frame.timestamp.min()) // HOUR + 1) * HOUR
    last_step = (int(frame.timestamp.max()) // HOUR + 1) * HOUR
    evaluations = (last_step - first_step) // HOUR + 1
    assert f"history of window 6h: {evaluations:,} evaluations, every 3600 s" in run.stderr
    assert f"history: {evaluations:,} evaluations" in run.stdout

    engine = make_engine(sqlite_url)
    points = metric_history(
        engine, model_id="fraud", metric="ece", model_version="__all__", segment="__all__"
    )
    engine.dispose()
    assert [p["evaluated_ms"] for p in points] == list(range(first_step, last_step + 1, HOUR))
    for point in points:
        assert point["value"] == pytest.approx(ece_of(frame, point["evaluated_ms"]), rel=1e-9)

    # Twice is once: the events and the points are there already.
    again = calmon(sqlite_url, "backfill", tmp_path / "history.parquet", "--history")
    assert again.returncode == 0, again.stderr
    assert "predictions: 0 new" in again.stdout
    assert f"history: {evaluations:,} evaluations, 0 points stored" in again.stdout

    blocks = tmp_path / "tsdb"
    promtool = subprocess.run(
        ["promtool", "tsdb", "create-blocks-from", "openmetrics", tmp_path / "history.om", blocks],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert promtool.returncode == 0, promtool.stderr
    past = points[len(points) // 2]
    assert query_prometheus(blocks, tmp_path, past["evaluated_ms"]) == pytest.approx(
        past["value"], rel=1e-12
    )


def query_prometheus(blocks: Path, tmp_path: Path, at_ms: int) -> float:
    """calmon_ece of the whole model at ``at_ms``, from a Prometheus started on ``blocks``."""
    port = free_loopback_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump({"global": {"scrape_interval": "1m"}}))
    prometheus = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={config}",
            f"--storage.tsdb.path={blocks}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    query = 'calmon_ece{model="fraud",model_version="__all__",segment="__all__",window="6h"}'
    found: list[float] = []
    try:

        def answered() -> bool:
            try:
                body = httpx.get(
                    f"http://127.0.0.1:{port}/api/v1/query",
                    params={"query": query, "time": at_ms / 1000},
                    timeout=5,
                ).json()
            except (httpx.TransportError, ValueError):
                return False
            found[:] = [float(r["value"][1]) for r in body.get("data", {}).get("result", [])]
            return bool(found)

        wait_until(answered, timeout_s=60, what="Prometheus answered from the imported blocks")
    finally:
        prometheus.terminate()
        prometheus.wait(timeout=30)
    assert len(found) == 1
    return found[0]


def test_history_options_without_history_are_a_usage_error(sqlite_url: str, tmp_path: Path) -> None:
    history_file(tmp_path / "history.parquet")
    run = calmon(sqlite_url, "backfill", tmp_path / "history.parquet", "--openmetrics", "x.om")
    assert run.returncode == 2
    assert "--history-step and --openmetrics go with --history" in run.stderr
    assert "Traceback" not in run.stderr

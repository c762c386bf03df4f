"""Helpers for tests that run several `calmon run --no-ingest` replicas on one store:
a store filled through the ingest write path, replicas as subprocesses, /metrics read
back as samples."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from prometheus_client.parser import text_string_to_metric_families

from monitor.core.records import Label, Prediction
from monitor.store.db.engine import Engine
from monitor.store.write.event_store import EventStore

SEGMENTS = ("eu", "us", "apac")
#: A sample of /metrics: (name, sorted labels) -> value.
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def fill_store(engine: Engine, models: int, *, events_per_model: int = 300, seed: int = 0) -> None:
    """Predictions and their labels over the last two hours (a 1h window and its
    trailing drift reference), for models m00, m01..., in every region of ``SEGMENTS``."""
    now = int(time.time() * 1000)
    rng = np.random.default_rng(seed)
    store = EventStore(engine, segment_keys=["region"], clock_ms=lambda: now)
    for model in range(models):
        p = rng.beta(2, 5, events_per_model)
        y = (rng.uniform(size=events_per_model) < p).astype(int)
        records: list[Prediction | Label] = [
            Prediction(
                f"m{model:02d}",
                f"e{i}",
                "v1",
                now - 2 * 3_600_000 + i * (2 * 3_600_000 // events_per_model),
                raw_score=float(np.log(p[i] / (1 - p[i]))),
                probability=float(p[i]),
                segment={"region": SEGMENTS[i % len(SEGMENTS)]},
            )
            for i in range(events_per_model)
        ]
        records += [
            Label(f"m{model:02d}", f"e{i}", int(y[i]), now - 1000) for i in range(events_per_model)
        ]
        store.write_batch(records)


def write_config(path: Path, port: int, **sections: Any) -> Path:
    config = {
        "store": {"segment_keys": ["region"]},
        "evaluation": {"min_labelled": 20, "min_predictions": 20, "bootstrap_resamples": 50},
        "http": {"host": "127.0.0.1", "port": port},
        **sections,
    }
    path.write_text(yaml.safe_dump(config))
    return path


def start_replica(config: Path, url: str, log: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "monitor", "run", "--no-ingest", "--config", str(config), *args],
        env={**os.environ, "CALMON_STORE_URL": url},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


def stop_replica(process: subprocess.Popen[bytes], log: Path) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    assert process.returncode == 0, log.read_text()[-3000:]


def scrape(port: int, timeout_s: float = 5) -> Samples:
    url = f"http://127.0.0.1:{port}/metrics"
    body = urllib.request.urlopen(url, timeout=timeout_s).read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }


def window_samples(port: int) -> Samples:
    """The samples of window series (those with a ``window`` and a ``model`` label)."""
    return {
        key: value
        for key, value in scrape(port).items()
        if {"model", "window"} <= {label for label, _ in key[1]}
    }


def answers(probe: Callable[[], Any]) -> bool:
    try:
        probe()
    except OSError:
        return False
    return True

"""`calmon recalibrate` as a process on a SQLite store: the comparison table, and an
artifact that lowers the ECE of held-out events (a hand-written ECE)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from scipy.special import expit, logit
from sklearn.metrics import log_loss
from sqlalchemy import Engine

from monitor.core.records import Label, Prediction
from monitor.metrics.calibrators import apply
from monitor.store.write.event_store import EventStore

MINUTE = 60_000


def _drifted(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    p = rng.beta(1.5, 1.5, n)
    return p, (rng.uniform(size=n) < expit(0.5 * logit(p))).astype(int)


def _ece(p: np.ndarray, y: np.ndarray) -> float:
    bins = np.minimum((p * 10).astype(int), 9)
    return float(sum(abs(y[bins == k].sum() - p[bins == k].sum()) for k in range(10)) / p.size)


def _recalibrate(sqlite_url: str, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    config = tmp_path / "calmon.yaml"
    config.write_text("windows: [{name: 1h, length: 1h}]\n")
    return subprocess.run(
        [sys.executable, "-m", "monitor", "recalibrate", "-c", str(config), *extra],
        env={**os.environ, "CALMON_STORE_URL": sqlite_url},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_recalibrate_prints_the_comparison_and_writes_a_fixing_artifact(
    sqlite_url: str, sqlite_engine: Engine, tmp_path: Path
) -> None:
    rng = np.random.default_rng(3)
    n, now = 6_000, int(time.time() * 1000)
    p, y = _drifted(rng, n)
    times = now - 55 * MINUTE + np.sort(rng.integers(0, 50 * MINUTE, n))
    predictions = [
        Prediction("fraud", str(i), "v1", int(t), probability=float(q))
        for i, (t, q) in enumerate(zip(times, p, strict=True))
    ]
    labels = [Label("fraud", str(i), int(label), now - 1000) for i, label in enumerate(y)]
    EventStore(sqlite_engine, clock_ms=lambda: now).write_batch(predictions + labels)
    out = tmp_path / "artifact.json"
    run = _recalibrate(
        sqlite_url, tmp_path, "--model", "fraud", "--window", "1h", "--out", str(out)
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    for method in ("identity", "temperature", "platt", "beta", "histogram", "isotonic"):
        assert any(line[2:].startswith(method) for line in lines), method
    (starred,) = [line for line in lines if line.startswith("* ") and "recommended" not in line]
    artifact = json.loads(out.read_text())
    assert starred.split()[1] == artifact["method"] != "identity"
    held_out_p, held_out_y = _drifted(np.random.default_rng(9), 40_000)
    assert _ece(apply(artifact, held_out_p), held_out_y) < 0.4 * _ece(held_out_p, held_out_y)


def test_recalibrate_says_why_there_is_nothing_to_recommend(
    sqlite_url: str, sqlite_engine: Engine, tmp_path: Path
) -> None:
    empty = _recalibrate(sqlite_url, tmp_path, "--model", "nobody", "--window", "1h")
    assert empty.returncode == 1
    assert "each half of the window needs 50 labelled events" in empty.stdout
    unknown = _recalibrate(sqlite_url, tmp_path, "--model", "fraud", "--window", "2h")
    assert unknown.returncode == 2
    assert "--window '2h' is not configured; windows: ['1h']" in unknown.stderr
    assert "Traceback" not in unknown.stderr


def _coarse(s: np.ndarray) -> np.ndarray:
    """A stale calibrator of five steps: no correction of its p can tell more apart."""
    return expit(np.array([-3.0, -1.2, 0.0, 1.2, 3.0]))[np.searchsorted([-2, -0.5, 0.5, 2], s)]


def test_recalibrate_offers_a_refit_from_the_raw_score(
    sqlite_url: str, sqlite_engine: Engine, tmp_path: Path
) -> None:
    rng = np.random.default_rng(4)
    n, now = 6_000, int(time.time() * 1000)
    s = rng.normal(0.0, 1.8, n)  # margins; the truth is expit(s)
    y = (rng.uniform(size=n) < expit(s)).astype(int)
    times = now - 55 * MINUTE + np.sort(rng.integers(0, 50 * MINUTE, n))
    # Raw score and probability in one message for half the events, in two for the
    # others (the raw score after the label): both reach the refit's cells.
    records: list[Prediction | Label] = []
    for i, (t, score, p) in enumerate(zip(times, s, _coarse(s), strict=True)):
        if i % 2:
            records.append(Prediction("fraud", str(i), "v1", int(t), float(score), float(p)))
            records.append(Label("fraud", str(i), int(y[i]), now - 1000))
        else:
            records.append(Prediction("fraud", str(i), "v1", int(t), probability=float(p)))
            records.append(Label("fraud", str(i), int(y[i]), now - 1000))
            records.append(Prediction("fraud", str(i), "v1", int(t), raw_score=float(score)))
    store = EventStore(sqlite_engine, clock_ms=lambda: now)
    for start in range(0, len(records), 500):
        store.write_batch(records[start : start + 500])
    out = tmp_path / "artifact.json"
    run = _recalibrate(
        sqlite_url, tmp_path, "--model", "fraud", "--window", "1h", "--out", str(out)
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    for method in ("raw_platt", "raw_histogram", "raw_isotonic"):
        assert any(line[2:].startswith(method) for line in lines), method
    artifact = json.loads(out.read_text())
    assert (artifact["method"], artifact["input"]) == ("raw_platt", "raw_score")
    assert lines[-2] == (
        "  input: raw_score (a new calibrator of the raw score, in place of the current one)"
    )
    fresh = np.random.default_rng(10).normal(0.0, 1.8, 40_000)
    fresh_y = (np.random.default_rng(11).uniform(size=fresh.size) < expit(fresh)).astype(int)
    refit = apply(artifact, raw_score=fresh)
    # The coarse steps were calibrated on average, but told events apart poorly.
    assert log_loss(fresh_y, refit) < log_loss(fresh_y, _coarse(fresh)) - 0.01
    assert abs(refit - expit(fresh)).max() < 0.05  # the truth, recovered

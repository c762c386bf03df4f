"""`calmon backfill` as users run it, real subprocesses on SQLite and PostgreSQL: a file's
events land through ingest's write rules, a second backfill changes nothing, a bad file
writes nothing, and `calmon baseline` can then snapshot the backfilled period."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import create_engine, text

from monitor.core.series import ALL
from monitor.store.aggregates import load_window
from monitor.store.db.engine import make_engine

NOW_MS = int(pd.Timestamp.now(tz="UTC").floor("D").timestamp() * 1000)
DAY = 86_400_000


def calmon(url: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "CALMON_STORE_URL": url, "CALMON__STORE__SEGMENT_KEYS": '["region"]'},
    )


def predictions(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    p = rng.uniform(0.02, 0.98, n)
    times = NOW_MS - 3 * DAY + np.sort(rng.integers(0, 2 * DAY, n))
    labelled = rng.uniform(size=n) < 0.7
    return pd.DataFrame(
        {
            "event_id": [f"e{i}" for i in range(n)],
            "model_id": "fraud",
            "model_version": "v1",
            "timestamp": times,
            "raw_score": np.log(p / (1 - p)),
            "probability": p,
            "label": np.where(labelled, (rng.uniform(size=n) < p).astype(float), np.nan),
            "label_timestamp": times + 3_600_000,
            "region": rng.choice(["eu", "us"], n),
        }
    )


def counts(url: str) -> tuple[int, int, int, bytes]:
    """Events, labelled events, predictions and the merged aggregate of the whole model."""
    engine = create_engine(url)
    with engine.connect() as connection:
        events = connection.execute(text("SELECT count(*) FROM events")).scalar_one()
        labelled = connection.execute(
            text("SELECT count(*) FROM events WHERE label IS NOT NULL")
        ).scalar_one()
    engine.dispose()
    store = make_engine(url)
    window = load_window(
        store,
        model_id="fraud",
        model_version=None,
        segment=ALL,
        start_ms=NOW_MS - 5 * DAY,
        end_ms=NOW_MS,
        now_ms=NOW_MS,
    )
    store.dispose()
    return events, labelled, window.predictions, window.aggregate.to_bytes(compress=False)


def test_backfill_twice_is_backfill_once(database_url: str, tmp_path: Path) -> None:
    frame = predictions(5000)
    frame.to_parquet(tmp_path / "history.parquet")
    assert calmon(database_url, "migrate").returncode == 0
    first = calmon(database_url, "backfill", tmp_path / "history.parquet")
    assert first.returncode == 0, first.stderr
    labelled = int(frame.label.notna().sum())
    assert "predictions: 5,000 new, 0 completed, 0 already stored" in first.stdout
    assert f"labels: {labelled:,} joined" in first.stdout
    once = counts(database_url)
    assert once[:3] == (5000, labelled, 5000)
    second = calmon(database_url, "backfill", tmp_path / "history.parquet")
    assert second.returncode == 0, second.stderr
    assert "predictions: 0 new, 0 completed, 5,000 already stored" in second.stdout
    assert f"labels: 0 joined, {labelled:,} already stored" in second.stdout
    assert counts(database_url) == once  # counts, labelled counts and the aggregate bytes

    # The history is the daemon's now: a baseline of the backfilled period.
    start = pd.Timestamp(NOW_MS - 3 * DAY, unit="ms", tz="UTC").isoformat()
    end = pd.Timestamp(NOW_MS - 2 * DAY, unit="ms", tz="UTC").isoformat()
    baseline = calmon(
        database_url,
        "baseline",
        "--model",
        "fraud",
        "--version",
        "v1",
        "--from",
        start,
        "--to",
        end,
    )
    assert baseline.returncode == 0, baseline.stdout + baseline.stderr
    assert "fraud v1 region=eu:" in baseline.stdout


@pytest.mark.parametrize("bad", ["label 2", "not parquet"])
def test_a_bad_file_writes_nothing(sqlite_url: str, tmp_path: Path, bad: str) -> None:
    path = tmp_path / "history.parquet"
    if bad == "label 2":
        frame = predictions(300)
        frame.loc[250, "label"] = 2.0
        frame.to_parquet(path)
    else:
        path.write_text("event_id,model_id\n")
    assert calmon(sqlite_url, "migrate").returncode == 0
    run = calmon(sqlite_url, "backfill", path)
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    message = "row 251: bad_label" if bad == "label 2" else "not a Parquet file"
    assert message in run.stderr
    assert counts(sqlite_url)[:3] == (0, 0, 0)


def test_a_segment_key_the_store_does_not_keep_is_refused(sqlite_url: str, tmp_path: Path) -> None:
    path = tmp_path / "history.parquet"
    frame = predictions(300)
    frame["country"] = "de"
    frame.to_parquet(path)
    assert calmon(sqlite_url, "migrate").returncode == 0
    run = calmon(sqlite_url, "backfill", path, "--segment-keys", "region,country")
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr
    assert "--segment-keys country: not in store.segment_keys (region)" in run.stderr
    assert counts(sqlite_url)[:3] == (0, 0, 0)
    # A subset of the store's keys is fine.
    assert calmon(sqlite_url, "backfill", path, "--segment-keys", "region").returncode == 0
    assert counts(sqlite_url)[0] == 300

"""Rows that repeat an event: `calmon evaluate` merges them as the store does.

The reference is the store itself: the file with repeated rows goes through `calmon
backfill` (ingest's write rules) into a real database, the events the store kept are
written back to a file, one row each, and `calmon evaluate` of that file must give the
numbers `calmon evaluate` gives of the file with its repeats."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import create_engine, text

HOUR, DAY = 3_600_000, 86_400_000
#: Events of the last day, so that no label is older than the 1d horizon at backfill
#: time (the store drops those as label_too_old; a file has no "now" to judge them by).
START_MS = int(pd.Timestamp.now(tz="UTC").timestamp() * 1000) - 20 * HOUR
ENV = {"CALMON__STORE__SEGMENT_KEYS": '["region"]', "CALMON__INGEST__LABEL_HORIZON": "1d"}


def calmon(*args: str | Path, url: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **ENV}
    if url is not None:
        env["CALMON_STORE_URL"] = url
    return subprocess.run(
        [sys.executable, "-m", "monitor", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def events(n: int, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.02, 0.98, n)
    times = START_MS + np.sort(rng.integers(0, 16 * HOUR, n))
    return pd.DataFrame(
        {
            "event_id": [f"e{i}" for i in range(n)],
            "model_id": "fraud",
            "model_version": rng.choice(["v1", "v2"], n),
            "timestamp": times,
            "raw_score": np.log(p / (1 - p)),
            "probability": p,
            "label": (rng.uniform(size=n) < p).astype(float),
            "label_timestamp": times + HOUR,
            "region": rng.choice(["eu", "us"], n),
        }
    )


def with_repeats(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows, then repeats of every kind the store's rules decide."""
    rows = frame.copy()
    exact = rows.iloc[0:200]
    # Prediction in two rows: the raw score first, then the probability and the label,
    # the second row claiming another version, time and region (the first row's hold).
    split = rows.index[200:300]
    second = rows.loc[split].assign(
        raw_score=np.nan,
        model_version="v9",
        region="apac",
        timestamp=rows.loc[split, "timestamp"] + 5 * HOUR,
    )
    rows.loc[split, ["probability", "label"]] = np.nan
    # A conflicting label: the first one wins.
    conflicting = rows.iloc[300:400].assign(label=1.0 - rows.label.iloc[300:400])
    # A label past the 1d horizon, then one within it: the second one is the label.
    late = rows.index[400:450]
    in_time = rows.loc[late].assign(label=1.0 - rows.loc[late, "label"])
    rows.loc[late, "label_timestamp"] = rows.loc[late, "timestamp"] + DAY + HOUR
    # No label at first, the label in a later row.
    unlabelled = rows.index[450:500]
    labelled_later = rows.loc[unlabelled].copy()
    rows.loc[unlabelled, ["label", "label_timestamp"]] = np.nan
    tail = pd.concat([exact, second, conflicting, in_time, labelled_later])
    return pd.concat([rows, tail.sample(frac=1.0, random_state=1)], ignore_index=True)


def stored_events(url: str) -> pd.DataFrame:
    engine = create_engine(url)
    with engine.connect() as connection:
        found = pd.read_sql(text("SELECT * FROM events"), connection)
    engine.dispose()
    return pd.DataFrame(
        {
            "event_id": found.event_id,
            "model_id": found.model_id,
            "model_version": found.model_version,
            "timestamp": found.event_time_ms.astype("int64"),
            "raw_score": found.raw_score.astype(float),
            "probability": found.probability.astype(float),
            "label": found.label.astype(float),
            "label_timestamp": found.label_time_ms.astype("Int64"),
            "region": [json.loads(s).get("region") for s in found.segment_json],
        }
    )


def evaluated(path: Path, *extra: str) -> tuple[dict[tuple[str, ...], dict[str, float]], str]:
    run = calmon("evaluate", path, "--format", "json", *extra)
    assert run.returncode == 0, run.stderr
    results = {
        (r["model_version"], r["segment"], r["window_start"]): r["values"]
        for r in json.loads(run.stdout)["results"]
    }
    return results, run.stderr


@pytest.mark.parametrize("every", [(), ("--every", "1d")])
def test_evaluate_counts_a_repeated_event_once_as_the_store_does(
    sqlite_url: str, tmp_path: Path, every: tuple[str, ...]
) -> None:
    original = events(3000)
    repeated = with_repeats(original)
    repeated.to_parquet(tmp_path / "repeated.parquet")
    assert calmon("migrate", url=sqlite_url).returncode == 0
    backfill = calmon("backfill", tmp_path / "repeated.parquet", url=sqlite_url)
    assert backfill.returncode == 0, backfill.stderr
    store = stored_events(sqlite_url)
    assert len(store) == len(original)
    store.to_parquet(tmp_path / "stored.parquet")

    mine, stderr = evaluated(tmp_path / "repeated.parquet", *every)
    reference, _ = evaluated(tmp_path / "stored.parquet", *every)
    merged = len(repeated) - len(original)
    assert f"{merged:,} rows repeat the model_id and event_id of an earlier row" in stderr
    assert mine.keys() == reference.keys()
    # The series of the second row's version and region were never created.
    assert not any(version == "v9" or "apac" in segment for version, segment, _ in mine)
    for series, values in reference.items():
        assert values.keys() == mine[series].keys(), series
        for name, value in values.items():
            assert mine[series][name] == pytest.approx(value, rel=1e-12, abs=1e-15), (
                series,
                name,
            )
    if not every:
        (whole,) = [
            v for (version, segment, _), v in mine.items() if version == segment == "__all__"
        ]
        assert whole["window_predictions"] == len(original)
        assert whole["window_labelled"] == store.label.notna().sum()


def test_a_file_without_repeats_says_nothing_of_them(tmp_path: Path) -> None:
    events(500).to_parquet(tmp_path / "plain.parquet")
    _, stderr = evaluated(tmp_path / "plain.parquet")
    assert "rows repeat" not in stderr

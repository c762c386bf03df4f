"""`calmon evaluate` as users run it: a real subprocess on real files, its stdout, its
stderr and its exit code; and its numbers against scikit-learn and scipy."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy import stats
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss, log_loss

T0 = pd.Timestamp("2026-10-01", tz="UTC")


def calmon(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def frame(n: int = 4000, seed: int = 0, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    score = rng.normal(shift, 1.0, n)
    p = 1 / (1 + np.exp(-score))
    return pd.DataFrame(
        {
            "event_id": [f"e{seed}-{i}" for i in range(n)],
            "model_id": "fraud",
            "model_version": "v1",
            "timestamp": T0 + pd.to_timedelta(rng.integers(0, 2 * 86_400_000, n), unit="ms"),
            "raw_score": score,
            "pred": p,
            "label": (rng.uniform(size=n) < p).astype(int),
            "region": rng.choice(["eu", "us"], n),
        }
    )


def test_metrics_match_scikit_learn_and_scipy(tmp_path: Path) -> None:
    current, reference = frame(seed=1, shift=0.3), frame(seed=2)
    current.to_parquet(tmp_path / "current.parquet")
    reference.to_csv(tmp_path / "reference.csv", index=False)
    run = calmon(
        "evaluate", tmp_path / "current.parquet", "--column", "probability=pred",
        "--reference", tmp_path / "reference.csv", "--format", "json",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    (whole,) = [
        r
        for r in json.loads(run.stdout)["results"]
        if r["model_version"] == "v1" and r["segment"] == "__all__"
    ]
    values = whole["values"]
    p, y = current.pred.to_numpy(), current.label.to_numpy()
    assert values["brier_score"] == pytest.approx(brier_score_loss(y, p), rel=1e-12)
    assert values["log_loss"] == pytest.approx(log_loss(y, p), rel=1e-12)
    observed, predicted = calibration_curve(y, p, n_bins=10, strategy="uniform")
    bins = whole["reliability_bins"]
    assert [b["observed_ratio"] for b in bins] == pytest.approx(observed, rel=1e-12)
    assert [b["mean_predicted"] for b in bins] == pytest.approx(predicted, rel=1e-12)
    counts = np.array([b["count"] for b in bins])
    ece = float(np.sum(counts * np.abs(observed - predicted)) / counts.sum())
    assert values["ece"] == pytest.approx(ece, rel=1e-12)
    ks = stats.ks_2samp(current.raw_score, reference.raw_score)
    # KS on grid cells (docs/windows-and-metrics.md: within the grid's resolution).
    assert values["ks_statistic_raw_score"] == pytest.approx(ks.statistic, abs=2e-3)
    assert values["window_predictions"] == len(current)


def test_table_segments_windows_and_outputs(tmp_path: Path) -> None:
    frame(seed=3).rename(columns={"pred": "probability"}).to_parquet(tmp_path / "f.parquet")
    run = calmon(
        "evaluate", tmp_path / "f.parquet", "--segment-keys", "region", "--every", "1d",
        "--report", tmp_path / "r.html",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].split()[:4] == ["model", "version", "segment", "window"]
    # 2 days x (all versions, v1) x (all, eu, us)
    assert len([line for line in lines if line.startswith("fraud")]) == 2 * 2 * 3
    assert "2026-10-02 00:00..2026-10-03 00:00" in run.stdout and "region=eu" in run.stdout
    assert "4,000 rows, 4,000 kept, 0 rejected" in run.stderr
    html = (tmp_path / "r.html").read_text()
    assert 'id="reliability-diagram"' in html and 'id="calibration-over-time"' in html
    as_csv = calmon("evaluate", tmp_path / "f.parquet", "--format", "csv")
    table = pd.read_csv(pd.io.common.StringIO(as_csv.stdout))
    assert list(table.segment) == ["__all__", "__all__"] and "ece_ci_upper" in table


BAD_ROWS = {
    "label 2": (
        {"label": 2},
        "bad_label",
        "label must be 0, 1, true, false or a class name (text), got 2",
    ),
    "NaN probability": ({"pred": float("nan")}, "bad_probability", "probability must be finite"),
    "probability 1.5": ({"pred": 1.5}, "bad_probability", "must be in [0, 1], got 1.5"),
    "empty event_id": ({"event_id": ""}, "bad_id", "event_id must be a string of 1-256"),
    "time in seconds": (
        {"timestamp": 1_790_000_000},
        "bad_timestamp",
        "outside 2000-2100 (seconds instead of ms?)",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_ROWS))
def test_a_bad_row_is_rejected_by_the_message_rules(tmp_path: Path, case: str) -> None:
    change, reason, detail = BAD_ROWS[case]
    rows = frame(n=300, seed=4)
    rows["timestamp"] = (rows.timestamp - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(1, "ms")
    table = pa.Table.from_pandas(rows, preserve_index=False).to_pylist()
    table[41].update(change)
    path = tmp_path / "bad.parquet"
    # pyarrow keeps a NaN a NaN (pandas would write a null: "not given").
    pq.write_table(pa.Table.from_pylist(table), path)
    run = calmon(
        "evaluate", path, "--column", "probability=pred", "--rejects", tmp_path / "rejects.csv"
    )
    assert run.returncode == 2
    assert f"row 42: {reason}: " in run.stderr and detail in run.stderr
    assert "Traceback" not in run.stderr
    rejects = pd.read_csv(tmp_path / "rejects.csv")
    assert list(rejects.row) == [42] and list(rejects.reason) == [reason]
    assert run.stdout.startswith("model"), "the good rows are still evaluated"
    allowed = calmon("evaluate", path, "--column", "probability=pred", "--max-rejects", "1")
    assert allowed.returncode == 0


def _write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


BAD_FILES = {
    "missing column": (
        "f.csv",
        "event_id,model_id,timestamp,probability\ne1,m,1790000000000,0.5\n",
        "missing column model_version",
    ),
    "wrong type": (
        "f.csv",
        "event_id,model_id,model_version,timestamp,probability\ne1,m,v1,1790000000000,high\n",
        "column probability: ",
    ),
    "empty file": ("f.csv", "", "empty file"),
    "header only": (
        "f.csv",
        "event_id,model_id,model_version,timestamp,probability\n",
        "no rows",
    ),
    "broken line": (
        "f.csv",
        "event_id,model_id,model_version,timestamp,probability\n"
        "e1,m,v1,1790000000000,0.5\ne2,m,v1,1790000000000\n",
        "line 3 has 4 cells, the header 5",
    ),
    "not parquet": ("f.parquet", "event_id,model_id\n", "not a Parquet file"),
    "naive timestamps": (
        "f.jsonl",
        '{"event_id":"e1","model_id":"m","model_version":"v1",'
        '"timestamp":"2026-10-01T00:00:00","probability":0.5}\n',
        "timestamp needs a UTC offset",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_a_bad_file_is_exit_2_with_a_message_naming_the_problem(tmp_path: Path, case: str) -> None:
    name, text, message = BAD_FILES[case]
    run = calmon("evaluate", _write(tmp_path / name, text))
    assert run.returncode == 2, run.stdout
    assert message in run.stderr
    assert "Traceback" not in run.stderr


def test_a_parquet_column_of_the_wrong_type_is_named(tmp_path: Path) -> None:
    rows = frame(n=50, seed=5)
    rows["pred"] = rows.pred.astype(str)
    rows.to_parquet(tmp_path / "f.parquet")
    run = calmon("evaluate", tmp_path / "f.parquet", "--column", "probability=pred")
    assert run.returncode == 2
    assert "column probability has type large_string; it must be numbers" in run.stderr

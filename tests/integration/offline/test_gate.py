"""The CI gate as a CI job runs it: `calmon evaluate` subprocesses on real files, their
exit codes (0 pass, 1 a condition failed, 2 a usage error) and their lines."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.integration.offline.test_evaluate_command import T0, calmon


def predictions(n: int, *, seed: int, version: str, overconfidence: float = 1.0) -> pd.DataFrame:
    """Calibrated when ``overconfidence`` is 1; above, probabilities pushed to 0 and 1."""
    rng = np.random.default_rng(seed)
    score = rng.normal(0, 1.2, n)
    truth = 1 / (1 + np.exp(-score))
    return pd.DataFrame(
        {
            "event_id": [f"{version}-{seed}-{i}" for i in range(n)],
            "model_id": "fraud",
            "model_version": version,
            "timestamp": T0 + pd.to_timedelta(rng.integers(0, 86_400_000, n), unit="ms"),
            "raw_score": score,
            "probability": 1 / (1 + np.exp(-score * overconfidence)),
            "label": (rng.uniform(size=n) < truth).astype(int),
        }
    )


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    paths = {
        "old": predictions(6000, seed=1, version="v1"),
        "new": predictions(6000, seed=2, version="v2", overconfidence=2.0),
        "both": pd.concat(
            [
                predictions(6000, seed=3, version="v1"),
                predictions(6000, seed=4, version="v2", overconfidence=2.0),
            ]
        ),
    }
    out = {}
    for name, frame in paths.items():
        out[name] = tmp_path / f"{name}.parquet"
        frame.to_parquet(out[name])
    return out


def ece_of(path: Path, version: str) -> float:
    run = calmon("evaluate", path, "--format", "json")
    (result,) = [
        r
        for r in json.loads(run.stdout)["results"]
        if r["model_version"] == version and r["segment"] == "__all__"
    ]
    return float(result["values"]["ece"])


def test_passing_conditions_exit_0_with_a_line_each(files: dict[str, Path]) -> None:
    run = calmon(
        "evaluate", files["old"], "--fail-if", "ece > 0.05", "--fail-if", "brier_score >= 0.5"
    )
    assert run.returncode == 0, run.stderr
    ece = ece_of(files["old"], "v1")
    assert ece < 0.05
    lines = [line for line in run.stderr.splitlines() if line.startswith(("PASS", "FAIL"))]
    # One version: the all-versions series has the same ECE, and comes first.
    assert lines[0] == f"PASS ece > 0.05: 2 series; the highest fraud all versions: {ece:.4g}"
    assert lines[1].startswith("PASS brier_score >= 0.5: 2 series")
    assert len(lines) == 2


def test_a_failing_condition_exits_1_with_one_line_per_series_and_its_value(
    files: dict[str, Path],
) -> None:
    ece = ece_of(files["new"], "v2")
    run = calmon("evaluate", files["new"], "--fail-if", "ece > 0.03", "--fail-if", "ece > 0.9")
    assert run.returncode == 1
    failed = [line for line in run.stderr.splitlines() if line.startswith("FAIL")]
    assert failed == [
        f"FAIL ece > 0.03: fraud all versions: ece = {ece:.4g}",
        f"FAIL ece > 0.03: fraud v2: ece = {ece:.4g}",
    ]
    assert any(line.startswith("PASS ece > 0.9: 2 series") for line in run.stderr.splitlines())
    assert run.stdout.startswith("model"), "the table is printed too"


def test_a_condition_measured_nowhere_fails(files: dict[str, Path]) -> None:
    # No reference: no drift value anywhere. A gate must not pass on nothing.
    run = calmon("evaluate", files["old"], "--fail-if", "psi_raw_score > 0.2")
    assert run.returncode == 1
    assert "FAIL psi_raw_score > 0.2: not measured on any series" in run.stderr
    with_reference = calmon(
        "evaluate", files["old"], "--reference", files["old"], "--fail-if", "psi_raw_score > 0.2"
    )
    assert with_reference.returncode == 0, with_reference.stderr
    assert "PASS psi_raw_score > 0.2: 2 series; the highest" in with_reference.stderr


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ("ecee > 0.03", "unknown metric 'ecee' (did you mean 'ece'?)"),
        ("ece >> 0.03", "expected METRIC OP NUMBER"),
        ("ece > high", "expected METRIC OP NUMBER"),
    ],
)
def test_a_bad_condition_is_a_usage_error(
    files: dict[str, Path], condition: str, message: str
) -> None:
    run = calmon("evaluate", files["old"], "--fail-if", condition)
    assert run.returncode == 2
    assert message in run.stderr and "Traceback" not in run.stderr


def test_ece_worse_than_a_baseline_file_fails(files: dict[str, Path]) -> None:
    run = calmon("evaluate", files["new"], "--baseline", files["old"])
    assert run.returncode == 1, run.stderr
    (line,) = [line for line in run.stderr.splitlines() if line.startswith("FAIL")][:1]
    new, old = ece_of(files["new"], "v2"), ece_of(files["old"], "v1")
    # v2 is not in the baseline: compared with its all-versions series.
    assert re.fullmatch(
        rf"FAIL ece worse than baseline .*old\.parquet: fraud all versions: ece {new:.4g} "
        rf"\[[0-9.]+, [0-9.]+\] vs {old:.4g} \[[0-9.]+, [0-9.]+\]",
        line,
    ), line
    same = calmon("evaluate", files["old"], "--baseline", files["old"])
    assert same.returncode == 0, same.stderr
    assert "PASS ece against baseline" in same.stderr


def test_ece_worse_than_another_version_of_the_file_fails(files: dict[str, Path]) -> None:
    run = calmon("evaluate", files["both"], "--baseline-version", "v1")
    assert run.returncode == 1
    assert "FAIL ece worse than version v1: fraud v2: ece " in run.stderr
    reverse = calmon("evaluate", files["both"], "--baseline-version", "v2")
    assert reverse.returncode == 0, reverse.stderr
    assert "PASS ece against version v2: 1 series" in reverse.stderr


def test_the_sequential_detector_gates_per_period(tmp_path: Path) -> None:
    """`--every 1d --fail-if "calibration_cusum_ratio >= 1"`: the shipped
    CalibrationShiftDetected rule as a gate; it fails on the day calibration drifted."""
    calibrated = predictions(6000, seed=5, version="v1")
    drifted = predictions(6000, seed=6, version="v1")
    # Labels now run above the probabilities: the shift the CUSUM is built to catch.
    drifted["probability"] = 1 / (1 + np.exp(-(drifted.raw_score - 0.5)))
    drifted["timestamp"] += pd.Timedelta(days=1)
    drifted["event_id"] = "d-" + drifted.event_id
    pd.concat([calibrated, drifted]).to_parquet(tmp_path / "two-days.parquet")
    calibrated.to_parquet(tmp_path / "one-day.parquet")
    gate = ("--every", "1d", "--fail-if", "calibration_cusum_ratio >= 1")

    passing = calmon("evaluate", tmp_path / "one-day.parquet", *gate)
    assert passing.returncode == 0, passing.stderr
    assert "PASS calibration_cusum_ratio >= 1" in passing.stderr

    failing = calmon("evaluate", tmp_path / "two-days.parquet", *gate, "--format", "json")
    assert failing.returncode == 1, failing.stderr
    fails = [line for line in failing.stderr.splitlines() if line.startswith("FAIL")]
    assert fails and all("calibration_cusum_ratio" in line for line in fails)
    results = json.loads(failing.stdout)["results"]
    by_day = {
        r["window_start"][:10]: r["values"]["calibration_cusum_ratio"]
        for r in results
        if r["model_version"] == "v1" and r["segment"] == "__all__"
    }
    first, second = sorted(by_day)
    assert by_day[first] < 1 <= by_day[second]
    assert len(fails) == sum(
        1 for r in results if r["values"].get("calibration_cusum_ratio", 0) >= 1
    )

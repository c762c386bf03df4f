"""`calmon evaluate` on files of a multi-class model, as users run it: a real
subprocess on a Parquet and a CSV file, its outputs, its rejects and its exit code."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import brier_score_loss, log_loss

from tests.integration.offline.test_evaluate_command import calmon

CLASSES = ("billing", "sales", "tech")
T0 = pd.Timestamp("2026-10-01", tz="UTC")


def triage(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 1.5, (n, 3))
    logits[:, 2] += shift
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = np.minimum((p.cumsum(axis=1) < rng.uniform(size=(n, 1))).sum(axis=1), 2)
    return pd.DataFrame(
        {
            "event_id": [f"e{seed}-{i}" for i in range(n)],
            "model_id": "triage",
            "model_version": "v1",
            "timestamp": T0 + pd.to_timedelta(rng.integers(0, 2 * 86_400_000, n), unit="ms"),
            **{f"probability.{name}": p[:, k] for k, name in enumerate(CLASSES)},
            "label": np.array(CLASSES)[y],
            "region": rng.choice(["eu", "us"], n),
        }
    )


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_a_multiclass_file_json_with_classes(tmp_path: Path, suffix: str) -> None:
    current, reference = triage(3000, 1, shift=0.8), triage(3000, 2)
    path = tmp_path / f"current{suffix}"
    if suffix == ".csv":
        current.to_csv(path, index=False)
    else:
        current.to_parquet(path)
    reference.to_parquet(tmp_path / "reference.parquet")
    run = calmon(
        "evaluate", path, "--segment-keys", "region", "--format", "json",
        "--reference", tmp_path / "reference.parquet",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    results = json.loads(run.stdout)["results"]
    (whole,) = [r for r in results if (r["model_version"], r["segment"]) == ("__all__", "__all__")]
    p = current[[f"probability.{c}" for c in CLASSES]].to_numpy()
    y = current.label.map({c: k for k, c in enumerate(CLASSES)}).to_numpy()
    # CSV holds the probabilities to their 17 digits: the same numbers as Parquet.
    assert whole["values"]["log_loss"] == pytest.approx(log_loss(y, p), abs=1e-12)
    assert whole["values"]["multiclass_brier_score"] == pytest.approx(
        brier_score_loss(y, p, labels=range(3)), abs=1e-12
    )
    assert whole["values"]["psi_confidence"] > 0.0
    assert set(whole["classes"]) == set(CLASSES)
    tech = whole["classes"]["tech"]["values"]
    assert tech["class_brier_score"] == pytest.approx(brier_score_loss(y == 2, p[:, 2]))
    assert tech["class_psi"] > whole["classes"]["billing"]["values"]["class_psi"]
    assert {(r["model_version"], r["segment"]) for r in results} == {
        (v, s) for v in ("v1", "__all__") for s in ("__all__", "region=eu", "region=us")
    }


def test_table_csv_and_rejects(tmp_path: Path) -> None:
    frame = triage(500, 3)
    frame.loc[0, [f"probability.{c}" for c in CLASSES]] = [0.5, None, 0.3]
    frame.loc[1, "label"] = "refunds"
    frame.to_csv(tmp_path / "triage.csv", index=False)
    table = calmon(
        "evaluate", tmp_path / "triage.csv", "--rejects", tmp_path / "rejects.csv",
        "--max-rejects", "2",
    )  # fmt: skip
    assert table.returncode == 0, table.stderr
    assert "top_label_ece" in table.stdout and "Per class (one-vs-rest):" in table.stdout
    assert "rejected by reason: probabilities_sum 1, unknown_class 1" in table.stderr
    assert "row 2: unknown_class: label 'refunds'" in table.stderr
    with (tmp_path / "rejects.csv").open() as rejects:
        assert [row[:3] for row in csv.reader(rejects)] == [
            ["row", "part", "reason"],
            ["1", "prediction", "probabilities_sum"],
            ["2", "label", "unknown_class"],
        ]
    out = calmon("evaluate", tmp_path / "triage.csv", "--format", "csv", "--max-rejects", "2")
    assert out.returncode == 0, out.stderr
    rows = list(csv.DictReader(out.stdout.splitlines()))
    assert [r["class"] for r in rows[:4]] == ["", *CLASSES]
    assert rows[0]["top_label_ece"] and not rows[0]["class_ece"]
    assert rows[3]["class_ece"] and not rows[3]["top_label_ece"]
    report = calmon(
        "evaluate", tmp_path / "triage.csv", "--max-rejects", "2",
        "--report", tmp_path / "triage.html",
    )  # fmt: skip
    assert report.returncode == 0, report.stderr
    html = (tmp_path / "triage.html").read_text()
    assert "classwise ECE" in html and "billing" in html
    gate = calmon(
        "evaluate", tmp_path / "triage.csv", "--max-rejects", "2",
        "--fail-if", "class_brier_score > 0.9", "--fail-if", "top_label_ece > 0.5",
        "--fail-if", "class_ece >= 0",
    )  # fmt: skip
    assert gate.returncode == 1, gate.stderr
    assert "PASS class_brier_score > 0.9: 2 series; the highest triage" in gate.stderr
    assert "PASS top_label_ece > 0.5: 2 series" in gate.stderr
    assert "FAIL class_ece >= 0: triage v1 class=billing: class_ece = " in gate.stderr
    strict = calmon("evaluate", tmp_path / "triage.csv")
    assert strict.returncode == 2
    assert "Traceback" not in strict.stderr


def test_a_label_column_of_another_type_is_named(tmp_path: Path) -> None:
    frame = triage(50, 4).assign(label=True)
    frame.to_parquet(tmp_path / "bool.parquet")
    run = calmon("evaluate", tmp_path / "bool.parquet")
    assert run.returncode == 2
    assert "column label has type bool" in run.stderr and "Traceback" not in run.stderr

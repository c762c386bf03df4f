"""`monitor.evaluate` on DataFrames and arrays, against scikit-learn, scipy and
hand-computed references; and the example of docs/python-api.md, run as written."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss, log_loss

from monitor import evaluate
from monitor.core.errors import UserError

DOC = Path(__file__).parents[3] / "docs" / "python-api.md"


def data(n: int = 3000, seed: int = 0, shift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = 1 / (1 + np.exp(-rng.normal(shift, 1.0, n)))
    return p, (rng.uniform(size=n) < p).astype(int)


def test_arrays_give_the_metrics_of_scikit_learn() -> None:
    p, y = data()
    result = evaluate(probability=p, label=y)
    row = result.summary().set_index(["model_version", "segment"]).loc[("v1", "__all__")]
    assert row.brier_score == pytest.approx(brier_score_loss(y, p), rel=1e-12)
    assert row.log_loss == pytest.approx(log_loss(y, p), rel=1e-12)
    observed, predicted = calibration_curve(y, p, n_bins=10)
    bins = result.reliability(model_version="v1")
    assert list(bins.observed_ratio) == pytest.approx(observed, rel=1e-12)
    assert list(bins.mean_predicted) == pytest.approx(predicted, rel=1e-12)
    # ECE as netcal and Guo et al. define it: bin weight x |accuracy - confidence|.
    edges = np.linspace(0, 1, 11)
    index = np.clip(np.digitize(p, edges[1:-1]), 0, 9)
    ece = sum(
        (index == b).mean() * abs(y[index == b].mean() - p[index == b].mean())
        for b in range(10)
        if (index == b).any()
    )
    assert row.ece == pytest.approx(ece, rel=1e-12)
    assert row.labelled == row.predictions == len(p)


def test_a_dataframe_with_renames_segments_periods_and_a_reference() -> None:
    p, y = data(4000, seed=1, shift=0.4)
    rng = np.random.default_rng(2)
    frame = pd.DataFrame(
        {
            "pred": p,
            "label": y,
            "raw_score": np.log(p / (1 - p)),
            "region": rng.choice(["eu", "us"], len(p)),
            "timestamp": pd.Timestamp("2026-10-01", tz="UTC")
            + pd.to_timedelta(rng.integers(0, 2 * 86_400_000, len(p)), unit="ms"),
        }
    )
    ref_p, ref_y = data(4000, seed=3)
    reference = pd.DataFrame(
        {"pred": ref_p, "label": ref_y, "raw_score": np.log(ref_p / (1 - ref_p))}
    )
    result = evaluate(
        frame,
        columns={"probability": "pred"},
        segment_keys=["region"],
        reference=reference,
        min_labelled=50,
    )
    summary = result.summary()
    assert set(summary.segment) == {"__all__", "region=eu", "region=us"}
    eu = summary[(summary.segment == "region=eu") & (summary.model_version == "v1")].iloc[0]
    in_eu = (frame.region == "eu").to_numpy()
    assert eu.brier_score == pytest.approx(brier_score_loss(y[in_eu], p[in_eu]), rel=1e-12)
    drift = result.drift(model_version="v1").set_index("distribution")
    ks = stats.ks_2samp(frame.raw_score, reference.raw_score).statistic
    assert drift.loc["raw_score", "ks_statistic"] == pytest.approx(ks, abs=2e-3)
    daily = evaluate(frame, columns={"probability": "pred"}, every="1d").summary()
    assert sorted(daily.window_start.astype(str).unique()) == [
        "2026-10-01 00:00:00+00:00",
        "2026-10-02 00:00:00+00:00",
    ]


def test_bad_rows_are_counted_and_bad_columns_named() -> None:
    p, y = data(200)
    y[[3, 7]] = 2
    result = evaluate(probability=p, label=y)
    assert result.rejected == {"bad_label": 2}
    assert [(r.row, r.part) for r in result.rejects] == [(4, "label"), (8, "label")]
    assert result.summary().labelled.iloc[0] == 198
    with pytest.raises(UserError, match="no probability or raw_score column"):
        evaluate(pd.DataFrame({"label": y}))
    with pytest.raises(UserError, match="column probability has type"):
        evaluate(pd.DataFrame({"probability": ["high"] * 3}))


def test_report_and_the_notebook_view(tmp_path: Path) -> None:
    p, y = data(500)
    result = evaluate(probability=p, label=y)
    html = result.report(tmp_path / "r.html").read_text()
    assert 'id="reliability-diagram"' in html
    shown = result._repr_html_()
    assert "<table" in shown and "brier_score" in shown


def test_the_documented_example_runs(tmp_path: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert blocks
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        namespace: dict[str, object] = {}
        exec("\n".join(blocks), namespace)
    finally:
        os.chdir(cwd)
    summary = namespace["summary"]
    assert isinstance(summary, pd.DataFrame) and len(summary) == 3 * 3  # versions x segments
    assert (tmp_path / "fraud.html").exists()

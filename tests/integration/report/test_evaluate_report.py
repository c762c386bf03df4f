"""`calmon evaluate --report --png`: the gate's verdict at the top of the page, its
conditions drawn as thresholds, the PNG drawn without a browser; the Python API's
report says there were no conditions."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from monitor import evaluate
from monitor.core.series import ALL
from tests.integration.offline.test_evaluate_command import frame
from tests.integration.report.page import parse
from tests.integration.report.test_report import png_size

pytestmark = pytest.mark.integration


def test_the_gate_verdict_heads_the_report_and_its_conditions_are_thresholds(
    tmp_path: Path,
) -> None:
    data = frame(n=6000, seed=4).rename(columns={"pred": "probability"})
    data.to_parquet(tmp_path / "f.parquet")
    html, png = tmp_path / "r.html", tmp_path / "r.png"
    no_browser = tmp_path / "bin"
    no_browser.mkdir()
    run = subprocess.run(
        [
            sys.executable, "-m", "monitor", "evaluate", str(tmp_path / "f.parquet"),
            "--segment-keys", "region", "--every", "1d", "--fail-if", "ece > 0.001",
            "--fail-if", "psi_raw_score > 5", "--report", str(html), "--png", str(png),
        ],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "PATH": str(no_browser)},
    )  # fmt: skip
    assert run.returncode == 1, run.stderr  # ECE is above 0.001 somewhere
    page = parse(html.read_text(encoding="utf-8"))
    verdict = page.find("section", id="verdict")
    assert verdict.attrs["data-status"] == "fail"
    assert "FAIL: 1 of 2 conditions failing" in verdict.text
    rows = {row.find_all("td")[2].text: row for row in verdict.find_all("tr")}
    assert rows["ece > 0.001"].find("span", class_="status").text == "fail"
    assert rows["psi_raw_score > 5"].find("span", class_="status").text == "pass"
    # The failed series the gate printed on stderr are the ones the row names first.
    first_failure = next(line for line in run.stderr.splitlines() if line.startswith("FAIL"))
    assert first_failure.split(": ", 1)[1] in rows["ece > 0.001"].text
    # Two daily periods: the charts over time carry each condition as a line.
    calibration = page.find("svg", id="calibration-over-time")
    assert "0.001" in [t.text for t in calibration.find_all("text", class_="note")]
    legend = " ".join(t.text for t in calibration.find_all("text", class_="legend"))
    assert "--fail-if: ece > 0.001" in legend
    drift = page.find("svg", id="drift-over-time")
    assert "--fail-if: psi_raw_score > 5" in " ".join(t.text for t in drift.find_all("text"))
    # Reference versus current from the PSI bins: the reference's deciles hold a tenth
    # of its events each; the steps are drawn from them (two points per bin).
    raw = page.find("svg", id="distribution-raw-score")
    reference, current = raw.find_all("polyline", class_="step")
    assert len(reference.attrs["points"].split()) == len(current.attrs["points"].split()) == 20
    assert "share per reference quantile bin" in raw.find("text", class_="title").text
    width, height = png_size(png)
    assert width == 1600 and height > 2000


def test_the_python_api_report_has_no_conditions_and_draws_a_png(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    p = rng.uniform(0.05, 0.95, 3000)
    result = evaluate(probability=p, label=(rng.uniform(size=p.size) < p).astype(int))
    page = parse(result.report(tmp_path / "r.html").read_text(encoding="utf-8"))
    verdict = page.find("section", id="verdict")
    assert verdict.attrs["data-status"] == "no rules"
    assert "No conditions" in verdict.text and "nothing to pass or fail" in verdict.text
    assert ALL not in page.find("p", class_="meta").text
    assert png_size(result.report(tmp_path / "r.png"))[0] == 1600


def test_the_report_of_an_over_confident_file_recommends_its_recalibration(
    tmp_path: Path,
) -> None:
    """The recommendation of ``calmon evaluate --report``: the daemon's section, with
    the numbers of ``Evaluation.recalibration`` (checked against scikit-learn in
    tests/unit/offline/test_recalibration.py); without enough labels, the reason."""
    from tests.unit.offline.test_recalibration import over_confident

    data = over_confident()
    data.to_parquet(tmp_path / "f.parquet")
    expected = evaluate(data).recalibration
    assert expected is not None
    html = tmp_path / "r.html"
    run = subprocess.run(
        [sys.executable, "-m", "monitor", "evaluate", str(tmp_path / "f.parquet"),
         "--report", str(html)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    page = parse(html.read_text(encoding="utf-8"))
    section = page.find("div", class_="recalibration")
    assert section.find("h3").text == "Recalibration for the whole file (all versions, all events)"
    temperature = expected["recommended"]["parameters"]["temperature"]
    assert section.find("p").text.startswith(
        f"Recommended: temperature (temperature {temperature:.3g})"
    )
    rows = {
        row.find_all("td")[0].text: [td.text for td in row.find_all("td")]
        for row in section.find_all("tr")[1:]
    }
    by_method = {c["method"]: c["held_out"]["ece"] for c in expected["candidates"]}
    for method, ece in by_method.items():
        name = method + (" (recommended)" if method == "temperature" else "")
        assert rows[name][3] == f"{ece['value']:.4f} [{ece['lower']:.4f}, {ece['upper']:.4f}]"
    assert by_method["temperature"]["value"] < by_method["identity"]["value"] / 5
    # Its map over the reliability diagram.
    legend = " ".join(t.text for t in page.find("svg", id="reliability-diagram").find_all("text"))
    assert "recommended calibrator (temperature)" in legend

    few = data.assign(label=data.label.where(data.index % 500 == 0))
    few.to_parquet(tmp_path / "few.parquet")
    run = subprocess.run(
        [sys.executable, "-m", "monitor", "evaluate", str(tmp_path / "few.parquet"),
         "--report", str(html)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    section = parse(html.read_text(encoding="utf-8")).find("div", class_="recalibration")
    assert section.find("p").text == (
        "No recommendation: each half of the window needs 50 labelled events (half of "
        "evaluation.min_labelled); it has 20 and 20"
    )

"""What the report says, checked against the store the daemon's own code filled
(tests/integration/report/scenarios.py: eu drifts, its alerts fire with a recommended
calibrator, eu is then served through it and calmon verifies it).

Each page comes from `calmon report` run as a process, with no browser on its PATH, and
is read with an HTML parser: the verdict per rule, the rules' thresholds with the values
the store holds, the markers, the sortable segment table, the recalibration outcome."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from monitor.core.series import ALL
from monitor.export.collector import RecalibrationsCollector
from monitor.report.build import ReportRequest, report_from_store
from monitor.report.model import Report, TimeChart
from monitor.store import recalibrations
from monitor.store.alerts import load_alerts
from monitor.store.db import migrate
from monitor.store.db.engine import Engine, make_engine
from monitor.store.results import latest_results, metric_history
from tests.integration.report.page import Node, parse
from tests.integration.report.scenarios import (
    STEP,
    SWITCH_AT,
    Scenario,
    fill,
    write_config,
)
from tests.integration.report.test_report import png_size

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Timeline:
    engine: Engine
    scenario: Scenario
    #: v1, region=eu while it drifts (before the switch) ...
    drifting: Node
    drifting_report: Report
    #: The store's latest values of v1, region=eu then.
    drifting_values: dict[str, float]
    #: ... and all versions of region=eu once the new calibrator is verified.
    recalibrated: Node
    recalibrated_report: Report
    png: Path


def calmon_report(
    scenario: Scenario, url: str, out: Path, version: str, segment: str, *extra: str
) -> Node:
    no_browser = out.parent / "no-browser"
    no_browser.mkdir(exist_ok=True)
    run = subprocess.run(
        [
            sys.executable, "-m", "monitor", "report", "-c", str(scenario.config),
            "--model", "fraud", "--window", "30m", "--version", version, "--segment", segment,
            "--since", "3650d", "--out", str(out), *extra,
        ],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "CALMON_STORE_URL": url, "PATH": str(no_browser),
             "CALMON_WEBHOOK_SECRET": "report-scenario"},
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    return parse(out.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def timeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Timeline]:
    directory = tmp_path_factory.mktemp("timeline")
    url = f"sqlite:///{directory / 'calmon.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    scenario = write_config(directory, url)
    fill(engine, scenario, until_ms=SWITCH_AT)
    drifting_request = ReportRequest("fraud", "30m", "v1", "region=eu")
    drifting = calmon_report(scenario, url, directory / "drifting.html", "v1", "region=eu")
    drifting_report = report_from_store(engine, scenario.settings, drifting_request)
    drifting_values = _latest_values(engine, "v1", "region=eu")
    fill(engine, scenario, since_ms=SWITCH_AT)
    png = directory / "recalibrated.png"
    recalibrated = calmon_report(
        scenario, url, directory / "recalibrated.html", ALL, "region=eu", "--png", str(png)
    )
    recalibrated_report = report_from_store(
        engine, scenario.settings, ReportRequest("fraud", "30m", ALL, "region=eu")
    )
    yield Timeline(
        engine, scenario, drifting, drifting_report, drifting_values, recalibrated,
        recalibrated_report, png,
    )  # fmt: skip
    engine.dispose()


def _latest_values(engine: Engine, version: str, segment: str) -> dict[str, float]:
    (result,) = [
        r
        for r in latest_results(engine)
        if (r.series.model_version, r.series.segment) == (version, segment)
    ]
    return dict(result.values)


def test_the_verdict_fails_each_rule_firing_on_the_drifting_segment(timeline: Timeline) -> None:
    verdict = timeline.drifting.find("section", id="verdict")
    assert verdict.attrs["data-status"] == "fail"
    assert "FAIL: 3 of 3 rules failing" in verdict.text
    rows = {row.find_all("td")[1].text: row for row in verdict.find_all("tr")}
    assert set(rows) == {
        "CalibrationErrorHigh", "CalibrationAboveReference", "CalibrationShiftDetected"
    }  # fmt: skip
    for row in rows.values():
        assert row.find("span", class_="status").text == "fail"
        assert "firing on v1, region=eu since 2026-09-21" in row.text
    # The reference threshold, with the numbers the store holds for the series.
    values = timeline.drifting_values
    mean, sd = values["ece_reference_mean"], values["ece_reference_sd"]
    assert (
        f"threshold {mean + 3 * sd:.4g} = mean {mean:.4g} + 3 sd {sd:.4g}"
        in rows["CalibrationAboveReference"].text
    )
    assert f"ece {values['ece']:.4g}" in rows["CalibrationErrorHigh"].text
    assert "ece > 0.05 (resolves at 0.035)" in rows["CalibrationErrorHigh"].text
    assert (
        f"calibration_cusum_ratio {values['calibration_cusum_ratio']:.4g}"
        in rows["CalibrationShiftDetected"].text
    )


def test_without_rules_the_verdict_says_so(timeline: Timeline) -> None:
    settings = timeline.scenario.settings.model_copy(update={"rules": []})
    report = report_from_store(
        timeline.engine, settings, ReportRequest("fraud", "30m", "v1", "region=us")
    )
    assert report.verdict.status == "no rules" and report.verdict.rows == ()
    assert "No rules are configured" in report.verdict.note


def _chart(report: Report, chart_id: str) -> TimeChart:
    (chart,) = [c for c in report.time_charts if c.chart_id == chart_id]
    return chart


def _history(engine: Engine, metric: str) -> list[tuple[int, float]]:
    """v1, region=eu's history up to the drifting report (the store holds more now)."""
    points = metric_history(
        engine, model_id="fraud", metric=metric, model_version="v1",
        segment="region=eu", window="30m",
    )  # fmt: skip
    return [(p["evaluated_ms"], p["value"]) for p in points if p["evaluated_ms"] <= SWITCH_AT]


def test_thresholds_on_the_charts_are_the_rules_with_the_stores_values(timeline: Timeline) -> None:
    calibration = _chart(timeline.drifting_report, "calibration-over-time")
    fixed, reference = calibration.thresholds
    assert (fixed.value, fixed.resolve) == (0.05, 0.035)  # the rule's, with its hysteresis
    # From the reference: mean + 3 sd of every evaluation that had them, as stored (the
    # store's history is read here directly, not through the report).
    means = dict(_history(timeline.engine, "ece_reference_mean"))
    sds = dict(_history(timeline.engine, "ece_reference_sd"))
    assert means and reference.points == tuple((t, means[t] + 3 * sds[t]) for t in sorted(means))
    (band,) = [b for b in calibration.bands if b.label.startswith("reference mean")]
    k_sd = {t: 3 * sds[t] for t in means}
    assert band.points == tuple((t, means[t] - k_sd[t], means[t] + k_sd[t]) for t in sorted(means))
    # The sequential rule's limit, in the CUSUM's units, and its resolve band.
    cusum = _chart(timeline.drifting_report, "sequential-over-time")
    limit = _history(timeline.engine, "calibration_cusum_limit")
    (alarm,) = cusum.thresholds
    assert alarm.points == tuple(limit) and "CalibrationShiftDetected" in alarm.label
    (hysteresis,) = cusum.bands
    assert hysteresis.points == tuple((t, 0.5 * v, v) for t, v in limit)
    # And on the page: the fixed line labelled with its value, the legend naming each.
    svg = timeline.drifting.find("svg", id="calibration-over-time")
    assert "0.05" in [t.text for t in svg.find_all("text", class_="note")]
    assert len(svg.find_all("polyline", class_="threshold")) == 1  # the reference one
    legend = " ".join(t.text for t in svg.find_all("text", class_="legend"))
    assert "CalibrationErrorHigh: ece > 0.05 (resolves at 0.035)" in legend
    assert "CalibrationAboveReference: ece > reference mean + 3 sd" in legend


def test_alert_markers_are_labelled(timeline: Timeline) -> None:
    markers = {m.kind: m for m in timeline.drifting_report.markers}
    assert set(markers) == {"fired"}
    items = [li.text for li in timeline.drifting.find("ul", id="markers").find_all("li")]
    assert any(
        "fired: CalibrationAboveReference, CalibrationShiftDetected" in item for item in items
    )
    assert any("fired: CalibrationErrorHigh" in item for item in items)
    svg = timeline.drifting.find("svg", id="calibration-over-time")
    lines = svg.find_all("line", class_="annotation")
    assert len(lines) == 2
    assert {t.text for t in svg.find_all("text", class_="marker-label")} == {
        "2 alerts fired", "fired: CalibrationErrorHigh"
    }  # fmt: skip


def test_the_segment_table_sorts_by_ece_worst_first_without_a_script(timeline: Timeline) -> None:
    page = timeline.recalibrated
    table = page.find("div", class_="sortable")
    radios = {r.attrs["id"]: r for r in table.find_all("input")}
    assert "checked" in radios["sort-ece"].attrs
    assert {"sort-segment", "sort-labelled"} <= set(radios)
    headings = {label.attrs["for"]: label.text for label in table.find_all("label")}
    assert headings["sort-ece"] == "ECE"
    rows = table.find("tbody").find_all("tr")
    assert len(rows) == 3

    def rank(row: Node, column: str) -> int:
        found = re.search(rf"--by-{column}:(\d+)", row.attrs["style"])
        assert found
        return int(found.group(1))

    ece = [float(row.find_all("td")[3].text) for row in sorted(rows, key=lambda r: rank(r, "ece"))]
    assert ece == sorted(ece, reverse=True) and len(set(ece)) == 3
    by_name = [row.find_all("td")[0].text for row in sorted(rows, key=lambda r: rank(r, "segment"))]
    assert by_name == ["all events", "region=eu", "region=us"]
    # Each column's radio orders the rows by that column's ranks (CSS, no script).
    css = page.find("style").text
    assert "#sort-ece:checked ~ table tbody tr { order: var(--by-ece); }" in css
    assert page.find_all("script") == []


def test_reserved_names_are_shown_in_words(timeline: Timeline) -> None:
    for page in (timeline.drifting, timeline.recalibrated):
        body = page.find("body")
        visible = "".join(
            part for node in body.walk() if node.tag != "style" for part in node.parts
            if isinstance(part, str)
        )  # fmt: skip
        assert "__all__" not in visible and "__other__" not in visible
    assert timeline.recalibrated.find("p", class_="meta").text.startswith(
        "all versions, region=eu, window 30m"
    )


def test_the_verified_recalibration_and_its_switch(timeline: Timeline) -> None:
    (stored,) = recalibrations.load(timeline.engine, model="fraud")
    assert stored.state == "verified" and stored.outcome is not None
    section = timeline.recalibrated.find("div", class_="recalibration")
    assert section.attrs["data-state"] == "verified"
    assert "Recalibration of v1, region=eu" in section.find("h3").text
    method = stored.recommendation["recommended"]["method"]
    assert f"{method} (recommended)" in section.find("tr", class_="chosen").text
    outcome = section.find("ul").text
    for name, ece in (("Before", stored.before["ece"]), ("After", stored.outcome["after"]["ece"])):
        numbers = f"{ece['value']:.4f} [{ece['lower']:.4f}, {ece['upper']:.4f}]"
        assert f"{name}: ECE {numbers}" in outcome
    # The switch: the first prediction of v1+cal=2, written on the first step after
    # SWITCH_AT (the scenario's clock), is marked on every chart.
    first_prediction = SWITCH_AT + STEP
    (switch,) = [m for m in timeline.recalibrated_report.markers if m.kind == "switch"]
    assert (switch.at_ms, switch.label) == (first_prediction, "calibrator 2 live: verified")
    svg = timeline.recalibrated.find("svg", id="calibration-over-time")
    assert len(svg.find_all("line", class_="switch")) == 1
    legend = " ".join(t.text for t in svg.find_all("text", class_="legend"))
    assert "ECE of v1" in legend and "ECE of v1, calibrator 2" in legend
    # v1's alert resolved once v1 had no events left in the window (the traffic moved to
    # v1+cal=2), saying why; the all-versions report's verdict passes.
    v1_alerts = [
        a
        for a in load_alerts(timeline.engine).values()
        if (a.state.series.model_version, a.state.series.segment) == ("v1", "region=eu")
    ]
    resolved = {a.state.rule: a for a in v1_alerts if a.state.state == "resolved"}
    assert set(resolved) == {a.state.rule for a in v1_alerts}
    for rule in ("CalibrationErrorHigh", "CalibrationAboveReference"):  # still firing then
        reason = resolved[rule].annotations["resolved_reason"]
        assert reason == "no events of the series in the window"
    # The detector had resolved before the switch, on evidence: no reason added.
    assert "resolved_reason" not in resolved["CalibrationShiftDetected"].annotations
    verdict = timeline.recalibrated.find("section", id="verdict").text
    assert verdict.startswith("PASS: all 1 rules pass")


def test_the_grafana_annotation_metric_marks_the_switch(timeline: Timeline) -> None:
    registry = CollectorRegistry()
    registry.register(RecalibrationsCollector(timeline.engine))
    labels = {
        "model": "fraud", "model_version": "v1", "segment": "region=eu", "window": "30m",
        "deployed_model_version": "v1+cal=2", "state": "verified",
    }  # fmt: skip
    value = registry.get_sample_value("calmon_recalibration_switch_timestamp_seconds", labels)
    assert value == (SWITCH_AT + STEP) / 1000


def test_the_png_is_drawn_without_a_browser(timeline: Timeline) -> None:
    width, height = png_size(timeline.png)
    assert width == 1600 and height > 3000
    assert timeline.png.stat().st_size > 150_000

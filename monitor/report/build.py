"""The report, worth showing to a team: ``calmon report`` (from the store) and
``calmon evaluate --report`` (from a file's results) write the same page.

From top to bottom: the verdict (pass or fail per rule, or "no rules"); the latest
window's numbers (ECE, Brier, log loss, ROC AUC with their intervals, drift, the
label-free estimates); the reliability diagram with Wilson intervals and the confidence
histogram; the metrics over time with the rules' thresholds, the reference bands and the
alert and recalibration markers; a per-segment table sortable by ECE; the recommended
calibrator and its outcome; reference versus current distributions (docs/report.md).

Content is gathered once into a :class:`~monitor.report.model.Report` and drawn as HTML
(:mod:`monitor.report.html`) or PNG (:mod:`monitor.report.png`).
"""

from __future__ import annotations

from collections.abc import Sequence

from monitor.core.results import WindowResult
from monitor.report import html
from monitor.report.distributions import reference_caption
from monitor.report.from_results import report_from_results
from monitor.report.from_store import ReportError, ReportRequest, report_from_store
from monitor.report.verdict import GateVerdict
from monitor.rules.model import Condition
from monitor.settings import Settings
from monitor.store.db.engine import Engine

__all__ = [
    "ReportError",
    "ReportRequest",
    "build_report",
    "build_results_report",
    "reference_caption",
    "report_from_results",
    "report_from_store",
]


def build_report(engine: Engine, settings: Settings, request: ReportRequest) -> str:
    """``calmon report``'s HTML page."""
    return html.render(report_from_store(engine, settings, request))


def build_results_report(
    title: str,
    results: list[WindowResult],
    *,
    verdicts: Sequence[GateVerdict] = (),
    conditions: Sequence[Condition] = (),
) -> str:
    """``calmon evaluate --report``'s HTML page (the gate's ``verdicts`` at the top)."""
    return html.render(
        report_from_results(title, results, verdicts=verdicts, conditions=conditions)
    )

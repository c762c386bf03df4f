"""What a report shows, as data: built once (from the store, or from ``calmon evaluate``'s
results), drawn twice (HTML with inline SVG, PNG with matplotlib), so both show the same
numbers, ticks and labels.

Every text here is plain text: the renderers escape it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from monitor.core.results import ReliabilityBin
from monitor.report.classes import ClassRows
from monitor.report.ticks import nice_ticks, tick_format, time_axis

Status = Literal["pass", "fail", "pending", "no evidence"]
MarkerKind = Literal["fired", "resolved", "switch"]

COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2")
#: Thresholds: red, then darker reds, so two rules on one chart can be told apart.
THRESHOLD_COLOURS = ("#d62728", "#8b0000", "#e7969c")
REFERENCE_COLOUR = "#7f7f7f"
MARKER_COLOURS = {"fired": "#d62728", "resolved": "#2ca02c", "switch": "#9467bd"}


@dataclass(frozen=True)
class VerdictRow:
    status: Status
    rule: str
    condition: str
    detail: str


@dataclass(frozen=True)
class Verdict:
    """Pass/fail per rule; no rows and a ``note`` when there are none to judge by."""

    rows: tuple[VerdictRow, ...]
    note: str = ""
    #: What the rows are: the daemon's ``rules``, or the gate's ``conditions``.
    noun: str = "rules"

    @property
    def headline(self) -> str:
        count = {s: sum(r.status == s for r in self.rows) for s in ("fail", "pending")}
        total, noun = len(self.rows), self.noun
        return {
            "fail": f"FAIL: {count['fail']} of {total} {noun} failing",
            "pending": f"PENDING: {count['pending']} of {total} {noun} about to fire",
            "pass": f"PASS: all {total} {noun} pass",
            "no evidence": f"NO EVIDENCE: none of the {noun} could be measured",
            "no rules": f"No {noun}",
        }[self.status]

    @property
    def status(self) -> Status | Literal["no rules"]:
        if not self.rows:
            return "no rules"
        for worst in ("fail", "pending", "pass"):
            if any(row.status == worst for row in self.rows):
                return worst
        return "no evidence"


@dataclass(frozen=True)
class Stat:
    """One headline number: ``ECE 0.031 [0.024, 0.038]``."""

    label: str
    value: str
    interval: str = ""
    note: str = ""


@dataclass(frozen=True)
class Line:
    label: str
    points: tuple[tuple[int, float], ...]
    colour: str
    dashed: bool = False


@dataclass(frozen=True)
class Band:
    """A shaded range over time: an interval, or a reference mean +- k sd."""

    label: str
    points: tuple[tuple[int, float, float], ...]
    colour: str


@dataclass(frozen=True)
class Threshold:
    """A rule's threshold: a constant ``value`` (with a hysteresis band to ``resolve``),
    or per evaluation (``points``: thresholds from the reference move with it)."""

    label: str
    value: float | None = None
    resolve: float | None = None
    points: tuple[tuple[int, float], ...] = ()

    def values(self) -> list[float]:
        constant = [v for v in (self.value, self.resolve) if v is not None]
        return constant + [v for _, v in self.points]


#: Characters a marker's label may have written along its line (the plot's height).
MARKER_LABEL_CHARS = 38


@dataclass(frozen=True)
class Marker:
    """A moment on the time charts: alerts that fired or resolved, a calibrator switch."""

    at_ms: int
    kind: MarkerKind
    #: What happened then: alert names (with their series when not the chart's own), or
    #: the switch in words.
    names: tuple[str, ...]

    @property
    def label(self) -> str:
        if self.kind == "switch":
            return "; ".join(self.names)
        return f"{self.kind}: {', '.join(self.names)}"

    @property
    def short(self) -> str:
        """The label along the line: the whole label when it fits."""
        if len(self.label) <= MARKER_LABEL_CHARS or len(self.names) == 1:
            return self.label[:MARKER_LABEL_CHARS]
        return f"{len(self.names)} alerts {self.kind}"

    @property
    def time(self) -> str:
        return datetime.fromtimestamp(self.at_ms / 1000, tz=UTC).strftime("%b %d %H:%M:%S")


@dataclass(frozen=True)
class TimeChart:
    chart_id: str
    title: str
    y_label: str
    lines: tuple[Line, ...] = ()
    bands: tuple[Band, ...] = ()
    thresholds: tuple[Threshold, ...] = ()
    markers: tuple[Marker, ...] = ()
    #: Start the value axis at 0 (errors, PSI), or fit it to the data (ROC AUC).
    from_zero: bool = True
    x_label: str = "evaluation time (UTC)"
    caption: str = ""

    @property
    def empty(self) -> bool:
        return not any(line.points for line in self.lines)

    def time_range(self) -> tuple[int, int]:
        times = [t for line in self.lines for t, _ in line.points]
        return min(times), max(times)

    def visible_markers(self) -> list[Marker]:
        start, end = self.time_range()
        return [m for m in self.markers if start <= m.at_ms <= end]

    def x_ticks(self) -> list[tuple[int, str]]:
        return time_axis(*self.time_range()).ticks

    def _y_values(self) -> list[float]:
        values = [v for line in self.lines for _, v in line.points]
        values += [v for band in self.bands for _, low, high in band.points for v in (low, high)]
        values += [v for threshold in self.thresholds for v in threshold.values()]
        return values

    def y_limits(self) -> tuple[float, float]:
        """The value axis: from the first to the last round tick, unless that tick is
        far (a quarter step) past the data: a dip just below 0 gets no empty step."""
        values = self._y_values()
        low, high = min(values), max(values)
        ticks = nice_ticks(min(low, 0.0) if self.from_zero else low, high, 5)
        step = ticks[1] - ticks[0]
        keep = low - ticks[0] < step / 4 or (self.from_zero and low >= 0)
        bottom = ticks[0] if keep else low - step / 10
        top = ticks[-1] if ticks[-1] - high < step / 4 else high + step / 10
        return bottom, top

    def y_ticks(self) -> list[float]:
        """Round ticks inside :meth:`y_limits`."""
        values = self._y_values()
        low, high = min(values), max(values)
        bottom, top = self.y_limits()
        ticks = nice_ticks(min(low, 0.0) if self.from_zero else low, high, 5)
        return [t for t in ticks if bottom - 1e-12 <= t <= top + 1e-12]

    def y_format(self) -> str:
        return tick_format(self.y_ticks())


@dataclass(frozen=True)
class Reliability:
    labelled: int
    bins: tuple[ReliabilityBin, ...]
    #: The recommended calibrator's map g(p), drawn over the diagram; empty without one.
    calibrator: tuple[tuple[float, float], ...] = ()
    calibrator_label: str = ""


@dataclass(frozen=True)
class Distribution:
    chart_id: str
    title: str
    x_label: str
    #: Bin edges, and the reference's and the window's share of events per bin.
    edges: tuple[float, ...] = ()
    reference: tuple[float, ...] = ()
    current: tuple[float, ...] = ()
    reference_label: str = ""
    current_label: str = ""

    @property
    def empty(self) -> bool:
        return not self.edges


@dataclass(frozen=True)
class SegmentRow:
    segment: str
    predictions: int
    labelled: int
    #: Metric key -> value (absent: not measured in this window).
    values: dict[str, float]
    #: Rules firing on this segment.
    firing: tuple[str, ...] = ()


#: The segment table's columns: metric key, heading, digits, worst first when sorted.
SEGMENT_COLUMNS = (
    ("ece", "ECE", 3, "high"),
    ("brier_score", "Brier", 3, "high"),
    ("calibration_slope", "slope", 2, "far from 1"),
    ("roc_auc_score", "ROC AUC", 3, "low"),
    ("psi_raw_score", "PSI raw", 3, "high"),
    ("ks_statistic_raw_score", "KS raw", 3, "high"),
)


@dataclass(frozen=True)
class Candidate:
    method: str
    log_loss: str
    brier_score: str
    ece: str
    chosen: bool


@dataclass(frozen=True)
class RecalibrationView:
    """A recommended calibrator and, once deployed and measured, its outcome."""

    title: str
    summary: str
    candidates: tuple[Candidate, ...] = ()
    #: ``verified``, ``failed``, ``awaiting`` or ``""`` (only recommended, not stored).
    state: str = ""
    outcome: tuple[str, ...] = ()


@dataclass(frozen=True)
class Report:
    title: str
    meta: str
    verdict: Verdict
    stats: tuple[Stat, ...]
    reliability: Reliability
    time_charts: tuple[TimeChart, ...] = ()
    #: Every marker of the time charts, listed once under them with its whole label.
    markers: tuple[Marker, ...] = ()
    segments: tuple[SegmentRow, ...] = ()
    segments_caption: str = ""
    recalibrations: tuple[RecalibrationView, ...] = ()
    distributions: tuple[Distribution, ...] = ()
    reference_caption: str = ""
    generated: str = ""
    #: A multi-class series' classes and their values (``classes.py``); empty otherwise.
    classes: ClassRows = ()
    classes_caption: str = ""

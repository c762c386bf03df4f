"""A :class:`Report` as one PNG, drawn with matplotlib's Agg backend: no browser, no
display and no system font needed (matplotlib's wheel bundles DejaVu Sans), so
``--png`` works in the slim container image.

The page is the HTML page's content in the same order, with the same ticks, labels,
thresholds and markers (both come from the report model); the segment table is sorted
by ECE, worst first (the PNG cannot be re-sorted). Text from data is never parsed as
mathtext (``$`` in an id stays a dollar sign).
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from itertools import cycle
from pathlib import Path

import matplotlib
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch

from monitor.report.model import (
    MARKER_COLOURS,
    SEGMENT_COLUMNS,
    THRESHOLD_COLOURS,
    Distribution,
    Marker,
    RecalibrationView,
    Reliability,
    Report,
    SegmentRow,
    Threshold,
    TimeChart,
    Verdict,
)
from monitor.report.names import segment_name
from monitor.report.ticks import nice_ticks, tick_format

WIDTH_IN = 16.0
DPI = 100
MARGIN_IN = 0.35
CHART_IN = 4.6
LINE_IN = 0.24
WRAP = 180
STATUS_COLOURS = {
    "fail": "#d62728",
    "pass": "#2ca02c",
    "pending": "#e08b00",
    "no evidence": "#888888",
    "no rules": "#888888",
}
BOX_COLOURS = {
    "fail": "#fdecea",
    "pass": "#eaf6ec",
    "pending": "#fff6e0",
    "no evidence": "#f4f4f4",
    "no rules": "#f4f4f4",
}


@dataclass
class Page:
    """A figure filled from the top: each block is placed below the previous one."""

    figure: Figure
    height_in: float
    cursor_in: float = MARGIN_IN

    def fraction(self, top_in: float, height_in: float) -> tuple[float, float]:
        return 1 - (top_in + height_in) / self.height_in, height_in / self.height_in

    def text(self, x_in: float, text: str, *, dy_in: float = LINE_IN, **style: object) -> None:
        y = 1 - (self.cursor_in + dy_in * 0.7) / self.height_in
        self.figure.text(x_in / WIDTH_IN, y, text, va="baseline", **style)  # type: ignore[arg-type]
        self.cursor_in += dy_in

    def axes(self, left_in: float, top_in: float, width_in: float, height_in: float) -> Axes:
        bottom, height = self.fraction(top_in, height_in)
        return self.figure.add_axes((left_in / WIDTH_IN, bottom, width_in / WIDTH_IN, height))


Block = tuple[float, Callable[[Page], None]]


def write_png(report: Report, path: Path) -> None:
    """Draw ``report`` into ``path`` (PNG, 1600 pixels wide)."""
    blocks = _blocks(report)
    height = MARGIN_IN * 2 + sum(h for h, _ in blocks)
    with matplotlib.rc_context({"text.parse_math": False, "font.size": 9, "axes.titlesize": 10}):
        figure = Figure(figsize=(WIDTH_IN, height), dpi=DPI, facecolor="white")
        page = Page(figure, height)
        for block_height, draw in blocks:
            top = page.cursor_in
            draw(page)
            page.cursor_in = top + block_height
        FigureCanvasAgg(figure).print_png(str(path))


def _blocks(report: Report) -> list[Block]:
    blocks: list[Block] = [_header(report), _verdict(report.verdict), _stats(report)]
    blocks.append(_heading("Reliability"))
    blocks.append(
        _pair(
            lambda ax: _reliability(ax, report.reliability),
            lambda ax: _histogram(ax, report.reliability),
        )
    )
    if report.time_charts:
        blocks.append(_heading("Over time"))
        if report.markers:
            blocks.append(_markers(report))
        charts = list(report.time_charts)
        for i in range(0, len(charts), 2):
            pair = charts[i : i + 2]
            blocks.append(_pair(*(_time_drawer(c) for c in pair)))
    blocks.append(_heading("Segments (sorted by ECE, worst first)"))
    blocks.append(_segments(report.segments, report.segments_caption))
    if report.recalibrations:
        blocks.append(_heading("Recalibration"))
        blocks += [_recalibration(v) for v in report.recalibrations]
    if report.distributions:
        blocks.append(_heading("Reference versus current distributions"))
        blocks.append(_lines([report.reference_caption], colour="#555555"))
        charts_of = list(report.distributions)
        blocks.append(_pair(*(_distribution_drawer(d) for d in charts_of[:2])))
    blocks.append(_lines([f"Generated {report.generated} by calmon."], colour="#888888"))
    return blocks


def _wrapped(text: str, width: int = WRAP) -> list[str]:
    return textwrap.wrap(text, width) or [""]


def _header(report: Report) -> Block:
    def draw(page: Page) -> None:
        page.text(MARGIN_IN, report.title, dy_in=0.38, fontsize=17, fontweight="bold")
        page.text(MARGIN_IN, report.meta, color="#555555", fontsize=10)

    return 0.7, draw


def _heading(text: str) -> Block:
    def draw(page: Page) -> None:
        page.cursor_in += 0.12
        page.text(MARGIN_IN, text, dy_in=0.3, fontsize=13, fontweight="bold")

    return 0.46, draw


def _lines(lines: list[str], colour: str = "#222222") -> Block:
    wrapped = [part for line in lines for part in _wrapped(line)]

    def draw(page: Page) -> None:
        for line in wrapped:
            page.text(MARGIN_IN, line, color=colour)

    return LINE_IN * len(wrapped) + 0.05, draw


def _markers(report: Report) -> Block:
    lines = [(m, part) for m in report.markers for part in _wrapped(f"{m.time}  {m.label}", 150)]

    def draw(page: Page) -> None:
        for marker, line in lines:
            page.text(MARGIN_IN, line, color=MARKER_COLOURS[marker.kind])

    return LINE_IN * len(lines) + 0.05, draw


def _verdict(verdict: Verdict) -> Block:
    status, headline = verdict.status, verdict.headline
    rows = [(r.status, f"{r.rule}   {r.condition}", _wrapped(r.detail, 150)) for r in verdict.rows]
    notes = _wrapped(verdict.note) if verdict.note else []
    content = 0.42 + sum(LINE_IN * (1 + len(detail)) for *_, detail in rows) + LINE_IN * len(notes)
    box = content + 0.12
    height = 0.05 + box + 0.15

    def draw(page: Page) -> None:
        top = page.cursor_in + 0.05
        bottom, box_height = page.fraction(top, box)
        page.figure.patches.append(
            FancyBboxPatch(
                (MARGIN_IN / WIDTH_IN, bottom),
                1 - 2 * MARGIN_IN / WIDTH_IN,
                box_height,
                boxstyle="round,pad=0,rounding_size=0.005",
                transform=page.figure.transFigure,
                facecolor=BOX_COLOURS[status],
                edgecolor=STATUS_COLOURS[status],
                figure=page.figure,
            )
        )
        page.cursor_in = top + 0.08
        page.text(MARGIN_IN + 0.2, headline, dy_in=0.34, fontsize=13, fontweight="bold")
        for row_status, rule, detail in rows:
            top_line = page.cursor_in
            page.text(
                MARGIN_IN + 0.2,
                row_status.upper(),
                color=STATUS_COLOURS[row_status],
                fontweight="bold",
            )
            page.cursor_in = top_line
            page.text(MARGIN_IN + 1.3, rule, fontweight="bold")
            for line in detail:
                page.text(MARGIN_IN + 1.3, line, color="#333333")
        for line in notes:
            page.text(MARGIN_IN + 0.2, line, color="#555555")

    return height, draw


def _stats(report: Report) -> Block:
    per_row = 7
    rows = [report.stats[i : i + per_row] for i in range(0, len(report.stats), per_row)]
    cell = (WIDTH_IN - 2 * MARGIN_IN) / per_row

    def draw(page: Page) -> None:
        page.cursor_in += 0.1
        for row in rows:
            top = page.cursor_in
            for i, stat in enumerate(row):
                page.cursor_in = top
                x = MARGIN_IN + i * cell
                page.text(x, stat.label, color="#555555", fontsize=9)
                page.text(x, stat.value, dy_in=0.3, fontsize=15, fontweight="bold")
                for more in (stat.interval, stat.note):
                    if more:
                        page.text(x, more, dy_in=0.2, color="#666666", fontsize=8)
            page.cursor_in = top + 1.05

    return 0.1 + 1.05 * len(rows), draw


def _pair(*drawers: Callable[[Axes], None]) -> Block:
    width = (WIDTH_IN - 2 * MARGIN_IN - 0.6) / 2

    def draw(page: Page) -> None:
        for i, drawer in enumerate(drawers):
            left = MARGIN_IN + 0.55 + i * (width + 0.6)
            ax = page.axes(left, page.cursor_in + 0.3, width - 0.55, CHART_IN - 1.75)
            drawer(ax)

    return CHART_IN, draw


def _style(ax: Axes, title: str, x_label: str, y_label: str) -> None:
    ax.set_title(title, fontweight="bold")
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    ax.grid(axis="y", color="#eeeeee")
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _legend(ax: Axes) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        shown = [label if len(label) <= 90 else label[:89] + "…" for label in labels]
        ax.legend(
            handles, shown, loc="upper center", bbox_to_anchor=(0.5, -0.2),
            ncol=3 if max(map(len, shown)) < 40 else 2, fontsize=8, frameon=False,
        )  # fmt: skip


def _ticks(ax: Axes, axis: str, ticks: list[float]) -> None:
    form = tick_format(ticks)
    labels = [form.format(t) for t in ticks]
    if axis == "x":
        ax.set_xticks(ticks, labels)
        ax.set_xlim(ticks[0], ticks[-1])
    else:
        ax.set_yticks(ticks, labels)
        ax.set_ylim(ticks[0], ticks[-1])


def _reliability(ax: Axes, reliability: Reliability) -> None:
    _style(ax, f"Reliability diagram ({reliability.labelled:,} labelled)", "mean predicted probability", "observed frequency")  # fmt: skip
    ticks = nice_ticks(0.0, 1.0)
    _ticks(ax, "x", ticks)
    _ticks(ax, "y", ticks)
    ax.plot([0, 1], [0, 1], ls="--", color="#999999", lw=1, label="perfect calibration")
    bins = reliability.bins
    if bins:
        x = [b.mean_predicted for b in bins]
        y = [b.observed_ratio for b in bins]
        errors = [
            [b.observed_ratio - b.ci_low for b in bins],
            [b.ci_high - b.observed_ratio for b in bins],
        ]
        ax.errorbar(x, y, yerr=errors, marker="o", ms=4, color="#1f77b4", lw=2, capsize=0, label="observed, Wilson 95%")  # fmt: skip
    else:
        ax.text(0.5, 0.5, "not enough labels", ha="center", color="#999999", style="italic")
    if reliability.calibrator:
        px, gx = zip(*reliability.calibrator, strict=True)
        ax.plot(px, gx, ls=(0, (8, 3)), color="#9467bd", lw=2, label=reliability.calibrator_label)
    _legend(ax)


def _histogram(ax: Axes, reliability: Reliability) -> None:
    _style(
        ax,
        "Confidence histogram (labelled events per bin)",
        "predicted probability",
        "labelled events",
    )
    _ticks(ax, "x", nice_ticks(0.0, 1.0))
    _ticks(ax, "y", nice_ticks(0, max((b.count for b in reliability.bins), default=1), 4))
    for b in reliability.bins:
        ax.bar(
            b.lower,
            b.count,
            width=b.upper - b.lower,
            align="edge",
            color="#9ecae1",
            edgecolor="white",
        )


def _time_drawer(chart: TimeChart) -> Callable[[Axes], None]:
    return lambda ax: _time_chart(ax, chart)


def _time_chart(ax: Axes, chart: TimeChart) -> None:
    _style(ax, chart.title, chart.x_label, chart.y_label)
    if chart.empty:
        ax.text(0.5, 0.5, "no history in this range", ha="center", transform=ax.transAxes, color="#999999")  # fmt: skip
        return
    t0, t1 = chart.time_range()
    x_ticks = chart.x_ticks()
    ax.set_xticks([t for t, _ in x_ticks], [label for _, label in x_ticks])
    ax.set_xlim(t0, t1 if t1 > t0 else t0 + 1)
    y_ticks = chart.y_ticks()
    ax.set_yticks(y_ticks, [chart.y_format().format(t) for t in y_ticks])
    ax.set_ylim(*chart.y_limits())
    for band in chart.bands:
        lows, highs = [p[1] for p in band.points], [p[2] for p in band.points]
        alpha = 0.15 if band.colour == "#1f77b4" else 0.2
        ax.fill_between([p[0] for p in band.points], lows, highs, color=band.colour, alpha=alpha, lw=0, label=band.label)  # fmt: skip
    for threshold, colour in zip(chart.thresholds, cycle(THRESHOLD_COLOURS)):
        _threshold(ax, threshold, colour)
    for line in chart.lines:
        style = {"ls": "--" if line.dashed else "-", "marker": "o" if len(line.points) == 1 else None}  # fmt: skip
        ax.plot(*zip(*line.points, strict=True), color=line.colour, lw=2, label=line.label, **style)  # type: ignore[arg-type]
    previous = None
    span = max(t1 - t0, 1)
    for marker in chart.visible_markers():
        # Within 2.5% of the width (~15 px) of the one before: its label on the other side.
        _marker(ax, marker, right=previous is not None and marker.at_ms - previous < span / 40)
        previous = marker.at_ms
    _legend(ax)


def _threshold(ax: Axes, threshold: Threshold, colour: str) -> None:
    """A fixed threshold: a line with its value, over its hysteresis band; one from
    the reference: its line through the evaluations."""
    dashes = (0, (7, 4))
    if threshold.value is None:
        ax.plot(*zip(*threshold.points, strict=True), color=colour, ls=dashes, lw=1.5, label=threshold.label)  # fmt: skip
        return
    if threshold.resolve is not None:
        low, high = sorted((threshold.resolve, threshold.value))
        ax.axhspan(low, high, color=colour, alpha=0.08, lw=0)
    ax.axhline(threshold.value, color=colour, ls=dashes, lw=1.5, label=threshold.label)
    ax.text(1.0, threshold.value, f"{threshold.value:g} ", transform=ax.get_yaxis_transform(), ha="right", va="bottom", color=colour, fontsize=8)  # fmt: skip


def _marker(ax: Axes, marker: Marker, *, right: bool) -> None:
    colour = MARKER_COLOURS[marker.kind]
    ax.axvline(marker.at_ms, color=colour, ls=(0, (3, 3)), lw=1.5)
    ax.text(marker.at_ms, 0.98, f" {marker.short} ", transform=ax.get_xaxis_transform(), rotation=90, ha="left" if right else "right", va="top", color=colour, fontsize=8, bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.5, "alpha": 0.8})  # fmt: skip


def _distribution_drawer(chart: Distribution) -> Callable[[Axes], None]:
    return lambda ax: _distribution(ax, chart)


def _distribution(ax: Axes, chart: Distribution) -> None:
    _style(ax, chart.title, chart.x_label, "share of events")
    if chart.empty:
        ax.text(
            0.5,
            0.5,
            "no reference or no data",
            ha="center",
            transform=ax.transAxes,
            color="#999999",
        )
        return
    edges = list(chart.edges)
    x_ticks = [t for t in nice_ticks(edges[0], edges[-1], 5) if edges[0] <= t <= edges[-1]]
    ax.set_xticks(x_ticks, [tick_format(x_ticks).format(t) for t in x_ticks])
    ax.set_xlim(edges[0], edges[-1])
    _ticks(ax, "y", nice_ticks(0.0, max(*chart.reference, *chart.current), 4))
    ax.stairs(chart.reference, edges, color="#7f7f7f", lw=1.5, label=chart.reference_label)
    ax.stairs(chart.current, edges, color="#1f77b4", lw=1.5, label=chart.current_label)
    _legend(ax)


def _segments(rows: tuple[SegmentRow, ...], caption: str) -> Block:
    def ece(row: SegmentRow) -> float:
        return -row.values.get("ece", float("-inf"))

    ordered = sorted(rows, key=ece)
    headings = [
        "segment",
        "predictions",
        "labelled",
        *(h for _, h, *_ in SEGMENT_COLUMNS),
        "alerts firing",
    ]
    positions = [MARGIN_IN, 3.4, 4.5, *(5.6 + 1.0 * i for i in range(len(SEGMENT_COLUMNS)))]
    positions.append(positions[-1] + 1.2)

    def cells(row: SegmentRow) -> list[str]:
        values = [
            "–" if row.values.get(key) is None else f"{row.values[key]:.{digits}f}"
            for key, _, digits, _ in SEGMENT_COLUMNS
        ]
        alerts = ", ".join(row.firing)
        alerts = alerts if len(alerts) <= 52 else alerts[:51] + "…"
        return [segment_name(row.segment)[:60], f"{row.predictions:,}", f"{row.labelled:,}", *values, alerts]  # fmt: skip

    def draw(page: Page) -> None:
        page.text(MARGIN_IN, caption, color="#555555")
        for i, line in enumerate([headings, *(cells(r) for r in ordered)]):
            top = page.cursor_in
            for j, (text, x) in enumerate(zip(line, positions, strict=True)):
                page.cursor_in = top
                right = 0 < j < len(line) - 1
                colour = "#d62728" if j == len(line) - 1 and i else "#222222"
                page.text(x + (0.9 if right else 0), text, ha="right" if right else "left", fontweight="bold" if i == 0 else "normal", color=colour)  # fmt: skip

    return LINE_IN * (len(rows) + 2) + 0.1, draw


def _recalibration(view: RecalibrationView) -> Block:
    summary = _wrapped(view.summary)
    outcome = [part for line in view.outcome for part in _wrapped(line)]
    rows = [("candidate", "held-out log loss [95%]", "Brier [95%]", "ECE [95%]", False)]
    rows += [(c.method + (" (recommended)" if c.chosen else ""), c.log_loss, c.brier_score, c.ece, c.chosen) for c in view.candidates]  # fmt: skip
    if len(rows) == 1:
        rows = []
    height = LINE_IN * (2 + len(summary) + len(rows) + len(outcome)) + 0.1

    def draw(page: Page) -> None:
        colour = {"verified": "#2ca02c", "failed": "#d62728", "awaiting": "#e08b00"}.get(
            view.state, "#222222"
        )
        page.text(MARGIN_IN, view.title, fontsize=11, fontweight="bold", color=colour)
        for line in summary:
            page.text(MARGIN_IN, line)
        for i, (*texts, chosen) in enumerate(rows):
            top = page.cursor_in
            for text, x in zip(texts, (MARGIN_IN, 3.2, 6.2, 9.2), strict=True):
                page.cursor_in = top
                page.text(x, str(text), fontweight="bold" if chosen or i == 0 else "normal")
        for line in outcome:
            page.text(MARGIN_IN, line, color="#333333")

    return height, draw

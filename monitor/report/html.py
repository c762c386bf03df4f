"""A :class:`Report` as one self-contained HTML page: inline CSS and SVG, no script and
nothing fetched, so it opens the same from a mail, a CI artifact or a wiki page.

The segment table sorts without a script: one hidden radio button per column, the
column headings are their labels, and each row carries its rank per column as a CSS
variable that ``order`` reads once the radio is checked.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape
from itertools import cycle

from monitor.report import svg
from monitor.report.classes import class_table
from monitor.report.model import (
    MARKER_COLOURS,
    SEGMENT_COLUMNS,
    THRESHOLD_COLOURS,
    Candidate,
    Distribution,
    RecalibrationView,
    Reliability,
    Report,
    SegmentRow,
    TimeChart,
    Verdict,
)
from monitor.report.names import segment_name
from monitor.report.ticks import nice_ticks, tick_format

CSS = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; margin: 24px auto;
       padding: 0 24px; color: #222; max-width: 1680px; }
h1 { font-size: 24px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 30px 0 10px; }
.meta { color: #555; font-size: 14px; margin: 4px 0; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(560px, 1fr)); gap: 14px; }
svg.chart { width: 100%; height: auto; background: #fff; border: 1px solid #ddd; border-radius: 4px;
            font-size: 11px; }
svg .title { font-size: 13px; font-weight: 600; } svg .label { fill: #444; font-size: 12px; }
svg .tick { fill: #444; } svg .legend { fill: #333; } svg .note { font-size: 10px; }
svg .marker-label { font-size: 10px; paint-order: stroke; stroke: #fff; stroke-width: 3px; }
svg .axis { stroke: #444; } svg .grid { stroke: #eee; }
svg .line { fill: none; stroke-width: 2; } svg .step { fill: none; stroke-width: 1.5; }
svg .diagonal { stroke: #999; stroke-dasharray: 4 3; }
svg .threshold { stroke-width: 1.5; stroke-dasharray: 7 4; fill: none; }
svg .hysteresis { opacity: 0.08; } svg .interval { opacity: 0.15; } svg .reference-band { opacity: 0.18; }
svg .fired, svg .resolved, svg .switch { stroke-width: 1.5; stroke-dasharray: 3 3; }
svg .calibrator { fill: none; stroke-width: 2; stroke-dasharray: 8 3; }
.verdict { border-radius: 6px; padding: 12px 16px; margin: 16px 0; border: 1px solid; }
.verdict h2 { margin: 0 0 8px; }
.verdict-fail { background: #fdecea; border-color: #d62728; }
.verdict-pass { background: #eaf6ec; border-color: #2ca02c; }
.verdict-pending { background: #fff6e0; border-color: #ff9f0e; }
.verdict-none { background: #f4f4f4; border-color: #bbb; }
.status { display: inline-block; min-width: 72px; text-align: center; border-radius: 10px;
          padding: 1px 8px; font-weight: 600; font-size: 12px; color: #fff; }
.status-fail { background: #d62728; } .status-pass { background: #2ca02c; }
.status-pending { background: #e08b00; } .status-none { background: #888; }
.stats { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)); gap: 10px; }
.stat { border: 1px solid #ddd; border-radius: 4px; padding: 8px 10px; background: #fafafa; }
.stat .name { color: #555; font-size: 12px; } .stat .value { font-size: 20px; font-weight: 600; }
.stat .more { color: #666; font-size: 11px; }
table { border-collapse: collapse; font-size: 13px; }
th, td { padding: 4px 10px; border-bottom: 1px solid #eee; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.verdict table td { text-align: left; vertical-align: top; }
.verdict table td:nth-child(-n+3) { white-space: nowrap; }
.sortable > input { position: absolute; opacity: 0; pointer-events: none; }
.sortable table, .sortable thead { display: block; }
.sortable tbody { display: flex; flex-direction: column; }
.sortable tr { display: grid; grid-template-columns: minmax(180px, 2.2fr) repeat(__COLUMNS__, minmax(70px, 1fr)) minmax(180px, 2fr); }
.sortable td:last-child, .sortable th:last-child { text-align: left; }
.sortable th label { cursor: pointer; text-decoration: underline dotted; }
.sortable tr.firing td:first-child::before { content: "\\25B2 "; color: #d62728; }
.recalibration { border: 1px solid #ddd; border-radius: 6px; padding: 10px 14px; margin: 10px 0; }
.recalibration h3 { margin: 0 0 6px; font-size: 15px; }
.recalibration .chosen { font-weight: 700; }
.recalibration ul { margin: 6px 0; padding-left: 20px; }
.markers { list-style: none; padding: 0; margin: 0 0 10px; font-size: 13px; columns: 2 420px; }
.markers li { margin: 2px 0; } .markers .swatch { display: inline-block; width: 0; height: 12px;
  border-left: 2px dashed; margin: 0 8px 0 4px; vertical-align: middle; }
.empty { color: #999; font-style: italic; } .footer { color: #888; font-size: 12px; margin-top: 30px; }
"""

STATUS_CLASS = {
    "fail": "fail",
    "pass": "pass",
    "pending": "pending",
    "no evidence": "none",
    "no rules": "none",
}
#: Sorting: the segment name (A to Z), labelled events (most first), then each metric.
SORTS = ("segment", "labelled", *(key for key, *_ in SEGMENT_COLUMNS))


def render(report: Report) -> str:
    sections = [
        f"<h1>{escape(report.title)}</h1><p class='meta'>{escape(report.meta)}</p>",
        verdict_html(report.verdict),
        _stats(report),
        "<h2>Reliability</h2><div class='grid'>"
        + reliability_svg(report.reliability)
        + histogram_svg(report.reliability)
        + "</div>",
    ]
    if report.time_charts:
        sections.append(
            "<h2>Over time</h2>"
            + _markers(report)
            + "<div class='grid'>"
            + "".join(time_chart_svg(c) for c in report.time_charts)
            + "</div>"
        )
    sections.append(
        "<h2>Segments</h2>"
        + f"<p class='meta'>{escape(report.segments_caption)} Click a heading to sort; "
        "worst first.</p>" + segment_table(report.segments)
    )
    sections.append(class_table(report.classes, report.classes_caption))
    if report.recalibrations:
        sections.append(
            "<h2>Recalibration</h2>" + "".join(_recalibration(v) for v in report.recalibrations)
        )
    if report.distributions:
        sections.append(
            "<h2>Reference versus current distributions</h2>"
            + f"<p class='meta'>{escape(report.reference_caption)}</p><div class='grid'>"
            + "".join(distribution_svg(d) for d in report.distributions)
            + "</div>"
        )
    elif report.reference_caption:
        sections.append(f"<p class='meta'>{escape(report.reference_caption)}</p>")
    sections.append(f"<p class='footer'>Generated {escape(report.generated)} by calmon.</p>")
    css = CSS.replace("__COLUMNS__", str(2 + len(SEGMENT_COLUMNS))) + _sort_css()
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(report.title)}</title>"
        f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<style>{css}</style></head><body>" + "".join(sections) + "</body></html>"
    )


def verdict_html(verdict: Verdict) -> str:
    status, headline = verdict.status, verdict.headline
    rows = "".join(
        f"<tr><td><span class='status status-{STATUS_CLASS[r.status]}'>{escape(r.status)}</span></td>"
        f"<td><b>{escape(r.rule)}</b></td><td>{escape(r.condition)}</td><td>{escape(r.detail)}</td></tr>"
        for r in verdict.rows
    )
    table = f"<table>{rows}</table>" if rows else ""
    note = f"<p class='meta'>{escape(verdict.note)}</p>" if verdict.note else ""
    return (
        f"<section id='verdict' class='verdict verdict-{STATUS_CLASS[status]}' data-status='{escape(status)}'>"
        f"<h2>{escape(headline)}</h2>{table}{note}</section>"
    )


def _markers(report: Report) -> str:
    """The markers of the charts, each with its whole label (the charts show it short)."""
    if not report.markers:
        return ""
    items = "".join(
        f"<li><span class='swatch' style='border-color: {MARKER_COLOURS[m.kind]}'></span>"
        f"<b>{escape(m.time)}</b> {escape(m.label)}</li>"
        for m in report.markers
    )
    return f"<ul class='markers' id='markers'>{items}</ul>"


def _stats(report: Report) -> str:
    cards = "".join(
        f"<div class='stat'><div class='name'>{escape(s.label)}</div>"
        f"<div class='value'>{escape(s.value)}</div>"
        + (f"<div class='more'>{escape(s.interval)}</div>" if s.interval else "")
        + (f"<div class='more'>{escape(s.note)}</div>" if s.note else "")
        + "</div>"
        for s in report.stats
    )
    return f"<h2>Latest window</h2><div class='stats' id='stats'>{cards}</div>"


def _formatted(ticks: Sequence[float]) -> list[tuple[float, str]]:
    form = tick_format(list(ticks))
    return [(t, form.format(t)) for t in ticks]


def reliability_svg(reliability: Reliability) -> str:
    frame = svg.Frame(0.0, 1.0, 0.0, 1.0)
    ticks = _formatted(nice_ticks(0.0, 1.0))
    body = svg.axes(frame, ticks, ticks, "mean predicted probability", "observed frequency")
    body.append(svg.polyline(frame, [(0, 0), (1, 1)], "#999", "diagonal"))
    points = []
    for b in reliability.bins:
        x = frame.x(b.mean_predicted)
        body.append(
            f'<line x1="{x:.1f}" y1="{frame.y(b.ci_low):.1f}" x2="{x:.1f}" y2="{frame.y(b.ci_high):.1f}" stroke="#1f77b4" class="ci"/>'
        )
        body.append(
            f'<circle cx="{x:.1f}" cy="{frame.y(b.observed_ratio):.1f}" r="3.5" fill="#1f77b4" class="bin"/>'
        )
        points.append((b.mean_predicted, b.observed_ratio))
    if len(points) > 1:
        body.append(svg.polyline(frame, points, "#1f77b4"))
    items = [
        svg.LegendItem("observed, Wilson 95%", "#1f77b4"),
        svg.LegendItem("perfect calibration", "#999", "dashed"),
    ]
    if reliability.calibrator:
        body.append(svg.polyline(frame, reliability.calibrator, "#9467bd", "calibrator"))
        items.append(svg.LegendItem(reliability.calibrator_label, "#9467bd", "dashed"))
    if not points:
        body.append(
            f'<text x="{svg.WIDTH / 2}" y="150" text-anchor="middle" class="empty">not enough labels</text>'
        )
    return _with_legend(
        "reliability-diagram",
        f"Reliability diagram ({reliability.labelled:,} labelled)",
        body,
        items,
    )


def _with_legend(chart_id: str, title: str, body: list[str], items: list[svg.LegendItem]) -> str:
    rows = len(svg.legend_rows(items))
    top = svg.HEIGHT - svg.MARGIN["bottom"] + 54
    body += svg.legend(items, top)
    return svg.svg(chart_id, title, body, height=svg.HEIGHT + 14 + rows * svg.LEGEND_ROW)


def histogram_svg(reliability: Reliability) -> str:
    counts = [b.count for b in reliability.bins]
    y_ticks = nice_ticks(0, max(counts, default=1), 4)
    frame = svg.Frame(0.0, 1.0, 0.0, y_ticks[-1])
    body = svg.axes(
        frame,
        _formatted(nice_ticks(0.0, 1.0)),
        _formatted(y_ticks),
        "predicted probability",
        "labelled events",
    )
    for b in reliability.bins:
        x0, x1 = frame.x(b.lower) + 1, frame.x(b.upper) - 1
        y = frame.y(b.count)
        body.append(
            f'<rect x="{x0:.1f}" y="{y:.1f}" width="{x1 - x0:.1f}" height="{frame.y(0) - y:.1f}" fill="#9ecae1" class="bar"/>'
        )
    return svg.svg("confidence-histogram", "Confidence histogram (labelled events per bin)", body)


def time_chart_svg(chart: TimeChart) -> str:
    if chart.empty:
        return svg.empty(chart.chart_id, chart.title, "no history in this range")
    t0, t1 = chart.time_range()
    y_ticks = chart.y_ticks()
    frame = svg.Frame(float(t0), float(t1), *chart.y_limits())
    form = chart.y_format()
    body = svg.axes(
        frame,
        chart.x_ticks(),
        [(t, form.format(t)) for t in y_ticks],
        "evaluation time (UTC)",
        chart.y_label,
    )
    items: list[svg.LegendItem] = []
    for band in chart.bands:
        css = "reference-band" if band.colour != "#1f77b4" else "interval"
        body.append(svg.band(frame, band.points, band.colour, css))
        items.append(svg.LegendItem(band.label, band.colour, "band"))
    for threshold, threshold_colour in zip(chart.thresholds, cycle(THRESHOLD_COLOURS)):
        if threshold.value is not None and threshold.resolve is not None:
            edge = [(t, threshold.resolve, threshold.value) for t in (t0, t1)]
            body.append(svg.band(frame, edge, threshold_colour, "hysteresis"))
        if threshold.value is not None:
            body += svg.hline(
                frame, threshold.value, threshold_colour, "threshold", f"{threshold.value:g}"
            )
        else:
            body.append(svg.polyline(frame, threshold.points, threshold_colour, "threshold"))
        items.append(svg.LegendItem(threshold.label, threshold_colour, "threshold"))
    for line in chart.lines:
        body.append(svg.polyline(frame, line.points, line.colour, dashed=line.dashed))
        items.append(svg.LegendItem(line.label, line.colour, "dashed" if line.dashed else "line"))
    previous = None
    for marker in chart.visible_markers():
        colour = MARKER_COLOURS[marker.kind]
        # A marker just after another writes its label on the other side of its line.
        right = previous is not None and frame.x(marker.at_ms) - frame.x(previous) < svg.MARKER_GAP
        previous = marker.at_ms
        css = f"{marker.kind} annotation"
        body += svg.vline(frame, marker.at_ms, colour, css, marker.short, marker.label, right=right)
    return _with_legend(chart.chart_id, chart.title, body, items)


def distribution_svg(chart: Distribution) -> str:
    if chart.empty:
        return svg.empty(chart.chart_id, chart.title, "no reference or no data")
    edges = chart.edges
    y_ticks = nice_ticks(0.0, max(*chart.reference, *chart.current), 4)
    x_ticks = [t for t in nice_ticks(edges[0], edges[-1], 5) if edges[0] <= t <= edges[-1]]
    frame = svg.Frame(edges[0], edges[-1], 0.0, y_ticks[-1])
    body = svg.axes(
        frame, _formatted(x_ticks), _formatted(y_ticks), chart.x_label, "share of events"
    )
    for shares, colour in ((chart.reference, "#7f7f7f"), (chart.current, "#1f77b4")):
        steps = [(edges[i + j], share) for i, share in enumerate(shares) for j in (0, 1)]
        body.append(svg.polyline(frame, steps, colour, "step"))
    items = [
        svg.LegendItem(chart.reference_label, "#7f7f7f"),
        svg.LegendItem(chart.current_label, "#1f77b4"),
    ]
    return _with_legend(chart.chart_id, chart.title, body, items)


def _ranks(rows: Sequence[SegmentRow]) -> dict[str, list[int]]:
    """Each row's position when sorted by each column, worst first."""
    keys: dict[str, Callable[[SegmentRow], tuple[int, float | str]]] = {
        "segment": lambda r: (0, r.segment),
        "labelled": lambda r: (0, -r.labelled),
    }
    for key, _, _, worst in SEGMENT_COLUMNS:
        keys[key] = _worst_first(key, worst)
    ranks = {}
    for name, key_of in keys.items():
        order = sorted(range(len(rows)), key=lambda i: key_of(rows[i]))
        rank = [0] * len(rows)
        for position, index in enumerate(order):
            rank[index] = position
        ranks[name] = rank
    return ranks


def _worst_first(key: str, worst: str) -> Callable[[SegmentRow], tuple[int, float | str]]:
    def sort_key(row: SegmentRow) -> tuple[int, float | str]:
        value = row.values.get(key)
        if value is None:
            return (1, 0.0)  # not measured: last
        if worst == "high":
            return (0, -value)
        if worst == "low":
            return (0, value)
        return (0, -abs(value - 1.0))

    return sort_key


def segment_table(rows: Sequence[SegmentRow]) -> str:
    ranks = _ranks(rows)
    radios = "".join(
        f'<input type="radio" name="segment-sort" id="sort-{name}"{" checked" if name == "ece" else ""}>'
        for name in SORTS
    )
    headings = [("segment", "segment"), ("predictions", ""), ("labelled", "labelled")]
    headings += [(heading, key) for key, heading, *_ in SEGMENT_COLUMNS]
    head = (
        "".join(
            f'<th><label for="sort-{sort}">{escape(text)}</label></th>'
            if sort
            else f"<th>{escape(text)}</th>"
            for text, sort in headings
        )
        + "<th>alerts firing</th>"
    )
    body = []
    for i, row in enumerate(rows):
        order = ";".join(f"--by-{name}:{ranks[name][i]}" for name in SORTS)
        cells = [escape(segment_name(row.segment)), f"{row.predictions:,}", f"{row.labelled:,}"]
        cells += [
            "–" if row.values.get(key) is None else f"{row.values[key]:.{digits}f}"
            for key, _, digits, _ in SEGMENT_COLUMNS
        ]
        cells.append(escape(", ".join(row.firing)))
        css = ' class="firing"' if row.firing else ""
        body.append(
            f'<tr{css} style="{order}">' + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"
        )
    return (
        f'<div class="sortable" id="segments">{radios}<table><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _sort_css() -> str:
    return "".join(
        f"#sort-{name}:checked ~ table tbody tr {{ order: var(--by-{name}); }}"
        f"#sort-{name}:checked ~ table label[for=sort-{name}] {{ font-weight: 700; text-decoration: none; }}"
        f"#sort-{name}:checked ~ table label[for=sort-{name}]::after {{ content: ' \\25BC'; }}"
        for name in SORTS
    )


def _recalibration(view: RecalibrationView) -> str:
    state = (
        f" <span class='status status-{_state_class(view.state)}'>{escape(view.state)}</span>"
        if view.state
        else ""
    )
    rows = "".join(_candidate_row(c) for c in view.candidates)
    table = (
        "<table><tr><th>candidate</th><th>held-out log loss [95%]</th><th>Brier [95%]</th>"
        f"<th>ECE [95%]</th></tr>{rows}</table>"
        if rows
        else ""
    )
    outcome = "".join(f"<li>{escape(line)}</li>" for line in view.outcome)
    return (
        f"<div class='recalibration' data-state='{escape(view.state)}'><h3>{escape(view.title)}{state}</h3>"
        f"<p>{escape(view.summary)}</p>{table}"
        + (f"<ul>{outcome}</ul>" if outcome else "")
        + "</div>"
    )


def _state_class(state: str) -> str:
    return {"verified": "pass", "failed": "fail", "awaiting": "pending"}.get(state, "none")


def _candidate_row(candidate: Candidate) -> str:
    css, note = ("chosen", " (recommended)") if candidate.chosen else ("", "")
    cells = [candidate.method + note, candidate.log_loss, candidate.brier_score, candidate.ece]
    return f"<tr class='{css}'>" + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>"

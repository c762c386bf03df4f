"""``calmon report``: one self-contained HTML file for a model and a time range.

Sections: the reliability diagram of the latest window with per-bin Wilson intervals and
the confidence histogram beneath it; ECE / Brier and PSI / KS over the range with alert
annotations; a per-segment comparison; reference versus current raw-score and
probability distributions. Everything comes from the store (window results, metric
history, alerts, references), so a report never recomputes what the daemon exported.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape

import numpy as np

from monitor.core.results import ReferenceUsed, WindowResult
from monitor.core.series import ALL, SeriesWindow
from monitor.metrics.drift import DISTRIBUTIONS, cell_values
from monitor.report import svg
from monitor.rules.engine import AlertState
from monitor.settings import Settings
from monitor.store.aggregates import load_window
from monitor.store.alerts import load_alerts
from monitor.store.db.engine import Engine
from monitor.store.results import latest_results, metric_history
from monitor.windows.references import ReferenceResolver

CSS = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; margin: 24px;
       color: #222; max-width: 1180px; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 17px; margin-top: 28px; }
.meta { color: #666; font-size: 13px; }
.row { display: flex; flex-wrap: wrap; gap: 12px; }
svg.chart { background: #fff; border: 1px solid #ddd; font-size: 11px; }
svg .title { font-size: 13px; font-weight: 600; } svg .label { fill: #444; }
svg .axis { stroke: #444; } svg .grid { stroke: #eee; }
svg .line { fill: none; stroke-width: 2; } svg .step { fill: none; stroke-width: 1.5; }
svg .diagonal { stroke: #999; stroke-dasharray: 4 3; }
svg .fired { stroke: #d62728; stroke-dasharray: 5 3; } svg .resolved { stroke: #2ca02c; stroke-dasharray: 5 3; }
table { border-collapse: collapse; font-size: 13px; } th, td { padding: 4px 10px; border-bottom: 1px solid #eee; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.empty { color: #999; font-style: italic; }
"""


class ReportError(ValueError):
    pass


@dataclass(frozen=True)
class ReportRequest:
    model: str
    window: str
    model_version: str = ALL
    segment: str = ALL
    since_ms: int = 0
    until_ms: int | None = None


def build_report(engine: Engine, settings: Settings, request: ReportRequest) -> str:
    results = [
        r
        for r in latest_results(engine)
        if r.series.model == request.model and r.series.window == request.window
    ]
    main = next(
        (
            r
            for r in results
            if (r.series.model_version, r.series.segment)
            == (request.model_version, request.segment)
        ),
        None,
    )
    if main is None:
        raise ReportError(
            f"no results for model {request.model!r} version {request.model_version!r} "
            f"segment {request.segment!r} window {request.window!r}: has the daemon evaluated it?"
        )
    sections = [
        '<div class="row">' + reliability_chart(main) + confidence_histogram(main) + "</div>",
        "<h2>Over time</h2>",
        '<div class="row">' + history_charts(engine, request) + "</div>",
        "<h2>Segments</h2>",
        segment_table([r for r in results if r.series.model_version == request.model_version]),
        "<h2>Reference versus current distributions</h2>",
        distribution_charts(engine, settings, main),
    ]
    generated = datetime.now(tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
    title = f"calmon report: {request.model}"
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
        f"<style>{CSS}</style></head><body><h1>{escape(title)}</h1>"
        f"<p class='meta'>version {escape(request.model_version)}, segment "
        f"{escape(request.segment)}, window {escape(request.window)} "
        f"({main.window_start:%Y-%m-%d %H:%M} to {main.window_end:%Y-%m-%d %H:%M} UTC): "
        f"{main.predictions:,} predictions, {main.labelled:,} labelled; ECE "
        f"{_fmt(main.values.get('ece'))}, Brier {_fmt(main.values.get('brier_score'))}. "
        f"Generated {generated}.</p><h2>Reliability</h2>" + "".join(sections) + "</body></html>"
    )


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def reliability_chart(result: WindowResult) -> str:
    frame = svg.Frame(0.0, 1.0, 0.0, 1.0)
    ticks = [i / 5 for i in range(6)]
    body = svg.axes(
        frame,
        [(t, f"{t:.1f}") for t in ticks],
        ticks,
        "mean predicted probability",
        "observed frequency",
        "{:.1f}",
    )
    body.append(svg.polyline(frame, [(0, 0), (1, 1)], "#999", "diagonal"))
    points = []
    for b in result.reliability_bins:
        x = frame.x(b.mean_predicted)
        body.append(
            f'<line x1="{x:.1f}" y1="{frame.y(b.ci_low):.1f}" x2="{x:.1f}" y2="{frame.y(b.ci_high):.1f}" stroke="#1f77b4" class="ci"/>'
        )
        body.append(
            f'<circle cx="{x:.1f}" cy="{frame.y(b.observed_ratio):.1f}" r="3.5" fill="#1f77b4" class="bin"/>'
        )
        points.append((b.mean_predicted, b.observed_ratio))
    body.append(svg.polyline(frame, points, "#1f77b4"))
    if not points:
        body.append(
            '<text x="280" y="150" text-anchor="middle" class="empty">not enough labels</text>'
        )
    return svg.svg(
        "reliability-diagram",
        f"Reliability diagram ({result.labelled:,} labelled, Wilson 95%)",
        body,
    )


def confidence_histogram(result: WindowResult) -> str:
    counts = [b.count for b in result.reliability_bins]
    top = max(counts, default=1)
    frame = svg.Frame(0.0, 1.0, 0.0, float(top))
    ticks = [i / 5 for i in range(6)]
    body = svg.axes(
        frame,
        [(t, f"{t:.1f}") for t in ticks],
        svg.nice_ticks(0, top, 4),
        "predicted probability",
        "labelled events",
        "{:,.0f}",
    )
    for b in result.reliability_bins:
        x0, x1 = frame.x(b.lower) + 1, frame.x(b.upper) - 1
        y = frame.y(b.count)
        body.append(
            f'<rect x="{x0:.1f}" y="{y:.1f}" width="{x1 - x0:.1f}" height="{frame.y(0) - y:.1f}" fill="#9ecae1" class="bar"/>'
        )
    return svg.svg("confidence-histogram", "Confidence histogram (events per bin)", body)


def history_charts(engine: Engine, request: ReportRequest) -> str:
    alerts = [
        a.state
        for a in load_alerts(engine).values()
        if a.state.series
        == SeriesWindow(request.model, request.model_version, request.segment, request.window)
    ]
    charts = []
    for chart_id, title, metrics in (
        ("calibration-over-time", "ECE and Brier score", ("ece", "brier_score")),
        (
            "discrimination-over-time",
            "ROC AUC and average precision",
            ("roc_auc_score", "average_precision_score"),
        ),
        (
            "drift-over-time",
            "PSI and KS of raw scores",
            ("psi_raw_score", "ks_statistic_raw_score"),
        ),
    ):
        series = {
            metric: [
                (p["evaluated_ms"], p["value"])
                for p in metric_history(
                    engine,
                    model_id=request.model,
                    metric=metric,
                    model_version=request.model_version,
                    segment=request.segment,
                    window=request.window,
                    since_ms=request.since_ms,
                )
                if request.until_ms is None or p["evaluated_ms"] <= request.until_ms
            ]
            for metric in metrics
        }
        charts.append(_time_chart(chart_id, title, series, alerts))
    return "".join(charts)


def _time_chart(
    chart_id: str,
    title: str,
    series: dict[str, list[tuple[int, float]]],
    alerts: list[AlertState],
) -> str:
    points = [p for values in series.values() for p in values]
    if not points:
        return svg.svg(
            chart_id,
            title,
            [
                '<text x="280" y="150" text-anchor="middle" class="empty">no history in this range</text>'
            ],
        )
    t0, t1 = min(p[0] for p in points), max(p[0] for p in points)
    top = max(p[1] for p in points) * 1.1 or 1.0
    frame = svg.Frame(float(t0), float(t1), 0.0, top)
    x_ticks = [
        (t, datetime.fromtimestamp(t / 1000, tz=UTC).strftime("%m-%d %H:%M"))
        for t in np.linspace(t0, t1, 4)
    ]
    body = svg.axes(
        frame, x_ticks, svg.nice_ticks(0, top, 4), "evaluation time (UTC)", "value", "{:.3f}"
    )
    for alert in alerts:
        for at, css in ((alert.fired_ms, "fired"), (alert.resolved_ms, "resolved")):
            if at is not None and t0 <= at <= t1:
                x = frame.x(at)
                body.append(
                    f'<line x1="{x:.1f}" y1="{svg.MARGIN["top"]}" x2="{x:.1f}" y2="{frame.y(0):.1f}" class="{css} annotation"><title>{escape(alert.rule)} {css}</title></line>'
                )
    colours = []
    for (metric, values), colour in zip(series.items(), svg.COLOURS, strict=False):
        if values:
            body.append(svg.polyline(frame, values, colour))
        colours.append((metric, colour))
    body += svg.legend(colours)
    return svg.svg(chart_id, title, body)


def segment_table(results: list[WindowResult]) -> str:
    rows = []
    for r in sorted(results, key=lambda r: r.series.segment):
        v = r.values
        rows.append(
            f"<tr><td>{escape(r.series.segment)}</td><td>{r.predictions:,}</td><td>{r.labelled:,}</td>"
            f"<td>{_fmt(v.get('ece'))}</td><td>{_fmt(v.get('brier_score'))}</td>"
            f"<td>{_fmt(v.get('calibration_slope'), 2)}</td><td>{_fmt(v.get('roc_auc_score'))}</td>"
            f"<td>{_fmt(v.get('psi_raw_score'))}</td>"
            f"<td>{_fmt(v.get('ks_statistic_raw_score'))}</td></tr>"
        )
    return (
        '<table id="segments"><tr><th>segment</th><th>predictions</th><th>labelled</th><th>ECE</th>'
        "<th>Brier</th><th>slope</th><th>AUC</th><th>PSI raw</th><th>KS raw</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def distribution_charts(engine: Engine, settings: Settings, result: WindowResult) -> str:
    series = result.series
    start_ms = int(result.window_start.timestamp() * 1000)
    end_ms = int(result.window_end.timestamp() * 1000)
    # Evaluated as the window job did, at the result's time, so the edges fall alike.
    now_ms = int(result.evaluated_at.timestamp() * 1000)
    resolved = ReferenceResolver(engine, settings.reference, now_ms=now_ms).resolve(
        series.model, series.model_version, series.segment, start_ms, end_ms
    )
    current = load_window(
        engine,
        model_id=series.model,
        model_version=None if series.model_version == ALL else series.model_version,
        segment=series.segment,
        start_ms=start_ms,
        end_ms=end_ms,
        now_ms=now_ms,
    ).aggregate
    charts = []
    for kind in DISTRIBUTIONS:
        reference = resolved.references.get(kind)
        histogram = current.scores if kind == "raw_score" else current.probabilities
        chart_id = f"distribution-{kind.replace('_', '-')}"
        title = f"{kind.replace('_', ' ')}: reference vs current"
        if reference is None or histogram.keys.size == 0:
            charts.append(
                svg.svg(
                    chart_id,
                    title,
                    [
                        '<text x="280" y="150" text-anchor="middle" class="empty">no reference or no data</text>'
                    ],
                )
            )
            continue
        ref_values = cell_values(kind, reference.cell_keys)
        cur_values = cell_values(kind, histogram.keys)
        weights_ref, weights_cur = reference.cell_counts, histogram.values[:, 0]
        low, high = _weighted_range(
            np.concatenate([ref_values, cur_values]),
            np.concatenate([weights_ref / weights_ref.sum(), weights_cur / weights_cur.sum()]),
        )
        edges = np.linspace(low, high, 41)
        ref_density = (
            np.histogram(np.clip(ref_values, low, high), edges, weights=weights_ref)[0]
            / weights_ref.sum()
        )
        cur_density = (
            np.histogram(np.clip(cur_values, low, high), edges, weights=weights_cur)[0]
            / weights_cur.sum()
        )
        top = float(max(ref_density.max(), cur_density.max())) * 1.1
        frame = svg.Frame(float(low), float(high), 0.0, top)
        body = svg.axes(
            frame,
            [(t, f"{t:.2f}") for t in np.linspace(low, high, 5)],
            svg.nice_ticks(0, top, 4),
            kind.replace("_", " "),
            "share of events",
            "{:.2f}",
        )
        for density, colour in ((ref_density, "#7f7f7f"), (cur_density, "#1f77b4")):
            steps = [(float(edges[i + j]), float(d)) for i, d in enumerate(density) for j in (0, 1)]
            body.append(svg.polyline(frame, steps, colour, "step"))
        body += svg.legend(
            [
                (f"reference ({reference.count:,})", "#7f7f7f"),
                (f"current ({int(weights_cur.sum()):,})", "#1f77b4"),
            ]
        )
        charts.append(svg.svg(chart_id, title, body))
    # The caption names what the drift values were measured against; a baseline taken
    # since then would show in the charts, which are drawn from the store as it is now.
    used = result.reference if result.reference is not None else resolved.used()
    return reference_caption(used) + '<div class="row">' + "".join(charts) + "</div>"


REFERENCE_SOURCES = {
    "snapshot": "the snapshot stored with calmon baseline",
    "file": "the reference file given to calmon evaluate",
    "period": "the reference period of the file given to calmon evaluate",
    "fixed": "the reference period fixed in the config",
    "trailing": "the window of the same length just before this one",
}


def reference_caption(used: ReferenceUsed) -> str:
    """Which reference the drift values and charts compare against, and its period."""
    # Seconds only when the period has them: the demo's 45 s baseline read "21:17 to 21:17".
    seconds = used.start.second or used.end.second
    shown = "%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M"
    return (
        f"<p class='meta'>Drift is measured against {REFERENCE_SOURCES[used.source]}: "
        f"{used.start:{shown}} to {used.end:{shown}} UTC.</p>"
    )


def _weighted_range(values: np.ndarray, weights: np.ndarray) -> tuple[float, float]:
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order]) / weights.sum()
    low = values[order][np.searchsorted(cumulative, 0.005)]
    high = values[order][min(int(np.searchsorted(cumulative, 0.995)), values.size - 1)]
    return (float(low), float(high)) if high > low else (float(low), float(low) + 1.0)


def build_results_report(title: str, results: list[WindowResult]) -> str:
    """A report from results alone (``calmon evaluate --report``): no store to read.

    The main series is the whole model (all versions, all events) of the first model;
    with one window per period, the latest period's diagram and every period over time.
    """
    if not results:
        raise ReportError("no results to report: the file had no valid events")
    model = results[0].series.model
    mine = [r for r in results if r.series.model == model]
    version = (
        ALL if any(r.series.model_version == ALL for r in mine) else mine[0].series.model_version
    )
    whole = [r for r in mine if r.series.model_version == version and r.series.segment == ALL]
    main = max(whole or mine, key=lambda r: r.window_end)
    history = {
        metric: [
            (int(r.window_end.timestamp() * 1000), r.values[metric])
            for r in whole
            if metric in r.values
        ]
        for metric in ("ece", "brier_score", "psi_raw_score", "ks_statistic_raw_score")
    }
    latest = [
        r for r in mine if r.window_end == main.window_end and r.series.model_version == version
    ]
    over_time = ""
    if len(whole) > 1:
        over_time = (
            "<h2>Over time</h2><div class='row'>"
            + _time_chart(
                "calibration-over-time",
                "ECE and Brier score",
                {k: history[k] for k in ("ece", "brier_score")},
                [],
            )
            + _time_chart(
                "drift-over-time",
                "PSI and KS of raw scores",
                {k: history[k] for k in ("psi_raw_score", "ks_statistic_raw_score")},
                [],
            )
            + "</div>"
        )
    caption = "" if main.reference is None else reference_caption(main.reference)
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
        f"<style>{CSS}</style></head><body><h1>calmon evaluate: {escape(title)}</h1>"
        f"<p class='meta'>model {escape(model)}, version {escape(version)}, "
        f"{main.window_start:%Y-%m-%d %H:%M} to {main.window_end:%Y-%m-%d %H:%M} UTC: "
        f"{main.predictions:,} predictions, {main.labelled:,} labelled; ECE "
        f"{_fmt(main.values.get('ece'))}, Brier {_fmt(main.values.get('brier_score'))}.</p>"
        "<h2>Reliability</h2><div class='row'>"
        + reliability_chart(main)
        + confidence_histogram(main)
        + "</div>"
        + over_time
        + "<h2>Segments</h2>"
        + segment_table(latest)
        + caption
        + "</body></html>"
    )

"""``calmon report``'s content, read from the store: the latest window results, their
history, the alerts, the recalibrations and the references, as the daemon left them.
Nothing is recomputed that the daemon exported; only a recalibration recommendation for
the latest window is fitted when none was handed over (as ``calmon recalibrate`` does).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from monitor.core.alerts import AlertState
from monitor.core.recalibrations import Recalibration
from monitor.core.results import WindowResult
from monitor.core.series import ALL, OTHER, SeriesWindow
from monitor.report import parts
from monitor.report.classes import class_rows, classes_caption
from monitor.report.distributions import distributions
from monitor.report.model import (
    COLOURS,
    Line,
    Marker,
    RecalibrationView,
    Report,
    TimeChart,
    Verdict,
)
from monitor.report.names import segment_name, series_name, version_name
from monitor.report.recalibrations import (
    curve,
    curve_label,
    fitted_view,
    stored_view,
    switch_marker,
)
from monitor.report.verdict import rules_verdict
from monitor.rules.model import Condition, Rule, RulesError, load_rules
from monitor.settings import Settings
from monitor.store import recalibrations
from monitor.store.alerts import load_alerts
from monitor.store.db.engine import Engine
from monitor.store.recalibrations import Switch
from monitor.store.results import latest_results, metric_history
from monitor.windows.recalibration import recalibration as fit_recalibration

#: Versions drawn as their own ECE line in an all-versions report, newest first.
MAX_VERSION_LINES = 4


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


def report_from_store(engine: Engine, settings: Settings, request: ReportRequest) -> Report:
    results = [
        r
        for r in latest_results(engine)
        if r.series.model == request.model and r.series.window == request.window
    ]
    main = _main(results, request)
    alerts = [
        a.state
        for a in load_alerts(engine, window=request.window).values()
        if _covers(request, a.state.series)
    ]
    covered = [r for r in results if _covers(request, r.series)]
    rules, verdict = _verdict(settings, covered, results, alerts)
    stored = _stored_recalibrations(engine, request)
    switches = recalibrations.switches(engine, stored)
    views, fitted = _recalibration_views(engine, settings, main, stored, switches)
    markers = _merged(
        _alert_markers(alerts, main.series)
        + [switch_marker(r, switches[r.alert_id]) for r in stored if r.alert_id in switches]
    )
    charts_of_distributions, caption = distributions(engine, settings, main)
    return Report(
        title=f"calmon report: {request.model}",
        meta=_meta(main, request),
        verdict=verdict,
        stats=parts.headline_stats(main),
        reliability=parts.reliability(main, curve(fitted), curve_label(fitted)),
        time_charts=_time_charts(engine, request, main.series, rules, markers),
        markers=tuple(markers),
        segments=parts.segment_rows(
            [r for r in results if r.series.model_version == request.model_version],
            _firing_by_segment(alerts, request),
        ),
        segments_caption=f"Segments of {version_name(request.model_version)}, window "
        f"{request.window}, latest evaluation.",
        recalibrations=tuple(views),
        distributions=charts_of_distributions,
        reference_caption=caption,
        generated=datetime.now(tz=UTC).strftime("%Y-%m-%d %H:%M UTC"),
        classes=class_rows(main),
        classes_caption=classes_caption(main),
    )


def _time_charts(
    engine: Engine,
    request: ReportRequest,
    main: SeriesWindow,
    rules: list[Rule],
    markers: list[Marker],
) -> tuple[TimeChart, ...]:
    """The charts of the main series' history, with the thresholds of the rules that
    apply to it."""
    conditions = [(rule.name, c) for rule in rules if _applies(rule, main) for c in rule.conditions]  # fmt: skip
    return parts.time_charts(
        _history(engine, request, [c for _, c in conditions]),
        conditions,
        markers,
        extra_lines={"calibration-over-time": _version_lines(engine, request)},
    )


def _firing_by_segment(alerts: list[AlertState], request: ReportRequest) -> dict[str, list[str]]:
    """The rules firing per segment of the table; in an all-versions table an alert on
    one version is shown with the version."""
    firing: dict[str, list[str]] = {}
    for alert in alerts:
        version = alert.series.model_version
        if alert.state == "firing" and request.model_version in (ALL, version):
            shown = alert.rule
            if version != request.model_version:
                shown += f" ({version_name(version)})"
            firing.setdefault(alert.series.segment, []).append(shown)
    return firing


def _main(results: list[WindowResult], request: ReportRequest) -> WindowResult:
    for r in results:
        if (r.series.model_version, r.series.segment) == (request.model_version, request.segment):
            return r
    raise ReportError(
        f"no results for model {request.model!r} version {request.model_version!r} "
        f"segment {request.segment!r} window {request.window!r}: has the daemon evaluated it?"
    )


def _covers(request: ReportRequest, series: SeriesWindow) -> bool:
    """The series the verdict and markers cover: the segment table's (every segment of
    the version) and, in an all-versions report, every version of the segment (also
    one that no longer has events, whose alert may still be firing)."""
    if (series.model, series.window) != (request.model, request.window):
        return False
    return series.model_version == request.model_version or (
        request.model_version == ALL and series.segment == request.segment
    )


def _verdict(
    settings: Settings,
    covered: list[WindowResult],
    results: list[WindowResult],
    alerts: list[AlertState],
) -> tuple[list[Rule], Verdict]:
    try:
        rules = load_rules(settings.rules, webhooks=settings.webhooks)
    except RulesError as problem:
        return [], Verdict((), f"The rules could not be read, so there is no verdict: {problem}")
    latest = {r.series: r for r in results}
    return rules, rules_verdict(rules, covered, latest, alerts)


def _applies(rule: Rule, series: SeriesWindow) -> bool:
    return rule.select.matches(series.model, series.model_version, series.segment, series.window)


def _meta(main: WindowResult, request: ReportRequest) -> str:
    return (
        f"{series_name(request.model_version, request.segment)}, window {request.window}: "
        f"the latest evaluation covers {main.window_start:%Y-%m-%d %H:%M:%S} to "
        f"{main.window_end:%Y-%m-%d %H:%M:%S} UTC."
    )


def _history(
    engine: Engine, request: ReportRequest, conditions: Sequence[Condition]
) -> dict[str, list[tuple[int, float]]]:
    metrics = [*parts.HISTORY_METRICS, *parts.reference_history_metrics(conditions)]
    return {metric: _points(engine, request, metric, request.model_version) for metric in metrics}


def _points(
    engine: Engine, request: ReportRequest, metric: str, version: str
) -> list[tuple[int, float]]:
    return [
        (p["evaluated_ms"], p["value"])
        for p in metric_history(
            engine,
            model_id=request.model,
            metric=metric,
            model_version=version,
            segment=request.segment,
            window=request.window,
            since_ms=request.since_ms,
        )
        if request.until_ms is None or p["evaluated_ms"] <= request.until_ms
    ]


def _version_lines(engine: Engine, request: ReportRequest) -> list[Line]:
    """In an all-versions report with several versions: each version's ECE, so a new
    version (or calibrator) shows as its own line."""
    if request.model_version != ALL:
        return []
    by_version: dict[str, list[tuple[int, float]]] = {}
    for point in metric_history(
        engine,
        model_id=request.model,
        metric="ece",
        segment=request.segment,
        window=request.window,
        since_ms=request.since_ms,
    ):
        if request.until_ms is None or point["evaluated_ms"] <= request.until_ms:
            by_version.setdefault(point["model_version"], []).append(
                (point["evaluated_ms"], point["value"])
            )
    by_version.pop(ALL, None)
    if len(by_version) < 2:
        return []
    newest = sorted(by_version, key=lambda v: by_version[v][-1][0])[-MAX_VERSION_LINES:]
    return [
        Line(f"ECE of {version_name(version)}", tuple(by_version[version]), colour)
        for version, colour in zip(sorted(newest), COLOURS[2:], strict=False)
    ]


def _merged(markers: list[Marker]) -> list[Marker]:
    """One marker per moment and kind: the alerts of one evaluation share a line."""
    by_moment: dict[tuple[int, str], list[str]] = {}
    for marker in markers:
        by_moment.setdefault((marker.at_ms, marker.kind), []).extend(marker.names)
    return [
        Marker(at, kind, tuple(names))  # type: ignore[arg-type]
        for (at, kind), names in sorted(by_moment.items())
    ]


def _alert_markers(alerts: list[AlertState], main: SeriesWindow) -> list[Marker]:
    markers = []
    for alert in alerts:
        where = []
        if alert.series.model_version != main.model_version:
            where.append(version_name(alert.series.model_version))
        if alert.series.segment != main.segment:
            where.append(segment_name(alert.series.segment))
        name = alert.rule + (f" ({', '.join(where)})" if where else "")
        for at, kind in ((alert.fired_ms, "fired"), (alert.resolved_ms, "resolved")):
            if at is not None and (kind == "fired" or alert.state == "resolved"):
                markers.append(Marker(at, kind, (name,)))  # type: ignore[arg-type]
    return markers


def _stored_recalibrations(engine: Engine, request: ReportRequest) -> list[Recalibration]:
    """The recommendations handed over for the report's series (any version of it in
    an all-versions report), newest first."""
    return [
        r
        for r in recalibrations.load(engine, model=request.model)
        if r.series.window == request.window
        and r.series.segment == request.segment
        and request.model_version in (ALL, r.series.model_version)
    ]


def _recalibration_views(
    engine: Engine,
    settings: Settings,
    main: WindowResult,
    stored: list[Recalibration],
    switches: dict[str, Switch],
) -> tuple[list[RecalibrationView], dict[str, Any] | None]:
    """Each stored recommendation with its outcome; without one, a recommendation fitted
    now from the latest window (its map is drawn over the reliability diagram)."""
    views = [stored_view(r, switches.get(r.alert_id)) for r in stored[:3]]
    if stored:
        # Its map is drawn over the latest diagram only while it is the fix in waiting
        # for this very series: once deployed, the diagram shows what it did.
        latest = stored[0]
        waiting = latest.state == "awaiting" and latest.series == main.series
        return views, dict(latest.recommendation) if waiting else None
    if "ece" not in main.values or main.series.segment.endswith(f"={OTHER}"):
        return views, None
    fitted = fit_recalibration(
        engine,
        main.series,
        window_start=main.window_start,
        window_end=main.window_end,
        evaluated_at=main.evaluated_at,
        settings=settings.evaluation,
    )
    series = main.series
    return [fitted_view(fitted, series.model_version, series.segment)], fitted

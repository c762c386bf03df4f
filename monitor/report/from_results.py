"""``calmon evaluate --report`` (and the Python API's ``.report()``): a report from
results alone, no store to read. The main series is the whole model (all versions, all
events) of the first model; with one window per period (``--every``), the latest
period's diagram and every period over time; the verdict is the gate's."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from monitor.core.results import WindowResult
from monitor.core.series import ALL
from monitor.report import parts
from monitor.report.distributions import reference_caption
from monitor.report.from_store import ReportError
from monitor.report.model import Report, TimeChart
from monitor.report.names import series_name
from monitor.report.verdict import GateVerdict, gate_verdict
from monitor.rules.model import Condition


def report_from_results(
    title: str,
    results: list[WindowResult],
    *,
    verdicts: Sequence[GateVerdict] = (),
    conditions: Sequence[Condition] = (),
) -> Report:
    if not results:
        raise ReportError("no results to report: the file had no valid events")
    model = results[0].series.model
    mine = [r for r in results if r.series.model == model]
    version = (
        ALL if any(r.series.model_version == ALL for r in mine) else mine[0].series.model_version
    )
    whole = sorted(
        (r for r in mine if r.series.model_version == version and r.series.segment == ALL),
        key=lambda r: r.window_end,
    )
    main = max(whole or mine, key=lambda r: r.window_end)
    latest = [
        r for r in mine if r.window_end == main.window_end and r.series.model_version == version
    ]
    charts: tuple[TimeChart, ...] = ()
    if len(whole) > 1:
        history = {
            metric: [(_ms(r.window_end), r.values[metric]) for r in whole if metric in r.values]
            for metric in parts.HISTORY_METRICS
        }
        charts = parts.time_charts(
            history, [("--fail-if", c) for c in conditions], [], x_label="period end (UTC)"
        )
    return Report(
        title=f"calmon evaluate: {title}",
        meta=f"model {model}, {series_name(version, ALL)}: "
        f"{main.window_start:%Y-%m-%d %H:%M} to {main.window_end:%Y-%m-%d %H:%M} UTC"
        + (f", {len(whole)} periods of {main.series.window}" if len(whole) > 1 else ""),
        verdict=gate_verdict(verdicts),
        stats=parts.headline_stats(main),
        reliability=parts.reliability(main),
        time_charts=charts,
        segments=parts.segment_rows(latest, {}),
        segments_caption="Segments of the "
        + ("latest period." if len(whole) > 1 else "whole file."),
        reference_caption="" if main.reference is None else reference_caption(main.reference),
        generated=datetime.now(tz=UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)

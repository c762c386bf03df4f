"""``calmon evaluate --report`` (and the Python API's ``.report()``): a report from
results alone, no store to read. The main series is the whole model (all versions, all
events) of the first model; with one window per period (``--every``), the latest
period's diagram and every period over time; the verdict is the gate's; the
recalibration is fitted by the caller from the file's aggregates (``shown`` says for
which series)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from monitor.core.results import WindowResult
from monitor.core.series import ALL
from monitor.metrics.drift import DISTRIBUTIONS
from monitor.report import parts
from monitor.report.classes import class_rows, classes_caption
from monitor.report.distributions import reference_caption
from monitor.report.from_store import ReportError
from monitor.report.model import Distribution, Report, TimeChart
from monitor.report.names import series_name
from monitor.report.recalibrations import curve, curve_label, fitted_view
from monitor.report.verdict import GateVerdict, gate_verdict
from monitor.rules.model import Condition

#: Where an evaluation's report says the artifact is.
OFFLINE_ARTIFACT = " The artifact: Evaluation.recalibration in the Python API (monitor.evaluate)."


@dataclass(frozen=True)
class Shown:
    """What a report of results shows: the first model's whole-model series (all
    versions when there is that series), every period of it, and its latest result."""

    model: str
    version: str
    whole: list[WindowResult]
    main: WindowResult


def shown(results: list[WindowResult]) -> Shown:
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
    return Shown(model, version, whole, max(whole or mine, key=lambda r: r.window_end))


def report_from_results(
    title: str,
    results: list[WindowResult],
    *,
    verdicts: Sequence[GateVerdict] = (),
    conditions: Sequence[Condition] = (),
    recalibration: Mapping[str, Any] | None = None,
) -> Report:
    """The report of ``shown(results)``; ``recalibration``: the recommendation fitted for
    its main series (``offline/recalibration.py``), shown as the daemon's report shows
    one (none: no recalibration part)."""
    view = shown(results)
    model, version, whole, main = view.model, view.version, view.whole, view.main
    latest = [
        r
        for r in results
        if r.series.model == model
        and r.window_end == main.window_end
        and r.series.model_version == version
    ]
    periods = len(whole) > 1
    return Report(
        title=f"calmon evaluate: {title}",
        meta=f"model {model}, {series_name(version, ALL)}: "
        f"{main.window_start:%Y-%m-%d %H:%M} to {main.window_end:%Y-%m-%d %H:%M} UTC"
        + (f", {len(whole)} periods of {main.series.window}" if periods else ""),
        verdict=gate_verdict(verdicts),
        stats=parts.headline_stats(main),
        reliability=parts.reliability(main, curve(recalibration), curve_label(recalibration)),
        time_charts=_time_charts(whole, conditions),
        segments=parts.segment_rows(latest, {}),
        segments_caption="Segments of the " + ("latest period." if periods else "whole file."),
        recalibrations=()
        if recalibration is None
        else (
            fitted_view(
                recalibration,
                version,
                ALL,
                window="the latest period" if periods else "the whole file",
                where=OFFLINE_ARTIFACT,
            ),
        ),
        distributions=drift_bin_charts(main),
        reference_caption="" if main.reference is None else reference_caption(main.reference),
        generated=datetime.now(tz=UTC).strftime("%Y-%m-%d %H:%M UTC"),
        classes=class_rows(main),
        classes_caption=classes_caption(main),
    )


def _time_charts(whole: list[WindowResult], conditions: Sequence[Condition]) -> tuple[TimeChart, ...]:  # fmt: skip
    """With one window per period, every period over time, the conditions as thresholds."""
    if len(whole) < 2:
        return ()
    history = {
        metric: [(_ms(r.window_end), r.values[metric]) for r in whole if metric in r.values]
        for metric in parts.HISTORY_METRICS
    }
    return parts.time_charts(
        history, [("--fail-if", c) for c in conditions], [], x_label="period end (UTC)"
    )


def drift_bin_charts(result: WindowResult) -> tuple[Distribution, ...]:
    """Reference versus current from the result's PSI bins: the reference's quantile bins,
    each holding about the same share of its events, and the window's share in each."""
    charts = []
    for distribution in DISTRIBUTIONS:
        bins = sorted(
            (b for b in result.drift_bins if b.distribution == distribution), key=lambda b: b.index
        )
        if not bins:
            continue
        name = distribution.replace("_", " ")
        charts.append(
            Distribution(
                f"distribution-{distribution.replace('_', '-')}",
                f"{name}: share per reference quantile bin",
                f"reference quantile bins of the {name}, lowest first",
                tuple(float(i) for i in range(len(bins) + 1)),
                tuple(b.reference_fraction for b in bins),
                tuple(b.current_fraction for b in bins),
                "reference",
                "current",
            )
        )
    return tuple(charts)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)

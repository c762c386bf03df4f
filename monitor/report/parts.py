"""The parts of a report that come from window results alone, whichever source they came
from: the headline numbers, the reliability diagram, the segment table, the charts over
time (lines, intervals, rules' thresholds, markers)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from monitor.core.results import WindowResult
from monitor.report.model import (
    COLOURS,
    REFERENCE_COLOUR,
    Band,
    Line,
    Marker,
    Reliability,
    SegmentRow,
    Stat,
    Threshold,
    TimeChart,
)
from monitor.report.names import metric_name
from monitor.rules.model import Condition

#: metric -> points (epoch ms, value), in time order.
History = Mapping[str, Sequence[tuple[int, float]]]


def fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def interval(values: Mapping[str, float], lower: str, upper: str, digits: int = 3) -> str:
    if lower not in values or upper not in values:
        return ""
    return f"95% interval [{values[lower]:.{digits}f}, {values[upper]:.{digits}f}]"


def headline_stats(result: WindowResult) -> tuple[Stat, ...]:
    """The latest window's numbers: volume, calibration, discrimination, drift, and the
    label-free estimates where the window has them."""
    v = result.values
    stats = [
        Stat("predictions", f"{result.predictions:,}", note=f"{result.labelled:,} labelled"),
        Stat("ECE", fmt(v.get("ece")), interval(v, "ece_ci_lower", "ece_ci_upper")),
    ]
    if "ece_debiased" in v:
        stats.append(Stat("debiased ECE", fmt(v["ece_debiased"]), note="ECE minus its noise floor"))
    stats += [
        Stat("Brier score", fmt(v.get("brier_score"))),
        Stat("log loss", fmt(v.get("log_loss"))),
        Stat(
            "ROC AUC",
            fmt(v.get("roc_auc_score")),
            interval(v, "roc_auc_ci_lower", "roc_auc_ci_upper"),
        ),
        Stat("calibration slope", fmt(v.get("calibration_slope"), 2), note="1 is calibrated"),
    ]
    for key in ("psi_raw_score", "psi_probability"):
        if key in v:
            stats.append(Stat(metric_name(key), fmt(v[key])))
    estimates = [
        (key, label)
        for key, label in (
            ("estimated_brier_score", "Brier"),
            ("estimated_roc_auc_score", "ROC AUC"),
            ("estimated_accuracy_score", "accuracy"),
        )
        if key in v
    ]
    for key, label in estimates:
        stats.append(
            Stat(
                f"estimated {label}",
                fmt(v[key]),
                note=f"label-free, from all {result.predictions:,} predictions",
            )
        )
    return tuple(stats)


def reliability(
    result: WindowResult, calibrator: Sequence[tuple[float, float]] = (), label: str = ""
) -> Reliability:
    return Reliability(result.labelled, result.reliability_bins, tuple(calibrator), label)


def segment_rows(results: Iterable[WindowResult], firing: Mapping[str, list[str]]) -> tuple[SegmentRow, ...]:  # fmt: skip
    return tuple(
        SegmentRow(
            segment=r.series.segment,
            predictions=r.predictions,
            labelled=r.labelled,
            values=dict(r.values),
            firing=tuple(firing.get(r.series.segment, ())),
        )
        for r in sorted(results, key=lambda r: r.series.segment)
    )


#: The charts over time: id, title, value-axis label, lines (metric, dashed), from zero.
CHARTS: tuple[tuple[str, str, str, tuple[tuple[str, bool], ...], bool], ...] = (
    (
        "calibration-over-time",
        "Calibration error (ECE) over time",
        "ECE",
        (("ece", False), ("ece_debiased", True)),
        True,
    ),
    (
        "brier-over-time",
        "Brier score: realised and label-free estimate",
        "Brier score",
        (("brier_score", False), ("estimated_brier_score", True)),
        True,
    ),
    (
        "discrimination-over-time",
        "Discrimination (ROC AUC)",
        "ROC AUC",
        (("roc_auc_score", False), ("estimated_roc_auc_score", True)),
        False,
    ),
    (
        "drift-over-time",
        "Score drift against the reference",
        "PSI / KS",
        (
            ("psi_raw_score", False),
            ("ks_statistic_raw_score", False),
            ("psi_probability", True),
            ("ks_statistic_probability", True),
        ),
        True,
    ),
    (
        "sequential-over-time",
        "Sequential detector (CUSUM of calibration residuals)",
        "CUSUM",
        (("calibration_cusum_under", False), ("calibration_cusum_over", False)),
        True,
    ),
)
#: Intervals drawn as bands around a chart's first line.
BANDS = {
    "ece": ("ece_ci_lower", "ece_ci_upper", "ECE 95% interval"),
    "roc_auc_score": ("roc_auc_ci_lower", "roc_auc_ci_upper", "ROC AUC 95% interval"),
}
#: metrics a chart needs to be drawn at all (the CUSUM only where it is configured).
OPTIONAL_CHARTS = {"sequential-over-time", "brier-over-time"}
HISTORY_METRICS = sorted(
    {metric for chart in CHARTS for metric, _ in chart[3]}
    | {key for band in BANDS.values() for key in band[:2]}
    | {"calibration_cusum_limit"}
)


def time_charts(
    history: History,
    rules: Sequence[tuple[str, Condition]],
    markers: Sequence[Marker],
    *,
    extra_lines: Mapping[str, Sequence[Line]] | None = None,
    x_label: str = "evaluation time (UTC)",
) -> tuple[TimeChart, ...]:
    """The charts over time of one series' ``history`` (metric -> points), with the
    thresholds of ``rules`` ((rule name, condition) pairs) on the chart of their metric,
    ``markers`` on every chart and ``extra_lines`` (chart id -> lines) added."""
    charts = []
    for chart_id, title, y_label, metrics, from_zero in CHARTS:
        lines = [
            Line(metric_name(metric), tuple(history.get(metric, ())), colour, dashed)
            for (metric, dashed), colour in zip(metrics, COLOURS, strict=False)
            if history.get(metric)
        ]
        lines += list((extra_lines or {}).get(chart_id, ()))
        if not lines and chart_id in OPTIONAL_CHARTS:
            continue
        charted = {metric for metric, _ in metrics}
        bands = [
            Band(label, _band(history, lower, upper), colour="#1f77b4")
            for metric, (lower, upper, label) in BANDS.items()
            if metric in charted and history.get(lower)
        ]
        thresholds, threshold_bands = _thresholds(chart_id, rules, history, charted)
        bands += threshold_bands
        charts.append(
            TimeChart(
                chart_id,
                title,
                y_label,
                tuple(lines),
                tuple(bands),
                tuple(thresholds),
                tuple(markers),
                from_zero=from_zero,
                x_label=x_label,
            )
        )
    return tuple(charts)


def _thresholds(
    chart_id: str, rules: Sequence[tuple[str, Condition]], history: History, charted: set[str]
) -> tuple[list[Threshold], list[Band]]:
    """The rules' thresholds on one chart, and the bands that go with them; the CUSUM
    chart shows its decision limit even when no rule tests it."""
    thresholds: list[Threshold] = []
    bands: list[Band] = []
    for name, condition in rules:
        drawn = threshold_of(name, condition, history, charted)
        if drawn is not None:
            thresholds.append(drawn[0])
            bands += drawn[1]
    limit = tuple(history.get("calibration_cusum_limit", ()))
    if chart_id == "sequential-over-time" and limit and not thresholds:
        thresholds.append(Threshold("decision limit (evaluation.sequential.arl)", points=limit))
    return thresholds, bands


def _band(history: History, lower: str, upper: str) -> tuple[tuple[int, float, float], ...]:
    uppers = dict(history.get(upper, ()))
    return tuple((t, low, uppers[t]) for t, low in history.get(lower, ()) if t in uppers)


def describe(condition: Condition) -> str:
    """A condition in words: ``ece > 0.05 (resolves at 0.035)``."""
    metric = condition.metric
    reference = condition.from_reference
    if metric == "calibration_cusum_ratio" and isinstance(condition.threshold, float):
        text = f"CUSUM {condition.op} {condition.threshold:g} x its limit"
    elif reference is not None:
        sign = "+" if condition.op in (">", ">=") else "-"
        text = f"{metric} {condition.op} reference mean {sign} {reference.sigmas:g} sd"
    elif condition.relative_to is not None:
        text = (
            f"{metric} / its {condition.relative_to.window} value "
            f"{condition.op} {condition.threshold:g}"
        )
    else:
        text = f"{metric} {condition.op} {condition.threshold:g}"
    if condition.resolve_threshold is not None:
        text += f" (resolves at {condition.resolve_threshold:g})"
    return text


def threshold_of(
    rule: str, condition: Condition, history: History, charted: set[str]
) -> tuple[Threshold, list[Band]] | None:
    """How a rule's condition shows on a chart of the metrics ``charted``, or None."""
    label = f"{rule}: {describe(condition)}"
    if condition.metric == "calibration_cusum_ratio" and "calibration_cusum_over" in charted:
        # The rule tests the larger CUSUM over the limit: drawn in the CUSUM's own units.
        assert isinstance(condition.threshold, float)
        limit = history.get("calibration_cusum_limit", ())
        ratio, resolve = condition.threshold, condition.resolve_threshold
        return Threshold(label, points=tuple((t, v * ratio) for t, v in limit)), (
            [] if resolve is None else [_hysteresis(limit, resolve, ratio)]
        )
    if condition.metric not in charted or condition.relative_to is not None:
        return None
    reference = condition.from_reference
    if reference is None:
        assert isinstance(condition.threshold, float)
        return Threshold(label, value=condition.threshold, resolve=condition.resolve_threshold), []
    means = dict(history.get(f"{condition.metric}_reference_mean", ()))
    sds = dict(history.get(f"{condition.metric}_reference_sd", ()))
    times = sorted(set(means) & set(sds))
    k = reference.sigmas
    points = tuple((t, reference.limit(condition.op, means[t], sds[t])) for t in times)
    band = Band(
        f"reference mean +- {k:g} sd",
        tuple((t, means[t] - k * sds[t], means[t] + k * sds[t]) for t in times),
        colour=REFERENCE_COLOUR,
    )
    return Threshold(label, points=points), [band]


def _hysteresis(limit: Sequence[tuple[int, float]], resolve: float, fire: float) -> Band:
    return Band(
        f"resolves below {resolve:g} x limit",
        tuple((t, v * resolve, v * fire) for t, v in limit),
        colour="#d62728",
    )


def reference_history_metrics(conditions: Iterable[Condition]) -> list[str]:
    """The extra history a from_reference condition's threshold is drawn from."""
    return sorted(
        f"{c.metric}_reference_{stat}"
        for c in conditions
        if c.from_reference is not None
        for stat in ("mean", "sd")
    )

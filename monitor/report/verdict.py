"""The verdict at the top of a report: pass or fail per rule.

From the store (``calmon report``): each configured rule that selects one of the
report's series fails while its alert fires on one of them, is pending while it waits
out ``for``, passes when the latest results measured it and it holds nowhere, and has no
evidence when none of them measured it (too few samples, no reference). From
``calmon evaluate``: one row per ``--fail-if`` condition or baseline check, as the gate
printed it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Protocol

from monitor.core.alerts import AlertState
from monitor.core.results import WindowResult
from monitor.core.series import SeriesWindow
from monitor.report.model import Verdict, VerdictRow
from monitor.report.names import series_name
from monitor.report.parts import describe
from monitor.rules.engine import condition_values
from monitor.rules.model import Condition, Rule

#: At most this many series named in one row's detail.
NAMED = 3


class GateVerdict(Protocol):
    """A line of ``calmon evaluate``'s gate (``monitor.offline.gate.Verdict``)."""

    @property
    def passed(self) -> bool: ...
    @property
    def condition(self) -> str: ...
    @property
    def detail(self) -> str: ...
    @property
    def check(self) -> str: ...


def rules_verdict(
    rules: Sequence[Rule],
    covered: Sequence[WindowResult],
    latest: Mapping[SeriesWindow, WindowResult],
    alerts: Iterable[AlertState],
) -> Verdict:
    alerts = list(alerts)
    measured = {r.series for r in covered}
    rows, unmatched = [], 0
    for rule in rules:
        matched = [
            r
            for r in covered
            if rule.select.matches(
                r.series.model, r.series.model_version, r.series.segment, r.series.window
            )
        ]
        # An alert keeps its state while its series has no evidence; one whose series has
        # no result here (no events any more, until the next evaluation resolves it)
        # still counts, marked as such.
        mine = [a for a in alerts if a.rule == rule.name]
        if matched or any(a.series not in measured and a.state != "resolved" for a in mine):
            rows.append(_rule_row(rule, matched, latest, mine, measured))
        else:
            unmatched += 1
    note = ""
    if not rules:
        note = "No rules are configured: nothing to pass or fail (rules in the config)."
    elif unmatched:
        note = f"{unmatched} more rule(s) select none of this report's series."
    return Verdict(tuple(rows), note)


def _rule_row(
    rule: Rule,
    matched: list[WindowResult],
    latest: Mapping[SeriesWindow, WindowResult],
    alerts: list[AlertState],
    measured_series: set[SeriesWindow],
) -> VerdictRow:
    condition = " and ".join(describe(c) for c in rule.conditions)
    for state, status in (("firing", "fail"), ("pending", "pending")):
        active = [a for a in alerts if a.state == state]
        if active:
            detail = _named(_active(a, rule, measured_series) for a in active)
            return VerdictRow(status, rule.name, condition, detail)  # type: ignore[arg-type]
    measured = [(r, condition_values(rule, r, latest)) for r in matched]
    evidence = [(r, v) for r, v in measured if v is not None]
    if not evidence:
        return VerdictRow(
            "no evidence",
            rule.name,
            condition,
            f"not measured on {len(matched)} series: fewer than min_samples "
            f"({rule.min_samples}) or evaluation.min_labelled events, or no reference",
        )
    closest, tested = max(evidence, key=lambda item: _margin(rule.conditions[0], item[1]))
    values = {**closest.values, **tested}
    return VerdictRow(
        "pass",
        rule.name,
        condition,
        f"holds on none of {len(evidence)} series measured; closest "
        f"{_series(closest.series)}: {_values(rule.conditions, values)}",
    )


def _active(alert: AlertState, rule: Rule, measured: set[SeriesWindow]) -> str:
    since = alert.fired_ms if alert.state == "firing" else alert.active_since_ms
    gone = (
        " (no result in the latest window: it resolves at the next evaluation that finds "
        "no events of the series)"
        if alert.series not in measured
        else ""
    )
    return (
        f"{alert.state} on {_series(alert.series)} since {_clock(since)}: "
        f"{_values(rule.conditions, alert.values)}{gone}"
    )


def _series(series: SeriesWindow) -> str:
    return series_name(series.model_version, series.segment)


def _clock(ms: int | None) -> str:
    if ms is None:
        return "?"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def _named(parts: Iterable[str]) -> str:
    parts = list(parts)
    more = f"; and {len(parts) - NAMED} more" if len(parts) > NAMED else ""
    return "; ".join(parts[:NAMED]) + more


def _tested(condition: Condition) -> str:
    return f"{condition.metric}_ratio" if condition.relative_to else condition.metric


def _margin(condition: Condition, values: Mapping[str, float]) -> float:
    """How far past its threshold the tested value is (negative: short of it)."""
    value = values.get(_tested(condition), 0.0)
    threshold = values.get(f"{condition.metric}_threshold", condition.threshold)
    assert isinstance(threshold, float)
    return value - threshold if condition.op in (">", ">=") else threshold - value


def _values(conditions: Sequence[Condition], values: Mapping[str, float]) -> str:
    """``ece 0.093``; with a reference threshold ``ece 0.093 (threshold 0.052 = mean
    0.031 + 3 sd 0.007)``."""
    parts = []
    for condition in conditions:
        tested = _tested(condition)
        if tested not in values:
            continue
        text = f"{tested} {values[tested]:.4g}"
        reference = condition.from_reference
        if reference is not None and f"{condition.metric}_threshold" in values:
            sign = "+" if condition.op in (">", ">=") else "-"
            text += (
                f" (threshold {values[f'{condition.metric}_threshold']:.4g} = mean "
                f"{values[f'{condition.metric}_reference_mean']:.4g} {sign} "
                f"{reference.sigmas:g} sd {values[f'{condition.metric}_reference_sd']:.4g})"
            )
        if condition.metric == "calibration_cusum_ratio" and "calibration_cusum_limit" in values:
            text += f" (limit {values['calibration_cusum_limit']:.3g})"
        parts.append(text)
    return ", ".join(parts)


def gate_verdict(verdicts: Sequence[GateVerdict]) -> Verdict:
    """``calmon evaluate``'s gate: one row per condition, and one for the baseline
    comparison, each listing the series that failed it."""
    grouped: dict[tuple[str, str], list[GateVerdict]] = {}
    for verdict in verdicts:
        key = verdict.condition if verdict.check == "--fail-if" else "baseline"
        grouped.setdefault((verdict.check, key), []).append(verdict)
    rows = []
    for (check, _), found in grouped.items():
        failed = [v for v in found if not v.passed]
        shown = failed or found
        rows.append(
            VerdictRow(
                "fail" if failed else "pass",
                check,
                shown[0].condition,
                _named(v.detail for v in shown),
            )
        )
    note = "" if rows else "No gate conditions (--fail-if, --baseline): nothing to pass or fail."
    return Verdict(tuple(rows), note, noun="conditions")

"""Rule evaluation: a pure function from (rules, window results, prior state) to the new
state and the transitions to notify.

Per rule and matching series the alert moves through::

    (none) --conditions hold--> pending --held for `for`--> firing --stop holding--> resolved
                                   |                                 (with hysteresis)
                                   +--stop holding--> (none)      (a pending alert is
                                                                   dropped silently)

A series with too few samples, or missing one of the rule's metrics (insufficient or
undefined in this window), gives no evidence either way: its alert keeps its state.
A series with no events at all in the window (a version replaced by a new calibrator, a
segment value that stopped, a model retired) is different: there is nothing left to
alert on, so its alert resolves (pending: is dropped), ``no_data`` set, as Prometheus
resolves an alert whose series is gone. Rules on volume or freshness (absence
rules) watch such gaps and are exempt.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Literal

from monitor.core.alerts import AlertState, fingerprint
from monitor.core.results import WindowResult
from monitor.core.series import SeriesWindow
from monitor.rules.model import Rule
from monitor.windows.metric_names import CLASS_METRICS

TransitionKind = Literal["pending", "firing", "resolved", "cancelled"]


@dataclass(frozen=True)
class Transition:
    kind: TransitionKind
    alert: AlertState
    rule: Rule
    result: WindowResult
    #: Resolved or cancelled because the series has no events left in the window.
    no_data: bool = False


def evaluate_rules(
    rules: Sequence[Rule],
    results: Sequence[WindowResult],
    prior: Mapping[str, AlertState],
    now_ms: int,
    *,
    other_windows: Mapping[SeriesWindow, WindowResult] | None = None,
    window: str | None = None,
    covers: Callable[[str], bool] | None = None,
) -> tuple[dict[str, AlertState], list[Transition]]:
    """Return the state of every alert after these results, and what changed.

    ``other_windows`` holds the latest results of other windows, for rules relative to
    another window (``relative_to``); results in ``results`` are used first.
    ``window`` (default: the results') and ``covers`` say what the results are the whole
    of: every series with events, in that window, of the models ``covers`` accepts
    (default: the models among the results). Alerts there without a result resolve.
    """
    latest = dict(other_windows or {})
    latest.update({result.series: result for result in results})
    states = dict(prior)
    transitions: list[Transition] = []
    for rule in rules:
        for result in results:
            series = result.series
            if not rule.select.matches(
                series.model, series.model_version, series.segment, series.window
            ):
                continue
            for class_name in _watched_classes(rule, result):
                values = condition_values(rule, result, latest, class_name)
                key = fingerprint(rule.name, series, class_name)
                previous = states.get(key)
                step = _step(rule, previous, series, values, now_ms, class_name)
                if step is None:
                    continue
                kind, new_state = step
                if new_state is None:
                    del states[key]
                else:
                    states[key] = new_state
                if kind is not None:
                    alert = new_state or previous
                    assert alert is not None  # a cancelled alert had a pending state
                    transitions.append(Transition(kind, alert, rule, result))
    window = window or (results[0].series.window if results else None)
    if covers is None:
        covers = {result.series.model for result in results}.__contains__
    if window is not None:
        transitions += _end_without_data(rules, results, states, now_ms, window, covers)
    return states, transitions


def _end_without_data(
    rules: Sequence[Rule],
    results: Sequence[WindowResult],
    states: dict[str, AlertState],
    now_ms: int,
    window: str,
    covers: Callable[[str], bool],
) -> list[Transition]:
    """Resolve (or drop, when pending) the alerts of series with no events in this
    window: absent from ``results`` or evaluated empty. Only series of the models
    ``covers`` accepts: a replica evaluates its shards of the fleet, and every series of
    a model it evaluates has a result but for segment values the window did not see,
    or for a model with nothing left in the window at all (retired)."""
    by_series = {result.series: result for result in results}
    watched = {rule.name: rule for rule in rules if not rule.watches_gaps()}
    ended = []
    for key, alert in list(states.items()):
        rule = watched.get(alert.rule)
        series = alert.series
        if (
            rule is None
            or alert.state == "resolved"
            or series.window != window
            or not covers(series.model)
        ):
            continue
        result = by_series.get(series)
        if result is not None and (result.predictions or result.labelled):
            continue
        if result is None:  # a series the window did not see: an empty result
            like = results[0] if results else None
            result = WindowResult.empty(series, like, datetime.fromtimestamp(now_ms / 1000, UTC))
        if alert.state == "pending":
            del states[key]
            ended.append(Transition("cancelled", alert, rule, result, no_data=True))
        else:
            states[key] = replace(alert, state="resolved", resolved_ms=now_ms)
            ended.append(Transition("resolved", states[key], rule, result, no_data=True))
    return ended


def _watched_classes(rule: Rule, result: WindowResult) -> Sequence[str | None]:
    """One alert per class of the series for a rule on per-class metrics, else one."""
    if not rule.per_class():
        return [None]
    return sorted(result.classes)


def _value(result: WindowResult, metric: str, class_name: str | None) -> float | None:
    if class_name is not None and metric in CLASS_METRICS:
        found = result.classes.get(class_name)
        return None if found is None else found.values.get(metric)
    return result.values.get(metric)


def condition_values(
    rule: Rule,
    result: WindowResult,
    latest: Mapping[SeriesWindow, WindowResult],
    class_name: str | None = None,
) -> dict[str, float] | None:
    """The value each condition tests, keyed by condition label; None without evidence."""
    samples = result.labelled if rule.samples_needed_from() == "labelled" else result.predictions
    if samples < rule.min_samples:
        return None
    values: dict[str, float] = {}
    for condition in rule.conditions:
        value = _value(result, condition.metric, class_name)
        if value is None:
            return None
        if condition.relative_to is not None:
            other = latest.get(replace(result.series, window=condition.relative_to.window))
            base = None if other is None else _value(other, condition.metric, class_name)
            if base is None or base <= 0.0:
                return None
            values[f"{condition.metric}_{condition.relative_to.window}"] = base
            values[f"{condition.metric}_ratio"] = value / base
        if condition.from_reference is not None:
            mean = result.values.get(f"{condition.metric}_reference_mean")
            sd = result.values.get(f"{condition.metric}_reference_sd")
            if mean is None or sd is None:
                return None  # reference too short or not measured: no evidence either way
            values[f"{condition.metric}_reference_mean"] = mean
            values[f"{condition.metric}_reference_sd"] = sd
            values[f"{condition.metric}_threshold"] = condition.from_reference.limit(
                condition.op, mean, sd
            )
        values[condition.metric] = value
    return values


def _holds(rule: Rule, values: Mapping[str, float], *, firing: bool) -> bool:
    return all(
        condition.passes(
            values[f"{condition.metric}_ratio" if condition.relative_to else condition.metric],
            firing=firing,
            threshold=values.get(f"{condition.metric}_threshold"),
        )
        for condition in rule.conditions
    )


def _step(
    rule: Rule,
    current: AlertState | None,
    series: SeriesWindow,
    values: dict[str, float] | None,
    now_ms: int,
    class_name: str | None = None,
) -> tuple[TransitionKind | None, AlertState | None] | None:
    """(transition, new state) for one alert, or None when nothing changes."""
    if values is None:
        return None
    firing = current is not None and current.state == "firing"
    holds = _holds(rule, values, firing=firing)
    hold_ms = int((rule.hold or 0.0) * 1000)
    if holds:
        if current is None or current.state == "resolved":
            pending = AlertState(
                rule.name, series, "pending", now_ms, values=values, class_name=class_name
            )
            if hold_ms == 0:
                return "firing", replace(pending, state="firing", fired_ms=now_ms)
            return "pending", pending
        if current.state == "pending" and now_ms - current.active_since_ms >= hold_ms:
            return "firing", replace(current, state="firing", fired_ms=now_ms, values=values)
        return None, replace(current, values=values)
    if current is None or current.state == "resolved":
        return None
    if current.state == "pending":
        return "cancelled", None
    return "resolved", replace(current, state="resolved", resolved_ms=now_ms, values=values)

"""The CI gate of ``calmon evaluate``: conditions on the results, and a comparison with a
baseline, each a line saying what passed or failed with the values.

A condition names a rule metric (``ece > 0.03``, ``psi_raw_score > 0.2``: the keys of
``windows/metric_names.py``, as in a rules file) and fails on every series whose value
makes it true. A condition measured on no series at all fails too: a gate must not pass
because the file had too few labels to measure it.

Against a baseline (an older file, or another model version of the same file), ECE
fails where it got worse by more than its bootstrap interval: the new 95% interval lies
wholly above the baseline's (``ece_ci_lower`` of the new result above ``ece_ci_upper`` of
the baseline's).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pydantic import ValidationError

from monitor.core.errors import UserError
from monitor.core.results import WindowResult
from monitor.core.series import ALL, SeriesWindow
from monitor.rules.model import OPERATORS, Condition, FromReference

_CONDITION = re.compile(r"^\s*([A-Za-z0-9_]+)\s*(>=|<=|>|<)\s*([-+]?[0-9.]+(?:[eE][-+]?\d+)?)\s*$")


def parse_condition(text: str) -> Condition:
    """``"ece > 0.03"`` -> a rule condition; a mistake is a :class:`UserError`."""
    found = _CONDITION.match(text)
    if found is None:
        raise UserError(f"--fail-if {text!r}: expected METRIC OP NUMBER, e.g. 'ece > 0.03'")
    metric, op, threshold = found.groups()
    try:
        return Condition(metric=metric, op=op, threshold=float(threshold))
    except (ValidationError, ValueError) as problem:
        reasons = (
            "; ".join(e["msg"].removeprefix("Value error, ") for e in problem.errors())
            if isinstance(problem, ValidationError)
            else str(problem)
        )
        raise UserError(f"--fail-if {text!r}: {reasons}") from None


def name(series: SeriesWindow) -> str:
    version = "all versions" if series.model_version == ALL else series.model_version
    segment = "" if series.segment == ALL else f" {series.segment}"
    return f"{series.model} {version}{segment}"


def _when(result: WindowResult) -> str:
    if result.series.window == "file":
        return ""
    return f" {result.window_start:%Y-%m-%d %H:%M}"


@dataclass(frozen=True)
class Verdict:
    passed: bool
    #: What was checked (``ece > 0.03``, ``ece worse than baseline old.parquet``) ...
    condition: str
    #: ... and on which series, with the values.
    detail: str
    #: The option it came from: ``--fail-if``, or ``--baseline`` for either baseline.
    check: str = "--fail-if"

    @property
    def line(self) -> str:
        return f"{'PASS' if self.passed else 'FAIL'} {self.condition}: {self.detail}"


def check_conditions(
    conditions: Sequence[Condition], results: Sequence[WindowResult]
) -> list[Verdict]:
    """One line per failed (condition, series), or one line per passed condition."""
    verdicts: list[Verdict] = []
    for condition in conditions:
        # --fail-if conditions are parsed from "metric op number": always a number here.
        assert not isinstance(condition.threshold, FromReference)
        measured = _measured(condition.metric, results)
        failed = [
            (r, v, c) for r, v, c in measured if OPERATORS[condition.op](v, condition.threshold)
        ]
        label = f"{condition.metric} {condition.op} {condition.threshold:g}"
        for result, value, where in failed:
            verdicts.append(
                Verdict(
                    False,
                    label,
                    f"{name(result.series)}{where}{_when(result)}: "
                    f"{condition.metric} = {value:.4g}",
                )
            )
        if not measured:
            verdicts.append(
                Verdict(
                    False,
                    label,
                    "not measured on any series (too few "
                    "events: evaluation.min_labelled, min_predictions; or no reference)",
                )
            )
        elif not failed:
            worst, value, where = max(measured, key=lambda item: _badness(condition, item[1]))
            extreme = "highest" if condition.op in (">", ">=") else "lowest"
            verdicts.append(
                Verdict(
                    True,
                    label,
                    f"{len({id(r) for r, _, _ in measured})} series; the {extreme} "
                    f"{name(worst.series)}{where}{_when(worst)}: {value:.4g}",
                )
            )
    return verdicts


def _measured(
    metric: str, results: Sequence[WindowResult]
) -> list[tuple[WindowResult, float, str]]:
    """Each value of ``metric``: a series', or (a ``class_*`` metric of a multi-class
    series) each class's, with `` class=NAME``, as a rule tests every class."""
    found = []
    for result in results:
        if metric in result.values:
            found.append((result, result.values[metric], ""))
        for class_name, values in sorted(result.classes.items()):
            if metric in values.values:
                found.append((result, values.values[metric], f" class={class_name}"))
    return found


def _badness(condition: Condition, value: float) -> float:
    return value if condition.op in (">", ">=") else -value


def baseline_of(
    result: WindowResult, baseline: Sequence[WindowResult], version: str | None
) -> WindowResult | None:
    """The series to compare ``result`` with. Against a file: the same series there,
    or, without that version there, its all-versions one. Against ``version``: that
    version's series of the same model and segment."""
    series = result.series
    if version is not None:
        if series.model_version in (version, ALL):
            return None
        keys = [(series.model, version, series.segment)]
    else:
        keys = [(series.model, v, series.segment) for v in (series.model_version, ALL)]
    by_series = {(r.series.model, r.series.model_version, r.series.segment): r for r in baseline}
    return next((by_series[k] for k in keys if k in by_series), None)


def check_baseline(
    results: Iterable[WindowResult],
    baseline: Sequence[WindowResult],
    *,
    what: str,
    version: str | None = None,
) -> list[Verdict]:
    """ECE worse than the baseline's by more than the bootstrap interval: one line each."""
    verdicts: list[Verdict] = []
    compared = 0
    for result in results:
        old = baseline_of(result, baseline, version)
        if old is None:
            continue
        new_values, old_values = result.values, old.values
        if "ece_ci_lower" not in new_values or "ece_ci_upper" not in old_values:
            continue  # too few labels on one side, or the bootstrap is off
        compared += 1
        if new_values["ece_ci_lower"] > old_values["ece_ci_upper"]:
            verdicts.append(
                Verdict(
                    False,
                    f"ece worse than {what}",
                    f"{name(result.series)}{_when(result)}: "
                    f"ece {new_values['ece']:.4g} [{new_values['ece_ci_lower']:.4g}, "
                    f"{new_values['ece_ci_upper']:.4g}] vs {old_values['ece']:.4g} "
                    f"[{old_values['ece_ci_lower']:.4g}, {old_values['ece_ci_upper']:.4g}]",
                    check="--baseline",
                )
            )
    if compared == 0:
        verdicts.append(
            Verdict(
                False,
                f"ece against {what}",
                "no series to compare (no common model and "
                "segment with an ECE interval on both sides)",
                check="--baseline",
            )
        )
    elif all(v.passed for v in verdicts):
        verdicts.append(
            Verdict(
                True,
                f"ece against {what}",
                f"{compared} series, none worse by more than the bootstrap interval",
                check="--baseline",
            )
        )
    return verdicts

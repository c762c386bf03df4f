"""Alert rules: what users write in YAML, validated at load.

A rule is a set of conditions on the metrics of one window result, all of which must
hold (AND), for series chosen by selectors::

    - name: CalibrationDegraded
      select: {model: "fraud-*", window: 24h, segment: "__all__"}
      metric: ece            # shorthand for a single condition
      op: ">"
      threshold: 0.05
      resolve_threshold: 0.04  # hysteresis: stays firing until ece <= 0.04
      for: 10m
      min_samples: 500
      severity: warning
      annotations:
        summary: "ECE {ece:.3f} on {model} {segment} ({window})"
      actions: [recalibrate]

Kinds of rules, all expressed as conditions:

- absolute threshold: ``metric``/``op``/``threshold``;
- relative: ``relative_to: {window: 7d}`` compares ``metric`` to the same series'
  value in another window, ``threshold`` being the ratio (ECE 50% above its 7-day
  level: ``op: ">"``, ``threshold: 1.5``);
- drift with a minimum effect: ``conditions`` [ks_pvalue_raw_score < 0.01,
  ks_statistic_raw_score > 0.1], since a p-value alone fires on any tiny shift at
  large n;
- combined: any number of ``conditions`` (score drift AND calibration degraded);
- absence: ``absence: {stream: labels, for: 6h}``, i.e. seconds_since_last_label > 6h;
- sequential: ``kind: sequential`` fires when the CUSUM detector crosses its limit
  (``calibration_cusum_ratio >= 1``, set from ``evaluation.sequential.arl``) and resolves
  once it is back below half of it (``resolve_ratio``, default 0.5).

Selectors match exactly, as a glob when they contain ``*?[``, or as a regular
expression when written ``re:<pattern>`` (anchored at both ends).
"""

from __future__ import annotations

import contextlib
import difflib
import fnmatch
import operator
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from monitor.core.errors import UserError, yaml_problem
from monitor.core.templates import template_problem
from monitor.settings import Duration
from monitor.windows import metric_names

#: Metrics a rule can test: every key a window result can carry, and the per-class
#: metrics of a multi-class series (a rule on them watches each class: one alert per
#: class, labelled ``class``).
KNOWN_METRICS = metric_names.ALL_KEYS | frozenset(metric_names.CLASS_METRICS)
#: Template fields that are text (the rest, metrics, are floats: ``core/templates.py``).
TEXT_FIELDS = frozenset(
    {"model", "model_version", "segment", "window", "rule", "severity", "class"}
)

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Selector(_Strict):
    """Which series a rule applies to; a missing key matches everything."""

    model: str = "*"
    model_version: str = "*"
    segment: str = "*"
    window: str = "*"

    @field_validator("*")
    @classmethod
    def _compiles(cls, pattern: str) -> str:
        if pattern.startswith("re:"):
            try:
                re.compile(pattern[3:])
            except re.error as exc:
                raise ValueError(f"bad regular expression {pattern[3:]!r}: {exc}") from None
        return pattern

    def matches_window(self, window: str) -> bool:
        return _matches(self.window, window)

    def matches(self, model: str, model_version: str, segment: str, window: str) -> bool:
        return all(
            _matches(pattern, value)
            for pattern, value in (
                (self.model, model),
                (self.model_version, model_version),
                (self.segment, segment),
                (self.window, window),
            )
        )


def _matches(pattern: str, value: str) -> bool:
    if pattern.startswith("re:"):
        return re.fullmatch(pattern[3:], value) is not None
    if any(char in pattern for char in "*?["):
        return fnmatch.fnmatchcase(value, pattern)
    return pattern == value


class RelativeTo(_Strict):
    """Compare to the same series' latest value in another window."""

    window: str


class FromReference(_Strict):
    """A threshold set per series from the metric's spread over its reference period:
    mean + ``sigmas`` x sd of the metric over reference chunks of the window's length
    (mean - ``sigmas`` x sd for ``<`` / ``<=``). Written ``{from_reference: 3 sigma}``."""

    sigmas: float = Field(gt=0, le=20)

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, data: Any) -> Any:
        if isinstance(data, str):
            match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*sigma\s*", data)
            if match is None:
                raise ValueError(
                    f"from_reference {data!r}: write it as '<number> sigma', e.g. '3 sigma'"
                )
            return {"sigmas": float(match.group(1))}
        return data

    def limit(self, op: str, mean: float, sd: float) -> float:
        return mean + self.sigmas * sd if op in (">", ">=") else mean - self.sigmas * sd


class Condition(_Strict):
    metric: str
    op: Literal[">", ">=", "<", "<="]
    #: A number, or ``{from_reference: 3 sigma}`` (see :class:`FromReference`).
    threshold: float | FromReference
    #: While firing, the alert resolves only once the metric no longer passes this
    #: (less strict) threshold. Default: the threshold itself (no hysteresis).
    resolve_threshold: float | None = None
    relative_to: RelativeTo | None = None

    @field_validator("metric")
    @classmethod
    def _known(cls, metric: str) -> str:
        if metric not in KNOWN_METRICS:
            raise ValueError(f"unknown metric {metric!r}{_did_you_mean(metric, KNOWN_METRICS)}")
        return metric

    @field_validator("threshold", mode="before")
    @classmethod
    def _threshold_form(cls, value: Any) -> Any:
        if isinstance(value, dict) and set(value) == {"from_reference"}:
            return FromReference.model_validate(value["from_reference"])
        if isinstance(value, dict):
            raise ValueError(f"threshold {value!r}: a number or {{from_reference: 3 sigma}}")
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                raise ValueError(
                    f"threshold {value!r}: a number or {{from_reference: 3 sigma}}"
                ) from None
        return value

    @model_validator(mode="after")
    def _reference_metric(self) -> Condition:
        allowed = metric_names.REFERENCE_THRESHOLD_METRICS
        if isinstance(self.threshold, FromReference) and self.metric not in allowed:
            raise ValueError(
                f"from_reference thresholds are measured for {', '.join(allowed)}; "
                f"not for {self.metric!r}"
            )
        return self

    @property
    def from_reference(self) -> FromReference | None:
        return self.threshold if isinstance(self.threshold, FromReference) else None

    @model_validator(mode="after")
    def _hysteresis_direction(self) -> Condition:
        if self.resolve_threshold is None:
            return self
        if isinstance(self.threshold, FromReference):
            raise ValueError(
                "resolve_threshold cannot go with a from_reference threshold (the threshold "
                "is set per series; use a smaller sigma in a second rule instead)"
            )
        looser = (
            self.resolve_threshold <= self.threshold
            if self.op in (">", ">=")
            else self.resolve_threshold >= self.threshold
        )
        if not looser:
            raise ValueError(
                f"resolve_threshold {self.resolve_threshold} must be on the other side of "
                f"threshold {self.threshold} for op {self.op!r} (it is the level to go back to)"
            )
        return self

    def passes(self, value: float, *, firing: bool, threshold: float | None = None) -> bool:
        """``threshold``: this series' value of a from_reference threshold."""
        if isinstance(self.threshold, FromReference):
            if threshold is None:
                raise ValueError("a from_reference threshold needs the series' value")
            return OPERATORS[self.op](value, threshold)
        limit = self.resolve_threshold if firing and self.resolve_threshold is not None else None
        return OPERATORS[self.op](value, self.threshold if limit is None else limit)


class Absence(_Strict):
    stream: Literal["predictions", "labels"]
    #: ``for`` in YAML.
    after: Duration = Field(alias="for")


class Rule(_Strict):
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
    select: Selector = Selector()
    conditions: tuple[Condition, ...] = ()
    #: How long the conditions must hold before the alert fires (``for`` in YAML).
    hold: Duration | None = Field(default=None, alias="for")
    #: Samples needed in the window (labelled events for calibration metrics,
    #: predictions for drift metrics); below it a series neither fires nor resolves.
    min_samples: int = Field(0, ge=0)
    severity: Literal["critical", "warning", "info"] = "warning"
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    #: Names of webhooks (``webhooks`` in the config) fired when the alert fires.
    actions: tuple[str, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _shorthands(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        single = {k: data.pop(k) for k in list(data) if k in Condition.model_fields}
        absence = data.pop("absence", None)
        kind = data.pop("kind", "threshold")
        resolve_ratio = data.pop("resolve_ratio", 0.5)
        conditions = list(data.get("conditions") or [])
        if single:
            conditions.insert(0, single)
        if kind == "sequential":
            conditions.insert(
                0,
                {
                    "metric": "calibration_cusum_ratio",
                    "op": ">=",
                    "threshold": 1.0,
                    "resolve_threshold": resolve_ratio,
                },
            )
        elif kind != "threshold":
            raise ValueError(f"unknown kind {kind!r}: threshold (the default) or sequential")
        if absence is not None:
            parsed = Absence.model_validate(absence)
            metric = (
                "seconds_since_last_prediction"
                if parsed.stream == "predictions"
                else "seconds_since_last_label"
            )
            conditions.append({"metric": metric, "op": ">", "threshold": parsed.after})
        data["conditions"] = conditions
        return data

    @model_validator(mode="after")
    def _has_conditions(self) -> Rule:
        if not self.conditions:
            raise ValueError("a rule needs a metric/op/threshold, conditions, or absence")
        reserved = {
            "alertname",
            "model",
            "model_version",
            "segment",
            "window",
            "severity",
            "class",
        }
        clash = reserved & set(self.labels)
        if clash:
            raise ValueError(f"labels {sorted(clash)} are set by calmon and cannot be overridden")
        numbers = (
            KNOWN_METRICS
            | {
                f"{c.metric}_{suffix}"
                for c in self.conditions
                if c.relative_to
                for suffix in ("ratio", c.relative_to.window)
            }
            | {
                f"{c.metric}_{suffix}"
                for c in self.conditions
                if c.from_reference
                for suffix in ("threshold", "reference_mean", "reference_sd")
            }
        )
        for name, template in self.annotations.items():
            problem = template_problem(template, text_fields=TEXT_FIELDS, number_fields=numbers)
            if problem is not None:
                if problem.startswith("unknown field"):
                    problem += (
                        "; use a metric name "
                        "or one of model, model_version, segment, window, rule, severity"
                    )
                raise ValueError(f"annotation {name}: {problem}")
        return self

    def windows_from_reference(self, windows: Iterable[Any]) -> list[Any]:
        """The windows (anything with a ``name``) this rule thresholds from the reference."""
        if not self.reference_metrics():
            return []
        return [w for w in windows if self.select.matches_window(w.name)]

    def reference_metrics(self) -> set[str]:
        """Metrics whose threshold comes from the reference (the window job measures them)."""
        return {c.metric for c in self.conditions if c.from_reference is not None}

    def per_class(self) -> bool:
        """Whether a condition tests a per-class metric: then each class of a series
        has an alert of its own."""
        return any(c.metric in metric_names.CLASS_METRICS for c in self.conditions)

    def watches_gaps(self) -> bool:
        """A rule on volume or freshness (absence rules, ``window_predictions < 100``):
        its alert is about a series going quiet, so it outlives an empty window."""
        return any(c.metric in metric_names.VOLUME for c in self.conditions)

    def samples_needed_from(self) -> Literal["labelled", "predictions"]:
        needs_labels = {
            **metric_names.LABELLED,
            **metric_names.MULTICLASS,
            **metric_names.CLASS_LABELLED,
            **metric_names.ESTIMATE_GAPS,
        }
        calibration = any(c.metric in needs_labels for c in self.conditions)
        return "labelled" if calibration else "predictions"


class RulesFile(_Strict):
    """A rule file's top level; each rule is validated on its own (:func:`load_rules`)."""

    rules: list[dict[str, Any]]


class RulesError(UserError, ValueError):
    """Rules failed to load; the message names the file, the rule and the bad key."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid rules:\n  " + "\n  ".join(problems))
        self.problems = problems


def load_rules(
    paths: Iterable[str | Path],
    *,
    webhooks: Iterable[str] = (),
    windows: Iterable[str] | None = None,
    segment_keys: Iterable[str] | None = None,
) -> list[Rule]:
    """Load and validate rule files; every problem of every file and rule in one error.

    With ``windows`` (the configured window names) and ``segment_keys``, a rule whose
    selector or ``relative_to`` can match no series is an error too: it could never fire.
    """
    known_webhooks = set(webhooks)
    rules: list[Rule] = []
    problems: list[str] = []
    for path in paths:
        loaded, file_problems = _read_rules_file(path)
        problems += file_problems
        rules += loaded
    seen: set[str] = set()
    for rule in rules:
        if rule.name in seen:
            problems.append(f"rule {rule.name}: defined twice")
        seen.add(rule.name)
        for action in rule.actions:
            if action not in known_webhooks:
                problems.append(
                    f"rule {rule.name}: action {action!r} is not a configured webhook "
                    f"(configured: {sorted(known_webhooks) or 'none'})"
                )
        if windows is not None:
            problems += _unmatched_windows(rule, list(windows))
        if segment_keys is not None:
            problems += _unmatched_segment(rule, set(segment_keys))
    if problems:
        raise RulesError(problems)
    return rules


def _read_rules_file(path: str | Path) -> tuple[list[Rule], list[str]]:
    """The file's valid rules, and a problem for each invalid one (all of them)."""
    try:
        data = yaml.safe_load(Path(path).read_text()) or {"rules": []}
    except OSError as exc:
        return [], [f"{path}: cannot read: {exc.strerror or exc}"]
    except yaml.YAMLError as exc:
        return [], [yaml_problem(path, exc)]
    try:
        items = RulesFile.model_validate(data).rules
    except ValidationError as exc:
        return [], [f"{path}: {_location(data, e['loc'])}: {e['msg']}" for e in exc.errors()]
    rules, problems = [], []
    for index, item in enumerate(items):
        try:
            rules.append(Rule.model_validate(item))
        except ValidationError as exc:
            for error in exc.errors():
                where = _location(data, ("rules", index, *error["loc"]))
                hint = ""
                if error["type"] == "extra_forbidden":
                    hint = _did_you_mean(str(error["loc"][-1]), _RULE_KEYS)
                problems.append(f"{path}: {where}: {error['msg']}{hint}")
    return rules, problems


#: What a rule may say: its own keys, a single condition's, and the shorthands.
_RULE_KEYS = [
    *(info.alias or name for name, info in Rule.model_fields.items()),
    *Condition.model_fields,
    "absence",
]


def _unmatched_windows(rule: Rule, windows: list[str]) -> list[str]:
    problems = []
    if not any(_matches(rule.select.window, window) for window in windows):
        problems.append(
            f"rule {rule.name}: select.window {rule.select.window!r} matches no configured "
            f"window ({', '.join(windows)}){_did_you_mean(rule.select.window, windows)}"
        )
    for condition in rule.conditions:
        if condition.relative_to and condition.relative_to.window not in windows:
            other = condition.relative_to.window
            problems.append(
                f"rule {rule.name}: relative_to.window {other!r} is not a configured window "
                f"({', '.join(windows)}){_did_you_mean(other, windows)}"
            )
    return problems


def _unmatched_segment(rule: Rule, segment_keys: set[str]) -> list[str]:
    """An exact ``key=value`` selector on a key that is not in ``store.segment_keys``."""
    segment = rule.select.segment
    if segment.startswith("re:") or any(char in segment for char in "*?[") or segment == "__all__":
        return []
    key = segment.split("=", 1)[0]
    if "=" in segment and key in segment_keys:
        return []
    known = ", ".join(sorted(segment_keys)) or "none"
    return [
        f"rule {rule.name}: select.segment {segment!r} matches no series (segments are "
        f"__all__ or key=value for a key of store.segment_keys: {known})"
    ]


def _did_you_mean(value: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(value, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _location(data: Any, loc: tuple[Any, ...]) -> str:
    """``rules[2] (HighECE).threshold`` rather than ``rules.2.threshold``."""
    parts: list[str] = []
    for i, part in enumerate(loc):
        if isinstance(part, int):
            parts[-1] += f"[{part}]"
            if i == 1 and isinstance(data, dict):
                with contextlib.suppress(KeyError, IndexError, TypeError):
                    parts[-1] += f" ({data['rules'][part]['name']})"
        else:
            parts.append(str(part))
    return ".".join(parts) or "(top level)"

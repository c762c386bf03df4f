"""Loading rules: the shipped examples load; mistakes are reported with where they are."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.rules.model import RulesError, load_rules

ROOT = Path(__file__).resolve().parents[3]


def test_the_shipped_example_rules_load() -> None:
    rules = load_rules([ROOT / "alerts" / "calmon-rules.yaml"], webhooks=["recalibrate"])
    names = {rule.name for rule in rules}
    assert {"CalibrationErrorHigh", "RawScoreDrift", "LabelsMissing"} <= names
    absence = next(r for r in rules if r.name == "LabelsMissing")
    assert absence.conditions[0].metric == "seconds_since_last_label"
    assert absence.conditions[0].threshold == 6 * 3600


def load_text(tmp_path: Path, text: str, webhooks: tuple[str, ...] = ()) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    load_rules([path], webhooks=webhooks)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "rules:\n- {name: A, metric: ecee, op: '>', threshold: 0.1}",
            r"rules\[0\] \(A\)\.conditions\[0\]\.metric: Value error, unknown metric 'ecee'",
        ),
        (
            "rules:\n- {name: A, metric: ece, op: '>', threshold: high}",
            r"rules\[0\] \(A\)\.conditions\[0\]\.threshold: "
            r"Value error, threshold 'high': a number",
        ),
        (
            "rules:\n- {name: A, metric: ece, op: '=>', threshold: 0.1}",
            r"conditions\[0\]\.op: Input should be '>', '>=', '<' or '<='",
        ),
        (
            "rules:\n- {name: A, metric: ece, op: '>', threshold: 0.1, select: {segment: 're:('}}",
            r"select\.segment: Value error, bad regular expression",
        ),
        (
            "rules:\n- {name: A, metric: ece, op: '>', threshold: 0.1, resolve_threshold: 0.2}",
            r"resolve_threshold 0.2 must be on the other side of threshold 0.1",
        ),
        ("rules:\n- {name: A, severity: warning}", r"a rule needs a metric/op/threshold"),
        (
            "rules:\n- {name: A, metric: ece, op: '>', threshold: 0.1, for: soon}",
            r"for: Value error, 'soon' is not a duration",
        ),
        (
            "rules:\n- {name: A, metric: ece, op: '>', threshold: 0.1, colour: red}",
            r"colour: Extra inputs are not permitted",
        ),
        (
            "rules:\n- {name: A, metric: ece, op: '>', threshold: 0.1, "
            "annotations: {summary: '{eec}'}}",
            r"annotation summary: unknown field\(s\) \['eec'\]",
        ),
        # Each of these passed the load and raised at fire time, inside the alert's
        # transaction, on every tick of its window.
        (
            "rules:\n- {name: A, metric: ece, op: '>', threshold: 0.1, "
            "annotations: {summary: 'ECE on {model:.3f}'}}",
            r"annotation summary: \{model:.3f\}: Unknown format code 'f' for object of type 'str'",
        ),
        (
            "rules:\n- {name: A, metric: ece, op: '>', threshold: 0.1, "
            "annotations: {summary: '{ece:d}'}}",
            r"annotation summary: \{ece:d\}: Unknown format code 'd' for object of type 'float'",
        ),
        (
            "rules:\n- {name: A, metric: ece, op: '>', threshold: 0.1, "
            "annotations: {summary: '{ece:{width}}'}}",
            r"annotation summary: \{ece:\{width\}\}: Invalid format specifier",
        ),
        (
            "rules:\n- {name: A, metric: ece, op: '>', threshold: 0.1, "
            "annotations: {summary: '{model!x}'}}",
            r"annotation summary: \{model!x\}: unknown conversion !x",
        ),
        (
            "rules:\n- {name: A, metric: ece, op: '>', threshold: 0.1, "
            "annotations: {summary: 'ECE {}'}}",
            r"annotation summary: unknown field\(s\) \[''\]",
        ),
        (
            "rules:\n- {name: A, metric: ece, op: '>', threshold: 0.1, "
            "annotations: {summary: 'ECE {ece'}}",
            r"annotation summary: bad template: expected '\}' before end of string",
        ),
        (
            "rules:\n- {name: A, metric: ece, op: '>', threshold: 0.1, labels: {model: x}}",
            r"labels \['model'\] are set by calmon",
        ),
        (
            "rules:\n- {name: A, metric: ece, op: '>', threshold: 0.1, actions: [retrain]}",
            r"action 'retrain' is not a configured webhook \(configured: none\)",
        ),
        (
            "rules:\n- {name: A, metric: ece, op: '>', threshold: 0.1}\n"
            "- {name: A, metric: ace, op: '>', threshold: 0.1}",
            r"rule A: defined twice",
        ),
        # The file and the position, not PyYAML's "<unicode string>".
        ("rules: [", r"rules\.yaml:1:9: expected the node content, but found '<stream end>'"),
    ],
)
def test_bad_rules_say_what_and_where(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(RulesError, match=message):
        load_text(tmp_path, text)


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = (
        "rules:\n- {name: A, metric: ecee, op: '>', threshold: 0.1}\n"
        "- {name: B, metric: ece, op: '>', threshold: x}\n"
    )
    with pytest.raises(RulesError) as error:
        load_text(tmp_path, text)
    assert "(A)" in str(error.value) and "(B)" in str(error.value)

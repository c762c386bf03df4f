"""`threshold: {from_reference: 3 sigma}`: parsing, the per-series limit, and the reference
settings that can never give one."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from monitor.core.results import WindowResult
from monitor.core.series import SeriesWindow
from monitor.rules.engine import evaluate_rules
from monitor.rules.model import FromReference, Rule
from monitor.settings import ReferenceSettings, WindowSettings
from monitor.windows.reference_thresholds import chunk_bounds, configuration_problems

SERIES = SeriesWindow("m", "v1", "__all__", "1h")


def rule(**spec: Any) -> Rule:
    return Rule.model_validate({"name": "R", "metric": "ece", "op": ">", **spec})


def result(**values: float) -> WindowResult:
    at = datetime(2026, 12, 1, tzinfo=UTC)
    return WindowResult(SERIES, at, at, at, predictions=1000, labelled=1000, values=values)


@pytest.mark.parametrize(
    ("text", "sigmas"), [("3 sigma", 3.0), ("2.5sigma", 2.5), (" .5 sigma ", 0.5)]
)
def test_sigma_texts(text: str, sigmas: float) -> None:
    condition = rule(threshold={"from_reference": text}).conditions[0]
    assert condition.from_reference == FromReference(sigmas=sigmas)


@pytest.mark.parametrize(
    ("threshold", "message"),
    [
        ({"from_reference": "3 sd"}, "'<number> sigma'"),
        ({"from_reference": "-1 sigma"}, "'<number> sigma'"),
        ({"from_reference": "3 sigma", "x": 1}, "a number or"),
    ],
)
def test_bad_thresholds_name_the_problem(threshold: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        rule(threshold=threshold)


def test_only_metrics_measured_on_the_reference() -> None:
    with pytest.raises(ValidationError, match="not for 'psi_raw_score'"):
        rule(metric="psi_raw_score", threshold={"from_reference": "3 sigma"})
    with pytest.raises(ValidationError, match="resolve_threshold cannot go"):
        rule(threshold={"from_reference": "3 sigma"}, resolve_threshold=0.01)


def test_limit_is_mean_plus_sigmas_sd_and_below_for_less_than() -> None:
    above = rule(threshold={"from_reference": "3 sigma"})
    values = {"ece_reference_mean": 0.02, "ece_reference_sd": 0.005}
    # mean + 3 sd = 0.035: 0.034 does not fire, 0.036 does, with the threshold recorded.
    assert evaluate_rules([above], [result(ece=0.034, **values)], {}, 0)[1] == []
    (fired,) = evaluate_rules([above], [result(ece=0.036, **values)], {}, 0)[1]
    assert fired.alert.values["ece_threshold"] == pytest.approx(0.035)
    # The alert keeps the reference it was measured against (annotations can show it).
    assert (fired.alert.values["ece_reference_mean"], fired.alert.values["ece_reference_sd"]) == (
        0.02,
        0.005,
    )
    below = rule(op="<", threshold={"from_reference": "2 sigma"})
    (fired,) = evaluate_rules([below], [result(ece=0.009, **values)], {}, 0)[1]
    assert fired.alert.values["ece_threshold"] == pytest.approx(0.01)
    # Without the reference statistics, or with half of them: no evidence, nothing happens.
    assert evaluate_rules([above], [result(ece=0.9)], {}, 0)[1] == []
    assert evaluate_rules([above], [result(ece=0.9, ece_reference_mean=0.02)], {}, 0)[1] == []
    assert evaluate_rules([above], [result(ece=0.9, ece_reference_sd=0.005)], {}, 0)[1] == []


def test_chunks_end_at_the_period_end_and_drop_a_partial_one() -> None:
    assert chunk_bounds(0, 35, 10) == [(5, 15), (15, 25), (25, 35)]
    assert chunk_bounds(0, 9, 10) == []


def test_configurations_that_never_give_a_threshold() -> None:
    hour = WindowSettings(name="1h", length=3600)
    day = WindowSettings(name="24h", length=86400)
    fixed = ReferenceSettings(
        mode="fixed", start="2026-11-01T00:00:00Z", end="2026-11-04T00:00:00Z"
    )
    assert configuration_problems({"R": [hour]}, fixed) == []  # 72 chunks
    (problem,) = configuration_problems({"R": [hour, day]}, fixed)  # 3 day chunks
    assert "rule R" in problem and "window 24h" in problem and "holds 3" in problem
    (problem,) = configuration_problems({"R": [hour]}, ReferenceSettings())
    assert "trailing gives one window" in problem

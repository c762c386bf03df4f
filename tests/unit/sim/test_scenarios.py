"""Each shipped scenario produces the drift it claims, measured with the metrics core
on events generated before and after the drift starts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from monitor.metrics import calibration as cal
from monitor.metrics.drift import ReferenceProfile, population_stability_index
from monitor.metrics.recalibration import calibration_slope_intercept
from monitor.sim.scenario import Events, Scenario, ScenarioError, generate, load_scenario

SCENARIOS = Path(__file__).resolve().parents[3] / "config" / "scenarios"
N = 40_000


def before_and_after(scenario: Scenario, seed: int = 0) -> tuple[Events, Events]:
    rng = np.random.default_rng(seed)
    model = scenario.models[0]
    return generate(rng, scenario, model, N, t=0.0), generate(rng, scenario, model, N, t=3600.0)


def region(events: Events, value: str) -> np.ndarray:
    return np.array([s.get("region") == value for s in events.segments])


def test_every_shipped_scenario_loads() -> None:
    files = sorted(SCENARIOS.glob("*.yaml"))
    assert len(files) >= 5
    for path in files:
        assert load_scenario(path).models


def test_healthy_traffic_is_calibrated() -> None:
    events, _ = before_and_after(load_scenario(SCENARIOS / "healthy.yaml"))
    fit = calibration_slope_intercept(events.probability, events.label)
    assert fit.slope == pytest.approx(1.0, abs=0.05)
    assert cal.expected_calibration_error(events.probability, events.label) < 0.015


def test_overconfidence_on_one_segment_only() -> None:
    before, after = before_and_after(load_scenario(SCENARIOS / "overconfident-segment.yaml"))
    eu, us = region(after, "eu"), region(after, "us")
    slope_eu = calibration_slope_intercept(after.probability[eu], after.label[eu]).slope
    slope_us = calibration_slope_intercept(after.probability[us], after.label[us]).slope
    assert slope_eu == pytest.approx(1 / 2.5, abs=0.05)  # expit(k s) refit on s: slope 1/k
    assert slope_us == pytest.approx(1.0, abs=0.08)
    ece_before = cal.expected_calibration_error(before.probability[eu], before.label[eu])
    ece_after = cal.expected_calibration_error(after.probability[eu], after.label[eu])
    assert ece_after > 0.05 > 0.02 > ece_before


def test_underconfidence_has_a_slope_above_one() -> None:
    _, after = before_and_after(load_scenario(SCENARIOS / "underconfident.yaml"))
    assert calibration_slope_intercept(after.probability, after.label).slope == pytest.approx(
        2.0, abs=0.15
    )


def test_prior_shift_shows_in_the_large() -> None:
    before, after = before_and_after(load_scenario(SCENARIOS / "prior-shift.yaml"))
    healthy = cal.calibration_in_the_large(before.probability, before.label)
    shifted = cal.calibration_in_the_large(after.probability, after.label)
    assert abs(healthy.observed_expected_ratio - 1) < 0.05
    assert shifted.observed_expected_ratio > 1.5  # more positives than predicted
    assert shifted.difference < -0.05


def test_score_shift_moves_the_distribution_but_keeps_calibration() -> None:
    before, after = before_and_after(load_scenario(SCENARIOS / "score-shift.yaml"))
    reference = ReferenceProfile.fit(before.raw_score, kind="raw_score")
    assert population_stability_index(reference, after.raw_score) > 0.25
    assert population_stability_index(reference, before.raw_score[: N // 2]) < 0.01
    assert cal.expected_calibration_error(after.probability, after.label) < 0.015


def test_same_seed_same_traffic() -> None:
    scenario = load_scenario(SCENARIOS / "overconfident-segment.yaml")
    a, _ = before_and_after(scenario, seed=5)
    b, _ = before_and_after(scenario, seed=5)
    np.testing.assert_array_equal(a.probability, b.probability)
    assert a.segments == b.segments


def test_a_bad_scenario_names_the_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("models: [{model_id: m}]\ndrifts: [{kind: sideways, strength: 1}]\n")
    with pytest.raises(ScenarioError, match=r"drifts\.0\.kind: Input should be 'overconfidence'"):
        load_scenario(path)


def test_ranking_loss_lowers_auc_on_one_segment_only() -> None:
    before, after = before_and_after(load_scenario(SCENARIOS / "ranking-loss.yaml"))
    eu_before, eu_after, us_after = region(before, "eu"), region(after, "eu"), region(after, "us")
    auc_before = roc_auc_score(before.label[eu_before], before.probability[eu_before])
    auc_after = roc_auc_score(after.label[eu_after], after.probability[eu_after])
    auc_us = roc_auc_score(after.label[us_after], after.probability[us_after])
    assert auc_after < auc_before - 0.08
    assert auc_us == pytest.approx(auc_before, abs=0.02)
    # Healthy before the drift starts: calibrated.
    assert cal.expected_calibration_error(before.probability, before.label) < 0.015


def _top_label_ece(events: Events) -> float:
    assert events.probabilities is not None
    hit = (events.probabilities.argmax(axis=1) == events.label).astype(float)
    return cal.expected_calibration_error(events.probabilities.max(axis=1), hit)


def test_multiclass_softmax_turns_over_confident() -> None:
    before, after = before_and_after(load_scenario(SCENARIOS / "multiclass-overconfident.yaml"))
    assert before.probabilities is not None and after.probabilities is not None
    assert np.allclose(after.probabilities.sum(axis=1), 1.0)
    assert _top_label_ece(before) < 0.015 < 0.08 < _top_label_ece(after)
    # the confidence rises, accuracy does not: the model believes itself more than it is
    accuracy = np.mean(after.probabilities.argmax(axis=1) == after.label)
    assert after.probabilities.max(axis=1).mean() > accuracy + 0.08


def test_one_class_drifts_and_stays_calibrated() -> None:
    scenario = load_scenario(SCENARIOS / "multiclass-class-drift.yaml")
    before, after = before_and_after(scenario)
    assert before.probabilities is not None and after.probabilities is not None
    classes = scenario.models[0].classes
    assert classes is not None
    tech, billing = classes.index("tech"), classes.index("billing")
    reference = ReferenceProfile.fit(before.probabilities[:, tech], kind="probability")
    assert population_stability_index(reference, after.probabilities[:, tech]) > 0.25
    same = ReferenceProfile.fit(before.probabilities[: N // 2, billing], kind="probability")
    assert population_stability_index(same, before.probabilities[N // 2 :, billing]) < 0.01
    assert np.mean(after.label == tech) > np.mean(before.label == tech) + 0.1
    assert _top_label_ece(after) < 0.015

"""The recalibration part of a report for every state a stored recommendation can be in,
and for a refit from the raw score (no map of p to draw)."""

from __future__ import annotations

from typing import Any

import numpy as np

from monitor.core.recalibrations import Recalibration
from monitor.core.series import SeriesWindow
from monitor.metrics.calibrators import apply
from monitor.report.recalibrations import curve, stored_view
from monitor.store.recalibrations import Switch

ECE = {"value": 0.12, "lower": 0.1, "upper": 0.14}


def _artifact(**extra: Any) -> dict[str, Any]:
    return {
        "format": "calmon.calibrator/v1", "method": "platt",
        "parameters": {"intercept": -0.2, "slope": 0.6},
        "map": {"space": "logit", "x": [-1.0, 1.0], "y": [-0.8, 0.4], "extrapolation": "linear"},
        **extra,
    }  # fmt: skip


def _recommendation(artifact: dict[str, Any]) -> dict[str, Any]:
    held_out = {"log_loss": ECE, "brier_score": ECE, "ece": ECE, "log_loss_above_best": ECE}
    return {
        "status": "recommended",
        "recommended": artifact,
        "candidates": [{"method": "platt", "parameters": {}, "held_out": held_out}],
    }


def _stored(state: str, outcome: dict[str, Any] | None) -> Recalibration:
    return Recalibration(
        alert_id="a1", series=SeriesWindow("fraud", "v1", "region=eu", "1h"),
        fired_ms=1_790_000_000_000, webhooks=("recalibrate",),
        before={"ece": ECE, "labelled": 3000, "log_loss": 0.6},
        recommendation=_recommendation(_artifact()), state=state,  # type: ignore[arg-type]
        outcome=outcome,
    )  # fmt: skip


def test_each_state_reads_in_words() -> None:
    awaiting = stored_view(_stored("awaiting", None), None)
    assert "After: not measured yet" in " ".join(awaiting.outcome)
    expired = stored_view(
        _stored("expired", {"state": "expired", "rule": "no new calibrator within 7d",
                            "deployed_model_version": None, "after": None}),
        None,
    )  # fmt: skip
    assert expired.state == "expired"
    assert "After: not measured; expired (no new calibrator within 7d)." in expired.outcome
    verified = stored_view(
        _stored("verified", {
            "state": "verified", "rule": "the rule", "deployed_model_version": "v1+cal=2",
            "after": {"ece": {"value": 0.02, "lower": 0.01, "upper": 0.03}, "labelled": 2000},
            "promised": {"ece": ECE},
        }),
        Switch("v1+cal=2", 1_790_000_600_000),
    )  # fmt: skip
    text = " ".join(verified.outcome)
    assert "After: ECE 0.0200 [0.0100, 0.0300] on 2,000 labelled events of v1, calibrator 2" in text
    assert "first prediction of v1, calibrator 2 arrived at 2026-09-21 14:23:20 UTC" in text


def test_the_map_drawn_is_the_artifacts_and_a_raw_score_refit_draws_none() -> None:
    drawn = curve(_recommendation(_artifact()))
    p = np.array([x for x, _ in drawn])
    assert np.allclose([g for _, g in drawn], apply(_artifact(), p))
    refit = _artifact(format="calmon.calibrator/v2", input="raw_score", method="raw_platt")
    assert curve(_recommendation(refit)) == ()
    assert curve(_recommendation(_artifact(method="identity"))) == ()

"""The recalibration part of a report: the recommended calibrator (its held-out scores
against the other candidates, its map drawn over the reliability diagram) and, once
deployed and measured, the outcome."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import numpy as np

from monitor.core.recalibrations import Recalibration
from monitor.metrics.calibrators import apply
from monitor.report.model import Candidate, Marker, RecalibrationView
from monitor.report.names import series_name, version_name
from monitor.store.recalibrations import Switch

#: Where a calibrator's map is drawn: enough points for isotonic steps to show.
CURVE_POINTS = np.linspace(0.001, 0.999, 200)


def _estimate(value: Mapping[str, float], digits: int = 4) -> str:
    return f"{value['value']:.{digits}f} [{value['lower']:.{digits}f}, {value['upper']:.{digits}f}]"


def candidates(recommendation: Mapping[str, Any]) -> tuple[Candidate, ...]:
    chosen = recommendation["recommended"]["method"]
    return tuple(
        Candidate(
            method=c["method"],
            log_loss=_estimate(c["held_out"]["log_loss"]),
            brier_score=_estimate(c["held_out"]["brier_score"]),
            ece=_estimate(c["held_out"]["ece"]),
            chosen=c["method"] == chosen,
        )
        for c in recommendation["candidates"]
    )


def curve(recommendation: Mapping[str, Any] | None) -> tuple[tuple[float, float], ...]:
    """The recommended map g(p), to draw over the reliability diagram (none: identity)."""
    if not recommendation or recommendation.get("status") != "recommended":
        return ()
    artifact = recommendation["recommended"]
    # A refit from the raw score replaces the calibrator: it maps no p to draw against.
    if artifact["method"] == "identity" or artifact.get("input", "probability") != "probability":
        return ()
    mapped = apply(artifact, CURVE_POINTS)
    return tuple(zip(CURVE_POINTS.tolist(), mapped.tolist(), strict=True))


def curve_label(recommendation: Mapping[str, Any] | None) -> str:
    """The legend of :func:`curve`."""
    if not recommendation or recommendation.get("status") != "recommended":
        return ""
    return f"recommended calibrator ({recommendation['recommended']['method']})"


#: Where the daemon's report says the artifact is.
DAEMON_ARTIFACT = " The artifact: calmon recalibrate, or GET /api/v1/recalibration."


def recommendation_summary(recommendation: Mapping[str, Any], where: str = DAEMON_ARTIFACT) -> str:
    """The recommendation in words; ``where``: where its artifact is to be had."""
    artifact = recommendation["recommended"]
    fitted = artifact.get("fitted_on", {})
    split = (
        f" Fitted on {fitted['fit_labelled']:,} labelled events of the window's earlier "
        f"part, scored on the {fitted['validation_labelled']:,} of its later part."
        if "fit_labelled" in fitted
        else ""
    )
    if artifact["method"] == "identity":
        return (
            "No recalibration needed: keeping the current calibrator (identity) scores as "
            "well as any fitted one on held-out events." + split
        )
    parameters = ", ".join(
        f"{k} {v:.3g}"
        for k, v in artifact.get("parameters", {}).items()
        if isinstance(v, int | float)
    )
    refit = (
        ", a refit of the calibrator from the raw score (it replaces the calibrator)"
        if artifact.get("input") == "raw_score"
        else ""
    )
    return (
        f"Recommended: {artifact['method']}"
        + (f" ({parameters})" if parameters else "")
        + refit
        + ", the lowest held-out log loss (the simpler map when within 0.001 nats)."
        + split
        + where
    )


def fitted_view(
    recommendation: Mapping[str, Any],
    version: str,
    segment: str,
    *,
    window: str = "the latest window",
    where: str = DAEMON_ARTIFACT,
) -> RecalibrationView:
    """A recommendation fitted for the report from the latest ``window`` (none stored;
    or a file's, for ``calmon evaluate --report``)."""
    title = f"Recalibration for {window} ({series_name(version, segment)})"
    if recommendation.get("status") != "recommended":
        return RecalibrationView(title, f"No recommendation: {recommendation.get('reason')}")
    return RecalibrationView(
        title, recommendation_summary(recommendation, where), candidates(recommendation)
    )


def _time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def stored_view(recalibration: Recalibration, switch: Switch | None) -> RecalibrationView:
    """A recommendation handed over by an alert's webhook, and what became of it."""
    series = recalibration.series
    title = f"Recalibration of {series_name(series.model_version, series.segment)}"
    recommendation = recalibration.recommendation
    summary = (
        f"Handed over with the alert that fired at {_time(recalibration.fired_ms)}. "
        + recommendation_summary(recommendation)
    )
    outcome = [*_before_after(recalibration), *_switch_line(recalibration, switch)]
    return RecalibrationView(
        title, summary, candidates(recommendation), recalibration.state, tuple(outcome)
    )


def _before_after(recalibration: Recalibration) -> list[str]:
    before = recalibration.before
    lines = [
        f"Before: ECE {_estimate(before['ece'])} on {before['labelled']:,} labelled events "
        "(the window that fired)."
    ]
    outcome = recalibration.outcome
    if outcome is None:
        return [*lines, "After: not measured yet (awaiting the new calibrator's labels)."]
    after = outcome.get("after")
    if after is None:  # expired: never measured
        return [*lines, f"After: not measured; {outcome['state']} ({outcome['rule']})."]
    promised = outcome.get("promised", {})
    lines.append(
        f"After: ECE {_estimate(after['ece'])} on {after['labelled']:,} labelled events of "
        f"{version_name(outcome['deployed_model_version'])}"
        + (f"; held-out ECE promised {_estimate(promised['ece'])}." if "ece" in promised else ".")
    )
    lines.append(f"Verdict: {outcome['state']} ({outcome['rule']}).")
    return lines


def _switch_line(recalibration: Recalibration, switch: Switch | None) -> list[str]:
    if switch is None:
        return []
    return [
        f"Switch: the first prediction of {version_name(switch.model_version)} arrived at "
        f"{_time(switch.at_ms)} (the marker on the charts)."
    ]


def switch_marker(recalibration: Recalibration, switch: Switch) -> Marker:
    calibrator = version_name(switch.model_version).rpartition("calibrator ")[2]
    return Marker(switch.at_ms, "switch", (f"calibrator {calibrator} live: {recalibration.state}",))

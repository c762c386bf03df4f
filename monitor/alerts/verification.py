"""Verify a recommended calibrator once it is deployed, and announce the verdict.

When an alert's webhook hands over a recommended calibrator, a recalibration is stored
``awaiting`` with the triggering window's ECE and log loss (``before``) and the
versions of the model that series already had. The producer deploys the calibrator
under a new ``calibrator_version``, so its events form a new series version,
``<version>+cal=<calibrator_version>`` (docs/messages.md). After each window job, for
every recalibration awaiting in that window:

- the *deployment* is a series of the same model, segment and window whose version
  is the alerted version with a new calibrator (same model version before ``+cal=``,
  not one of the versions known when the alert fired), once it has ECE
  (``evaluation.min_labelled`` labelled events) and at least half as many labelled
  events as the window that fired, so that its interval is comparably narrow (the most
  labelled one if several);
- the verdict is ``verified`` when the deployment's ECE, up to the upper end of its
  95% interval, is below the triggering window's ECE, else ``failed``;
- the verdict, with ECE and log loss before and after and what the recommendation
  promised (its held-out scores), is stored once and sent to the rule's webhooks
  (``calmon.recalibration.verified`` / ``.failed``), signed, from the outbox;
- a recalibration still awaiting ``evaluation.recalibration_expiry`` after its alert
  fired (never deployed, or deployed to too few labelled events) is decided
  ``expired`` the same way (``calmon.recalibration.expired``, no ``after``), so it does
  not await for ever.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson

from monitor.core.recalibrations import Recalibration
from monitor.core.results import WindowResult
from monitor.core.series import ALL, CALIBRATOR_SEPARATOR, without_calibrator
from monitor.core.times import wall_clock_ms
from monitor.rules.engine import Transition
from monitor.settings import WebhookSettings
from monitor.store import recalibrations
from monitor.store.db.engine import Engine
from monitor.store.outbox import NewDelivery

logger = logging.getLogger(__name__)

RULE = (
    "verified when the new calibrator's ECE, up to the upper end of its 95% interval, "
    "is below the ECE of the window that fired the alert"
)


def recalibration_of(
    transition: Transition, recommendation: Mapping[str, Any], results: Iterable[WindowResult]
) -> Recalibration | None:
    """What to store for a firing alert whose webhook carries a recommendation."""
    series, result = transition.alert.series, transition.result
    if recommendation.get("status") != "recommended" or series.model_version == ALL:
        return None  # nothing handed over, or no single version to deploy it to
    if "ece" not in result.values:
        return None
    known = sorted(
        {
            r.series.model_version
            for r in results
            if (r.series.model, r.series.segment) == (series.model, series.segment)
        }
        | {series.model_version}
    )
    return Recalibration(
        alert_id=transition.alert.alert_id,
        series=series,
        fired_ms=transition.alert.fired_ms or 0,
        webhooks=tuple(transition.rule.actions),
        before={**_measured(result), "known_versions": known},
        recommendation=dict(recommendation),
    )


def verdict(before: Mapping[str, Any], after: Mapping[str, Any]) -> str:
    return "verified" if after["ece"]["upper"] < before["ece"]["value"] else "failed"


def deployment(
    recalibration: Recalibration, results: Iterable[WindowResult]
) -> WindowResult | None:
    """The result of the series that runs the new calibrator, once it has ECE."""
    # Evidence comparable with the alert's: half its labelled events (and ECE at all).
    needed = recalibration.before["labelled"] // 2
    found = [r for r in new_calibrators(recalibration, results) if r.labelled >= needed]
    return max(found, key=lambda r: r.labelled, default=None)


def new_calibrators(
    recalibration: Recalibration, results: Iterable[WindowResult]
) -> list[WindowResult]:
    """Results of series that run a calibrator version not known when the alert fired
    (the alerted model version, segment and window), with ECE."""
    alerted = recalibration.series
    known = set(recalibration.before.get("known_versions", [alerted.model_version]))
    model_version = without_calibrator(alerted.model_version)
    return [
        r
        for r in results
        if (r.series.model, r.series.segment, r.series.window)
        == (alerted.model, alerted.segment, alerted.window)
        and CALIBRATOR_SEPARATOR in r.series.model_version
        and without_calibrator(r.series.model_version) == model_version
        and r.series.model_version not in known
        and "ece" in r.values
    ]


def expiry_rule(
    recalibration: Recalibration, results: Iterable[WindowResult], expiry_s: float
) -> str:
    """Why an awaiting recalibration expired, in words."""
    waited = f"no new calibrator measured within {_duration(expiry_s)} of the alert"
    seen = new_calibrators(recalibration, results)
    if not seen:
        version = without_calibrator(recalibration.series.model_version)
        return f"expired: {waited}: no series of {version} with a new calibrator version"
    most = max(seen, key=lambda r: r.labelled)
    needed = recalibration.before["labelled"] // 2
    return (
        f"expired: {waited}: {most.series.model_version} has {most.labelled} labelled "
        f"events in the window, {needed} needed (half the window that fired)"
    )


def _duration(seconds: float) -> str:
    days, rest = divmod(seconds, 86400)
    return f"{days:g}d" if not rest else f"{seconds:g}s"


class RecalibrationVerifier:
    def __init__(
        self,
        engine: Engine,
        webhooks: Mapping[str, WebhookSettings],
        *,
        expiry_s: float,
        clock_ms: Callable[[], int] = wall_clock_ms,
    ) -> None:
        self._engine = engine
        self._webhooks = dict(webhooks)
        self._expiry_s = expiry_s
        self._clock_ms = clock_ms

    def on_results(self, window: str, results: list[WindowResult]) -> list[Recalibration]:
        """Decide every awaiting recalibration of ``window`` that has its deployment,
        or that waited past the expiry for one."""
        decided = []
        for recalibration in recalibrations.awaiting(self._engine, window):
            now = self._clock_ms()
            outcome = self._outcome(recalibration, results, now)
            if outcome is not None and self._decide(recalibration, outcome, now):
                decided.append(recalibration)
        return decided

    def _decide(self, recalibration: Recalibration, outcome: dict[str, Any], now_ms: int) -> bool:
        """Store the outcome and enqueue its webhooks, once; False if already decided."""
        body = orjson.dumps(_payload(recalibration, outcome, now_ms)).decode()
        deliveries = [
            NewDelivery(
                idempotency_key=f"{recalibration.alert_id}:{name}:verdict",
                webhook=name,
                url=self._webhooks[name].url,
                body=body,
            )
            for name in recalibration.webhooks
            if name in self._webhooks
        ]
        stored = recalibrations.decide(
            self._engine,
            recalibration.alert_id,
            state=outcome["state"],
            outcome=outcome,
            decided_ms=now_ms,
            deliveries=deliveries,
        )
        if stored:
            logger.info(
                "recalibration %s",
                outcome["state"],
                extra={"alert_id": recalibration.alert_id, "rule": outcome["rule"]},
            )
        return stored

    def _outcome(
        self, recalibration: Recalibration, results: list[WindowResult], now_ms: int
    ) -> dict[str, Any] | None:
        """The verdict to record, or None while the recalibration still awaits one."""
        deployed = deployment(recalibration, results)
        common = {
            "before": _without_versions(recalibration.before),
            "promised": _promised(recalibration.recommendation),
        }
        if deployed is not None:
            after = _measured(deployed)
            return {
                "state": verdict(recalibration.before, after),
                "rule": RULE,
                "deployed_model_version": deployed.series.model_version,
                **common,
                "after": after,
            }
        if now_ms - recalibration.fired_ms < self._expiry_s * 1000:
            return None
        seen = new_calibrators(recalibration, results)
        return {
            "state": "expired",
            "rule": expiry_rule(recalibration, results, self._expiry_s),
            "deployed_model_version": (
                max(seen, key=lambda r: r.labelled).series.model_version if seen else None
            ),
            **common,
            "after": None,
        }


def _measured(result: WindowResult) -> dict[str, Any]:
    values = result.values
    ece = values["ece"]
    return {
        "model_version": result.series.model_version,
        "window_start": result.window_start.isoformat(),
        "window_end": result.window_end.isoformat(),
        "labelled": result.labelled,
        "ece": {
            "value": ece,
            "lower": values.get("ece_ci_lower", ece),
            "upper": values.get("ece_ci_upper", ece),
        },
        "log_loss": values.get("log_loss"),
    }


def _without_versions(before: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in before.items() if key != "known_versions"}


def _promised(recommendation: Mapping[str, Any]) -> dict[str, Any]:
    """The recommended candidate's held-out ECE and log loss."""
    method = recommendation["recommended"]["method"]
    scores = next(c for c in recommendation["candidates"] if c["method"] == method)
    return {
        "method": method,
        "ece": scores["held_out"]["ece"],
        "log_loss": scores["held_out"]["log_loss"],
    }


def _payload(recalibration: Recalibration, outcome: dict[str, Any], now_ms: int) -> dict[str, Any]:
    series = recalibration.series
    return {
        "type": f"calmon.recalibration.{outcome['state']}",
        "alert_id": recalibration.alert_id,
        "model": series.model,
        "model_version": series.model_version,
        "segment": series.segment,
        "window": series.window,
        "fired_at_ms": recalibration.fired_ms,
        "decided_at_ms": now_ms,
        **outcome,
    }

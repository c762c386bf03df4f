"""After each window job: verify deployed recalibrations (``verification.py``), evaluate
the rules, persist alert state and the webhook outbox in one transaction, then tell
Alertmanager.

Only the replica that ran the window job (it claimed the slot) evaluates its rules, so
two replicas never race on the same alert.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, get_args

from prometheus_client import CollectorRegistry, Counter

from monitor.alerts.alertmanager import AlertmanagerNotifier
from monitor.alerts.render import alert_labels, rendered_annotations
from monitor.alerts.verification import RecalibrationVerifier, recalibration_of
from monitor.alerts.webhooks import deliveries
from monitor.core.alerts import AlertState, StoredAlert
from monitor.core.results import WindowResult
from monitor.core.times import wall_clock_ms
from monitor.rules.engine import Transition, TransitionKind, evaluate_rules
from monitor.rules.model import Rule
from monitor.settings import Settings
from monitor.store.alerts import alert_transaction
from monitor.store.db.engine import Engine
from monitor.store.results import latest_results
from monitor.windows.action import recommended_action
from monitor.windows.recalibration import UNAVAILABLE, recalibration

logger = logging.getLogger(__name__)

#: Why an alert resolved with no evidence either way (``rules/engine.py``).
NO_DATA = "no events of the series in the window"


class AlertPipeline:
    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        rules: Sequence[Rule],
        registry: CollectorRegistry,
        *,
        notifier: AlertmanagerNotifier | None,
        clock_ms: Callable[[], int] = wall_clock_ms,
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._rules = list(rules)
        self._by_name = {rule.name: rule for rule in self._rules}
        self._needs_other_windows = any(
            condition.relative_to is not None
            for rule in self._rules
            for condition in rule.conditions
        )
        self._notifier = notifier
        self._clock_ms = clock_ms
        self.verifier = RecalibrationVerifier(
            engine,
            settings.webhooks,
            expiry_s=settings.evaluation.recalibration_expiry,
            clock_ms=clock_ms,
        )
        self.transitions = Counter(
            "calmon_alert_transitions",
            "Alert state changes by rule and kind (pending, firing, resolved, cancelled).",
            ["rule", "kind"],
            registry=registry,
        )
        for rule in self._rules:
            for kind in get_args(TransitionKind):
                self.transitions.labels(rule.name, kind)

    def on_results(
        self,
        window: str,
        results: list[WindowResult],
        covers: Callable[[str], bool] | None = None,
    ) -> list[Transition]:
        """Rules on a tick's results: every series with events of the models ``covers``
        accepts (default: the models among the results), whose other alerts in this
        window resolve for want of data (``rules/engine.py``)."""
        self.verifier.on_results(window, results)
        if not self._rules:
            return []
        now = self._clock_ms()
        # Other windows' latest results only matter to rules relative to another window.
        others = (
            {result.series: result for result in latest_results(self._engine)}
            if self._needs_other_windows
            else {}
        )
        with alert_transaction(self._engine) as transaction:
            stored = transaction.load(window)
            prior = {
                key: alert.state
                for key, alert in stored.items()
                if alert.state.rule in self._by_name  # alerts of deleted rules: left to expire
            }
            states, transitions = evaluate_rules(
                self._rules, results, prior, now, other_windows=others, window=window, covers=covers
            )
            changed = {key: state for key, state in states.items() if prior.get(key) != state}
            no_data = {t.alert.fingerprint for t in transitions if t.no_data}
            transaction.save(
                {
                    key: self._rendered(state, no_data=key in no_data)
                    for key, state in changed.items()
                },
                set(prior) - set(states),
            )
            base_url = self._settings.http.base_url()
            for transition in transitions:
                if transition.kind == "firing" and transition.rule.actions:
                    recommendation = self._recalibration(transition)
                    transaction.enqueue_deliveries(
                        deliveries(
                            transition,
                            self._settings.webhooks,
                            base_url,
                            recommendation,
                            self._action(transition),
                        ),
                        now,
                    )
                    awaiting = recalibration_of(transition, recommendation, results)
                    if awaiting is not None:
                        transaction.record_recalibration(awaiting)
        for transition in transitions:
            self.transitions.labels(transition.rule.name, transition.kind).inc()
            logger.info(
                "alert %s",
                transition.kind,
                extra={
                    "rule": transition.rule.name,
                    "alert_id": transition.alert.alert_id,
                    "series": _series_name(transition),
                    "values": dict(transition.alert.values),
                    **({"reason": NO_DATA} if transition.no_data else {}),
                },
            )
        if self._notifier is not None and any(
            t.kind in ("firing", "resolved") for t in transitions
        ):
            self._notifier.send()
        return transitions

    def _recalibration(self, transition: Transition) -> dict[str, Any]:
        """The recommended calibrator for the webhook; a fit that fails never holds the
        alert back (the payload says why instead)."""
        result = transition.result
        try:
            return recalibration(
                self._engine,
                transition.alert.series,
                window_start=result.window_start,
                window_end=result.window_end,
                evaluated_at=result.evaluated_at,
                settings=self._settings.evaluation,
            )
        except Exception as error:  # a bug in a fit must not lose the alert
            logger.exception("recalibration failed", extra={"series": _series_name(transition)})
            return {"status": UNAVAILABLE, "reason": f"the fit failed: {type(error).__name__}"}

    def _action(self, transition: Transition) -> dict[str, Any]:
        """Recalibrate, retrain or neither; like the fit, never holds the alert back."""
        try:
            return recommended_action(self._engine, transition.result, self._settings.evaluation)
        except Exception as error:
            logger.exception("action comparison failed", extra={"series": _series_name(transition)})
            reason = f"the comparison failed: {type(error).__name__}"
            return {
                "recommendation": "none",
                "evidence": {"status": UNAVAILABLE, "reasons": [reason]},
            }

    def _rendered(self, state: AlertState, *, no_data: bool = False) -> StoredAlert:
        rule = self._by_name[state.rule]
        annotations = rendered_annotations(state, rule)
        if no_data:  # the values shown are the last ones with evidence: say why it ended
            annotations["resolved_reason"] = NO_DATA
        return StoredAlert(state, alert_labels(state, rule), annotations, None)


def _series_name(transition: Transition) -> str:
    series = transition.alert.series
    return f"{series.model}/{series.model_version}/{series.segment}/{series.window}"

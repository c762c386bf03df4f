"""Recalibration webhooks, delivered from an outbox in the store.

When an alert fires, a delivery row per webhook is written in the same transaction as
the alert's state (so a firing alert and its deliveries exist together or not at all).
A delivery loop, on every replica and one lane per webhook, takes a due row with a lease,
POSTs it signed within one overall deadline (``timeout``: ``alerts/deadline.py``), and
records the outcome if the lease is still its own (``store/outbox.py``):

- 2xx: ``delivered``; never sent again, also after a restart;
- anything else (status, timeout, refused): retried after
  ``min(backoff_max, backoff_initial * 2^(attempt-1))`` times a jitter in [0.5, 1.0];
- after ``max_attempts``: ``dead`` (dead-lettered), counted, kept for inspection.

Delivery is at-least-once: if the process dies after the receiver accepted a delivery
but before the row says so, it is sent again with the same ``webhook-id`` (the
idempotency key), which is what receivers de-duplicate on.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import orjson
from prometheus_client import CollectorRegistry, Counter

from monitor.alerts.deadline import GRACE_S, attempt_client, post_within
from monitor.alerts.render import rendered_annotations
from monitor.alerts.signing import signed_headers, signing_key
from monitor.core.errors import UserError
from monitor.core.redaction import redact_text, url_secrets
from monitor.core.results import WindowResult
from monitor.core.times import wall_clock_ms
from monitor.rules.engine import Transition
from monitor.settings import WebhookSettings
from monitor.store import outbox
from monitor.store.db.engine import Engine
from monitor.store.outbox import DEAD, DELIVERED, PENDING, Delivery, NewDelivery

logger = logging.getLogger(__name__)
#: A delivery taken by one replica is invisible to the others for its attempt's deadline
#: plus this margin (for the store round trips before and after the attempt).
LEASE_MARGIN_MS = 30_000
#: The lane of deliveries whose webhook is no longer configured: they are dead-lettered.
UNCONFIGURED = "(unconfigured)"


class MissingWebhookSecret(UserError, RuntimeError):
    """A webhook's signing key is not in the environment, or is not a valid secret."""


def webhook_key(settings: WebhookSettings, name: str) -> bytes:
    value = os.environ.get(settings.secret_env)
    if not value:
        raise MissingWebhookSecret(
            f"webhook {name}: signing key not set (environment variable {settings.secret_env})"
        )
    try:
        return signing_key(value)
    except ValueError as exc:
        raise MissingWebhookSecret(
            f"webhook {name}: signing key in {settings.secret_env} is invalid: {exc}"
        ) from None


def payload(
    transition: Transition,
    base_url: str,
    recalibration: Mapping[str, Any] | None = None,
    action: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """What a recalibration pipeline receives: the alert, its evidence and, when they
    were computed, the recommended calibrator (``docs/recalibration.md``) and whether to
    recalibrate or retrain (``windows/action.py``)."""
    alert, rule, result = transition.alert, transition.rule, transition.result
    series = alert.series
    query = httpx.QueryParams(
        model=series.model,
        model_version=series.model_version,
        segment=series.segment,
        window=series.window,
        metric=rule.conditions[0].metric,
    )
    return {
        "type": "calmon.alert.firing",
        "alert_id": alert.alert_id,
        "rule": rule.name,
        "severity": rule.severity,
        "model": series.model,
        "model_version": series.model_version,
        "segment": series.segment,
        "window": series.window,
        "fired_at_ms": alert.fired_ms,
        **({} if alert.class_name is None else _class_fields(alert.class_name, result)),
        "window_start": result.window_start.isoformat(),
        "window_end": result.window_end.isoformat(),
        "predictions": result.predictions,
        "labelled": result.labelled,
        "trigger": dict(alert.values),
        "metrics": dict(result.values),
        "reliability_bins": [dataclasses.asdict(b) for b in result.reliability_bins],
        "history_url": f"{base_url}/api/v1/history?{query}",
        "annotations": rendered_annotations(alert, rule),
        "recalibration": (
            dict(recalibration)
            if recalibration is not None
            else {"status": "unavailable", "reason": "not computed for this alert"}
        ),
        **_action_fields(action),
    }


def _class_fields(name: str, result: WindowResult) -> dict[str, Any]:
    """A per-class alert's class, with that class's values of the result."""
    found = result.classes.get(name)
    return {"class": name, "class_metrics": {} if found is None else dict(found.values)}


def _action_fields(action: Mapping[str, Any] | None) -> dict[str, Any]:
    if action is None:
        evidence = {"status": "unavailable", "reasons": ["not computed for this alert"]}
        return {"recommendation": "none", "recommendation_evidence": evidence}
    return {
        "recommendation": action["recommendation"],
        "recommendation_evidence": action["evidence"],
    }


def deliveries(
    transition: Transition,
    webhooks: Mapping[str, WebhookSettings],
    base_url: str,
    recalibration: Mapping[str, Any] | None = None,
    action: Mapping[str, Any] | None = None,
) -> list[NewDelivery]:
    """One outbox delivery per action of a firing alert, keyed by its episode."""
    body = orjson.dumps(payload(transition, base_url, recalibration, action)).decode()
    return [
        NewDelivery(
            idempotency_key=f"{transition.alert.alert_id}:{name}",
            webhook=name,
            url=webhooks[name].url,
            body=body,
        )
        for name in transition.rule.actions
    ]


class DeliveryMetrics:
    OUTCOMES = ("delivered", "retry", "dead", "lease_lost")

    def __init__(self, registry: CollectorRegistry, webhooks: Iterable[str] = ()) -> None:
        self.outcomes = Counter(
            "calmon_webhook_deliveries",
            "Webhook delivery attempts by outcome: delivered, retry (failed, will retry), "
            "dead (failed for the last time, dead-lettered), lease_lost (the attempt "
            "outlived its lease and another replica took the delivery over: its outcome "
            "was dropped).",
            ["webhook", "outcome"],
            registry=registry,
        )
        for webhook in webhooks:  # zeros from the first scrape, so increase() works
            for outcome in self.OUTCOMES:
                self.outcomes.labels(webhook, outcome)


def backoff_ms(settings: WebhookSettings, attempt: int, rng: random.Random) -> int:
    """Exponential backoff with jitter after the ``attempt``-th failure (1-based)."""
    base = min(settings.backoff_max, settings.backoff_initial * 2 ** (attempt - 1))
    return int(base * rng.uniform(0.5, 1.0) * 1000)


class WebhookDeliverer:
    """Delivers the outbox, one lane per webhook.

    A lane takes one due delivery at a time with a lease of the attempt's deadline
    (``timeout``) plus a margin, so the lease always covers the attempt it was taken
    for; the daemon runs the lanes concurrently (:meth:`lanes`), so a slow receiver
    delays only its own deliveries.
    """

    def __init__(
        self,
        engine: Engine,
        webhooks: Mapping[str, WebhookSettings],
        metrics: DeliveryMetrics,
        *,
        clock_ms: Callable[[], int] = wall_clock_ms,
        client: httpx.Client | None = None,
        seed: int | None = None,
        lease_margin_ms: int = LEASE_MARGIN_MS,
    ) -> None:
        self._engine = engine
        self._webhooks = dict(webhooks)
        self._keys = {name: webhook_key(s, name) for name, s in self._webhooks.items()}
        self._metrics = metrics
        self._clock_ms = clock_ms
        self._client = client or attempt_client()
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()  # lanes run in threads of their own
        self._lease_margin_ms = lease_margin_ms

    def close(self) -> None:
        self._client.close()

    def lanes(self) -> dict[str, Callable[[], int]]:
        """One job per webhook for the scheduler, plus one that dead-letters deliveries
        of webhooks no longer configured."""
        jobs: dict[str, Callable[[], int]] = {
            name: functools.partial(self.deliver_due, webhook=name) for name in self._webhooks
        }
        jobs[UNCONFIGURED] = self.dead_letter_unconfigured
        return jobs

    def deliver_due(self, limit: int = 50, *, webhook: str | None = None) -> int:
        """Attempt due deliveries once each, up to ``limit`` per webhook; returns how many
        were attempted. With ``webhook``, that webhook's lane only; without, every lane
        at once (waited for) and the unconfigured webhooks' deliveries."""
        if webhook is not None:
            return self._lane(webhook, limit)
        attempted = self.dead_letter_unconfigured(limit)
        with ThreadPoolExecutor(max_workers=max(1, len(self._webhooks))) as pool:
            lanes = [pool.submit(self._lane, name, limit) for name in self._webhooks]
            return attempted + sum(lane.result() for lane in lanes)

    def dead_letter_unconfigured(self, limit: int = 50) -> int:
        done, started_ms = 0, self._clock_ms()
        while done < limit:
            row = outbox.take_next(
                self._engine,
                self._clock_ms(),
                LEASE_MARGIN_MS,
                not_webhooks=self._webhooks,
                due_by_ms=started_ms,
            )
            if row is None:
                break
            self._record(row, None, f"webhook {row.webhook!r} is no longer configured")
            done += 1
        return done

    def _lane(self, webhook: str, limit: int) -> int:
        settings = self._webhooks[webhook]
        lease_ms = int((settings.timeout + GRACE_S) * 1000) + self._lease_margin_ms
        attempted, started_ms = 0, self._clock_ms()
        while attempted < limit:
            # Due by the pass's start: a failed row's retry waits for a later pass.
            row = outbox.take_next(
                self._engine, self._clock_ms(), lease_ms, webhook=webhook, due_by_ms=started_ms
            )
            if row is None:
                break
            self._attempt(row, settings)
            attempted += 1
        return attempted

    def _attempt(self, row: Delivery, settings: WebhookSettings) -> None:
        body = row.body.encode()
        headers = signed_headers(
            self._keys[row.webhook], body, row.idempotency_key, int(time.time())
        )
        error = post_within(self._client, row.url, body, headers, settings.timeout)
        if error is not None:
            # httpx's error text repeats the URL, which may carry credentials.
            error = redact_text(error, url_secrets(row.url))[:500]
        self._record(row, settings, error)

    def _record(self, row: Delivery, settings: WebhookSettings | None, error: str | None) -> None:
        now = self._clock_ms()
        attempts = row.attempts + 1
        next_attempt_ms = None
        if error is None:
            state = outcome = DELIVERED
        elif settings is None or attempts >= settings.max_attempts:
            state = outcome = DEAD
        else:
            state, outcome = PENDING, "retry"
            with self._rng_lock:
                next_attempt_ms = now + backoff_ms(settings, attempts, self._rng)
        recorded = outbox.record_attempt(
            self._engine,
            row,
            error=error,
            state=state,
            now_ms=now,
            next_attempt_ms=next_attempt_ms,
        )
        if not recorded:
            outcome = "lease_lost"
            logger.warning(
                "webhook attempt outlived its lease; another replica took the delivery over",
                extra={"webhook": row.webhook, "key": row.idempotency_key, "error": error},
            )
        elif state == DEAD:
            logger.error(
                "webhook delivery dead-lettered",
                extra={"webhook": row.webhook, "key": row.idempotency_key, "error": error},
            )
        elif state == PENDING:
            logger.warning(
                "webhook delivery failed, will retry",
                extra={"webhook": row.webhook, "attempt": attempts, "error": error},
            )
        self._metrics.outcomes.labels(row.webhook, outcome).inc()

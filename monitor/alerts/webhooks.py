"""Recalibration webhooks, delivered from an outbox in the store.

When an alert fires, a delivery row per webhook is written in the same transaction as
the alert's state (so a firing alert and its deliveries exist together or not at all).
A delivery loop, on every replica, takes due rows with a lease, POSTs them signed, and
records the outcome:

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
import logging
import os
import random
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import httpx
import orjson
from prometheus_client import CollectorRegistry, Counter

from monitor.alerts.render import rendered_annotations
from monitor.alerts.signing import signed_headers, signing_key
from monitor.core.errors import UserError
from monitor.core.times import wall_clock_ms
from monitor.rules.engine import Transition
from monitor.settings import WebhookSettings
from monitor.store import outbox
from monitor.store.db.engine import Engine
from monitor.store.outbox import DEAD, DELIVERED, PENDING, Delivery, NewDelivery

logger = logging.getLogger(__name__)
#: A delivery taken by one replica is invisible to the others for this long.
LEASE_MARGIN_MS = 30_000


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
    transition: Transition, base_url: str, recalibration: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """What a recalibration pipeline receives: the alert, its evidence and, when it was
    computed, the recommended calibrator (``docs/recalibration.md``)."""
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
    }


def deliveries(
    transition: Transition,
    webhooks: Mapping[str, WebhookSettings],
    base_url: str,
    recalibration: Mapping[str, Any] | None = None,
) -> list[NewDelivery]:
    """One outbox delivery per action of a firing alert, keyed by its episode."""
    body = orjson.dumps(payload(transition, base_url, recalibration)).decode()
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
    OUTCOMES = ("delivered", "retry", "dead")

    def __init__(self, registry: CollectorRegistry, webhooks: Iterable[str] = ()) -> None:
        self.outcomes = Counter(
            "calmon_webhook_deliveries",
            "Webhook delivery attempts by outcome: delivered, retry (failed, will retry), "
            "dead (failed for the last time, dead-lettered).",
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
    def __init__(
        self,
        engine: Engine,
        webhooks: Mapping[str, WebhookSettings],
        metrics: DeliveryMetrics,
        *,
        clock_ms: Callable[[], int] = wall_clock_ms,
        client: httpx.Client | None = None,
        seed: int | None = None,
    ) -> None:
        self._engine = engine
        self._webhooks = dict(webhooks)
        self._keys = {name: webhook_key(s, name) for name, s in self._webhooks.items()}
        self._metrics = metrics
        self._clock_ms = clock_ms
        self._client = client or httpx.Client()
        self._rng = random.Random(seed)

    def close(self) -> None:
        self._client.close()

    def deliver_due(self, limit: int = 50) -> int:
        """Attempt every due delivery once; returns how many were attempted."""
        taken = outbox.take_due(self._engine, self._clock_ms(), limit, self._lease_ms)
        for delivery in taken:
            self._attempt(delivery)
        return len(taken)

    def _lease_ms(self, webhook: str) -> int:
        settings = self._webhooks.get(webhook)
        return int((settings.timeout if settings else 10.0) * 1000) + LEASE_MARGIN_MS

    def _attempt(self, row: Delivery) -> None:
        settings = self._webhooks.get(row.webhook)
        error: str | None
        if settings is None:
            error = f"webhook {row.webhook!r} is no longer configured"
        else:
            body = row.body.encode()
            headers = signed_headers(
                self._keys[row.webhook], body, row.idempotency_key, int(time.time())
            )
            try:
                response = self._client.post(
                    row.url, content=body, headers=headers, timeout=settings.timeout
                )
                error = None if response.is_success else f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"[:500]
        self._record(row, settings, error)

    def _record(self, row: Delivery, settings: WebhookSettings | None, error: str | None) -> None:
        now = self._clock_ms()
        attempts = row.attempts + 1
        next_attempt_ms = None
        if error is None:
            state = outcome = DELIVERED
        elif settings is None or attempts >= settings.max_attempts:
            state = outcome = DEAD
            logger.error(
                "webhook delivery dead-lettered",
                extra={"webhook": row.webhook, "key": row.idempotency_key, "error": error},
            )
        else:
            state, outcome = PENDING, "retry"
            next_attempt_ms = now + backoff_ms(settings, attempts, self._rng)
            logger.warning(
                "webhook delivery failed, will retry",
                extra={"webhook": row.webhook, "attempt": attempts, "error": error},
            )
        outbox.record_attempt(
            self._engine,
            row,
            error=error,
            state=state,
            now_ms=now,
            next_attempt_ms=next_attempt_ms,
        )
        self._metrics.outcomes.labels(row.webhook, outcome).inc()

"""Sends alert state to Alertmanager's API v2 (``POST /api/v2/alerts``).

Alertmanager expects the sender to re-send firing alerts regularly: each firing alert
carries ``endsAt`` four resend intervals ahead, so if calmon stops sending, Alertmanager
resolves it by itself. A resolved alert is sent with ``endsAt`` = the time it resolved,
and re-sent for a while in case a send was lost. Every configured URL (an HA pair)
gets every alert; Alertmanager de-duplicates.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import httpx
from prometheus_client import CollectorRegistry, Counter

from monitor.core.alerts import StoredAlert
from monitor.core.times import iso_z, wall_clock_ms
from monitor.settings import AlertmanagerSettings
from monitor.store import claims
from monitor.store.alerts import alerts_to_send, mark_sent
from monitor.store.db.engine import Engine

logger = logging.getLogger(__name__)


def alertmanager_alert(
    alert: StoredAlert, now_ms: int, resend_interval_s: float, generator_url: str
) -> dict[str, Any]:
    state = alert.state
    starts = state.fired_ms or state.active_since_ms
    ends = (
        state.resolved_ms
        if state.state == "resolved" and state.resolved_ms is not None
        else now_ms + int(4 * resend_interval_s * 1000)
    )
    return {
        "labels": alert.labels,
        "annotations": alert.annotations,
        "startsAt": iso_z(starts),
        "endsAt": iso_z(ends),
        "generatorURL": generator_url,
    }


class AlertmanagerNotifier:
    def __init__(
        self,
        engine: Engine,
        settings: AlertmanagerSettings,
        registry: CollectorRegistry,
        *,
        base_url: str,
        clock_ms: Callable[[], int] = wall_clock_ms,
        client: httpx.Client | None = None,
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._base_url = base_url
        self._clock_ms = clock_ms
        self._client = client or httpx.Client()
        self.sends = Counter(
            "calmon_alertmanager_sends",
            "POSTs of alerts to Alertmanager by URL and outcome (success, failure).",
            ["url", "outcome"],
            registry=registry,
        )
        for url in settings.urls:
            for outcome in ("success", "failure"):
                self.sends.labels(url, outcome)

    def close(self) -> None:
        self._client.close()

    def resend(self, owner: str) -> None:
        """Re-send alert state, once per ``resend_interval`` across replicas."""
        claims.run_once(
            self._engine,
            "alertmanager",
            self._settings.resend_interval,
            owner,
            self._clock_ms,
            lambda _now: self.send(),
        )

    def send(self) -> int:
        """POST every firing alert and every recently resolved one; returns how many."""
        now = self._clock_ms()
        keep_resolved_ms = int(self._settings.resolved_resend_for * 1000)
        # Resolved alerts past their resend period are done: forgotten.
        alerts = alerts_to_send(self._engine, resolved_before_ms=now - keep_resolved_ms)
        if not alerts or not self._settings.urls:
            return 0
        body = [
            alertmanager_alert(
                alert,
                now,
                self._settings.resend_interval,
                f"{self._base_url}/api/v1/alerts?fingerprint={key}",
            )
            for key, alert in alerts.items()
        ]
        delivered = False
        for url in self._settings.urls:
            endpoint = url.rstrip("/") + "/api/v2/alerts"
            try:
                response = self._client.post(endpoint, json=body, timeout=self._settings.timeout)
                response.raise_for_status()
                delivered = True
                self.sends.labels(url, "success").inc()
            except httpx.HTTPError as exc:
                self.sends.labels(url, "failure").inc()
                logger.warning("alertmanager send failed", extra={"url": url, "error": str(exc)})
        if delivered:
            mark_sent(self._engine, alerts, now)
        return len(body)

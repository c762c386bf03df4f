"""Sends alert state to Alertmanager's API v2 (``POST /api/v2/alerts``).

Alertmanager expects the sender to re-send firing alerts regularly: each firing alert
carries ``endsAt`` four resend intervals ahead, so if calmon stops sending, Alertmanager
resolves it by itself. A resolved alert is sent with ``endsAt`` = the time it resolved,
and re-sent for a while in case a send was lost. Every configured URL (an HA pair)
gets every alert; Alertmanager de-duplicates.

Authentication (basic or a bearer token) and TLS (a CA, a client certificate) come from
``alertmanager.*`` settings, their secrets from the environment. A URL is never shown
as it is: in the ``url`` label, in logs and in errors its userinfo and query values are
masked (``core/redaction.py``), since it may still carry credentials.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable
from typing import Any

import httpx
from prometheus_client import CollectorRegistry, Counter

from monitor.core.alerts import StoredAlert
from monitor.core.errors import UserError
from monitor.core.redaction import redact_text, redact_url, url_secrets
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


class AlertmanagerTLSError(UserError, ValueError):
    """A CA bundle, certificate or key of ``alertmanager.*`` cannot be loaded."""


def alertmanager_client(settings: AlertmanagerSettings) -> httpx.Client:
    """An HTTP client with the configured authentication and TLS."""
    auth: httpx.Auth | None = None
    headers = {}
    if settings.username and settings.password is not None:
        auth = httpx.BasicAuth(settings.username, settings.password.get_secret_value())
    elif settings.bearer_token is not None:
        headers["Authorization"] = f"Bearer {settings.bearer_token.get_secret_value()}"
    return httpx.Client(auth=auth, headers=headers, verify=tls_context(settings))


def tls_context(settings: AlertmanagerSettings) -> ssl.SSLContext:
    try:
        context = ssl.create_default_context(cafile=settings.ca_file)
        if settings.cert_file:
            context.load_cert_chain(settings.cert_file, settings.key_file)
    except (OSError, ssl.SSLError) as exc:
        files = ", ".join(
            f"{name} {path}"
            for name, path in (
                ("ca_file", settings.ca_file),
                ("cert_file", settings.cert_file),
                ("key_file", settings.key_file),
            )
            if path
        )
        raise AlertmanagerTLSError(f"alertmanager TLS: cannot load {files}: {exc}") from None
    if settings.insecure_skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def secrets_of(settings: AlertmanagerSettings) -> list[str]:
    """Every secret of these settings, to mask wherever error text might quote it."""
    found = [s.get_secret_value() for s in (settings.password, settings.bearer_token) if s]
    for url in settings.urls:
        found += url_secrets(url)
    return found


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
        self._client = client or alertmanager_client(settings)
        self._secrets = secrets_of(settings)
        self.sends = Counter(
            "calmon_alertmanager_sends",
            "POSTs of alerts to Alertmanager by URL (credentials masked) and outcome "
            "(success, failure).",
            ["url", "outcome"],
            registry=registry,
        )
        for url in settings.urls:
            for outcome in ("success", "failure"):
                self.sends.labels(redact_url(url), outcome)

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
                self.sends.labels(redact_url(url), "success").inc()
            except httpx.HTTPError as exc:
                self.sends.labels(redact_url(url), "failure").inc()
                # httpx's error text repeats the URL, credentials and all.
                logger.warning(
                    "alertmanager send failed",
                    extra={"url": redact_url(url), "error": redact_text(str(exc), self._secrets)},
                )
        if delivered:
            mark_sent(self._engine, alerts, now)
        return len(body)

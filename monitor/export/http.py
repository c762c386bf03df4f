"""The daemon's HTTP endpoints.

- ``/metrics``: Prometheus text format (window results and operational metrics);
- ``/healthz``: the ingest loop and the scheduler go round (503 if stuck);
- ``/readyz``: the store is reachable and migrated, the consumer connected (503 if not);
- ``/api/v1/series``: latest results of every series (JSON);
- ``/api/v1/history?model=M&metric=ece[&model_version=&segment=&window=&since=]``;
- ``/api/v1/reliability?model=M[&model_version=__all__&segment=__all__&window=]``;
- ``/api/v1/recalibration?model=M[&model_version=&segment=&window=]``: recommended
  calibrators, newest first, with their verdicts (docs/recalibration.md);
- ``/api/v1/alerts[?fingerprint=]``;
- ``/api/v1/openapi.json``: the OpenAPI document of all of these (``openapi.py``);
  every parameter is checked as ``params.py`` says, a bad one is a 400 naming it.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from monitor.core.recalibrations import Recalibration
from monitor.core.results import WindowResult
from monitor.core.times import wall_clock_ms
from monitor.export import openapi
from monitor.export.params import ENDPOINTS, BadParameter, parse
from monitor.export.server import HttpServer, ServerLimits
from monitor.export.web_config import Authenticator, WebConfig
from monitor.store.alerts import load_alerts
from monitor.store.db.engine import Engine
from monitor.store.recalibrations import load as load_recalibrations
from monitor.store.results import latest_results, metric_history

logger = logging.getLogger(__name__)

PROBE_PATHS = ("/healthz", "/readyz")

ReadinessCheck = Callable[[], dict[str, str | None]]  # check name -> problem (None = ok)


def _no_problems() -> dict[str, str | None]:
    return {}


def result_json(result: WindowResult) -> dict[str, Any]:
    return {
        "model": result.series.model,
        "model_version": result.series.model_version,
        "segment": result.series.segment,
        "window": result.series.window,
        "evaluated_at": result.evaluated_at.isoformat(),
        "window_start": result.window_start.isoformat(),
        "window_end": result.window_end.isoformat(),
        "predictions": result.predictions,
        "labelled": result.labelled,
        "values": dict(result.values),
        "reliability_bins": [dataclasses.asdict(b) for b in result.reliability_bins],
        "drift_bins": [dataclasses.asdict(b) for b in result.drift_bins],
        "reference": None if result.reference is None else result.reference.to_json(),
        "classes": {
            name: {
                "values": dict(found.values),
                "reliability_bins": [dataclasses.asdict(b) for b in found.reliability_bins],
            }
            for name, found in result.classes.items()
        },
    }


def recalibration_json(recalibration: Recalibration) -> dict[str, Any]:
    series = recalibration.series
    return {
        "alert_id": recalibration.alert_id,
        "model": series.model,
        "model_version": series.model_version,
        "segment": series.segment,
        "window": series.window,
        "fired_at_ms": recalibration.fired_ms,
        "state": recalibration.state,
        "decided_at_ms": recalibration.decided_ms,
        "recommendation": dict(recalibration.recommendation),
        "outcome": None if recalibration.outcome is None else dict(recalibration.outcome),
    }


class HttpApi:
    def __init__(
        self,
        *,
        engine: Engine,
        registry: CollectorRegistry,
        readiness: ReadinessCheck,
        liveness: ReadinessCheck = _no_problems,
        window_metrics: Callable[[], bytes] = bytes,
    ) -> None:
        """``window_metrics``: the window results' part of /metrics, already rendered
        (``exposition.py``), served after the registry's families."""
        self.engine = engine
        self.registry = registry
        self.window_metrics = window_metrics
        self.readiness = readiness
        self.liveness = liveness
        self._openapi = openapi.document()

    def handle(self, path: str, query: dict[str, str]) -> tuple[int, str, bytes]:
        if path == "/metrics":
            return 200, CONTENT_TYPE_LATEST, generate_latest(self.registry) + self.window_metrics()
        if path == "/healthz":
            problems = {name: p for name, p in self.liveness().items() if p is not None}
            if not problems:
                return 200, "text/plain", b"ok\n"
            return 503, "application/json", orjson.dumps({"alive": False, "problems": problems})
        if path == "/readyz":
            problems = {name: p for name, p in self.readiness().items() if p is not None}
            status = 503 if problems else 200
            return (
                status,
                "application/json",
                orjson.dumps({"ready": not problems, "problems": problems}),
            )
        if path in ENDPOINTS:
            try:
                params = parse(path, query, now_ms=wall_clock_ms())
            except BadParameter as error:
                return self._error(400, str(error))
            return self._api(path, params)
        return self._error(404, f"no such endpoint: {path}")

    def _api(self, path: str, params: dict[str, Any]) -> tuple[int, str, bytes]:
        if path == "/api/v1/series":
            return self._json([result_json(r) for r in latest_results(self.engine)])
        if path == "/api/v1/history":
            rows = metric_history(
                self.engine,
                model_id=params["model"],
                metric=params["metric"],
                model_version=params.get("model_version"),
                segment=params.get("segment"),
                window=params.get("window"),
                since_ms=params.get("since", 0),
            )
            return self._json(rows)
        if path == "/api/v1/reliability":
            matches = [
                result_json(r)
                for r in latest_results(self.engine)
                if r.series.model == params["model"]
                and r.series.model_version == params["model_version"]
                and r.series.segment == params["segment"]
                and ("window" not in params or r.series.window == params["window"])
            ]
            return self._json(matches)
        if path == "/api/v1/recalibration":
            return self._json(
                [
                    recalibration_json(r)
                    for r in load_recalibrations(self.engine, model=params["model"])
                    if all(
                        params.get(name) in (None, getattr(r.series, name))
                        for name in ("model_version", "segment", "window")
                    )
                ]
            )
        if path == "/api/v1/alerts":
            alerts = load_alerts(self.engine)
            return self._json(
                [
                    {
                        "fingerprint": key,
                        "alert_id": alert.state.alert_id,
                        "state": alert.state.state,
                        "active_since_ms": alert.state.active_since_ms,
                        "fired_ms": alert.state.fired_ms,
                        "resolved_ms": alert.state.resolved_ms,
                        "last_sent_to_alertmanager_ms": alert.last_sent_ms,
                        "labels": alert.labels,
                        "annotations": alert.annotations,
                        "values": dict(alert.state.values),
                    }
                    for key, alert in sorted(alerts.items())
                    if "fingerprint" not in params or params["fingerprint"] == key
                ]
            )
        return self._json(self._openapi)

    @staticmethod
    def _json(body: Any) -> tuple[int, str, bytes]:
        return 200, "application/json", orjson.dumps(body)

    @staticmethod
    def _error(status: int, message: str) -> tuple[int, str, bytes]:
        return status, "application/json", orjson.dumps({"error": message})


def serve(
    api: HttpApi,
    host: str,
    port: int,
    *,
    limits: ServerLimits | None = None,
    web: WebConfig | None = None,
) -> HttpServer:
    """Start serving in a background thread; ``shutdown()`` the returned server to stop.

    The probes run on threads of their own, never behind ``/metrics`` or ``/api`` work,
    and answer without credentials when ``web`` asks for some (a kubelet sends none).
    """
    web = web or WebConfig(None, Authenticator())
    return HttpServer(
        api.handle,
        host,
        port,
        probes=PROBE_PATHS,
        limits=limits or ServerLimits(),
        ssl_context=web.ssl_context,
        authorize=web.authenticator.allows if web.authenticator.enabled else None,
        challenge=web.authenticator.challenge(),
    )

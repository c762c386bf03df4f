"""The HTTP API's OpenAPI 3.1 document, served at ``/api/v1/openapi.json``.

Built from the parameter list (``params.py``) and the metric keys, so it cannot drift
from what the handlers accept; ``docs/openapi.json`` is a copy (a test keeps it equal),
and the tests fuzz the running server against it (schemathesis).
"""

from __future__ import annotations

from typing import Any

from monitor import __version__
from monitor.export.params import ENDPOINTS, MAX_EPOCH_MS, MAX_TEXT, SINCE_PATTERNS, Param
from monitor.windows.metric_names import ALL_KEYS

_NUMBER = {"type": ["number", "null"], "description": "null where the value is NaN"}
_TIME = {"type": "string", "format": "date-time"}
_MS = {"type": "integer", "description": "epoch milliseconds"}
_MS_OR_NULL = {"type": ["integer", "null"], "description": "epoch milliseconds"}
_TEXT = {"type": "string"}

_RELIABILITY_BIN = {
    "type": "object",
    "required": ["index", "lower", "upper", "count", "mean_predicted", "observed_ratio"],
    "properties": {
        "index": {"type": "integer"},
        "lower": _NUMBER,
        "upper": _NUMBER,
        "count": {"type": "integer"},
        "mean_predicted": _NUMBER,
        "observed_ratio": _NUMBER,
        "ci_low": _NUMBER,
        "ci_high": _NUMBER,
    },
}
_DRIFT_BIN = {
    "type": "object",
    "required": ["distribution", "index", "reference_fraction", "current_fraction"],
    "properties": {
        "distribution": _TEXT,
        "index": {"type": "integer"},
        "lower": _NUMBER,
        "reference_fraction": _NUMBER,
        "current_fraction": _NUMBER,
    },
}
_REFERENCE = {
    "type": ["object", "null"],
    "description": "The drift reference the result was measured against; null if none.",
    "required": ["source", "start", "end", "events"],
    "properties": {
        "source": {"enum": ["snapshot", "fixed", "trailing"]},
        "start": _TIME,
        "end": _TIME,
        "events": {"type": "object", "additionalProperties": {"type": "integer"}},
    },
}
_RESULT = {
    "type": "object",
    "required": [
        "model",
        "model_version",
        "segment",
        "window",
        "evaluated_at",
        "window_start",
        "window_end",
        "predictions",
        "labelled",
        "values",
        "reliability_bins",
        "drift_bins",
        "reference",
        "classes",
    ],
    "properties": {
        "model": _TEXT,
        "model_version": _TEXT,
        "segment": _TEXT,
        "window": _TEXT,
        "evaluated_at": _TIME,
        "window_start": _TIME,
        "window_end": _TIME,
        "predictions": {"type": "integer"},
        "labelled": {"type": "integer"},
        "values": {"type": "object", "additionalProperties": _NUMBER},
        "reliability_bins": {"type": "array", "items": _RELIABILITY_BIN},
        "drift_bins": {"type": "array", "items": _DRIFT_BIN},
        "reference": _REFERENCE,
        "classes": {
            "type": "object",
            "description": "A multi-class series' classes by name (empty for a binary "
            "series): each class's values (class_ece, class_psi...) and reliability bins.",
            "additionalProperties": {
                "type": "object",
                "required": ["values", "reliability_bins"],
                "properties": {
                    "values": {"type": "object", "additionalProperties": _NUMBER},
                    "reliability_bins": {"type": "array", "items": _RELIABILITY_BIN},
                },
            },
        },
    },
}
_POINT = {
    "type": "object",
    "required": [
        "model_id",
        "model_version",
        "segment",
        "window",
        "metric",
        "evaluated_ms",
        "value",
    ],
    "properties": {
        "model_id": _TEXT,
        "model_version": _TEXT,
        "segment": _TEXT,
        "window": _TEXT,
        "metric": _TEXT,
        "evaluated_ms": _MS,
        "value": _NUMBER,
    },
}
_ALERT = {
    "type": "object",
    "required": ["fingerprint", "alert_id", "state", "labels", "annotations", "values"],
    "properties": {
        "fingerprint": _TEXT,
        "alert_id": _TEXT,
        "state": {"enum": ["pending", "firing", "resolved"]},
        "active_since_ms": _MS,
        "fired_ms": _MS_OR_NULL,
        "resolved_ms": _MS_OR_NULL,
        "last_sent_to_alertmanager_ms": _MS_OR_NULL,
        "labels": {"type": "object", "additionalProperties": _TEXT},
        "annotations": {"type": "object", "additionalProperties": _TEXT},
        "values": {"type": "object", "additionalProperties": _NUMBER},
    },
}
_RECALIBRATION = {
    "type": "object",
    "required": ["alert_id", "model", "model_version", "segment", "window", "state"],
    "properties": {
        "alert_id": _TEXT,
        "model": _TEXT,
        "model_version": _TEXT,
        "segment": _TEXT,
        "window": _TEXT,
        "fired_at_ms": _MS,
        "state": {"enum": ["awaiting", "verified", "failed", "expired"]},
        "decided_at_ms": _MS_OR_NULL,
        "recommendation": {"type": "object", "description": "the webhook's recommendation"},
        "outcome": {"type": ["object", "null"], "description": "the verdict, once decided"},
    },
}
_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string", "description": "names the parameter"}},
}

_JSON_API: dict[str, tuple[str, dict[str, Any]]] = {
    "/api/v1/series": (
        "The latest result of every series and window.",
        {"type": "array", "items": _RESULT},
    ),
    "/api/v1/history": (
        "The stored history of one metric, oldest first (at most 10,000 points).",
        {"type": "array", "items": _POINT},
    ),
    "/api/v1/reliability": (
        "The latest results of one series (each window), with their reliability bins.",
        {"type": "array", "items": _RESULT},
    ),
    "/api/v1/recalibration": (
        "Recommended calibrators of one model, newest first, with their verdicts.",
        {"type": "array", "items": _RECALIBRATION},
    ),
    "/api/v1/alerts": (
        "Alert state: pending, firing, resolved.",
        {"type": "array", "items": _ALERT},
    ),
    "/api/v1/openapi.json": ("This document.", {"type": "object"}),
}


def _parameter(param: Param) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": MAX_TEXT}
    if param.kind == "metric":
        schema = {"type": "string", "enum": sorted(ALL_KEYS)}
    if param.kind == "since":
        epoch_ms, duration = SINCE_PATTERNS
        schema = {
            "anyOf": [
                {"type": "string", "pattern": duration, "description": "e.g. 7d, 24h, 90s"},
                {"type": "string", "format": "date-time"},
                {
                    "type": "string",
                    "pattern": epoch_ms,
                    "description": f"epoch milliseconds, at most {MAX_EPOCH_MS}",
                },
            ]
        }
    if param.default is not None:
        schema["default"] = param.default
    return {
        "name": param.name,
        "in": "query",
        "required": param.required,
        "description": param.description,
        "schema": schema,
    }


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_BUSY = _json("Too many requests in progress: retry.", _ERROR)
_TOO_LARGE = _json("The request line and headers are over 16 KiB.", _ERROR)


def document() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for path, (summary, schema) in _JSON_API.items():
        responses = {"200": _json("OK", schema), "431": _TOO_LARGE, "503": _BUSY}
        if ENDPOINTS[path]:
            responses["400"] = _json("A parameter is missing, unknown or invalid.", _ERROR)
        paths[path] = {
            "get": {
                "summary": summary,
                "operationId": path.removeprefix("/api/v1/").replace(".", "_"),
                "parameters": [_parameter(p) for p in ENDPOINTS[path]],
                "responses": responses,
            }
        }
    paths["/metrics"] = {
        "get": {
            "summary": "Prometheus exposition: window results and operational metrics.",
            "operationId": "metrics",
            "responses": {
                "200": {"description": "OK", "content": {"text/plain": {"schema": _TEXT}}},
                "431": _TOO_LARGE,
                "503": _BUSY,
            },
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "calmon",
            "version": __version__,
            "description": "The calmon daemon's JSON API. Unknown paths answer 404 with "
            "an `error`; only GET and HEAD are served. `/healthz` and `/readyz` are the "
            "probes (docs/operations.md).",
        },
        "paths": paths,
    }

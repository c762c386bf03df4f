"""The demo's stand-in for a recalibration pipeline: a local HTTP server that checks
each webhook's signature, prints what it got and, for a recommended calibrator, hands
it to ``deploy`` (the demo's simulator then serves it as a new calibrator version)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

from monitor.alerts import signing

#: (the firing payload, its recommended artifact) -> the calibrator version deployed.
Deploy = Callable[[dict[str, Any], dict[str, Any]], str]


class WebhookReceiver:
    def __init__(self, key: bytes) -> None:
        self.deliveries: list[dict[str, Any]] = []
        self.verdicts: list[dict[str, Any]] = []
        self.deploy: Deploy | None = None
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                valid = signing.verify(key, body, dict(self.headers))
                self.send_response(200 if valid else 401)
                self.send_header("Content-Length", "0")
                self.end_headers()
                receiver.received(orjson.loads(body), valid)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}/recalibrate"

    def received(self, payload: dict[str, Any], valid: bool) -> None:
        signature = "valid" if valid else "INVALID"
        if payload["type"] != "calmon.alert.firing":
            self.verdicts.append(payload)
            before, after = payload["before"]["ece"], payload["after"]["ece"]
            print(
                f">>> recalibration {payload['state']}, signature {signature}: "
                f"{payload['model']} {payload['model_version']} {payload['segment']} "
                f"({payload['window']}) ECE {before['value']:.3f} -> {after['value']:.3f} "
                f"(95% up to {after['upper']:.3f}) on {payload['deployed_model_version']}",
                flush=True,
            )
            return
        self.deliveries.append(payload)
        values = ", ".join(f"{k} {v:.3f}" for k, v in payload.get("trigger", {}).items())
        print(
            f">>> recalibration webhook received, signature {signature}: "
            f"{payload['model']} {payload['model_version']} {payload['segment']} "
            f"({payload['window']}) {values}, alert {payload['alert_id']}",
            flush=True,
        )
        recalibration = payload.get("recalibration") or {}
        if recalibration.get("status") != "recommended":
            print(f">>> no calibrator recommended: {recalibration.get('reason')}", flush=True)
            return
        artifact = recalibration["recommended"]
        scores = {c["method"]: c["held_out"] for c in recalibration["candidates"]}
        chosen, identity = scores[artifact["method"]], scores["identity"]
        print(
            f">>> recommended calibrator: {artifact['method']} {artifact['parameters']}, "
            f"held-out ECE {identity['ece']['value']:.3f} -> {chosen['ece']['value']:.3f}",
            flush=True,
        )
        if valid and self.deploy is not None and artifact["method"] != "identity":
            version = self.deploy(payload, artifact)
            print(f">>> deployed as calibrator version {version}", flush=True)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

"""The demo's stand-in for a recalibration pipeline: a local HTTP server that checks
each webhook's signature and prints what it got."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson

from monitor.alerts import signing


class WebhookReceiver:
    def __init__(self, key: bytes) -> None:
        self.deliveries: list[dict[str, object]] = []
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

    def received(self, payload: dict[str, object], valid: bool) -> None:
        self.deliveries.append(payload)
        trigger = payload.get("trigger", {})
        values = ", ".join(f"{k} {v:.3f}" for k, v in trigger.items())  # type: ignore[attr-defined]
        print(
            f">>> recalibration webhook received, signature {'valid' if valid else 'INVALID'}: "
            f"{payload['model']} {payload['model_version']} {payload['segment']} "
            f"({payload['window']}) {values}, alert {payload['alert_id']}",
            flush=True,
        )

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

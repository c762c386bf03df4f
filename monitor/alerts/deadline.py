"""One HTTP POST that is over by its deadline, whatever the receiver does.

httpx's timeouts are per phase and per socket read: a receiver that trickles a byte of
its response every second never trips a 10 s read timeout, and the attempt can outlive
the lease that keeps other replicas from sending the same delivery. Here the whole
attempt has one deadline:

- every phase's timeout is the deadline itself (a silent receiver);
- a watchdog shuts the connection's socket down at the deadline (a trickling one): the
  blocked read returns at once and the attempt fails;
- the caller waits for the attempt's thread no longer than the deadline plus a grace
  (what neither bounds, such as a slow DNS lookup); an abandoned thread ends when its
  socket does.

The response body is never read beyond ``RESPONSE_CAP`` bytes.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

#: At most this much of a response body is read (for the error text of a failure).
RESPONSE_CAP = 1024
#: How long past its deadline the caller still waits for the attempt's thread.
GRACE_S = 1.0


@dataclass
class _Watchdog:
    """Shuts down every socket the attempt opened once the deadline has passed."""

    sockets: list[socket.socket] = field(default_factory=list)
    expired: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def trace(self, event: str, info: dict[str, Any]) -> None:
        # httpcore's trace hook: the new connection's stream, before anything is sent.
        if event not in ("connection.connect_tcp.complete", "connection.start_tls.complete"):
            return
        sock = info["return_value"].get_extra_info("socket")
        if sock is None:
            return
        with self.lock:
            self.sockets.append(sock)
            if self.expired:
                _shut(sock)

    def expire(self) -> None:
        with self.lock:
            self.expired = True
            for sock in self.sockets:
                _shut(sock)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed
        sock.shutdown(socket.SHUT_RDWR)  # wakes a read blocked in another thread


def post_within(
    client: httpx.Client, url: str, body: bytes, headers: dict[str, str], deadline_s: float
) -> str | None:
    """POST ``body``; None if the receiver answered 2xx by the deadline, else the error.

    ``client`` must not keep connections alive (see :func:`attempt_client`): the watchdog
    only sees connections opened for this attempt.
    """
    outcome: list[str | None] = []
    watchdog = _Watchdog()
    timer = threading.Timer(deadline_s, watchdog.expire)

    def attempt() -> None:
        try:
            outcome.append(_post(client, url, body, headers, deadline_s, watchdog))
        except Exception as exc:
            expired = f"deadline of {deadline_s:g} s exceeded: "
            outcome.append((expired if watchdog.expired else "") + f"{type(exc).__name__}: {exc}")

    worker = threading.Thread(target=attempt, name="webhook-attempt", daemon=True)
    started = time.monotonic()
    timer.start()
    worker.start()
    worker.join(deadline_s + GRACE_S)
    timer.cancel()
    if worker.is_alive() or not outcome:
        watchdog.expire()
        return f"deadline of {deadline_s:g} s exceeded after {time.monotonic() - started:.1f} s"
    return outcome[0]


def _post(
    client: httpx.Client,
    url: str,
    body: bytes,
    headers: dict[str, str],
    deadline_s: float,
    watchdog: _Watchdog,
) -> str | None:
    with client.stream(
        "POST",
        url,
        content=body,
        headers=headers,
        timeout=httpx.Timeout(deadline_s),
        extensions={"trace": watchdog.trace},
    ) as response:
        if response.is_success:
            return None  # the body is not read at all
        said = _capped_text(response)
        return f"HTTP {response.status_code}" + (f": {said}" if said else "")


def _capped_text(response: httpx.Response) -> str:
    """The first ``RESPONSE_CAP`` bytes of the raw body, as one printable line."""
    read = b""
    for chunk in response.iter_raw(RESPONSE_CAP):
        read += chunk
        if len(read) >= RESPONSE_CAP:
            break
    text = read[:RESPONSE_CAP].decode("utf-8", errors="replace")
    return " ".join(text.split())[:200]


def attempt_client() -> httpx.Client:
    """A client that opens a connection per attempt (no keep-alive), so the deadline's
    watchdog always knows the attempt's socket; redirects are not followed."""
    return httpx.Client(limits=httpx.Limits(max_keepalive_connections=0))

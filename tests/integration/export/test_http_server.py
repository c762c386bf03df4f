"""The daemon's HTTP server against clients that misbehave, over real sockets on loopback:
idle and slow (slowloris) connections, a flood past the connection cap, probes while every
worker is busy, malformed requests, and clients that vanish mid-response."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine

from monitor.export.http import HttpApi, serve
from monitor.export.server import HttpServer, ServerLimits
from monitor.store.db.health import store_problem

pytestmark = pytest.mark.integration
CLOSE = b"Connection: close\r\n\r\n"


class GatedCollector(Collector):
    """A /metrics collector that blocks until the test opens the gate: slow work."""

    def __init__(self, samples: int = 1) -> None:
        self.entered = threading.Semaphore(0)
        self.gate = threading.Event()
        self.samples = samples

    def collect(self) -> Iterator[GaugeMetricFamily]:
        self.entered.release()
        self.gate.wait(timeout=30)
        family = GaugeMetricFamily("gated", "a slow metric", labels=["i"])
        for i in range(self.samples):
            family.add_metric([str(i)], float(i))
        yield family


@pytest.fixture
def collector() -> GatedCollector:
    collector = GatedCollector()
    collector.gate.set()  # open unless a test closes it
    return collector


def _server(engine: Engine, collector: GatedCollector, limits: ServerLimits) -> HttpServer:
    registry = CollectorRegistry()
    registry.register(collector)
    api = HttpApi(
        engine=engine, registry=registry, readiness=lambda: {"store": store_problem(engine)}
    )
    return serve(api, "127.0.0.1", 0, limits=limits)


@pytest.fixture
def start(sqlite_engine: Engine, collector: GatedCollector) -> Iterator:  # type: ignore[type-arg]
    servers: list[HttpServer] = []

    def start(**limits: float) -> int:
        server = _server(sqlite_engine, collector, ServerLimits(**limits))  # type: ignore[arg-type]
        servers.append(server)
        return server.server_port

    yield start
    collector.gate.set()
    for server in servers:
        server.shutdown()
        server.server_close()


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def _closed_by_server(sock: socket.socket, within_s: float = 10.0) -> bool:
    """True once the server has closed the connection (EOF or reset), False on a time-out."""
    sock.settimeout(within_s)
    try:
        while sock.recv(65536):
            pass  # a response (e.g. 408) before the close is fine
        return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_200_idle_sockets_hold_no_threads_and_probes_still_answer(start) -> None:  # type: ignore[no-untyped-def]
    port = start()
    threads_before = threading.active_count()
    idle = [_connect(port) for _ in range(200)]
    try:
        # Connected after the 200, so the server has accepted them all before it.
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
        assert (ready.status_code, ready.json()) == (200, {"ready": True, "problems": {}})
        assert httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).status_code == 200
        # ThreadingHTTPServer held one thread per idle socket (200 more here).
        assert threading.active_count() - threads_before < 10
    finally:
        for sock in idle:
            sock.close()


def test_at_the_cap_a_new_connection_evicts_the_oldest_idle_one(start) -> None:  # type: ignore[no-untyped-def]
    port = start(max_connections=20)
    idle = [_connect(port) for _ in range(20)]
    try:
        # Each idle socket is accepted before the next connects once it has sent a byte.
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
        assert ready.status_code == 200
        assert _closed_by_server(idle[0])
        idle[-1].settimeout(0.2)
        with pytest.raises(TimeoutError):
            idle[-1].recv(1)  # the newest idle one is still open
    finally:
        for sock in idle:
            sock.close()


def test_a_slowloris_client_is_dropped_after_the_request_timeout(start) -> None:  # type: ignore[no-untyped-def]
    port = start(request_timeout=1.0)
    sock = _connect(port)
    sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
    dropped = False
    # One header byte every 0.2 s: each read is quick, the head never completes. Bounded:
    # 50 bytes (10 s), ten times the timeout.
    for _ in range(50):
        try:
            sock.sendall(b"X")
        except (BrokenPipeError, ConnectionResetError):
            dropped = True
            break
        sock.settimeout(0.2)
        try:
            if sock.recv(65536) == b"":
                dropped = True
                break
        except TimeoutError:
            continue
        except ConnectionResetError:
            dropped = True
            break
    sock.close()
    assert dropped
    # The server still serves others.
    assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).text == "ok\n"


def test_an_idle_connection_is_closed_after_the_request_timeout(start) -> None:  # type: ignore[no-untyped-def]
    port = start(request_timeout=0.5)
    fresh = _connect(port)
    assert _closed_by_server(fresh)
    # And a keep-alive connection idle after its first response.
    kept = _connect(port)
    kept.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert _closed_by_server(kept)


def test_probes_answer_while_every_worker_is_busy_and_the_queue_full(  # type: ignore[no-untyped-def]
    start, collector: GatedCollector
) -> None:
    port = start(workers=1, queue=0)
    collector.gate.clear()
    base = f"http://127.0.0.1:{port}"
    slow: list[httpx.Response] = []
    scrape = threading.Thread(target=lambda: slow.append(httpx.get(f"{base}/metrics", timeout=30)))
    scrape.start()
    assert collector.entered.acquire(timeout=10)  # the one worker is now busy
    busy = httpx.get(f"{base}/api/v1/series", timeout=5)
    assert (busy.status_code, busy.json()) == (
        503,
        {"error": "too many requests in progress; retry"},
    )
    assert httpx.get(f"{base}/readyz", timeout=5).status_code == 200
    assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
    collector.gate.set()
    scrape.join(timeout=30)
    assert slow[0].status_code == 200
    assert 'gated{i="0"} 0.0' in slow[0].text


def test_keep_alive_serves_several_requests_on_one_connection(start) -> None:  # type: ignore[no-untyped-def]
    port = start()
    sock = _connect(port)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" * 2 + b"HEAD /healthz HTTP/1.1\r\n")
    sock.sendall(b"Host: x\r\nConnection: close\r\n\r\n")
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    sock.close()
    assert received.count(b"HTTP/1.1 200 ") == 3
    assert received.count(b"ok\n") == 2  # HEAD has no body


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"POST /api/v1/series HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n" + CLOSE + b"{}", 405),
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 20_000 + b"\r\n\r\n", 431),
        (b"GET / HTTP/1.1\r\n\r\n", 400),  # HTTP/1.1 requires Host
        (b"GET /nothing HTTP/1.1\r\nHost: x\r\n" + CLOSE, 404),
        (
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + b"a" * 100_000,
            413,
        ),
    ],
)
def test_malformed_requests_get_a_4xx_and_nothing_on_stderr(  # type: ignore[no-untyped-def]
    start, capfd: pytest.CaptureFixture[str], request_bytes: bytes, status: int
) -> None:
    port = start()
    sock = _connect(port)
    # The server may answer and close before the whole body is sent.
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        sock.sendall(request_bytes)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    sock.close()
    assert received.startswith(f"HTTP/1.1 {status} ".encode()), received[:200]
    assert capfd.readouterr().err == ""


def test_a_client_that_resets_mid_response_leaves_no_traceback_on_stderr(  # type: ignore[no-untyped-def]
    sqlite_engine: Engine, capfd: pytest.CaptureFixture[str]
) -> None:
    # A response far larger than the socket buffers, written after the client has gone.
    collector = GatedCollector(samples=200_000)
    server = _server(sqlite_engine, collector, ServerLimits(workers=1))
    try:
        collector.gate.clear()
        before = {thread.name for thread in threading.enumerate()}
        sock = _connect(server.server_port)
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        assert collector.entered.acquire(timeout=10)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()  # an RST, not a FIN
        collector.gate.set()
        # The one worker takes this after the scrape; its answer comes after the server
        # has written the scrape into the reset connection.
        series = httpx.get(f"http://127.0.0.1:{server.server_port}/api/v1/series", timeout=30)
        assert (series.status_code, series.json()) == (200, [])
        # A thread per connection (ThreadingHTTPServer) reports the reset when it ends.
        for thread in threading.enumerate():
            if thread.name not in before and not thread.name.startswith("http-"):
                thread.join(timeout=10)
    finally:
        collector.gate.set()
        server.shutdown()
        server.server_close()
    assert capfd.readouterr().err == ""

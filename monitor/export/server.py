"""The HTTP server: asyncio holds the connections, threads do the work.

``http.server.ThreadingHTTPServer`` gave every connection a thread for as long as it
stayed open, with no deadline: 150 idle sockets held 150 threads, a client trickling one
byte a minute kept its thread forever, and the probes waited in the same pool as
``/metrics`` and ``/api``. Here:

- connections live on one asyncio loop; a connection waiting for its request costs no
  thread, so idle and slow clients cannot exhaust the workers;
- the request head must arrive within ``request_timeout`` of the connection opening (or of
  the previous response, for keep-alive), however slowly it trickles, and the client must
  take the response within it too; else the connection is dropped (slowloris);
- at most ``max_connections`` are open; at the cap a new connection evicts the oldest one
  still waiting for its request, so a flood of idle sockets cannot lock the probes out;
- the probe paths run on their own two threads, never queued behind ``/metrics`` or
  ``/api`` work, which runs on ``workers`` threads with a bounded queue (then 503).

HTTP/1.1 parsing is ``h11`` (sans-IO, bounded header size). Not a server library:
waitress has no TLS, cheroot reads each request on a worker thread (a slowloris holds
one), and uvicorn's ``limit_concurrency`` answers 503 to the probes too once it is
reached; none can give the probes their own threads.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import socket
import ssl
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

import h11
import orjson

logger = logging.getLogger(__name__)

#: ``(path, query) -> (status, content type, body)``; query holds each parameter's last value.
Handler = Callable[[str, dict[str, str]], tuple[int, str, bytes]]

_MAX_HEAD = 16 * 1024  # request line and headers, bytes (h11 answers 431 past it)
_MAX_BODY = 64 * 1024  # the API takes no body; this much is read and ignored
_PROBE_THREADS = 2


@dataclass(frozen=True)
class ServerLimits:
    request_timeout: float = 10.0
    max_connections: int = 512
    workers: int = 4
    #: Requests waiting for a worker beyond the busy ones, before new ones get 503.
    queue: int = 16


class _Reject(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _json_error(status: int, message: str) -> tuple[int, str, bytes]:
    return status, "application/json", orjson.dumps({"error": message})


class HttpServer:
    """Serves ``handler`` on ``host:port`` from a background thread until ``shutdown()``."""

    def __init__(
        self,
        handler: Handler,
        host: str,
        port: int,
        *,
        probes: Collection[str] = (),
        limits: ServerLimits | None = None,
        ssl_context: ssl.SSLContext | None = None,
        authorize: Callable[[str | None], bool] | None = None,
        challenge: str = "",
    ) -> None:
        self._handler = handler
        self._probes = frozenset(probes)
        self._limits = limits = limits or ServerLimits()
        self._ssl = ssl_context
        # Every path but the probes needs ``authorize(Authorization header)`` to be true.
        self._authorize = authorize
        self._challenge = challenge.encode()
        # Bound here, in the caller's thread, so a port in use fails the caller.
        self._socket = socket.create_server((host, port), family=_family(host), backlog=128)
        self._work = concurrent.futures.ThreadPoolExecutor(limits.workers, "http-work")
        self._probe_pool = concurrent.futures.ThreadPoolExecutor(_PROBE_THREADS, "http-probe")
        self._waiting_work = 0  # touched on the loop only
        self._open: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._idle: dict[asyncio.StreamWriter, None] = {}  # waiting for a request, oldest first
        self._loop = asyncio.new_event_loop()
        self._loop.set_exception_handler(_log_loop_error)
        self._stopped = asyncio.Event()
        self._failure: BaseException | None = None
        started = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(started,), name="http", daemon=True)
        self._thread.start()
        started.wait()
        if self._failure is not None:
            self._socket.close()
            raise self._failure

    @property
    def server_port(self) -> int:
        return int(self._socket.getsockname()[1])

    def shutdown(self) -> None:
        """Stop accepting, drop open connections, and wait for the loop to end."""
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stopped.set)
            self._thread.join(timeout=10)
        self._work.shutdown(wait=False, cancel_futures=True)
        self._probe_pool.shutdown(wait=False, cancel_futures=True)

    def server_close(self) -> None:
        """For ``socketserver`` compatibility: ``shutdown()`` already closed everything."""
        self._socket.close()

    def _run(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve(started))
        except BaseException as error:
            self._failure = error
        finally:
            started.set()
            self._loop.close()

    async def _serve(self, started: threading.Event) -> None:
        server = await asyncio.start_server(
            self._connection,
            sock=self._socket,
            ssl=self._ssl,
            ssl_handshake_timeout=self._limits.request_timeout if self._ssl else None,
            limit=_MAX_HEAD,
        )
        started.set()
        await self._stopped.wait()
        server.close()
        for writer in list(self._open):
            writer.transport.abort()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await server.wait_closed()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._open) >= self._limits.max_connections:
            if not self._idle:
                writer.transport.abort()
                return
            oldest = next(iter(self._idle))
            del self._idle[oldest]
            oldest.transport.abort()
        self._open.add(writer)
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await self._converse(reader, writer)
        except (TimeoutError, ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
            pass  # a slow, vanished or broken client: nothing to answer
        except Exception:
            logger.exception("HTTP connection failed")
        finally:
            if task is not None:
                self._tasks.discard(task)
            self._open.discard(writer)
            self._idle.pop(writer, None)
            writer.transport.abort()

    async def _converse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=_MAX_HEAD)
        timeout = self._limits.request_timeout
        while True:
            self._idle[writer] = None
            try:
                request = await asyncio.wait_for(_read_request(conn, reader), timeout)
            except h11.RemoteProtocolError as error:
                if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                    status = error.error_status_hint
                    await self._send(conn, writer, _json_error(status, "bad request"), head=False)
                return
            except _Reject as reject:
                await self._send(conn, writer, _json_error(reject.status, str(reject)), head=False)
                return
            finally:
                self._idle.pop(writer, None)
            if request is None:
                return
            response = await self._respond(request)
            await self._send(conn, writer, response, head=request.method == b"HEAD")
            if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                return
            conn.start_next_cycle()

    async def _respond(self, request: h11.Request) -> tuple[int, str, bytes]:
        if request.method not in (b"GET", b"HEAD"):
            return _json_error(405, "only GET and HEAD are served")
        url = urlsplit(request.target.decode("ascii", "replace"))
        query = {
            k: v[-1]
            for k, v in parse_qs(url.query, keep_blank_values=True, errors="replace").items()
        }
        if url.path in self._probes:
            return await self._loop.run_in_executor(self._probe_pool, self._call, url.path, query)
        if self._waiting_work >= self._limits.workers + self._limits.queue:
            return _json_error(503, "too many requests in progress; retry")
        authorization = next(
            (v.decode("latin-1") for n, v in request.headers if n == b"authorization"), None
        )
        self._waiting_work += 1
        try:
            return await self._loop.run_in_executor(
                self._work, self._call_authorized, url.path, query, authorization
            )
        finally:
            self._waiting_work -= 1

    def _call_authorized(
        self, path: str, query: dict[str, str], authorization: str | None
    ) -> tuple[int, str, bytes]:
        # On a worker thread: a bcrypt check takes a tenth of a second or more.
        if self._authorize is not None and not self._authorize(authorization):
            return _json_error(401, "authentication required")
        return self._call(path, query)

    def _call(self, path: str, query: dict[str, str]) -> tuple[int, str, bytes]:
        try:
            return self._handler(path, query)
        except Exception:
            logger.exception("HTTP handler failed", extra={"path": path})
            return _json_error(500, "internal")

    async def _send(
        self,
        conn: h11.Connection,
        writer: asyncio.StreamWriter,
        response: tuple[int, str, bytes],
        *,
        head: bool,
    ) -> None:
        status, content_type, body = response
        headers = [
            (b"Content-Type", content_type.encode()),
            (b"Content-Length", str(len(body)).encode()),
        ]
        if status == 405:
            headers.append((b"Allow", b"GET, HEAD"))
        if status == 401:
            headers.append((b"WWW-Authenticate", self._challenge))
        reason = HTTPStatus(status).phrase.encode()
        data = conn.send(h11.Response(status_code=status, headers=headers, reason=reason))
        if not head:
            data += conn.send(h11.Data(data=body))
        data += conn.send(h11.EndOfMessage())
        writer.write(data)
        # A client that does not read its response is dropped like one that does not send.
        await asyncio.wait_for(writer.drain(), self._limits.request_timeout)


async def _read_request(conn: h11.Connection, reader: asyncio.StreamReader) -> h11.Request | None:
    """The next request (its body read and ignored), or None when the client closed."""
    request: h11.Request | None = None
    body = 0
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await reader.read(65536))
        elif isinstance(event, h11.ConnectionClosed):
            return None
        elif isinstance(event, h11.Request):
            # h11 bounds only a head that is still incomplete; one that came whole is not.
            size = len(event.target) + sum(len(n) + len(v) + 4 for n, v in event.headers)
            if size > _MAX_HEAD:
                raise _Reject(431, "request head too large")
            request = event
        elif isinstance(event, h11.Data):
            body += len(event.data)
            if body > _MAX_BODY:
                raise _Reject(413, "request body too large")
        elif isinstance(event, h11.EndOfMessage):
            return request


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _log_loop_error(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    # Into the JSON logs, never a raw traceback on stderr.
    error = context.get("exception")
    logger.error(
        "HTTP server: %s",
        context.get("message", "error"),
        exc_info=(type(error), error, error.__traceback__) if error else None,
    )

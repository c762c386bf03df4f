"""Making the Kafka clients: an attempt that a stop does not wait for, and no leak when
one fails (``IngestWorker.connect`` retries them with backoff)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from kafka import KafkaConsumer, KafkaProducer

#: Longest wait, at shutdown, for the consumer to leave its group and the producer to
#: close: with the broker away they would wait out kafka-python's request timeout (305 s).
CLOSE_TIMEOUT_S = 1.0


def closing_on_failure(client_class: Any, **options: Any) -> Any:
    """``client_class(**options)``, whose network client is closed if the constructor
    fails: kafka-python 3 starts the client's IO thread before the bootstrap that may
    time out, and a failed construction would leak the thread and its sockets on every
    retry. ``kafka_client`` is kafka-python's documented hook for making that client."""
    made: list[Any] = []
    default = client_class.DEFAULT_CONFIG["kafka_client"]

    def network_client(**configs: Any) -> Any:
        made.append(default(**configs))
        return made[-1]

    try:
        return client_class(**options, kafka_client=network_client)
    except BaseException:
        for client in made:
            client.close()
        raise


Clients = tuple[KafkaConsumer, KafkaProducer | None]


class ConnectAttempt:
    """One try at making the Kafka clients, in a helper thread.

    kafka-python's constructors block until they reach the cluster (up to
    ``bootstrap_timeout_ms``) and cannot be interrupted; a stop must not wait for them.
    A SIGTERM during start-up used to wait out the 30 s bootstrap, then end in a
    KafkaTimeoutError traceback. An attempt still running at a stop is abandoned: if it
    succeeds later, it closes what it made.
    """

    def __init__(self, make: Callable[[], Clients]) -> None:
        self.done = threading.Event()
        self.error: str | None = None
        self._clients: Clients | None = None
        self._abandoned = False
        self._lock = threading.Lock()
        threading.Thread(target=self._run, args=(make,), name="kafka-connect", daemon=True).start()

    def _run(self, make: Callable[[], Clients]) -> None:
        try:
            clients = make()
        except Exception as exc:
            text = str(exc)  # kafka-python's errors start with their class name already
            name = type(exc).__name__
            self.error = (text if text.startswith(name) else f"{name}: {text}")[:500]
            self.done.set()
            return
        with self._lock:
            if not self._abandoned:
                self._clients = clients
                self.done.set()
                return
        close_clients(clients)

    def clients(self) -> Clients | None:
        return self._clients

    def abandon(self) -> None:
        with self._lock:
            self._abandoned = True
            clients, self._clients = self._clients, None
        if clients is not None:
            close_clients(clients)


def close_clients(clients: Clients) -> None:
    consumer, producer = clients
    consumer.close(autocommit=False, timeout_ms=int(CLOSE_TIMEOUT_S * 1000))
    if producer is not None:
        producer.close(timeout=CLOSE_TIMEOUT_S)

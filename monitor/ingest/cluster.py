"""Is the Kafka cluster there: what /readyz reports, and the one log line per change.

kafka-python's ``bootstrap_connected()`` is true only *while* a bootstrap is under way,
so /readyz built on it said "not ready" for as long as ingest ran. The signal here is
the group coordinator answering a heartbeat: heartbeats go every
``heartbeat_interval_ms`` from the client's IO thread (a long store write does not
delay them, and they go on during a rebalance), on every member of the group, whether
or not it owns partitions; there is no heartbeat before the member has joined the group,
so a consumer that has not received its assignment is not ready either.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

from monitor.logs import KAFKA_CLIENT_LOG

logger = logging.getLogger(__name__)


def heartbeat_answered_at(consumer: Any) -> float | None:
    """``time.monotonic()`` of the coordinator's latest heartbeat answer, or None.

    kafka-python 3 has no public accessor for it; this is the one place that reads its
    internals (the version is pinned below 4; tests/integration/ingest/test_cluster.py
    fails if it moves)."""
    received = float(consumer._coordinator.heartbeat.last_receive)
    return None if math.isinf(received) else received


class ClusterWatch:
    """Says once when the cluster becomes unreachable and once when it is back.

    ``observe`` is called from the ingest loop with the current problem (None: the
    cluster answers). Start-up is quiet until the first answer, which is logged as
    "connected"; a start-up that gets no answer within ``timeout_s`` counts as an
    outage like any other.
    """

    def __init__(self, timeout_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._timeout_s = timeout_s
        self._clock = clock
        self._started = clock()
        #: When the cluster last answered, and whether an outage has been declared.
        self._answered_at: float | None = None
        self._down = False

    def observe(self, problem: str | None) -> None:
        now = self._clock()
        if problem is None:
            if self._down:
                silent_s = now - (self._answered_at or self._started)
                logger.info(
                    "Kafka cluster reachable again", extra={"unreachable_for_s": round(silent_s, 1)}
                )
            elif self._answered_at is None:
                logger.info("connected to the Kafka cluster")
            self._answered_at = now
            self._down = False
            return
        if self._down:
            return
        if self._answered_at is None and now - self._started < self._timeout_s:
            return  # still joining the group at start-up
        self._down = True
        logger.warning(
            "Kafka cluster unreachable; ingest resumes when it is back",
            extra={"reason": problem, "kafka_client": KAFKA_CLIENT_LOG.latest()},
        )

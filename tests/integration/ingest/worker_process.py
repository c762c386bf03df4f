"""Run an ingest worker in its own process, for tests that kill or signal it.

    python -m tests.integration.ingest.worker_process SETTINGS_JSON DB_URL [--crash-before-commit]

``--crash-before-commit`` SIGKILLs the process right after the first batch is written
to the store and before its offsets are committed: the worst moment to die.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

from prometheus_client import CollectorRegistry

from monitor.ingest.metrics import IngestMetrics
from monitor.ingest.worker import IngestWorker
from monitor.settings import IngestSettings, KafkaSettings
from monitor.store.db.engine import make_engine
from monitor.store.write.event_store import EventStore


class CrashBeforeCommit(IngestWorker):
    def _commit(self, records, stop):  # type: ignore[no-untyped-def]
        print(f"written {len(records)} records; dying before commit", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    kafka = KafkaSettings.model_validate_json(sys.argv[1])
    worker_class = CrashBeforeCommit if "--crash-before-commit" in sys.argv else IngestWorker
    worker = worker_class(
        kafka=kafka,
        ingest=IngestSettings(max_batch_records=100, max_batch_age=0.5),
        store=EventStore(make_engine(sys.argv[2]), clock_ms=lambda: 1_790_100_000_000),
        metrics=IngestMetrics(CollectorRegistry()),
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print("worker ready", flush=True)
    worker.run(stop)
    print(f"worker stopped after {worker.batches_committed} batches", flush=True)


if __name__ == "__main__":
    main()

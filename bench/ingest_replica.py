"""One ingest replica for ``bench_ingest.py --replicas N``: an IngestWorker in its own
process, as each ``calmon run`` replica is, until SIGTERM.

    python bench/ingest_replica.py BOOTSTRAP PREDICTIONS_TOPIC LABELS_TOPIC STORE_URL GROUP
"""

from __future__ import annotations

import signal
import sys
import threading

from bench_ingest import kafka_settings
from prometheus_client import CollectorRegistry

from monitor.heap import freeze_startup_objects, limit_heap_fragmentation
from monitor.ingest.metrics import IngestMetrics
from monitor.ingest.worker import IngestWorker
from monitor.settings import IngestSettings
from monitor.store.db.engine import make_engine
from monitor.store.write.event_store import EventStore

BASE_MS = 1_790_000_000_000


def main() -> None:
    limit_heap_fragmentation()  # as `calmon run` does as it starts
    bootstrap, predictions, labels, url, group = sys.argv[1:6]
    kafka = kafka_settings(bootstrap, (predictions, labels), group)
    store = EventStore(
        make_engine(url), segment_keys=["region"], clock_ms=lambda: BASE_MS + 86_400_000
    )
    worker = IngestWorker(
        kafka=kafka,
        ingest=IngestSettings(),
        store=store,
        metrics=IngestMetrics(CollectorRegistry()),
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    freeze_startup_objects()
    worker.run(stop)


if __name__ == "__main__":
    main()

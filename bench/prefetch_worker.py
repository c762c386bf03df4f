"""An ingest worker whose polls run in a thread of their own, for ``bench_ingest.py``'s
``prefetch`` variant: does fetching the next batch while one is written help?

kafka-python's network thread already fetches ahead, but a ``poll`` still decodes the
fetched records into ``ConsumerRecord`` objects in the caller's thread, and that is
most of a bare consumer's time. Here a thread polls (``IngestWorker._collect``) into a
queue of one batch while the worker's thread validates, writes, dead-letters and counts
the batch before (``IngestWorker.process``, unchanged). The consumer is not
thread-safe, so the offset commit, still made only after the batch is counted, is
handed back to the polling thread, which makes it before its next poll.

Only an upper bound for the gain: a rebalance would need more (records of revoked
partitions in the queue, the pause-and-poll of a retry from the other thread); the
bench has none.
"""

from __future__ import annotations

import queue
import threading

from kafka.consumer.fetcher import ConsumerRecord

from monitor.ingest.worker import IngestWorker


class PrefetchingWorker(IngestWorker):
    def run(self, stop: threading.Event) -> None:
        if not self.connect(stop):
            return
        self._batches: queue.Queue[list[ConsumerRecord]] = queue.Queue(maxsize=1)
        self._to_commit: queue.SimpleQueue[list[ConsumerRecord]] = queue.SimpleQueue()
        poller = threading.Thread(target=self._poll_ahead, args=(stop,), name="poll")
        poller.start()
        try:
            while not stop.is_set():
                try:
                    records = self._batches.get(timeout=0.1)
                except queue.Empty:
                    continue
                self.process(records, stop)
        finally:
            poller.join()
            self.close()

    def _poll_ahead(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self._commit_handed_over(stop)
            records = self._collect(stop)
            while records and not stop.is_set():
                try:
                    self._batches.put(records, timeout=0.01)
                    break
                except queue.Full:
                    self._commit_handed_over(stop)
        self._commit_handed_over(stop)

    def _commit(self, records: list[ConsumerRecord], stop: threading.Event) -> None:
        self._to_commit.put(records)  # committed by the polling thread, in order

    def _commit_handed_over(self, stop: threading.Event) -> None:
        while True:
            try:
                records = self._to_commit.get_nowait()
            except queue.Empty:
                return
            IngestWorker._commit(self, records, stop)

"""The ingest loop: Kafka -> validation -> one store transaction -> dead letters -> commit."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import CommitFailedError, KafkaError, KafkaTimeoutError
from kafka.structs import OffsetAndMetadata

from monitor.core.records import Label, Prediction
from monitor.ingest import dead_letter
from monitor.ingest.budget import CardinalityBudget
from monitor.ingest.cluster import ClusterWatch, heartbeat_answered_at
from monitor.ingest.connect import (
    CLOSE_TIMEOUT_S,
    Clients,
    ConnectAttempt,
    close_clients,
    closing_on_failure,
)
from monitor.ingest.dead_letter import DeadLetterError, Rejected
from monitor.ingest.decode import decode_batch
from monitor.ingest.metrics import IngestMetrics, observe_many
from monitor.ingest.ratelimit import RateLimitedWarning
from monitor.ingest.validation import InvalidMessage
from monitor.logs import KAFKA_CLIENT_LOG
from monitor.settings import IngestSettings, KafkaSettings
from monitor.store.errors import RecordsRefused, StoreUnavailable
from monitor.store.write.event_store import EventStore
from monitor.store.write.result import WriteResult

logger = logging.getLogger(__name__)

POLL_TIMEOUT_MS = 200
#: Longest wait for a rebalance under way before writing anyway (``_finish_rebalance``).
REBALANCE_WAIT_S = 30.0

#: An offset commit is tried in slices this long, so that a stop is seen between them.
COMMIT_SLICE_MS = 500

#: A valid message and the Kafka record it came from (for its offset or dead letter).
Parsed = tuple[ConsumerRecord, Prediction | Label]


def make_consumer(
    kafka: KafkaSettings, ingest: IngestSettings, listener: ConsumerRebalanceListener
) -> KafkaConsumer:
    """A consumer in the configured group; offsets are committed only by the worker.
    Blocks for up to ``kafka.bootstrap_timeout_ms`` while it reaches the cluster."""
    consumer: KafkaConsumer = closing_on_failure(
        KafkaConsumer,
        **kafka.client_options(),
        group_id=kafka.group_id,
        enable_auto_commit=False,
        auto_offset_reset=kafka.auto_offset_reset,
        max_poll_records=ingest.max_batch_records,
        session_timeout_ms=kafka.session_timeout_ms,
        heartbeat_interval_ms=kafka.heartbeat_interval_ms,
        max_poll_interval_ms=kafka.max_poll_interval_ms,
    )
    consumer.subscribe(kafka.topics.unique(), listener=listener)
    return consumer


class RebalanceWatch(ConsumerRebalanceListener):
    """Whether a rebalance is under way: from the revocation of this consumer's
    partitions (a join begins) to their new assignment (the join is complete)."""

    def __init__(self) -> None:
        self.under_way = threading.Event()

    def on_partitions_revoked(self, revoked: Any) -> None:
        self.under_way.set()

    def on_partitions_assigned(self, assigned: Any) -> None:
        self.under_way.clear()


def make_producer(kafka: KafkaSettings) -> KafkaProducer:
    producer: KafkaProducer = closing_on_failure(
        KafkaProducer, **kafka.client_options(), acks="all", retries=5
    )
    return producer


class IngestWorker:
    def __init__(
        self,
        *,
        kafka: KafkaSettings,
        ingest: IngestSettings,
        store: EventStore,
        metrics: IngestMetrics,
        producer: KafkaProducer | None = None,
        budget: CardinalityBudget | None = None,
    ) -> None:
        self._kafka = kafka
        self._settings = ingest
        #: Without one from the caller (seeded from the store), the budget starts empty.
        self._budget = budget or CardinalityBudget.configured(ingest)
        metrics.models.set(self._budget.models)
        metrics.model_versions.set(self._budget.model_versions)
        self._store = store
        self._metrics = metrics
        self._rebalance = RebalanceWatch()
        #: Made by ``connect`` (in ``run``), once the cluster is reachable.
        self._consumer: KafkaConsumer | None = None
        self._given_producer = producer
        self._producer: KafkaProducer | None = None
        self._warn = RateLimitedWarning(logger)
        self._cluster = ClusterWatch(kafka.readiness_timeout)
        #: ``time.monotonic()`` when the loop last went round (``stall_problem``).
        self._progress_at = time.monotonic()
        #: Set once the Kafka clients exist.
        self.connected = threading.Event()
        #: Records a paused poll returned (see ``_poll_paused``): the next batch's first.
        self._carried: list[ConsumerRecord] = []
        #: Set after each committed batch; tests and /readyz read it.
        self.batches_committed = 0

    def run(self, stop: threading.Event) -> None:
        """Consume until ``stop`` is set; the batch in hand is finished first."""
        try:
            if not self.connect(stop):
                return
            logger.info("ingest started", extra={"topics": self._kafka.topics.unique()})
            while not stop.is_set():
                self._progress_at = time.monotonic()
                records = self._collect(stop)
                if records:
                    self.process(records, stop)
                self._update_lag()
                self._cluster.observe(self.broker_problem())
        finally:
            self.close()

    def connect(self, stop: threading.Event) -> bool:
        """Make the Kafka clients, retrying with backoff (``ingest.retry_initial`` ..
        ``retry_max``) while the cluster is unreachable. False if ``stop`` came first."""
        delay = self._settings.retry_initial
        while True:
            attempt = ConnectAttempt(self._make_clients)
            while not attempt.done.wait(0.1):
                self._progress_at = time.monotonic()
                if stop.is_set():
                    attempt.abandon()
                    return False
            clients = attempt.clients()
            if clients is not None:
                self._consumer, self._producer = clients
                self.connected.set()
                return True
            self._warn.warn(
                "connect",
                "Kafka cluster unreachable at start-up; retrying",
                error=attempt.error,
                kafka_client=KAFKA_CLIENT_LOG.latest(),
                retry_in_s=delay,
            )
            deadline = time.monotonic() + delay
            while time.monotonic() < deadline:
                self._progress_at = time.monotonic()
                if stop.wait(0.1):
                    return False
            delay = min(delay * 2, self._settings.retry_max)

    def _make_clients(self) -> Clients:
        consumer = make_consumer(self._kafka, self._settings, self._rebalance)
        producer = self._given_producer
        if producer is None and self._kafka.dead_letter_topic:
            try:
                producer = make_producer(self._kafka)
            except BaseException:
                consumer.close(autocommit=False, timeout_ms=int(CLOSE_TIMEOUT_S * 1000))
                raise
        return consumer, producer

    def broker_problem(self) -> str | None:
        """Why the consumer is not connected to the cluster (readiness), or None."""
        consumer = self._consumer
        if consumer is None:
            return "not connected to the Kafka cluster yet"
        answered = heartbeat_answered_at(consumer)
        if answered is None:
            return "not a member of the consumer group yet"
        silent_s = time.monotonic() - answered
        if silent_s > self._kafka.readiness_timeout:
            return f"no heartbeat answered by the Kafka cluster for {int(silent_s)} s"
        return None

    def stall_problem(self) -> str | None:
        """Why the ingest loop looks stuck (liveness), or None. Stuck: it has not gone
        round for ``max_poll_interval_ms``, the bound after which Kafka itself gives the
        partitions to another member. A broker outage is not a stall: the loop goes on
        polling (and retrying) meanwhile."""
        idle_s = time.monotonic() - self._progress_at
        if idle_s > self._kafka.max_poll_interval_ms / 1000:
            return f"the ingest loop has not gone round for {int(idle_s)} s"
        return None

    @property
    def consumer(self) -> KafkaConsumer:
        """The consumer, once ``connect`` has made it."""
        if self._consumer is None:
            raise RuntimeError("the ingest worker is not connected to Kafka")
        return self._consumer

    def close(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            close_clients((consumer, self._producer))
        logger.info("ingest stopped")

    def _collect(self, stop: threading.Event) -> list[ConsumerRecord]:
        """Poll until the batch is full or its first record is ``max_batch_age`` old."""
        records, self._carried = self._carried, []
        deadline = time.monotonic() + self._settings.max_batch_age if records else None
        limit = max(self._settings.max_batch_records, len(records))
        while len(records) < limit and not stop.is_set():
            timeout_ms = POLL_TIMEOUT_MS
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                timeout_ms = min(timeout_ms, max(int(remaining * 1000), 1))
            polled = self.consumer.poll(timeout_ms=timeout_ms, max_records=limit - len(records))
            for partition_records in polled.values():
                records.extend(partition_records)
            if records and deadline is None:
                deadline = time.monotonic() + self._settings.max_batch_age
            if not polled and not records:
                break  # idle: give the caller a chance to check stop and lag
        return records

    def process(self, records: list[ConsumerRecord], stop: threading.Event) -> bool:
        """Make one batch durable, then commit its offsets. Returns False if stopped first.

        The ordering is what makes ingest at-least-once without counting data twice:

        1. validate every message; invalid ones, and those past the cardinality
           budget, are set aside with their reason (and counted as rejected right away);
        2. write the valid ones to the store in ONE transaction; while the store is
           down, retry with exponential backoff, partitions paused (nothing new is
           fetched, the consumer stays in its group); records whose data the store
           refuses are found, counted and set aside with the invalid ones (``_write``);
        3. forward the invalid ones to the dead-letter topic and wait for the acks;
        4. count the valid ones in the metrics, and only then commit the offsets after
           the batch's last record per partition.

        A crash before the commit, a failed commit (``_commit``) or a stop during the
        retries of 2 or 3 leaves the offsets where they were, so the batch is read
        again; step 2 is an idempotent upsert on (model_id, event_id), so that changes
        nothing in the store. The counters are only at-least-once: what was counted
        before is counted again (docs/messages.md, "Delivery guarantees").
        """
        started = time.perf_counter()
        valid, rejected = self._validate(records)
        written = self._retry(lambda: self._write(valid), stop, "store")
        if written is None:
            return False
        result, refused = written
        if refused:
            for item in refused:
                self._note_rejected(item, "message refused by the store, dead-lettered")
            rejected = rejected + refused
            gone = {id(item.record) for item in refused}
            valid = [(record, message) for record, message in valid if id(record) not in gone]
        if rejected and self._kafka.dead_letter_topic:
            topic = self._kafka.dead_letter_topic
            sent = self._retry(
                lambda: dead_letter.forward(self._producer, topic, rejected, timeout_s=30),
                stop,
                "dead-letter topic",
            )
            if sent is None:
                return False
            self._metrics.dead_lettered.inc(len(rejected))
        # Counted before the commit: whoever sees the offsets committed (another
        # replica, a test, an operator) then also sees the batch in the counters.
        self._count([message for _, message in valid], result)
        self._commit(records, stop)
        self._metrics.batch_seconds.observe(time.perf_counter() - started)
        self.batches_committed += 1
        return True

    def _validate(self, records: list[ConsumerRecord]) -> tuple[list[Parsed], list[Rejected]]:
        valid: list[Parsed] = []
        rejected: list[Rejected] = []
        check_budget = self._budget.check
        decoded = decode_batch(
            [record.value for record in records],
            max_bytes=self._settings.max_message_bytes,
            multiclass=self._settings.multiclass,
        )
        for record, message in zip(records, decoded, strict=True):
            try:
                if isinstance(message, InvalidMessage):
                    raise message
                check_budget(message)
                valid.append((record, message))
            except InvalidMessage as problem:
                rejected.append(Rejected(record, problem.reason, problem.detail))
                self._note_rejected(rejected[-1], "invalid message dead-lettered")
        self._metrics.models.set(self._budget.models)
        self._metrics.model_versions.set(self._budget.model_versions)
        return valid, rejected

    def _write(self, valid: list[Parsed]) -> tuple[WriteResult, list[Rejected]]:
        """Write the batch in one transaction, or find the records the store refuses.

        ``RecordsRefused`` comes from the data, not from an outage: retrying would fail
        the same way on every attempt and block the partition for good. So the batch is
        split in halves, each written on its own (in order; idempotent if redelivered),
        down to the single records the store refuses, which are dead-lettered as
        ``store_rejected``. Validation should leave nothing for this to find: it guards
        against what validation does not know.
        """
        try:
            return self._store.write_batch([message for _, message in valid]), []
        except RecordsRefused as exc:
            if len(valid) == 1:
                detail = f"the store refused it: {exc}"
                return WriteResult(), [Rejected(valid[0][0], "store_rejected", detail)]
            middle = len(valid) // 2
            first, refused_first = self._write(valid[:middle])
            second, refused_second = self._write(valid[middle:])
            return first + second, refused_first + refused_second

    def _note_rejected(self, item: Rejected, message: str) -> None:
        self._metrics.rejected.labels(item.reason).inc()
        self._warn.warn(
            item.reason,
            message,
            reason=item.reason,
            detail=item.detail,
            topic=item.record.topic,
            partition=item.record.partition,
            offset=item.record.offset,
        )

    def _retry(self, action: Callable[[], Any], stop: threading.Event, what: str) -> Any:
        """Run ``action`` until it succeeds or ``stop`` is set (then return None)."""
        delay = self._settings.retry_initial
        paused = False
        try:
            while True:
                paused |= self._finish_rebalance(stop)
                try:
                    outcome = action()
                    return True if outcome is None else outcome
                except (StoreUnavailable, DeadLetterError, KafkaError) as exc:
                    self._metrics.write_retries.inc()
                    self._warn.warn(
                        f"retry:{what}",
                        f"{what} unavailable, retrying",
                        error=str(exc)[:500],
                        retry_in_s=delay,
                    )
                paused = True
                deadline = time.monotonic() + delay
                while time.monotonic() < deadline:
                    self._progress_at = time.monotonic()
                    if stop.is_set():
                        logger.warning("stopping with an unwritten batch; it will be redelivered")
                        return None
                    self._poll_paused()
                delay = min(delay * 2, self._settings.retry_max)
        finally:
            if paused:
                self.consumer.resume(*self.consumer.paused())

    def _finish_rebalance(self, stop: threading.Event) -> bool:
        """Before work outside ``poll``: if a rebalance is under way, poll (partitions
        paused) until it completes, ``stop`` is set or ``REBALANCE_WAIT_S`` passes.
        Returns True if it polled (and so paused the partitions).

        Why: kafka-python 3.0 applies a finished join only in a ``poll`` that is
        waiting for it; a ``poll`` that finds the join already finished (its response
        came while the worker was writing) drops it and joins again. A worker that
        writes more than it polls (one retrying an unavailable store, say) can then
        rejoin for ever. Seen here with tansu, whose joins take seconds: a consumer
        that spent 1 s outside ``poll`` between polls never completed one in 60 s
        (tests/integration/ingest/test_rebalance.py).
        """
        if not self._rebalance.under_way.is_set():
            return False
        deadline = time.monotonic() + REBALANCE_WAIT_S
        while self._rebalance.under_way.is_set() and not stop.is_set():
            self._progress_at = time.monotonic()
            if time.monotonic() >= deadline:
                logger.warning("rebalance still under way; writing meanwhile")
                break
            self._poll_paused()
        return True

    def _poll_paused(self) -> None:
        """Poll with every assigned partition paused: fetches nothing, but keeps the
        consumer in its group (``max_poll_interval_ms``) while a batch waits.

        A rebalance inside the poll can assign partitions that are not paused yet, and
        the poll then returns their records. They are kept for the next batch: dropped,
        they would be skipped for good once a later batch commits past them.
        """
        self.consumer.pause(*self.consumer.assignment())
        for records in self.consumer.poll(timeout_ms=100).values():
            self._carried.extend(records)

    def _commit(self, records: list[ConsumerRecord], stop: threading.Event) -> None:
        """Commit the offsets after ``records`` for the partitions this consumer still owns.

        A partition that a rebalance (during a retry) gave to another replica is left to
        it: committing here could move its committed offset back. It re-reads from its
        own position, and the write above was idempotent.
        """
        last: dict[tuple[str, int], int] = {}
        for record in records:  # every message passes here: plain tuples, no structs
            key = (record.topic, record.partition)
            if last.get(key, -1) < record.offset:
                last[key] = record.offset
        consumer = self.consumer
        assigned = consumer.assignment()
        offsets = {
            partition: OffsetAndMetadata(offset + 1, "", -1)
            for (topic, number), offset in last.items()
            if (partition := TopicPartition(topic, number)) in assigned
        }
        if not offsets:
            return
        # In slices, up to kafka.commit_timeout_ms: kafka-python's own default is its
        # request timeout (305 s), and a commit sent as the broker went away held ingest
        # that long after it came back. A commit given up here is harmless: the batch is
        # durable, its records are read again and re-written idempotently.
        deadline = time.monotonic() + self._kafka.commit_timeout_ms / 1000
        while True:
            remaining_ms = int((deadline - time.monotonic()) * 1000)
            try:
                consumer.commit(
                    offsets=offsets, timeout_ms=max(min(COMMIT_SLICE_MS, remaining_ms), 1)
                )
                return
            except KafkaTimeoutError as exc:
                if remaining_ms <= COMMIT_SLICE_MS or stop.is_set():
                    self._warn.warn(
                        "commit",
                        "offset commit timed out; the batch will be re-read",
                        error=repr(exc),
                    )
                    return
            except CommitFailedError as exc:
                # The partitions moved to another replica during the batch; it will
                # re-read them from the last commit, and the write above is idempotent.
                self._warn.warn("commit", "offset commit failed after a rebalance", error=str(exc))
                return
            except KafkaError as exc:
                # The broker is unreachable (or refused). Same outcome as a timeout.
                self._warn.warn(
                    "commit", "offset commit failed; the batch will be re-read", error=repr(exc)
                )
                return

    def _count(self, valid: list[Prediction | Label], result: WriteResult) -> None:
        labels = sum(1 for record in valid if isinstance(record, Label))
        self._metrics.messages.labels("label").inc(labels)
        self._metrics.messages.labels("prediction").inc(len(valid) - labels)
        for reason, count in result.labels_dropped.items():
            self._metrics.labels_dropped.labels(reason).inc(count)
        self._metrics.labels_dropped.labels("duplicate").inc(result.labels_duplicate)
        self._metrics.labels_dropped.labels("conflicting").inc(result.labels_conflicting)
        observe_many(self._metrics.label_delay, result.label_delays_s)

    def _update_lag(self) -> None:
        for partition in self.consumer.assignment():
            highwater = self.consumer.highwater(partition)
            if highwater is None:
                continue
            try:
                position = self.consumer.position(partition, timeout_ms=100)
            except KafkaError:
                continue  # not known yet; next round
            self._metrics.lag.labels(partition.topic, str(partition.partition)).set(
                max(highwater - position, 0)
            )

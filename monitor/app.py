"""Wires the stages into the daemon (``calmon run``); no logic of its own."""

from __future__ import annotations

import functools
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from prometheus_client import CollectorRegistry
from prometheus_client.process_collector import ProcessCollector

from monitor.alerts.alertmanager import AlertmanagerNotifier
from monitor.alerts.pipeline import AlertPipeline
from monitor.alerts.webhooks import DeliveryMetrics, WebhookDeliverer
from monitor.core.errors import UserError
from monitor.core.results import WindowResult
from monitor.core.times import wall_clock_ms
from monitor.export.choice import ExportChoice, export_problems
from monitor.export.collector import AlertsCollector, RecalibrationsCollector
from monitor.export.exposition import METRICS, WindowExposition
from monitor.export.http import HttpApi, serve
from monitor.export.refresh import REFRESH_EVERY_S, ExpositionRefresher
from monitor.export.server import ServerLimits
from monitor.export.web_config import load as load_web_config
from monitor.heap import freeze_startup_objects, limit_heap_fragmentation
from monitor.ingest.budget import CardinalityBudget
from monitor.ingest.metrics import IngestMetrics
from monitor.ingest.worker import IngestWorker
from monitor.rules.model import load_rules
from monitor.settings import ConfigError, ExportSettings, Settings, describe_problems
from monitor.shutdown import ShutdownSignals
from monitor.store.aggregates import active_model_versions, known_model_classes
from monitor.store.db import migrate
from monitor.store.db.engine import Engine, make_engine
from monitor.store.db.health import StoreHealth
from monitor.store.maintenance.jobs import Maintenance
from monitor.store.maintenance.retention import RetentionPolicy
from monitor.store.write.event_store import EventStore
from monitor.windows.incremental import change_log_kept_s
from monitor.windows.jobs import JobMetrics, WindowJob
from monitor.windows.reference_thresholds import configuration_problems
from monitor.windows.shards import ShardCoordinator, TakeOvers, tick_done

logger = logging.getLogger(__name__)

#: The scheduler records that it still runs jobs this often (``liveness``)...
SCHEDULER_BEAT_S = 5.0
#: ...and is taken for stuck when it has not for this long.
SCHEDULER_STALL_S = 120.0


class SchemaNotReady(UserError, RuntimeError):
    """The store is missing tables or is behind the latest migration."""


def _checked_export(settings: Settings) -> ExportSettings:
    """``export``, or a ConfigError naming what in it matches nothing (check-config
    reports the same)."""
    problems = export_problems(
        settings.export,
        metrics=METRICS,
        windows=[window.name for window in settings.windows],
        segment_keys=settings.store.segment_keys,
    )
    if problems:
        raise ConfigError(describe_problems(problems))
    return settings.export


class App:
    def __init__(
        self,
        settings: Settings,
        *,
        engine: Engine | None = None,
        registry: CollectorRegistry | None = None,
        clock_ms: Callable[[], int] = wall_clock_ms,
        on_results: Callable[[str, list[WindowResult]], None] | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine or make_engine(settings.store.url.get_secret_value())
        if not migrate.is_at_head(self.engine):
            raise SchemaNotReady(
                f"the store is at revision {migrate.current_revision(self.engine) or 'empty'}, "
                f"not {migrate.head_revision()}: run `calmon migrate` first"
            )
        self.registry = registry or CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.owner = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        windows = [window.name for window in settings.windows]
        every_ms = {window.name: int(window.every * 1000) for window in settings.windows}
        self.exposition = WindowExposition(ExportChoice(_checked_export(settings)))
        self.exposition_refresher = ExpositionRefresher(
            self.engine,
            self.exposition,
            windows,
            tick_done=lambda window: tick_done(self.engine, window, every_ms[window]),
        )
        # This replica's share of every window's series, leased in the store.
        self.shards = ShardCoordinator(
            self.engine,
            self.owner,
            windows,
            lease_s=settings.store.replica_lease,
            clock_ms=clock_ms,
            on_gained=lambda window, shards: self.take_overs.request(window, shards),
        )
        self.clock_ms = clock_ms
        self.store = EventStore(
            self.engine,
            segment_keys=settings.store.segment_keys,
            label_horizon_s=int(settings.ingest.label_horizon),
            clock_ms=clock_ms,
        )
        self.rules = load_rules(settings.rules, webhooks=settings.webhooks)
        for problem in configuration_problems(
            {rule.name: rule.windows_from_reference(settings.windows) for rule in self.rules},
            settings.reference,
        ):
            logger.warning(problem)  # the rule stays loaded: it never fires nor resolves
        self.notifier = (
            AlertmanagerNotifier(
                self.engine,
                settings.alertmanager,
                self.registry,
                base_url=settings.http.base_url(),
                clock_ms=clock_ms,
            )
            if settings.alertmanager.urls
            else None
        )
        self.alerts = AlertPipeline(
            self.engine,
            settings,
            self.rules,
            self.registry,
            notifier=self.notifier,
            clock_ms=clock_ms,
        )
        self.deliverer = (
            WebhookDeliverer(
                self.engine,
                settings.webhooks,
                DeliveryMetrics(self.registry, settings.webhooks),
                clock_ms=clock_ms,
            )
            if settings.webhooks
            else None
        )
        self.registry.register(AlertsCollector(self.engine))
        self.registry.register(RecalibrationsCollector(self.engine))

        def after_window(
            window: str, results: list[WindowResult], covers: Callable[[str], bool]
        ) -> None:
            self.alerts.on_results(window, results, covers)
            if on_results is not None:
                on_results(window, results)

        job_metrics = JobMetrics(self.registry)
        self.jobs = [
            WindowJob(
                self.engine,
                settings,
                window,
                owner=self.owner,
                metrics=job_metrics,
                clock_ms=clock_ms,
                on_results=after_window,
                on_stored=self.exposition_refresher.stored,
                shards=self.shards,
                reference_metrics=frozenset(
                    metric
                    for rule in self.rules
                    if rule.select.matches_window(window.name)
                    for metric in rule.reference_metrics()
                ),
            )
            for window in settings.windows
        ]
        # Shards handed over by a beat are evaluated at once, not at the next run.
        self.take_overs = TakeOvers({job.window_name: job.take_over for job in self.jobs})
        # Created here, not with the worker: the retention job counts the labels it
        # drops (no_prediction) in the same counter as ingest's other dropped labels.
        self.ingest_metrics = IngestMetrics(self.registry)
        no_prediction = self.ingest_metrics.labels_dropped.labels("no_prediction")
        self.maintenance = Maintenance(
            self.engine,
            RetentionPolicy(
                event_retention_s=int(settings.store.event_retention),
                label_horizon_s=int(settings.ingest.label_horizon),
                metric_history_s=int(settings.store.metric_history_retention),
            ),
            self.registry,
            compaction_every_s=settings.store.compaction_interval,
            changes_kept_s=change_log_kept_s(settings),
            owner=self.owner,
            clock_ms=clock_ms,
            on_orphan_labels=no_prediction.inc,
        )
        self.stop_event = threading.Event()
        self.worker: IngestWorker | None = None
        self._ingest_thread: threading.Thread | None = None
        #: Whether this process ingests (not ``--no-ingest``); set before the HTTP server
        #: starts, so that /readyz never answers for a worker not made yet.
        self._ingests = False
        self.store_health = StoreHealth(self.engine)
        self._scheduler_beat = time.monotonic()

    def start_ingest(self) -> threading.Thread:
        ingest = self.settings.ingest
        retained_since = self.clock_ms() - int(self.settings.store.event_retention * 1000)
        known = active_model_versions(self.engine, since_ms=retained_since)
        budget = CardinalityBudget.configured(ingest, known, known_model_classes(self.engine))
        self.worker = IngestWorker(
            kafka=self.settings.kafka,
            ingest=ingest,
            store=self.store,
            metrics=self.ingest_metrics,
            budget=budget,
        )
        thread = threading.Thread(target=self.worker.run, args=(self.stop_event,), name="ingest")
        thread.start()
        return thread

    def readiness(self) -> dict[str, str | None]:
        """/readyz: the store answers at the latest migration, and (unless --no-ingest)
        the consumer is in its group with the cluster answering its heartbeats."""
        problems: dict[str, str | None] = {"store": self.store_health.problem(), "broker": None}
        if self._ingests:
            worker = self.worker
            problems["broker"] = (
                worker.broker_problem() if worker else "not connected to the Kafka cluster yet"
            )
        return problems

    def liveness(self) -> dict[str, str | None]:
        """/healthz: the ingest loop and the scheduler still go round. A broker or store
        outage is not a failure here: restarting the pod would not bring them back."""
        problems: dict[str, str | None] = {"ingest": None, "scheduler": None}
        if self.worker is not None and self._ingest_thread is not None:
            if not self._ingest_thread.is_alive() and not self.stop_event.is_set():
                problems["ingest"] = "the ingest thread has ended"
            else:
                problems["ingest"] = self.worker.stall_problem()
        silent_s = time.monotonic() - self._scheduler_beat
        if silent_s > SCHEDULER_STALL_S:
            problems["scheduler"] = f"the scheduler has run no job for {int(silent_s)} s"
        return problems

    def _beat(self) -> None:
        self._scheduler_beat = time.monotonic()

    def _window_run_skipped(self, event: JobEvent) -> None:
        job = next((job for job in self.jobs if job.name == event.job_id), None)
        if job is not None:
            job.skipped()

    def scheduler(self) -> BackgroundScheduler:
        # One run of a job at a time; a run due while the previous one still goes is
        # skipped (max_instances), runs missed meanwhile are one run (coalesce), and a
        # run that could not start within 30 s is dropped (misfire_grace_time): a slow
        # window job never piles up runs behind it. Window jobs count their skips.
        scheduler = BackgroundScheduler(
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30}
        )
        scheduler.add_listener(self._window_run_skipped, EVENT_JOB_MAX_INSTANCES | EVENT_JOB_MISSED)
        for job in self.jobs:
            scheduler.add_job(job.run, "interval", seconds=job.every_s, id=job.name, name=job.name)
        if self.notifier is not None:
            scheduler.add_job(
                functools.partial(self.notifier.resend, self.owner),
                "interval",
                seconds=self.settings.alertmanager.resend_interval,
                id="alertmanager",
            )
        if self.deliverer is not None:
            # A thread per webhook lane, apart from the window jobs' pool: a slow receiver
            # delays its own deliveries only, never another webhook's or a window job.
            lanes = self.deliverer.lanes()
            scheduler.add_executor(ThreadPoolExecutor(max_workers=len(lanes)), "webhooks")
            for name, lane in lanes.items():
                scheduler.add_job(
                    lane, "interval", seconds=1, id=f"webhooks:{name}", executor="webhooks"
                )
        scheduler.add_job(
            self.maintenance.retention,
            "interval",
            seconds=self.settings.store.retention_interval,
            id="retention",
        )
        # Runs in the scheduler's worker pool like every job: if the pool is exhausted by
        # stuck jobs, or the scheduler thread is gone, the beat stops and /healthz fails.
        scheduler.add_job(self._beat, "interval", seconds=SCHEDULER_BEAT_S, id="liveness")
        scheduler.add_job(
            self.shards.beat,
            "interval",
            seconds=self.shards.beat_every_s,
            id="window-shards",
            next_run_time=datetime.now(UTC),  # the first share at once, not a beat later
        )
        scheduler.add_job(
            self.exposition_refresher.refresh,
            "interval",
            seconds=REFRESH_EVERY_S,
            id="export-refresh",
        )
        scheduler.add_job(
            self.maintenance.compact,
            "interval",
            seconds=self.settings.store.compaction_interval,
            id="compaction",
        )
        return scheduler

    def start(self, *, ingest: bool = True) -> None:
        """Start the HTTP server, the ingest thread and the scheduler."""
        limit_heap_fragmentation()  # before the threads start: it caps their heaps
        self._ingests = ingest
        api = HttpApi(
            engine=self.engine,
            registry=self.registry,
            readiness=self.readiness,
            liveness=self.liveness,
            window_metrics=self.exposition.body,
        )
        # The stored results before the first scrape: a restart exports no gap.
        self.exposition_refresher.refresh()
        http = self.settings.http
        limits = ServerLimits(
            request_timeout=http.request_timeout,
            max_connections=http.max_connections,
            workers=http.workers,
        )
        web = load_web_config(http.web_config_file, bearer_token_env=http.bearer_token_env)
        self._server = serve(api, http.host, http.port, limits=limits, web=web)
        freeze_startup_objects()
        self._ingest_thread = self.start_ingest() if ingest else None
        self._scheduler_beat = time.monotonic()
        self._scheduler = self.scheduler()
        self.take_overs.start()
        self._scheduler.start()
        logger.info(
            "calmon running",
            extra={"http": f"{self.settings.http.host}:{self.http_port}", "owner": self.owner},
        )

    @property
    def http_port(self) -> int:
        return int(self._server.server_port)

    def shutdown(self) -> None:
        """Stop the scheduler, let ingest finish and commit its batch, then close."""
        logger.info("stopping")
        self.stop_event.set()
        self._scheduler.shutdown(wait=True)
        self.take_overs.stop(timeout_s=60)
        try:  # the others take this replica's shards at once, not a lease later
            self.shards.leave()
        except Exception:  # the store is away: the leases run out instead
            logger.warning("could not hand the window shards over", exc_info=True)
        if self._ingest_thread is not None:
            # Bounded by the grace period the chart gives (60 s): a batch in hand is
            # finished, written and committed; otherwise ingest stops within ~1 s.
            self._ingest_thread.join(timeout=60)
        self._server.shutdown()
        self._server.server_close()
        for client in (self.notifier, self.deliverer):
            if client is not None:
                client.close()
        self.engine.dispose()
        logger.info("stopped")

    def run(self, *, ingest: bool = True) -> int:
        """Run until SIGTERM or SIGINT, then shut down cleanly."""
        signals = ShutdownSignals()
        signals.install()
        self.start(ingest=ingest)
        signals.wait()
        self.shutdown()
        return 0

"""The window job: evaluate every series of one configured window and store the results."""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Protocol

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from monitor.core.results import WindowResult
from monitor.core.series import ALL, SeriesWindow
from monitor.core.times import wall_clock_ms
from monitor.metrics.class_references import ClassReferences
from monitor.metrics.multiclass import MulticlassAggregate
from monitor.settings import Settings, WindowSettings
from monitor.store.aggregates import SeriesInfo, known_model_classes, list_series, load_window
from monitor.store.db.engine import Engine
from monitor.store.fleet import SeriesKey
from monitor.store.references import FittedReferences, load_all_stored
from monitor.store.results import save_results, save_shard_results
from monitor.store.shards import shard_of
from monitor.windows.evaluate import evaluate
from monitor.windows.incremental import SeriesView, WindowCache, merge_views
from monitor.windows.multiclass import MulticlassOutcome, evaluate_multiclass
from monitor.windows.reference_thresholds import (
    MIN_CHUNKS,
    ReferencePeriod,
    reference_statistics,
)
from monitor.windows.references import FIXED_SETTLE_MS, ReferenceResolver
from monitor.windows.segments import OTHER, cap_segments
from monitor.windows.sequential import detector_values, plan_for
from monitor.windows.shards import ALL_SHARDS, ShardCoordinator

logger = logging.getLogger(__name__)


class StoredHook(Protocol):
    """Told once results are stored: of ``window``, for the tick ``slot_ms``, of the
    models ``models`` selects (None: every model of the window)."""

    def __call__(
        self,
        window: str,
        slot_ms: int,
        results: list[WindowResult],
        *,
        models: Callable[[str], bool] | None,
    ) -> None: ...


class JobMetrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.duration = Histogram(
            "calmon_window_job_duration_seconds",
            "Time to evaluate and store this replica's share of one window's series for one tick.",
            ["window"],
            buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
            registry=registry,
        )
        self.last_success = Gauge(
            "calmon_window_last_success_timestamp_seconds",
            "When this replica last completed the window job (Unix time).",
            ["window"],
            registry=registry,
        )
        self.skipped = Counter(
            "calmon_window_job_skipped",
            "Runs of the window job this replica skipped because the previous run was "
            "still going (it overran the window's every), or could not start in time.",
            ["window"],
            registry=registry,
        )


class WindowJob:
    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        window: WindowSettings,
        *,
        owner: str,
        metrics: JobMetrics,
        clock_ms: Callable[[], int] = wall_clock_ms,
        on_results: Callable[[str, list[WindowResult], Callable[[str], bool]], object]
        | None = None,
        on_stored: StoredHook | None = None,
        reference_metrics: frozenset[str] = frozenset(),
        shards: ShardCoordinator | None = None,
    ) -> None:
        """``shards``: this replica's share of the window (default: a coordinator of its
        own, as a replica alone has; the daemon shares one between its window jobs).
        ``on_results``: told (window, results, covers) after each tick, ``covers``
        accepting the models the tick evaluated whole (the alert pipeline's)."""
        self._engine = engine
        #: Metrics that rules threshold from the reference (``from_reference``).
        self._reference_metrics = reference_metrics
        self._reference_cache: dict[ReferencePeriod, dict[str, float]] = {}
        self._settings = settings
        self._window = window
        self._owner = owner
        self._metrics = metrics
        # Series exist from the first scrape; the first run fills them.
        metrics.duration.labels(window.name)
        metrics.skipped.labels(window.name)
        #: When the run in progress started (monotonic seconds); None between runs.
        self._running_since: float | None = None
        self._clock_ms = clock_ms
        self._on_results = on_results
        self._cache = WindowCache(window, settings)
        #: Models with class probabilities (``model_classes``), read at each tick.
        self._multiclass_models: set[str] = set()
        #: Told (window, slot, results, models=) once results are stored: the exporter's.
        self._on_stored = on_stored
        self._shards = shards or ShardCoordinator(
            engine,
            owner,
            [window.name],
            lease_s=settings.store.replica_lease,
            clock_ms=clock_ms,
        )
        # One tick at a time: the scheduled run and a takeover's share the cache.
        self._tick_lock = threading.Lock()

    @property
    def every_s(self) -> float:
        return self._window.every

    @property
    def name(self) -> str:
        return f"window:{self._window.name}"

    @property
    def window_name(self) -> str:
        return self._window.name

    def cache_stats(self) -> tuple[int, int]:
        """Series the last run read afresh, and rows or records it applied to the rest."""
        return self._cache.last_cold, self._cache.last_parts

    def drop_caches(self) -> None:
        """The next run reads every series afresh (benchmarks of the cold path)."""
        self._cache.forget()

    def run(self) -> list[WindowResult] | None:
        """The scheduled run: this replica's shards of the window not stored for the
        current tick yet; None if it has none to evaluate."""
        self._running_since = time.monotonic()
        try:
            return self.take_over()
        finally:
            self._running_since = None

    def take_over(self) -> list[WindowResult] | None:
        """Evaluate now what of the window is due (also run as soon as a beat hands this
        replica shards: a dead replica's tick is not left to the next run)."""
        with self._tick_lock:
            now = self._clock_ms()
            every_ms = int(self._window.every * 1000)
            work = self._shards.work(self._window.name, every_ms, now)
            if work.missed:  # as of the missed tick's last millisecond; its own cache
                last_ms = work.slot_ms - 1
                self._evaluate_shards(
                    last_ms,
                    work.slot_ms - every_ms,
                    work.missed,
                    WindowCache(self._window, self._settings),
                )
            if not work.current:
                return None
            return self._evaluate_shards(now, work.slot_ms, work.current, None)

    def _evaluate_shards(
        self, now: int, slot_ms: int, shards: frozenset[int], cache: WindowCache | None
    ) -> list[WindowResult]:
        started = time.perf_counter()
        held = self._shards.held(self._window.name)
        results = self.evaluate_all(
            now,
            models=lambda model: shard_of(model) in shards,
            keep=None if cache is not None else (lambda model: shard_of(model) in held),
            cache=cache,
        )
        stored = save_shard_results(
            self._engine,
            self._window.name,
            results,
            shards=shards,
            owner=self._owner,
            slot_ms=slot_ms,
            now_ms=self._clock_ms(),
        )
        kept = [r for r in results if shard_of(r.series.model) in stored]
        if stored != shards:
            logger.info(
                "window shards lost before their results were stored",
                extra={"window": self._window.name, "shards": sorted(shards - stored)},
            )
        whole_tick = stored == ALL_SHARDS
        return self._after_store(
            slot_ms, kept, started, None if whole_tick else (lambda m: shard_of(m) in stored)
        )

    def skipped(self) -> None:
        """The scheduler skipped a run (APScheduler: ``max_instances`` reached, or the
        run missed its start by more than ``misfire_grace_time``): count it and say why.

        Skipped, never queued: a window evaluated late is evaluated "now" anyway, so
        queued runs would only pile up behind a slow one.
        """
        self._metrics.skipped.labels(self._window.name).inc()
        started, every = self._running_since, self._window.every
        if started is None:
            logger.warning(
                "window job run skipped: it could not start in time",
                extra={"window": self._window.name, "every_s": every},
            )
            return
        running = time.monotonic() - started
        overrun = max(running - every, 0.0)
        logger.warning(
            "window job run skipped: the previous run is still going, %.1f s past the "
            "window's every of %g s",
            overrun,
            every,
            extra={
                "window": self._window.name,
                "running_s": round(running, 3),
                "every_s": every,
                "overrun_s": round(overrun, 3),
            },
        )

    def evaluate_now(self, now: int) -> list[WindowResult]:
        """Evaluate every series and store the results, whoever holds the shards
        (``calmon compute``)."""
        started = time.perf_counter()
        results = self.evaluate_all(now)
        save_results(self._engine, self._window.name, results)
        every_ms = int(self._window.every * 1000)
        return self._after_store(now - now % every_ms, results, started, None)

    def _after_store(
        self,
        slot_ms: int,
        results: list[WindowResult],
        started: float,
        models: Callable[[str], bool] | None,
    ) -> list[WindowResult]:
        """Results stored for ``slot_ms`` (of the models ``models`` selects; None: every
        model): count, log, tell the exporter and the rules."""
        if self._on_stored is not None:
            self._on_stored(self._window.name, slot_ms, results, models=models)
        elapsed = time.perf_counter() - started
        self._metrics.duration.labels(self._window.name).observe(elapsed)
        self._metrics.last_success.labels(self._window.name).set(time.time())
        logger.info(
            "window evaluated",
            extra={
                "window": self._window.name,
                "series": len(results),
                "slot_ms": slot_ms,
                "seconds": elapsed,
            },
        )
        if self._on_results is not None:
            self._on_results(self._window.name, results, models or _every)
        return results

    def evaluate_all(
        self,
        now: int,
        *,
        retained_at: int | None = None,
        models: Callable[[str], bool] | None = None,
        keep: Callable[[str], bool] | None = None,
        cache: WindowCache | None = None,
    ) -> list[WindowResult]:
        """Every series of the window ending at ``now``, of the models ``models``
        selects (None: every model), from ``cache`` (default: the job's own), which keeps
        the series of the models ``keep`` selects (default: those evaluated) and forgets
        the others. ``retained_at`` (the wall clock, when ``now`` is in the past:
        ``calmon backfill --history``) places the window's edges on the buckets retention
        keeps at that time (``buckets.window_edge``)."""
        end = now
        start = now - int(self._window.length * 1000)
        every_series = self._live(list_series(self._engine), now)
        self._multiclass_models = {model for model, _ in known_model_classes(self._engine)}
        kept = [i for i in every_series if (keep or models or _every)(i.model_id)]
        views = (cache or self._cache).advance(
            self._engine,
            now,
            [(i.model_id, i.model_version, i.segment) for i in kept],
            retained_at=retained_at,
            # Part of the fleet (this replica's shards): its reads leave the rest out.
            models=None if keep is None and models is None else sorted({i.model_id for i in kept}),
        )
        infos = [i for i in kept if models is None or models(i.model_id)]
        resolver = ReferenceResolver(
            self._engine,
            self._settings.reference,
            now_ms=now,
            keep_fixed=True,
            stored=load_all_stored(self._engine),
        )
        by_model: dict[str, list[SeriesInfo]] = defaultdict(list)
        for info in infos:
            by_model[info.model_id].append(info)
        results = []
        for model_id, infos in sorted(by_model.items()):
            versions: dict[str, list[SeriesInfo]] = defaultdict(list)
            for info in infos:
                versions[info.model_version].append(info)
                if self._settings.evaluation.all_versions:
                    versions[ALL].append(info)
            for version, version_infos in sorted(versions.items()):
                results += self._evaluate_version(
                    model_id, version, version_infos, views, start, end, now, resolver
                )
        return results

    def _live(self, series: list[SeriesInfo], now: int) -> list[SeriesInfo]:
        """The series not retired at ``now``: with a prediction or a label within
        ``evaluation.retire_series_after``. Retired ones have nothing in any window
        (the setting outlasts the longest), so leaving them out loses no result; their
        alerts resolve (``rules/engine.py``) and their exported series end."""
        since = now - int(self._settings.evaluation.retire_series_after * 1000)
        return [
            info
            for info in series
            if max(info.last_prediction_ms or since - 1, info.last_label_ms or since - 1) >= since
        ]

    def _evaluate_version(
        self,
        model_id: str,
        version: str,
        infos: list[SeriesInfo],
        views: dict[SeriesKey, SeriesView],
        start: int,
        end: int,
        now: int,
        resolver: ReferenceResolver,
    ) -> list[WindowResult]:
        settings = self._settings.evaluation
        by_segment: dict[str, list[SeriesView]] = defaultdict(list)
        for info in infos:
            by_segment[info.segment].append(views[(model_id, info.model_version, info.segment)])
        merged = {segment: merge_views(found) for segment, found in by_segment.items()}
        windows = {segment: view.window for segment, view in merged.items()}
        capped = cap_segments(windows, settings.max_segment_values)
        results = []
        for segment, window in sorted(capped.items()):
            if window.predictions == 0 and segment != ALL:
                continue  # a segment value not seen in this window: no series
            members = [i for i in infos if i.segment == segment] or infos
            resolved = (
                None
                if segment.endswith(f"={OTHER}")
                else resolver.resolve(
                    model_id,
                    version,
                    segment,
                    start,
                    end,
                    trailing=(
                        merged[segment].reference_scores,
                        merged[segment].reference_probabilities,
                    ),
                )
            )
            results.append(
                evaluate(
                    SeriesWindow(model_id, version, segment, self._window.name),
                    window,
                    start_ms=start,
                    end_ms=end,
                    now_ms=now,
                    references={} if resolved is None else resolved.references,
                    reference_used=None if resolved is None else resolved.used(),
                    last_prediction_ms=_latest(i.last_prediction_ms for i in members),
                    last_label_ms=_latest(i.last_label_ms for i in members),
                    settings=settings,
                    sequential_values={
                        **self._sequential_values(merged.get(segment), segment),
                        **self._reference_values(model_id, version, segment, resolved, now),
                    },
                    multiclass=self._multiclass(
                        model_id, version, segment, (start, end), now, resolved
                    ),
                )
            )
        return results

    def _multiclass(
        self,
        model_id: str,
        version: str,
        segment: str,
        window: tuple[int, int],
        now: int,
        resolved: FittedReferences | None,
    ) -> MulticlassOutcome | None:
        """A multi-class series' values, from its window's class aggregates and its
        reference period's, both read afresh (the window cache keeps binary sums only).
        None for a binary model, and for a segment key's merged tail (``__other__``)."""
        if model_id not in self._multiclass_models or segment.endswith(f"={OTHER}"):
            return None
        version_read = None if version == ALL else version

        def read(start_ms: int, end_ms: int) -> MulticlassAggregate | None:
            return load_window(
                self._engine,
                model_id=model_id,
                model_version=version_read,
                segment=segment,
                start_ms=start_ms,
                end_ms=end_ms,
                now_ms=now,
            ).multiclass

        current = read(*window)
        if current is None:
            return None
        reference: MulticlassAggregate | ClassReferences | None = None
        if resolved is not None:  # stored references, or the period's events to fit them
            reference = resolved.classes or read(resolved.start_ms, resolved.end_ms)
        return evaluate_multiclass(
            current,
            reference,
            self._settings.evaluation,
            psi_bins=self._settings.reference.psi_bins,
        )

    def _reference_values(
        self,
        model_id: str,
        version: str,
        segment: str,
        resolved: FittedReferences | None,
        now: int,
    ) -> dict[str, float]:
        if not self._reference_metrics or resolved is None:
            return {}
        length = int(self._window.length * 1000)
        period = ReferencePeriod(
            model_id,
            None if version == ALL else version,
            segment,
            resolved.start_ms,
            resolved.end_ms,
        )
        if (period.end_ms - period.start_ms) // length < MIN_CHUNKS:
            return {"reference_chunks": float(max((period.end_ms - period.start_ms) // length, 0))}
        cached = self._reference_cache.get(period)
        if cached is not None:
            return cached
        values = reference_statistics(
            self._engine,
            period,
            length_ms=length,
            metrics=self._reference_metrics,
            settings=self._settings.evaluation,
            now_ms=now,
        )
        if period.end_ms + FIXED_SETTLE_MS <= now:  # the period is over: it cannot change
            self._reference_cache[period] = values
        return values

    def _sequential_values(self, view: SeriesView | None, segment: str) -> dict[str, float]:
        settings = self._settings.evaluation.sequential
        if not settings.enabled or view is None or segment.endswith(f"={OTHER}"):
            return {}  # __other__ merges segments that change between ticks: no history
        # The cache holds the plan's buckets (``spans.plan_buckets``): the same rows as
        # the window's where they coincide, read once.
        return detector_values(view.residuals, plan_for(self._window, settings), settings)


def _every(model: str) -> bool:
    return True


def _latest(times: Iterable[int | None]) -> int | None:
    known = [t for t in times if t is not None]
    return max(known) if known else None

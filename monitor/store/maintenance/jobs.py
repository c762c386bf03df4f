"""The store's maintenance jobs and the gauges that watch them.

The daemon schedules both on every replica (``app.py``): compaction runs once per slot
across replicas (``store/claims.py``); retention is idempotent, so every replica may run
it, and each refreshes its own row-count gauge.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge

from monitor.store import claims
from monitor.store.changes import prune_changes
from monitor.store.db.engine import Engine
from monitor.store.db.tables import Aggregate, AggregateDelta, Event, MetricPoint
from monitor.store.maintenance.compaction import (
    ConcurrentCompaction,
    compact_aggregates,
    pending_deltas,
)
from monitor.store.maintenance.retention import (
    RetentionPolicy,
    apply_retention,
    table_row_counts,
)

logger = logging.getLogger(__name__)

#: Tables whose size ``calmon_store_rows`` exports (the ones that grow with traffic).
COUNTED_TABLES = [model.__tablename__ for model in (Event, Aggregate, AggregateDelta, MetricPoint)]


class Maintenance:
    """Retention and compaction for one replica.

    ``on_orphan_labels`` is told how many labels retention dropped because their
    prediction never came (ingest counts them with its other dropped labels).
    """

    def __init__(
        self,
        engine: Engine,
        policy: RetentionPolicy,
        registry: CollectorRegistry,
        *,
        compaction_every_s: float,
        changes_kept_s: float = 3600.0,
        owner: str,
        clock_ms: Callable[[], int],
        on_orphan_labels: Callable[[int], None],
    ) -> None:
        self._engine = engine
        self._policy = policy
        self._compaction_every_s = compaction_every_s
        self._changes_kept_ms = int(changes_kept_s * 1000)
        self._owner = owner
        self._clock_ms = clock_ms
        self._on_orphan_labels = on_orphan_labels
        self.store_rows = Gauge(
            "calmon_store_rows",
            "Rows per store table, refreshed by the retention job "
            "(on PostgreSQL the planner's estimate, exact after ANALYZE).",
            ["table"],
            registry=registry,
        )
        self.deltas_pending = Gauge(
            "calmon_aggregate_deltas",
            "Aggregate deltas appended by ingest and not merged into their buckets yet, "
            "counted after each compaction run (growing: compaction is not keeping up).",
            registry=registry,
        )
        self.deltas_compacted = Counter(
            "calmon_aggregate_deltas_compacted",
            "Aggregate deltas this replica's compaction job merged into their buckets.",
            registry=registry,
        )

    def retention(self) -> None:
        result = apply_retention(self._engine, self._policy, self._clock_ms())
        logger.info("retention applied", extra=vars(result))
        self._on_orphan_labels(result.orphan_labels)
        for name, count in table_row_counts(self._engine, COUNTED_TABLES).items():
            self.store_rows.labels(name).set(count)

    def compact(self) -> None:
        """Fold ingest's aggregate deltas into their buckets, once per slot across replicas."""
        try:
            merged = claims.run_once(
                self._engine,
                "compaction",
                self._compaction_every_s,
                self._owner,
                self._clock_ms,
                self._compact_and_prune,
            )
        except ConcurrentCompaction as exc:
            # Retention (or a replica whose claim overlapped) removed deltas this run
            # had read; it rolled back, and the next run merges what is left.
            logger.info("aggregate compaction rolled back", extra={"reason": str(exc)})
            merged = None
        if merged:
            self.deltas_compacted.inc(merged)
            logger.debug("aggregate deltas compacted", extra={"deltas": merged})
        # Every replica counts, whichever ran the job: they all export the same backlog.
        self.deltas_pending.set(pending_deltas(self._engine))

    def _compact_and_prune(self, now_ms: int) -> int:
        merged = compact_aggregates(self._engine, now_ms)
        prune_changes(self._engine, now_ms, self._changes_kept_ms)
        return merged

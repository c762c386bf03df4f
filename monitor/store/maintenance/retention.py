"""Retention: drop raw events and fine buckets that windows no longer need.

Raw events are kept for ``event_retention_s`` (default 35 days: longer than the label
horizon, so a late label still finds its prediction). Labels that never met their
prediction are dropped one label horizon after they arrived, and returned as
``orphan_labels`` (the daemon counts them as ``no_prediction``); so is a label that
arrives after its prediction was deleted. Aggregates are kept per resolution
(``buckets.BUCKETS_KEPT_S``): minutes 3 days, hours 62 days, days 400 days; a window
edge further back than its resolution is kept moves to a coarser boundary
(``buckets.window_edge``), so no window reads a bucket this deletes. The metric
history (every value a window job computed: one row per metric, series and evaluation,
the store's fastest-growing table) is kept ``metric_history_s``, default 400 days.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Engine, delete, func, select, table, text

from monitor.store.buckets import BUCKETS_KEPT_S
from monitor.store.db.tables import Aggregate, AggregateDelta, Event, MetricPoint


@dataclass(frozen=True)
class RetentionPolicy:
    event_retention_s: int = 35 * 86_400
    label_horizon_s: int = 30 * 86_400
    metric_history_s: int = 400 * 86_400


@dataclass(frozen=True)
class RetentionResult:
    events: int
    orphan_labels: int
    aggregates: int
    metric_points: int


def apply_retention(engine: Engine, policy: RetentionPolicy, now_ms: int) -> RetentionResult:
    with engine.begin() as connection:
        events = connection.execute(
            delete(Event).where(Event.event_time_ms < now_ms - policy.event_retention_s * 1000)
        ).rowcount
        orphans = connection.execute(
            delete(Event).where(
                Event.model_version.is_(None),
                Event.created_ms < now_ms - policy.label_horizon_s * 1000,
            )
        ).rowcount
        aggregates = 0
        # Fixed, not configurable: window edges are placed knowing these (buckets.py).
        for resolution, keep_s in BUCKETS_KEPT_S.items():
            for model in (Aggregate, AggregateDelta):
                aggregates += connection.execute(
                    delete(model).where(
                        model.resolution_s == resolution,
                        model.bucket_start_ms < now_ms - keep_s * 1000,
                    )
                ).rowcount
        metric_points = connection.execute(
            delete(MetricPoint).where(
                MetricPoint.evaluated_ms < now_ms - policy.metric_history_s * 1000
            )
        ).rowcount
    return RetentionResult(
        events=events, orphan_labels=orphans, aggregates=aggregates, metric_points=metric_points
    )


def table_row_counts(engine: Engine, tables: Sequence[str]) -> dict[str, int]:
    """Rows per table, for the ``calmon_store_rows`` gauge.

    On PostgreSQL this is the planner's estimate (``pg_class.reltuples``, kept current
    by autovacuum's ANALYZE): an exact ``count(*)`` reads the whole table, minutes
    for the billions of events a month of production traffic leaves. A table never
    analyzed yet has no estimate (-1) and is counted. SQLite counts: it is small.
    """
    counts: dict[str, int] = {}
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            estimates = connection.execute(
                text(
                    "SELECT c.relname, c.reltuples FROM pg_class c "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = current_schema() AND c.relname = ANY(:names)"
                ),
                {"names": list(tables)},
            )
            counts = {name: int(rows) for name, rows in estimates if rows >= 0}
        for name in tables:
            if name not in counts:
                counted = connection.execute(
                    select(func.count()).select_from(table(name))
                ).scalar_one()
                counts[name] = int(counted)
    return counts

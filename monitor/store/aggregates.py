"""The read side of the aggregates: one merged aggregate per series and window."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import Connection, Engine, Table, select, tuple_, union_all

from monitor.metrics.aggregates import COLUMN, EventAggregate
from monitor.metrics.multiclass import MulticlassAggregate
from monitor.store.buckets import cover
from monitor.store.db.sql import chunks
from monitor.store.db.tables import Aggregate, AggregateDelta, ModelClass, Series

_AGGREGATES: Table = Aggregate.__table__  # type: ignore[assignment]
_DELTAS: Table = AggregateDelta.__table__  # type: ignore[assignment]

#: Decoded buckets held before they are folded into one. A busy series' bucket decodes
#: to hundreds of kilobytes, and a window covers up to ~170 of them (a week: days, then
#: hours and minutes at its edges), plus deltas: merged all at once, they and their
#: concatenation made a window's memory grow with its bucket count. Folding keeps it
#: to a few dozen buckets' worth; merging is linear in the cells merged (dense path of
#: ``SparseHistogram.merge_many``), so folding adds little time.
FOLD_EVERY = 16


@dataclass(frozen=True)
class WindowAggregate:
    aggregate: EventAggregate
    predictions: int
    buckets: int  # rows merged: the window's buckets and their deltas not compacted yet
    #: A multi-class series' events (None for a binary series).
    multiclass: MulticlassAggregate | None = None


@dataclass(frozen=True)
class SeriesInfo:
    model_id: str
    model_version: str
    segment: str
    last_prediction_ms: int | None
    last_label_ms: int | None


def load_window(
    engine: Engine,
    *,
    model_id: str,
    model_version: str | None,
    segment: str,
    start_ms: int,
    end_ms: int,
    now_ms: int,
) -> WindowAggregate:
    """Merge the buckets covering [start, end) as evaluated at ``now`` (which places the
    edges: ``buckets.window_edge``); ``model_version=None`` merges all versions."""
    buckets = cover(start_ms, end_ms, now_ms)
    parts: list[EventAggregate] = []
    class_parts: list[MulticlassAggregate] = []
    predictions = rows_merged = 0
    with engine.connect() as connection:
        versions = _versions(connection, model_id, model_version, segment)
        for chunk in chunks(buckets):
            # A bucket's row and its deltas not compacted yet, in one statement: one
            # snapshot, so a compaction committing meanwhile is seen whole or not at all.
            query = union_all(
                *(
                    select(table.c.predictions, table.c.blob, table.c.multiclass_blob).where(
                        table.c.model_id == model_id,
                        table.c.model_version.in_(versions),
                        table.c.segment == segment,
                        tuple_(table.c.resolution_s, table.c.bucket_start_ms).in_(list(chunk)),
                    )
                    for table in (_AGGREGATES, _DELTAS)
                )
            )
            for row in connection.execute(query):
                predictions += row.predictions
                rows_merged += 1
                parts.append(EventAggregate.from_bytes(row.blob))
                if len(parts) > FOLD_EVERY:
                    parts = [EventAggregate.merge_all(parts)]
                if row.multiclass_blob is not None:
                    class_parts.append(MulticlassAggregate.from_bytes(row.multiclass_blob))
                    if len(class_parts) > FOLD_EVERY:
                        class_parts = [MulticlassAggregate.merge_all(class_parts)]
    return WindowAggregate(
        EventAggregate.merge_all(parts),
        predictions,
        rows_merged,
        MulticlassAggregate.merge_all(class_parts) if class_parts else None,
    )


def _versions(
    connection: Connection, model_id: str, model_version: str | None, segment: str
) -> list[str]:
    if model_version is not None:
        return [model_version]
    # Name the versions (from ``series``, which has a row for every series that has
    # buckets) so the lookup binds the key prefix (model, version, segment): with only
    # model_id bound, SQLite walked every retained bucket of every version and segment
    # of the model (test_sql_helpers checks the plan).
    return list(
        connection.scalars(
            select(Series.model_version).where(
                Series.model_id == model_id, Series.segment == segment
            )
        )
    )


def list_series(engine: Engine) -> list[SeriesInfo]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(Series.__table__).order_by(Series.model_id, Series.model_version, Series.segment)
        ).all()
        return [
            SeriesInfo(
                r.model_id, r.model_version, r.segment, r.last_prediction_ms, r.last_label_ms
            )
            for r in rows
        ]


def active_model_versions(engine: Engine, *, since_ms: int) -> list[tuple[str, str]]:
    """Every (model_id, model_version) with a prediction at or after ``since_ms``, as
    ingest's cardinality budget starts from (``ingest/budget.py``)."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(Series.model_id, Series.model_version)
            .where(Series.last_prediction_ms >= since_ms)
            .distinct()
            .order_by(Series.model_id, Series.model_version)
        ).all()
    return [(row.model_id, row.model_version) for row in rows]


@dataclass(frozen=True)
class BucketResiduals:
    """Per bucket of one resolution, in time order: sum(y - p) and sum p(1 - p) of the
    labelled events (the sequential detector's input), buckets without labels left out."""

    bucket_start_ms: np.ndarray
    residual_sums: np.ndarray
    variances: np.ndarray


def load_bucket_residuals(
    engine: Engine,
    *,
    model_id: str,
    model_version: str | None,
    segment: str,
    start_ms: int,
    end_ms: int,
    resolution_s: int,
) -> BucketResiduals:
    """The residual sums of the ``resolution_s`` buckets starting in [start, end), each
    bucket's row and its deltas not compacted yet added up; all versions if None."""
    size = resolution_s * 1000
    first = start_ms - start_ms % size
    residual: dict[int, float] = {}
    variance: dict[int, float] = {}
    with engine.connect() as connection:
        versions = _versions(connection, model_id, model_version, segment)
        query = union_all(
            *(
                select(table.c.bucket_start_ms, table.c.blob).where(
                    table.c.model_id == model_id,
                    table.c.model_version.in_(versions),
                    table.c.segment == segment,
                    table.c.resolution_s == resolution_s,
                    table.c.bucket_start_ms >= first,
                    table.c.bucket_start_ms < end_ms,
                )
                for table in (_AGGREGATES, _DELTAS)
            )
        )
        for row in connection.execute(query):
            labelled = EventAggregate.from_bytes(row.blob).labelled
            if labelled.keys.size == 0:
                continue
            totals = labelled.values.sum(axis=0)
            sum_p, sum_y, sum_p2 = (totals[COLUMN[c]] for c in ("sum_p", "sum_y", "sum_p2"))
            start = int(row.bucket_start_ms)
            residual[start] = residual.get(start, 0.0) + float(sum_y - sum_p)
            variance[start] = variance.get(start, 0.0) + float(sum_p - sum_p2)
    starts = np.array(sorted(residual), dtype=np.int64)
    return BucketResiduals(
        bucket_start_ms=starts,
        residual_sums=np.array([residual[s] for s in starts], dtype=float),
        variances=np.array([variance[s] for s in starts], dtype=float),
    )


def known_model_classes(engine: Engine) -> list[tuple[str, str]]:
    """Every (model_id, class) of the multi-class models (``model_classes``): where
    ingest's budget of classes per model starts (``ingest/budget.py``)."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(ModelClass.model_id, ModelClass.class_name).order_by(
                ModelClass.model_id, ModelClass.class_name
            )
        ).all()
    return [(row.model_id, row.class_name) for row in rows]

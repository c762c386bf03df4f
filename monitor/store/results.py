"""Window results in the store: the latest per series (for every replica's exporter)
and the full history of values (for the JSON API, reports and relative rules)."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import Connection, Engine, delete, select

from monitor.core.results import (
    ClassResult,
    DriftBin,
    ReferenceUsed,
    ReliabilityBin,
    WindowResult,
)
from monitor.core.series import SeriesWindow
from monitor.core.times import epoch_ms, to_datetime
from monitor.store.db.sql import chunks, insert_ignoring_existing
from monitor.store.db.tables import MetricPoint, WindowResultRow
from monitor.store.shards import finish, shard_of

_SERIES_KEY = ["model_id", "model_version", "segment", "window"]


def _json(value: Any) -> str:
    # float() also turns numpy scalars, which orjson refuses, into plain floats.
    return orjson.dumps(value, default=float).decode()


def save_results(engine: Engine, window: str, results: list[WindowResult]) -> None:
    """Replace the window's latest results and append every value to the history."""
    with engine.begin() as connection:
        # Series that vanished (a segment value fell out of the top-K) go away too.
        connection.execute(delete(WindowResultRow).where(WindowResultRow.window == window))
        _insert(connection, results)


def save_shard_results(
    engine: Engine,
    window: str,
    results: list[WindowResult],
    *,
    shards: frozenset[int],
    owner: str,
    slot_ms: int,
    now_ms: int,
) -> frozenset[int]:
    """Store the results of the window's ``shards`` for the tick ``slot_ms``, in one
    transaction: each shard's tick marked done (``shards.finish``: only if this replica
    still owns it and nobody stored that tick) and the latest results of its models
    replaced; a shard lost meanwhile is left as it is. Returns the shards stored."""
    with engine.begin() as connection:
        stored = frozenset(
            shard
            for shard in sorted(shards)  # one lock order for every replica
            if finish(connection, window, shard, owner, slot_ms=slot_ms, now_ms=now_ms)
        )
        if stored:
            held = connection.scalars(
                select(WindowResultRow.model_id).where(WindowResultRow.window == window).distinct()
            ).all()
            for chunk in chunks([m for m in held if shard_of(m) in stored]):
                connection.execute(
                    delete(WindowResultRow).where(
                        WindowResultRow.window == window, WindowResultRow.model_id.in_(chunk)
                    )
                )
            _insert(connection, [r for r in results if shard_of(r.series.model) in stored])
    return stored


def _insert(connection: Connection, results: list[WindowResult]) -> None:
    latest = [
        {
            "model_id": r.series.model,
            "model_version": r.series.model_version,
            "segment": r.series.segment,
            "window": r.series.window,
            "evaluated_ms": epoch_ms(r.evaluated_at),
            "window_start_ms": epoch_ms(r.window_start),
            "window_end_ms": epoch_ms(r.window_end),
            "predictions": r.predictions,
            "labelled": r.labelled,
            "values_json": _json(dict(r.values)),
            # orjson writes dataclasses itself, as dataclasses.asdict would, without
            # asdict's deep copies (most of the time this function took).
            "bins_json": _json({"reliability": r.reliability_bins, "drift": r.drift_bins}),
            "reference_json": None if r.reference is None else _json(r.reference.to_json()),
            "classes_json": _classes_json(r),
        }
        for r in results
    ]
    insert_ignoring_existing(connection, WindowResultRow.__table__, latest, _SERIES_KEY)  # type: ignore[arg-type]
    insert_ignoring_existing(
        connection,
        MetricPoint.__table__,  # type: ignore[arg-type]
        _points(results),
        [*_SERIES_KEY, "metric", "evaluated_ms"],
    )


def save_history(engine: Engine, results: list[WindowResult]) -> int:
    """Append the values of past evaluations to the history only (``calmon backfill
    --history``): the latest results, which the exporter shows, stay the daemon's. A
    point already stored is kept, so writing the same history twice changes nothing.
    Returns the points written."""
    points = _points(results)
    with engine.begin() as connection:
        return insert_ignoring_existing(
            connection,
            MetricPoint.__table__,  # type: ignore[arg-type]
            points,
            [*_SERIES_KEY, "metric", "evaluated_ms"],
        )


def _points(results: list[WindowResult]) -> list[dict[str, Any]]:
    return [
        {
            "model_id": r.series.model,
            "model_version": r.series.model_version,
            "segment": r.series.segment,
            "window": r.series.window,
            "metric": metric,
            "evaluated_ms": epoch_ms(r.evaluated_at),
            "value": value,
        }
        for r in results
        for metric, value in r.values.items()
    ]


def _classes_json(result: WindowResult) -> str | None:
    if not result.classes:
        return None
    return _json(
        {
            name: {
                "values": dict(found.values),
                "reliability": found.reliability_bins,  # dataclasses: orjson writes them
            }
            for name, found in result.classes.items()
        }
    )


def _classes_of(text: str | None) -> dict[str, ClassResult]:
    if text is None:
        return {}
    return {
        name: ClassResult(
            values=found["values"],
            reliability_bins=tuple(ReliabilityBin(**b) for b in found["reliability"]),
        )
        for name, found in orjson.loads(text).items()
    }


def latest_results(engine: Engine, *, window: str | None = None) -> list[WindowResult]:
    """The latest result of every series (of one window)."""
    query = select(WindowResultRow.__table__)
    if window is not None:
        query = query.where(WindowResultRow.window == window)
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    return [_result_of(row) for row in rows]


def _result_of(row: Any) -> WindowResult:
    bins = orjson.loads(row.bins_json)
    if isinstance(bins, list):  # written before drift bins were stored
        bins = {"reliability": bins, "drift": []}
    return WindowResult(
        series=SeriesWindow(row.model_id, row.model_version, row.segment, row.window),
        evaluated_at=to_datetime(row.evaluated_ms),
        window_start=to_datetime(row.window_start_ms),
        window_end=to_datetime(row.window_end_ms),
        predictions=row.predictions,
        labelled=row.labelled,
        values=orjson.loads(row.values_json),
        reliability_bins=tuple(ReliabilityBin(**b) for b in bins["reliability"]),
        drift_bins=tuple(DriftBin(**b) for b in bins["drift"]),
        reference=(
            None
            if row.reference_json is None
            else ReferenceUsed.from_json(orjson.loads(row.reference_json))
        ),
        classes=_classes_of(row.classes_json),
    )


def metric_history(
    engine: Engine,
    *,
    model_id: str,
    metric: str,
    model_version: str | None = None,
    segment: str | None = None,
    window: str | None = None,
    since_ms: int = 0,
    limit: int = 10_000,
) -> list[dict[str, Any]]:
    query = select(MetricPoint.__table__).where(
        MetricPoint.model_id == model_id,
        MetricPoint.metric == metric,
        MetricPoint.evaluated_ms >= since_ms,
    )
    for column, value in (
        (MetricPoint.model_version, model_version),
        (MetricPoint.segment, segment),
        (MetricPoint.window, window),
    ):
        if value is not None:
            query = query.where(column == value)
    query = query.order_by(MetricPoint.evaluated_ms).limit(limit)
    with engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(query)]

"""Compaction: fold the aggregate deltas ingest appends into one row per bucket.

Ingest never rewrites an aggregate row: each batch appends, for every bucket it
touches, a delta holding only its own events (``aggregate_deltas``). Readers merge a
bucket's row with its deltas (``reading.load_window``), so a window is exact whether
or not compaction has run; compaction keeps the rows a window merges few, and rewrites
each busy bucket once per run instead of once per ingest batch.

Exactly once: a run merges the deltas it read into their buckets and deletes exactly
those ids in the same transaction. Each transaction first locks the change log's
counter (``monitor/store/changes.py``), so two compactors (two replicas, or a claim
lost) run one after the other: the second finds the deltas gone. Should some of them
vanish anyway (retention deletes old deltas), the delete finds fewer rows, and the run
rolls back.

Change log: in the same transaction, what each bucket gained is appended to
``aggregate_changes`` under the transaction's number, for the window caches.
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import Connection, Engine, Table, delete, func, select

from monitor.metrics.aggregates import EventAggregate
from monitor.metrics.multiclass import MulticlassAggregate
from monitor.store import changes
from monitor.store.db.sql import (
    chunks,
    insert_ignoring_existing,
    select_for_update,
    take_write_lock,
    update_by_key,
)
from monitor.store.db.tables import BUCKET_KEY, Aggregate, AggregateDelta

_AGGREGATES: Table = Aggregate.__table__  # type: ignore[assignment]
_DELTAS: Table = AggregateDelta.__table__  # type: ignore[assignment]
#: (model_id, model_version, segment, resolution_s, bucket_start_ms)
BucketKey = tuple[str, str, str, int, int]
#: What is added to a bucket: predictions, aggregate, multi-class aggregate (or None).
Addition = tuple[int, EventAggregate, MulticlassAggregate | None]
#: Deltas merged per transaction: bounds memory and how long SQLite's write lock is held.
DELTAS_PER_TRANSACTION = 2000
_EMPTY = EventAggregate.empty().to_bytes()
#: Rows read, merged and written back per statement: bounds the blobs held at once.
MERGED_PER_STATEMENT = 100


class ConcurrentCompaction(Exception):
    """Another compactor merged some of the same deltas first; this run rolled back."""


def compact_aggregates(
    engine: Engine, now_ms: int, *, per_transaction: int = DELTAS_PER_TRANSACTION
) -> int:
    """Merge the deltas present when the run starts into their buckets; returns how
    many merged.

    Works in transactions of ``per_transaction`` deltas, oldest first, so that ingest
    (which waits for SQLite's write lock meanwhile) is held up briefly each time.
    Deltas appended meanwhile wait for the next run, so a run ends even when ingest
    appends faster than it merges: the backlog counted after each run then grows,
    which is what ``calmon_aggregate_deltas`` and the alert on it watch.
    """
    with engine.connect() as connection:
        last_id = connection.execute(select(func.max(_DELTAS.c.id))).scalar()
    if last_id is None:
        return 0
    merged = 0
    while True:
        with engine.begin() as connection:
            take_write_lock(connection)
            count = compact_connection(connection, now_ms, limit=per_transaction, up_to_id=last_id)
        merged += count
        if count < per_transaction:
            return merged


def pending_deltas(engine: Engine) -> int:
    """Deltas not merged yet (the table stays small while compaction keeps up)."""
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(_DELTAS)).scalar_one())


def compact_connection(
    connection: Connection,
    now_ms: int,
    *,
    limit: int | None = None,
    up_to_id: int | None = None,
    log_changes: bool = True,
) -> int:
    """Merge up to ``limit`` of the oldest deltas (those with ids up to ``up_to_id``) in
    the caller's transaction, and append what each bucket gained to the change log
    (``monitor/store/changes.py``; ``log_changes=False`` only for the downgrade of
    revision 0005, which runs before the log exists)."""
    # First, so that compactions run one after another (the counter row is locked until
    # commit): their change numbers then commit in order.
    position = changes.lock_position(connection) if log_changes else None
    columns = [
        _DELTAS.c[name] for name in ("id", *BUCKET_KEY, "predictions", "blob", "multiclass_blob")
    ]
    query = select(*columns).order_by(_DELTAS.c.id)
    if up_to_id is not None:
        query = query.where(_DELTAS.c.id <= up_to_id)
    if limit is not None:
        query = query.limit(limit)
    deltas = connection.execute(query).all()
    if not deltas:
        return 0
    predictions: dict[BucketKey, int] = defaultdict(int)
    parts: dict[BucketKey, list[EventAggregate]] = defaultdict(list)
    class_parts: dict[BucketKey, list[MulticlassAggregate]] = defaultdict(list)
    for row in deltas:
        key: BucketKey = tuple(row[1:6])
        predictions[key] += row.predictions
        parts[key].append(EventAggregate.from_bytes(row.blob))
        if row.multiclass_blob is not None:
            class_parts[key].append(MulticlassAggregate.from_bytes(row.multiclass_blob))
    additions: dict[BucketKey, Addition] = {
        key: (
            predictions[key],
            EventAggregate.merge_all(parts[key]),
            MulticlassAggregate.merge_all(class_parts[key]) if key in class_parts else None,
        )
        for key in parts
    }
    merge_into_buckets(connection, additions, now_ms)
    if position is not None:
        changes.append_changes(connection, position.seq + 1, additions, now_ms)
    ids = [row.id for row in deltas]
    deleted = 0
    for chunk in chunks(ids):
        deleted += connection.execute(delete(_DELTAS).where(_DELTAS.c.id.in_(chunk))).rowcount
    if deleted != len(ids):
        raise ConcurrentCompaction(f"{len(ids) - deleted} of {len(ids)} deltas merged elsewhere")
    return len(ids)


def merge_into_buckets(
    connection: Connection,
    additions: dict[BucketKey, Addition],
    now_ms: int,
) -> None:
    """Add each bucket's (predictions, aggregate, multi-class aggregate) to its stored
    row (locked in key order)."""
    keys = sorted(additions)
    insert_ignoring_existing(
        connection,
        _AGGREGATES,
        [
            {
                **dict(zip(BUCKET_KEY, key, strict=True)),
                "predictions": 0,
                "blob": _EMPTY,
                "updated_ms": now_ms,
            }
            for key in keys
        ],
        BUCKET_KEY,
    )
    if connection.dialect.name == "postgresql":  # SQLite: the write lock is held
        # Every row locked first, in key order (as every writer does), then merged a
        # chunk at a time: a run touching every series' day and hour rows (hundreds of
        # KB each) held all of them, read and rewritten, at once (bench_fleet.py's peak).
        select_for_update(connection, _AGGREGATES, BUCKET_KEY, keys, BUCKET_KEY)
    for chunk in chunks(keys, MERGED_PER_STATEMENT):
        _merge_chunk(connection, additions, list(chunk), now_ms)


def _merge_chunk(
    connection: Connection,
    additions: dict[BucketKey, Addition],
    keys: list[BucketKey],
    now_ms: int,
) -> None:
    columns = [*BUCKET_KEY, "predictions", "blob", "multiclass_blob"]
    updates = []
    for found in select_for_update(connection, _AGGREGATES, BUCKET_KEY, keys, columns):
        key: BucketKey = tuple(found[:5])
        predictions, addition, class_addition = additions[key]
        stored = EventAggregate.from_bytes(found.blob)
        stored.merge(addition)
        updates.append(
            {
                **dict(zip(BUCKET_KEY, key, strict=True)),
                "predictions": found.predictions + predictions,
                "blob": stored.to_bytes(),
                "multiclass_blob": _merged_classes(found.multiclass_blob, class_addition),
                "updated_ms": now_ms,
            }
        )
    update_by_key(connection, _AGGREGATES, BUCKET_KEY, updates)


def _merged_classes(stored: bytes | None, addition: MulticlassAggregate | None) -> bytes | None:
    if addition is None:
        return stored
    if stored is None:
        return addition.to_bytes()
    return MulticlassAggregate.merge_all(
        [MulticlassAggregate.from_bytes(stored), addition]
    ).to_bytes()

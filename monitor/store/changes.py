"""The change log of the aggregates: which buckets each compaction changed, and by what.

Compaction is the only writer of ``aggregates`` rows while the daemon runs. In the
transaction that folds deltas into rows it takes the counter row of
``aggregate_change_seq`` (locked: compaction transactions are serialised, so their
numbers commit in order), and appends to ``aggregate_changes`` what it added to each
bucket under the next number. Hence, for a reader whose snapshot sees counter ``q``:

    row(bucket) as seen now == row(bucket) as seen at counter p
                               + the records of that bucket numbered in (p, q]

which is what the window caches (``monitor/windows/incremental.py``) catch up with.
Records are pruned ``kept_ms`` after they were written; ``pruned_seq`` tells a reader
whether all the records it needs are still there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, Table, delete, func, select, update

from monitor.metrics.aggregates import EventAggregate
from monitor.store.db.sql import insert_rows, take_write_lock
from monitor.store.db.tables import BUCKET_KEY, AggregateChange, AggregateChangeSeq

_CHANGES: Table = AggregateChange.__table__  # type: ignore[assignment]
_COUNTER: Table = AggregateChangeSeq.__table__  # type: ignore[assignment]
#: (model_id, model_version, segment, resolution_s, bucket_start_ms)
BucketKey = tuple[str, str, str, int, int]


@dataclass(frozen=True)
class LogPosition:
    """The last compaction's number, and up to which number records were pruned."""

    seq: int
    pruned_seq: int


def read_position(connection: Connection) -> LogPosition:
    row = connection.execute(select(_COUNTER.c.seq, _COUNTER.c.pruned_seq)).one()
    return LogPosition(int(row.seq), int(row.pruned_seq))


def lock_position(connection: Connection) -> LogPosition:
    """The counter, locked until the caller's transaction ends (PostgreSQL; on SQLite
    the caller holds the database's write lock)."""
    query = select(_COUNTER.c.seq, _COUNTER.c.pruned_seq).where(_COUNTER.c.id == 1)
    if connection.dialect.name == "postgresql":
        query = query.with_for_update()
    row = connection.execute(query).one()
    return LogPosition(int(row.seq), int(row.pruned_seq))


def append_changes(
    connection: Connection,
    seq: int,
    additions: dict[BucketKey, tuple[int, EventAggregate, Any]],
    now_ms: int,
) -> None:
    """Record what one compaction transaction (number ``seq``, from
    :func:`lock_position` + 1) added to each bucket, and advance the counter.

    Only the binary aggregate is logged: the window caches keep binary windows; a
    multi-class series' class aggregates are read afresh at each tick
    (``windows/multiclass.py``)."""
    names = [*BUCKET_KEY, "seq", "predictions", "blob", "created_ms"]
    rows = [
        (*key, seq, predictions, aggregate.to_bytes(), now_ms)
        for key, (predictions, aggregate, _) in sorted(additions.items())
    ]
    insert_rows(connection, _CHANGES, names, rows, [])
    connection.execute(update(_COUNTER).where(_COUNTER.c.id == 1).values(seq=seq))


def prune_changes(engine: Engine, now_ms: int, kept_ms: int) -> int:
    """Delete the records written more than ``kept_ms`` ago; returns how many."""
    with engine.begin() as connection:
        take_write_lock(connection)
        position = lock_position(connection)
        last = connection.execute(
            select(func.max(_CHANGES.c.seq)).where(_CHANGES.c.created_ms < now_ms - kept_ms)
        ).scalar()
        if last is None:
            return 0
        deleted = connection.execute(delete(_CHANGES).where(_CHANGES.c.seq <= last)).rowcount
        connection.execute(
            update(_COUNTER)
            .where(_COUNTER.c.id == 1)
            .values(pruned_seq=max(int(last), position.pruned_seq))
        )
        return int(deleted)


def count_changes(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(_CHANGES)).scalar_one())

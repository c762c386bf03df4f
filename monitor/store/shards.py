"""Which replica evaluates which part of each window: shards leased in the store.

A window's series are split into ``SHARDS`` shards by a stable hash of their model id
(a model's versions and segments are evaluated together: ``__all__`` merges versions,
``__other__`` the segment values past the top-K). Every replica keeps its row in
``replicas`` fresh while it runs (``balance``, every third of a lease) and leases its
share of each window's shards in ``window_shards``: a lease not renewed runs out, so
the shards of a replica that died go to the others one lease later. The owner of a
shard evaluates it once per slot (tick) of the window and marks the slot done in the
transaction that stores its results, only while it still owns the shard
(``finish``): a replica that lost a shard, paused or partitioned away, cannot store it,
so no shard's slot is ever stored twice.

Rows change only through conditional UPDATEs, as the webhook outbox's leases do: on
PostgreSQL the row lock orders two replicas racing for one shard, and the loser's
UPDATE matches no row; on SQLite the database's write lock does the same.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Connection, Engine, delete, or_, select, update

from monitor.store.db.sql import insert_ignoring_existing
from monitor.store.db.tables import ReplicaRow, WindowShardRow

#: Shards per window: the most replicas that share a window's work.
SHARDS = 16
#: A replica not seen for this many leases is forgotten.
FORGET_AFTER_LEASES = 10


def shard_of(model_id: str) -> int:
    """The shard of a model's series: the same on every replica and across restarts."""
    return zlib.crc32(model_id.encode()) % SHARDS


@dataclass(frozen=True)
class ShardState:
    window: str
    shard: int
    owner: str | None
    done_slot_ms: int | None


def balance(
    engine: Engine, owner: str, windows: Iterable[str], *, now_ms: int, lease_ms: int
) -> dict[str, frozenset[int]]:
    """One beat of a replica: say it is alive, renew its leases, give back the shards
    over its fair share and take free ones (never leased, released, or whose lease ran
    out) up to it. Returns the shards it holds, per window.

    The fair share: the live replicas (seen within a lease), sorted by name, hold
    ``SHARDS // live`` shards each, the first ``SHARDS % live`` one more.
    """
    windows = list(windows)
    with engine.begin() as connection:
        live = _alive(connection, owner, now_ms, lease_ms)
        share = SHARDS // len(live) + (live.index(owner) < SHARDS % len(live))
        _create_rows(connection, windows)
        connection.execute(
            update(WindowShardRow)
            .where(WindowShardRow.owner == owner, WindowShardRow.window.in_(windows))
            .values(lease_until_ms=now_ms + lease_ms)
        )
        return {
            window: _rebalanced(connection, owner, window, share, now_ms, lease_ms)
            for window in windows
        }


def _alive(connection: Connection, owner: str, now_ms: int, lease_ms: int) -> list[str]:
    seen = connection.execute(
        update(ReplicaRow).where(ReplicaRow.owner == owner).values(seen_ms=now_ms)
    )
    if seen.rowcount == 0:
        insert_ignoring_existing(
            connection,
            ReplicaRow.__table__,  # type: ignore[arg-type]
            [{"owner": owner, "started_ms": now_ms, "seen_ms": now_ms}],
            ["owner"],
        )
    connection.execute(
        delete(ReplicaRow).where(ReplicaRow.seen_ms < now_ms - FORGET_AFTER_LEASES * lease_ms)
    )
    return sorted(
        connection.scalars(select(ReplicaRow.owner).where(ReplicaRow.seen_ms >= now_ms - lease_ms))
    )


def _create_rows(connection: Connection, windows: list[str]) -> None:
    insert_ignoring_existing(
        connection,
        WindowShardRow.__table__,  # type: ignore[arg-type]
        [
            {"window": window, "shard": shard, "owner": None, "lease_until_ms": 0}
            for window in windows
            for shard in range(SHARDS)
        ],
        ["window", "shard"],
    )


def _rebalanced(
    connection: Connection, owner: str, window: str, share: int, now_ms: int, lease_ms: int
) -> frozenset[int]:
    held = sorted(
        connection.scalars(
            select(WindowShardRow.shard).where(
                WindowShardRow.window == window, WindowShardRow.owner == owner
            )
        )
    )
    if len(held) > share:
        release(connection, owner, window, held[share:])
        return frozenset(held[:share])
    free = connection.scalars(
        select(WindowShardRow.shard)
        .where(WindowShardRow.window == window, _free(now_ms))
        .order_by(WindowShardRow.shard)
    ).all()
    # Replicas start their search at different shards: fewer races for the same row.
    start = shard_of(owner)
    for shard in sorted(free, key=lambda s: (s - start) % SHARDS):
        if len(held) >= share:
            break
        taken = connection.execute(
            update(WindowShardRow)
            .where(WindowShardRow.window == window, WindowShardRow.shard == shard, _free(now_ms))
            .values(owner=owner, lease_until_ms=now_ms + lease_ms)
        )
        if taken.rowcount == 1:
            held.append(shard)
    return frozenset(held)


def _free(now_ms: int) -> ColumnElement[bool]:
    """Never leased, released, or its lease ran out."""
    return or_(WindowShardRow.owner.is_(None), WindowShardRow.lease_until_ms < now_ms)


def release(connection: Connection, owner: str, window: str, shards: Iterable[int]) -> None:
    connection.execute(
        update(WindowShardRow)
        .where(
            WindowShardRow.window == window,
            WindowShardRow.shard.in_(list(shards)),
            WindowShardRow.owner == owner,
        )
        .values(owner=None, lease_until_ms=0)
    )


def leave(engine: Engine, owner: str) -> None:
    """A replica that stops hands its shards over at once, not a lease later."""
    with engine.begin() as connection:
        connection.execute(
            update(WindowShardRow)
            .where(WindowShardRow.owner == owner)
            .values(owner=None, lease_until_ms=0)
        )
        connection.execute(delete(ReplicaRow).where(ReplicaRow.owner == owner))


def shard_states(engine: Engine, window: str) -> list[ShardState]:
    """Every shard of the window: who holds it, which slot it was stored for last."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(WindowShardRow.shard, WindowShardRow.owner, WindowShardRow.done_slot_ms).where(
                WindowShardRow.window == window
            )
        ).all()
    return [ShardState(window, row.shard, row.owner, row.done_slot_ms) for row in rows]


def finish(
    connection: Connection, window: str, shard: int, owner: str, *, slot_ms: int, now_ms: int
) -> bool:
    """Mark ``slot_ms`` done for the shard, inside the transaction storing its results,
    if this replica still owns it and nobody stored that slot (or a later one) yet.
    False: store nothing of the shard."""
    done = connection.execute(
        update(WindowShardRow)
        .where(
            WindowShardRow.window == window,
            WindowShardRow.shard == shard,
            WindowShardRow.owner == owner,
            or_(WindowShardRow.done_slot_ms.is_(None), WindowShardRow.done_slot_ms < slot_ms),
        )
        .values(done_slot_ms=slot_ms, done_ms=now_ms)
    )
    return bool(done.rowcount == 1)

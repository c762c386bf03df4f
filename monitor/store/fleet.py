"""Reading a tick's worth of buckets for every series of a window at once.

The window caches (``monitor/windows/incremental.py``) bring every series up to date
with a fixed number of statements per tick, whatever the number of series: the change
log's records since their last tick, the rows of buckets entering or leaving their
windows, and the deltas not compacted yet, each for all series in one statement,
filtered by time bucket; a series read afresh (new, or due for its exact rebuild) costs
one more statement. All of them run in ONE snapshot (:func:`read_snapshot`), so a
compaction committing meanwhile is seen whole or not at all: the rows, the records and
the pending deltas then add up to the store's content exactly once.

Buckets are given as ``(resolution_s, bucket_start_ms)`` pairs; runs of contiguous
buckets of one resolution become one range condition.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property

from sqlalchemy import ColumnElement, Connection, Engine, Select, Table, and_, false, or_, select

from monitor.metrics.aggregates import EventAggregate, labelled_from_bytes
from monitor.metrics.histogram import SparseHistogram
from monitor.store import changes
from monitor.store.db.tables import Aggregate, AggregateChange, AggregateDelta

#: (resolution_s, bucket_start_ms)
Bucket = tuple[int, int]
#: (model_id, model_version, segment): a stored series
SeriesKey = tuple[str, str, str]

_AGGREGATES: Table = Aggregate.__table__  # type: ignore[assignment]
_DELTAS: Table = AggregateDelta.__table__  # type: ignore[assignment]
_CHANGES: Table = AggregateChange.__table__  # type: ignore[assignment]
#: Rows fetched from the database at a time while streaming.
_FETCH = 500


@dataclass(frozen=True)
class BucketPart:
    """One stored row (an aggregate, a pending delta or a change record), decoded when
    first read: a reader that needs only its labelled cells decodes those alone."""

    series: SeriesKey
    bucket: Bucket
    predictions: int
    blob: bytes
    #: Histograms the reader ignores: never decoded (``EventAggregate.from_bytes``).
    skip: frozenset[str] = frozenset()

    @cached_property
    def aggregate(self) -> EventAggregate:
        return EventAggregate.from_bytes(self.blob, skip=self.skip)

    def labelled(self) -> SparseHistogram:
        """The labelled cells, without decoding the rest (unless decoded already)."""
        if "aggregate" in self.__dict__:
            return self.aggregate.labelled
        return labelled_from_bytes(self.blob)


class Snapshot:
    """The reads of one tick, on one connection whose snapshot they share. Its parts
    leave the histograms named in ``skip`` empty."""

    def __init__(self, connection: Connection, skip: frozenset[str] = frozenset()) -> None:
        self._connection = connection
        self._skip = skip
        self.position = changes.read_position(connection)

    def records(
        self, after_seq: int, buckets: Iterable[Bucket], models: Sequence[str] | None = None
    ) -> Iterator[BucketPart]:
        """Change records numbered after ``after_seq`` (up to :attr:`position`)."""
        query = _parts(_CHANGES, buckets, models).where(
            _CHANGES.c.seq > after_seq, _CHANGES.c.seq <= self.position.seq
        )
        return self._stream(query)

    def rows(
        self, buckets: Iterable[Bucket], models: Sequence[str] | None = None
    ) -> Iterator[BucketPart]:
        """The aggregate rows of these buckets, every series."""
        return self._stream(_parts(_AGGREGATES, buckets, models))

    def pending(
        self, buckets: Iterable[Bucket], models: Sequence[str] | None = None
    ) -> Iterator[BucketPart]:
        """The deltas of these buckets that compaction has not folded yet, every series."""
        return self._stream(_parts(_DELTAS, buckets, models))

    def series_rows(self, series: SeriesKey, buckets: Iterable[Bucket]) -> Iterator[BucketPart]:
        """The aggregate rows of one series in these buckets (a cold read)."""
        model_id, model_version, segment = series
        query = _parts(_AGGREGATES, buckets, None).where(
            _AGGREGATES.c.model_id == model_id,
            _AGGREGATES.c.model_version == model_version,
            _AGGREGATES.c.segment == segment,
        )
        return self._stream(query)

    def _stream(self, query: Select[tuple[object, ...]]) -> Iterator[BucketPart]:
        result = self._connection.execution_options(yield_per=_FETCH).execute(query)
        for row in result:
            yield BucketPart(
                (row.model_id, row.model_version, row.segment),
                (int(row.resolution_s), int(row.bucket_start_ms)),
                int(row.predictions),
                row.blob,
                self._skip,
            )


@contextmanager
def read_snapshot(engine: Engine, skip: frozenset[str] = frozenset()) -> Iterator[Snapshot]:
    """A read-only transaction whose statements all see the same committed state
    (``skip``: see :class:`Snapshot`)."""
    with engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            # pysqlite begins no transaction for SELECTs: each would see its own state.
            # In WAL mode an explicit BEGIN holds one snapshot from the first read on.
            connection.exec_driver_sql("BEGIN")
        else:
            connection = connection.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
        try:
            yield Snapshot(connection, skip)
        finally:
            connection.rollback()


def _parts(table: Table, buckets: Iterable[Bucket], models: Sequence[str] | None) -> Select:
    columns = [
        table.c[name]
        for name in (
            "model_id",
            "model_version",
            "segment",
            "resolution_s",
            "bucket_start_ms",
            "predictions",
            "blob",
        )
    ]
    query = select(*columns).where(in_buckets(table, buckets))
    if models is not None:
        query = query.where(table.c.model_id.in_(list(models)))
    return query


def in_buckets(table: Table, buckets: Iterable[Bucket]) -> ColumnElement[bool]:
    """``table``'s rows in these buckets, as one range condition per run of buckets."""
    conditions = [
        and_(
            table.c.resolution_s == resolution,
            table.c.bucket_start_ms >= first,
            table.c.bucket_start_ms < end,
        )
        for resolution, first, end in bucket_runs(buckets)
    ]
    return or_(*conditions) if conditions else false()


def bucket_runs(buckets: Iterable[Bucket]) -> list[tuple[int, int, int]]:
    """(resolution_s, first start, end) of each run of adjacent buckets of one resolution.

    >>> bucket_runs([(60, 0), (60, 60_000), (3600, 3_600_000), (60, 180_000)])
    [(60, 0, 120000), (60, 180000, 240000), (3600, 3600000, 7200000)]
    """
    runs: list[tuple[int, int, int]] = []
    for resolution, start in sorted(set(buckets)):
        size = resolution * 1000
        if runs and runs[-1][0] == resolution and runs[-1][2] == start:
            runs[-1] = (resolution, runs[-1][1], start + size)
        else:
            runs.append((resolution, start, start + size))
    return runs

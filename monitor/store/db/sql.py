"""Set-at-a-time SQL helpers shared by the store modules (SQLite and PostgreSQL).

The write path handles thousands of rows per batch. On PostgreSQL each helper is ONE
statement whatever the row count (a per-row executemany costs a network round trip per
row, measured at 5x slower): the rows travel as arrays joined with ``unnest``, or, for
the write path's two large sets (new events, and the rows of a set-based UPDATE), by a
binary COPY into a temporary staging table the statement reads. SQLite is in-process,
so plain executemany is already cheap there.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from itertools import chain
from operator import itemgetter
from typing import Any, TypeVar

import psycopg
from psycopg.rows import namedtuple_row, tuple_row
from sqlalchemy import (
    BigInteger,
    Connection,
    Float,
    Integer,
    LargeBinary,
    Row,
    SmallInteger,
    String,
    Table,
    Text,
)
from sqlalchemy.exc import DBAPIError, IntegrityError

T = TypeVar("T")

#: Rows per statement on SQLite: well under its 32766 bound parameters.
CHUNK = 500

_POSTGRES_TYPES = {
    String: "text",
    Text: "text",
    BigInteger: "bigint",
    Integer: "integer",
    SmallInteger: "smallint",
    Float: "float8",
    LargeBinary: "bytea",
}


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _is_postgres(connection: Connection) -> bool:
    return connection.dialect.name == "postgresql"


def take_write_lock(connection: Connection) -> None:
    """SQLite: take the database's write lock now, at the start of the transaction, so
    that rows read before writing cannot change meanwhile (PostgreSQL locks rows)."""
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _array_type(table: Table, name: str) -> str:
    column_type = type(table.c[name].type)
    for python_type, sql_type in _POSTGRES_TYPES.items():
        if issubclass(column_type, python_type):
            return sql_type
    raise TypeError(f"no array type for {table.name}.{name} ({column_type.__name__})")


def _quote(connection: Connection, name: str) -> str:
    """Quote an identifier when needed ("window" and "references" are reserved words)."""
    return str(connection.dialect.identifier_preparer.quote(name))


def _unnest(
    connection: Connection, table: Table, names: Sequence[str], rows: Sequence[dict[str, Any]]
) -> tuple[str, dict[str, Any]]:
    """``unnest(CAST(:c0 AS text[]), ...) AS v(name, ...)`` and its array parameters."""
    tuples = [tuple(row[n] for n in names) for row in rows]
    return _unnest_columns(connection, table, names, tuples)


def _unnest_columns(
    connection: Connection,
    table: Table,
    names: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    value_names: Sequence[str] | None = None,
) -> tuple[str, dict[str, Any]]:
    """``unnest(...) AS v(...)`` over tuple rows; columns are typed as ``names`` in
    ``table`` and called ``value_names`` (default: ``names``)."""
    casts = ", ".join(f"CAST(%(c{i})b AS {_array_type(table, n)}[])" for i, n in enumerate(names))
    parameters = {f"c{i}": list(column) for i, column in enumerate(zip(*rows, strict=True))}
    columns = ", ".join(_quote(connection, n) for n in (value_names or names))
    return f"unnest({casts}) AS v({columns})", parameters


def _postgres_execute(
    connection: Connection,
    sql: str,
    parameters: dict[str, Any] | None = None,
    *,
    row_factory: Any = namedtuple_row,
) -> tuple[int, list[Any]]:
    """Run ``sql`` in the connection's transaction with binary parameters.

    In text format psycopg escapes every element of an array parameter with a regular
    expression: a third of PostgreSQL's write time (measured). Binary arrays skip that.
    Returns the row count and the rows (named tuples unless ``row_factory`` says
    otherwise; empty for INSERT and UPDATE).

    Errors are raised as SQLAlchemy raises them everywhere else (``DBAPIError``
    subclasses), so callers such as ingest's retry-with-backoff see one family; the
    array parameters are left out of the message (thousands of values).
    """
    driver = connection.connection.driver_connection
    assert driver is not None
    try:
        with driver.cursor(row_factory=row_factory) as cursor:
            cursor.execute(sql, parameters)  # %b placeholders: binary parameters
            rows = cursor.fetchall() if cursor.description is not None else []
            return cursor.rowcount, rows
    except psycopg.Error as exc:
        raise DBAPIError.instance(
            sql, None, exc, psycopg.Error, hide_parameters=True, dialect=connection.dialect
        ) from exc


def _collated(table: Table, name: str, expression: str) -> str:
    """``expression`` (of column ``name``) to sort by: text in byte order, which is
    Python's sort order of str, whatever the database's collation."""
    return expression + (' COLLATE "C"' if isinstance(table.c[name].type, String) else "")


def _postgres_stage(
    connection: Connection,
    table: Table,
    names: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    value_names: Sequence[str],
) -> str:
    """COPY ``rows`` (typed as ``names`` in ``table``) into a temporary staging table
    whose columns are ``value_names``; returns its name.

    A binary COPY formats each row in C; the same rows as binary array parameters
    went through psycopg's array dumper in Python, the largest part of the write
    path's time on PostgreSQL (bench/bench_ingest_stages.py --profile). The table lives
    as long as the session and is emptied at every commit (ON COMMIT DELETE ROWS), and
    before each use, as one transaction may stage rows of the same shape twice.
    """
    types = [_array_type(table, name) for name in names]
    signature = repr((list(value_names), types)).encode()
    stage = f"ingest_stage_{hashlib.sha1(signature, usedforsecurity=False).hexdigest()[:16]}"
    columns = ", ".join(
        f"{_quote(connection, v)} {t}" for v, t in zip(value_names, types, strict=True)
    )
    driver = connection.connection.driver_connection
    assert driver is not None
    try:
        with driver.cursor() as cursor:
            cursor.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS {stage} ({columns}) ON COMMIT DELETE ROWS"
            )
            cursor.execute(f"DELETE FROM {stage}")
            with cursor.copy(f"COPY {stage} FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(types)
                for row in rows:
                    copy.write_row(row)
    except psycopg.Error as exc:
        raise DBAPIError.instance(
            f"COPY {stage}",
            None,
            exc,
            psycopg.Error,
            hide_parameters=True,
            dialect=connection.dialect,
        ) from exc
    return stage


def insert_ignoring_existing(
    connection: Connection, table: Table, rows: list[dict[str, Any]], keys: list[str]
) -> int:
    """INSERT ... ON CONFLICT (keys) DO NOTHING for every row; returns the rows inserted."""
    if not rows:
        return 0
    names = list(rows[0])
    return insert_rows(
        connection, table, names, [tuple(row[n] for n in names) for row in rows], keys
    )


def insert_rows(
    connection: Connection,
    table: Table,
    names: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    keys: Sequence[str],
) -> int:
    """Like :func:`insert_ignoring_existing`, for rows given as tuples in ``names`` order
    (the ingest hot path builds tuples, not dicts). No ``keys``: a plain INSERT."""
    if not rows:
        return 0
    q = lambda name: _quote(connection, name)  # noqa: E731
    columns = ", ".join(map(q, names))
    conflict = f"ON CONFLICT ({', '.join(map(q, keys))}) DO NOTHING" if keys else ""
    if _is_postgres(connection):
        source, parameters = _unnest_columns(connection, table, names, rows)
        inserted, _ = _postgres_execute(
            connection,
            f"INSERT INTO {q(table.name)} ({columns}) SELECT * FROM {source} {conflict}",
            parameters,
        )
        return inserted
    # SQLite: plain executemany with tuples; SQLAlchemy's per-row parameter processing
    # cost more than SQLite's own work on the write path.
    marks = ", ".join("?" for _ in names)
    sql = f"INSERT INTO {q(table.name)} ({columns}) VALUES ({marks}) {conflict}"
    return int(connection.exec_driver_sql(sql, list(rows)).rowcount)


def insert_returning_keys(
    connection: Connection,
    table: Table,
    names: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    keys: Sequence[str],
) -> list[Any]:
    """INSERT ... ON CONFLICT (keys) DO NOTHING RETURNING keys: the keys of the rows
    inserted, not of those that existed (on PostgreSQL, an insert that meets a row
    another transaction is inserting waits for it to commit, then skips it)."""
    if not rows:
        return []
    q = lambda name: _quote(connection, name)  # noqa: E731
    columns = ", ".join(map(q, names))
    tail = f"ON CONFLICT ({', '.join(map(q, keys))}) DO NOTHING RETURNING {', '.join(map(q, keys))}"
    if _is_postgres(connection):
        stage = _postgres_stage(connection, table, names, rows, names)
        # In key order, as the caller sorted them: PostgreSQL locks new rows as it
        # inserts them (and text in byte order, as Python sorts it).
        order = ", ".join(_collated(table, k, q(k)) for k in keys)
        sql = (
            f"INSERT INTO {q(table.name)} ({columns}) SELECT {columns} FROM {stage} "
            f"ORDER BY {order} {tail}"
        )
        return _postgres_execute(connection, sql, row_factory=tuple_row)[1]
    positions = [list(names).index(k) for k in keys]
    key_of = itemgetter(*positions) if len(positions) > 1 else lambda row: (row[positions[0]],)
    wanted = list(map(key_of, rows))
    # SQLite: most batches' new events are all new. A plain INSERT of all of them under a
    # savepoint is one executemany; only when one of them exists (the savepoint is then
    # rolled back) are the existing keys looked up first. The write path holds the
    # database's write lock, so the rows found then are exactly those to skip.
    connection.exec_driver_sql("SAVEPOINT new_rows")
    try:
        insert_rows(connection, table, names, rows, [])
    except IntegrityError:
        connection.exec_driver_sql("ROLLBACK TO new_rows")
    else:
        connection.exec_driver_sql("RELEASE new_rows")
        return wanted
    connection.exec_driver_sql("RELEASE new_rows")
    found = select_for_update(connection, table, list(keys), wanted, list(keys))
    existing = {tuple(row) for row in found}
    if existing:
        rows = [row for row, key in zip(rows, wanted, strict=True) if key not in existing]
        wanted = [key for key in wanted if key not in existing]
    inserted = insert_rows(connection, table, names, rows, keys)
    if inserted != len(rows):
        raise RuntimeError(f"{len(rows) - inserted} rows with the same key in one insert")
    return wanted


def select_for_update(
    connection: Connection,
    table: Table,
    keys: list[str],
    values: Sequence[tuple[Any, ...]],
    columns: Sequence[str] | None = None,
    *,
    staged: bool = False,
) -> list[Row[Any]]:
    """The rows whose ``keys`` are in ``values``, locked in key order (PostgreSQL).

    ``staged``: on PostgreSQL the keys go by binary COPY into a staging table, not as
    array parameters; for the write path's large sets (thousands of keys), where
    psycopg's array dumper in Python cost more than the three round trips of a stage.
    """
    if not values:
        return []
    names = list(columns) if columns is not None else [c.name for c in table.columns]
    if _is_postgres(connection):
        q = lambda name: _quote(connection, name)  # noqa: E731
        # Text in byte order, which is Python's sort order of str: writers that sort
        # their keys in Python then lock rows in the same order whatever the database's
        # collation (under en_US, say, "a-b" and "ab" would swap).
        order = ", ".join(_collated(table, k, f"t.{q(k)}") for k in keys)
        parameters: dict[str, Any] | None = None
        if staged:
            source = f"{_postgres_stage(connection, table, keys, values, keys)} AS v"
        else:
            source, parameters = _unnest_columns(connection, table, keys, values)
        join = " AND ".join(f"t.{q(k)} = v.{q(k)}" for k in keys)
        sql = (
            f"SELECT {', '.join(f't.{q(n)}' for n in names)} FROM {q(table.name)} AS t "
            f"JOIN {source} ON {join} ORDER BY {order} FOR UPDATE OF t"
        )
        return _postgres_execute(connection, sql, parameters)[1]
    # SQLite: plain SQL with row values, the VALUES list driving an index search per
    # key. CROSS JOIN fixes that loop order: with ``(k) IN (VALUES ...)`` SQLite scanned
    # the whole key index per statement, a batch's cost growing with the table (0.43 s
    # per 500 keys at a million events, against 4 ms; bench/bench_ingest.py --preload).
    # Compiling an expanding IN per chunk cost more than the query itself. SQLite has no
    # row locks; the write path holds the database's write lock instead (BEGIN IMMEDIATE).
    q = lambda name: _quote(connection, name)  # noqa: E731
    selected = ", ".join(f"t.{q(n)}" for n in names)
    join = " AND ".join(f"t.{q(k)} = v.k{i}" for i, k in enumerate(keys))
    order = ", ".join(f"t.{q(k)}" for k in keys)
    statement = (
        f"SELECT {selected} FROM v CROSS JOIN {q(table.name)} AS t ON {join} ORDER BY {order}"
    )
    return _sqlite_with_values(connection, [f"k{i}" for i in range(len(keys))], values, statement)


def _few_sizes(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    """Chunks of ``size`` items, then the rest in decreasing powers of two.

    SQLite keeps a compiled statement per distinct SQL text (128 per connection), and one
    with a VALUES list of hundreds of rows is large: with a chunk for every remainder
    size, each pooled connection's cache kept growing (bench/bench_memory.py, docs/benchmarks.md).
    Now a statement is built for at most a dozen row counts.
    """
    start, count = 0, len(items)
    while count - start >= size:
        yield items[start : start + size]
        start += size
    piece = 1 << (size.bit_length() - 1)
    while start < count:
        while piece > count - start:
            piece //= 2
        yield items[start : start + piece]
        start += piece


def _sqlite_with_values(
    connection: Connection,
    value_names: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    statement: str,
) -> list[Any]:
    """``WITH v(value_names) AS (VALUES <rows>) <statement>`` on SQLite, in chunks of
    :func:`_few_sizes`; every row the statement returns."""
    tuple_marks = "(" + ", ".join("?" for _ in value_names) + ")"
    returned: list[Any] = []
    for chunk in _few_sizes(rows):
        values = ", ".join(tuple_marks for _ in chunk)
        sql = f"WITH v({', '.join(value_names)}) AS (VALUES {values}) {statement}"
        flat = tuple(chain.from_iterable(chunk))
        returned.extend(connection.exec_driver_sql(sql, flat).all())
    return returned


def update_by_key(
    connection: Connection, table: Table, keys: list[str], rows: list[dict[str, Any]]
) -> None:
    """UPDATE table SET <other columns> WHERE <keys> for each row.

    Each row maps every key column and every updated column to its value.
    """
    if not rows:
        return
    updated = [name for name in rows[0] if name not in keys]
    if _is_postgres(connection):
        q = lambda name: _quote(connection, name)  # noqa: E731
        source, parameters = _unnest(connection, table, list(rows[0]), rows)
        assignments = ", ".join(f"{q(n)} = v.{q(n)}" for n in updated)
        join = " AND ".join(f"t.{q(k)} = v.{q(k)}" for k in keys)
        _postgres_execute(
            connection,
            f"UPDATE {q(table.name)} AS t SET {assignments} FROM {source} WHERE {join}",
            parameters,
        )
        return
    q = lambda name: _quote(connection, name)  # noqa: E731
    sql = (
        f"UPDATE {q(table.name)} SET {', '.join(f'{q(n)} = ?' for n in updated)} "
        f"WHERE {' AND '.join(f'{q(k)} = ?' for k in keys)}"
    )
    order = [*updated, *keys]
    connection.exec_driver_sql(sql, [tuple(row[n] for n in order) for row in rows])


def update_rows(
    connection: Connection,
    table: Table,
    keys: Sequence[str],
    assigned: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
) -> None:
    """Set ``assigned`` columns from ``rows`` (tuples: keys, then assigned values) where
    the keys match: :func:`update_by_key` for the write path's large sets.

    On PostgreSQL the rows go by binary COPY into a staging table and one ``UPDATE ...
    FROM`` it sets them all (as array parameters, psycopg's dumper formatted every value
    in Python); on SQLite, in-process, an executemany.
    """
    if not rows:
        return
    q = lambda name: _quote(connection, name)  # noqa: E731
    if _is_postgres(connection):
        value_names = [f"key_{k}" for k in keys] + [f"new_{n}" for n in assigned]
        stage = _postgres_stage(connection, table, [*keys, *assigned], rows, value_names)
        assignments = ", ".join(f"{q(n)} = v.new_{n}" for n in assigned)
        join = " AND ".join(f"t.{q(k)} = v.key_{k}" for k in keys)
        _postgres_execute(
            connection,
            f"UPDATE {q(table.name)} AS t SET {assignments} FROM {stage} AS v WHERE {join}",
        )
        return
    sql = (
        f"UPDATE {q(table.name)} SET {', '.join(f'{q(n)} = ?' for n in assigned)} "
        f"WHERE {' AND '.join(f'{q(k)} = ?' for k in keys)}"
    )
    split = len(keys)
    connection.exec_driver_sql(sql, [(*row[split:], *row[:split]) for row in rows])


def update_returning(
    connection: Connection,
    table: Table,
    keys: Sequence[str],
    assigned: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    *,
    condition: str,
    returning: Sequence[str],
) -> list[Any]:
    """Set ``assigned`` columns from ``rows`` (tuples: keys, then assigned values) where the
    keys match and ``condition`` holds; the updated rows' ``returning`` columns.

    ``condition`` is SQL over the table's columns (``t.<name>``) and the row's values,
    named after their columns (``v.key_<name>`` for keys, ``v.new_<name>`` for assigned
    values); constants must be inlined by the caller (integers only). One statement per
    batch on PostgreSQL; on SQLite (which holds the database lock, so no row locks) one
    per chunk of :func:`_few_sizes`.
    """
    if not rows:
        return []
    q = lambda name: _quote(connection, name)  # noqa: E731
    value_names = [f"key_{k}" for k in keys] + [f"new_{n}" for n in assigned]
    assignments = ", ".join(f"{q(n)} = v.new_{n}" for n in assigned)
    join = " AND ".join(f"t.{q(k)} = v.key_{k}" for k in keys)
    where = f"{join} AND ({condition})"
    if _is_postgres(connection):
        stage = _postgres_stage(connection, table, [*keys, *assigned], rows, value_names)
        returned = ", ".join(f"t.{q(n)}" for n in returning)
        sql = (
            f"UPDATE {q(table.name)} AS t SET {assignments} FROM {stage} AS v WHERE {where} "
            f"RETURNING {returned}"
        )
        return _postgres_execute(connection, sql, row_factory=tuple_row)[1]
    # SQLite: RETURNING may only name the updated table's columns, unqualified (the
    # value names key_.., new_.. cannot clash with them).
    returned = ", ".join(q(n) for n in returning)
    statement = (
        f"UPDATE {q(table.name)} AS t SET {assignments} FROM v WHERE {where} RETURNING {returned}"
    )
    return _sqlite_with_values(connection, value_names, rows, statement)

"""Small portable SQL helpers shared by the store modules (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite

T = TypeVar("T")

#: Rows per statement: well under SQLite's 32766 bound parameters for our widest table.
CHUNK = 500


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def insert_ignoring_existing(
    connection: Connection, table: Table, rows: list[dict[str, Any]], keys: list[str]
) -> None:
    """INSERT ... ON CONFLICT (keys) DO NOTHING, in chunks."""
    if not rows:
        return
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    for chunk in chunks(rows):
        statement = (
            dialect.insert(table).values(list(chunk)).on_conflict_do_nothing(index_elements=keys)
        )
        connection.execute(statement)


def locks_rows(connection: Connection) -> bool:
    """SELECT ... FOR UPDATE is meaningful (PostgreSQL); SQLite locks the whole file."""
    return connection.dialect.name == "postgresql"

"""Small portable SQL helpers shared by the store modules (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import Connection, Table, bindparam
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
    """INSERT ... ON CONFLICT (keys) DO NOTHING for each row, as one executemany."""
    if not rows:
        return
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table).on_conflict_do_nothing(index_elements=keys)
    connection.execute(statement, rows)


def update_by_key(
    connection: Connection, table: Table, keys: list[str], rows: list[dict[str, Any]]
) -> None:
    """UPDATE table SET <other columns> WHERE <keys> for each row, as one executemany.

    Each row maps every key column and every updated column to its value.
    """
    if not rows:
        return
    updated = [name for name in rows[0] if name not in keys]
    statement = (
        table.update()
        .where(*(table.c[name] == bindparam(f"key_{name}") for name in keys))
        .values({name: bindparam(f"new_{name}") for name in updated})
    )
    parameters = [
        {(f"key_{name}" if name in keys else f"new_{name}"): value for name, value in row.items()}
        for row in rows
    ]
    connection.execute(statement, parameters)


def locks_rows(connection: Connection) -> bool:
    """SELECT ... FOR UPDATE is meaningful (PostgreSQL); SQLite locks the whole file."""
    return connection.dialect.name == "postgresql"

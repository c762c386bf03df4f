"""The ceilings ``bench_ingest.py`` measures calmon ingest against, on the same topics.

- **consume**: a bare kafka-python consumer that reads every message and does nothing
  else (the floor; the client library's own record decoding is most of its time);
- **consume + decode**: the same, each message decoded by one typed msgspec call into
  per-batch columns (no validation): the ceiling for any writer;
- **consume + decode + lean write**: the same, then per batch one plain insert of the
  predictions (SQLite ``executemany``, PostgreSQL ``COPY``) and one ``UPDATE ... FROM``
  join of the labels through a temporary table, then the offset commit.

The lean write skips everything calmon owes its users: validation and dead letters,
idempotency (a replayed batch fails on the primary key), labels that come before their
prediction (the racing pattern: they find no row and are lost), duplicate and
conflicting labels, the horizons, the aggregate deltas and the series table. It is an
upper bound, not a design calmon could ship.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import msgspec
import orjson
from kafka import KafkaConsumer
from sqlalchemy import Engine

#: Columns the lean write inserts into ``events`` (the rest stay NULL).
PREDICTION_COLUMNS = (
    "model_id",
    "event_id",
    "model_version",
    "event_time_ms",
    "raw_score",
    "probability",
    "segment_json",
    "created_ms",
)


class LeanMessage(msgspec.Struct):
    """Every field of either message, typed as the bench sends them; nothing checked."""

    model_id: str
    event_id: str
    timestamp: int
    model_version: str | None = None
    raw_score: float | None = None
    probability: float | None = None
    segment: dict[str, str] | None = None
    label: int | None = None


class Columns:
    """One batch's messages, decoded into a column per field."""

    def __init__(self) -> None:
        self.predictions: list[tuple[Any, ...]] = []
        self.labels: list[tuple[Any, ...]] = []


def decoder() -> Callable[[list[Any]], Columns]:
    """A function from a batch of Kafka records to its columns."""
    decode = msgspec.json.Decoder(LeanMessage).decode
    dumps, sort = orjson.dumps, orjson.OPT_SORT_KEYS

    def decode_batch(records: list[Any]) -> Columns:
        columns = Columns()
        predictions, labels = columns.predictions.append, columns.labels.append
        for record in records:
            m = decode(record.value)
            if m.label is not None:
                labels((m.label, m.timestamp, m.model_id, m.event_id))
            else:
                segment = dumps(m.segment, option=sort).decode() if m.segment else "{}"
                predictions(
                    (
                        m.model_id,
                        m.event_id,
                        m.model_version,
                        m.timestamp,
                        m.raw_score,
                        m.probability,
                        segment,
                        0,
                    )
                )
        return columns

    return decode_batch


def consume_rate(
    bootstrap: str,
    topics: tuple[str, str],
    total: int,
    batch_records: int,
    handle: Callable[[KafkaConsumer, list[Any]], None] | None = None,
) -> float:
    """Messages per second of one consumer that reads ``total`` messages, collecting
    batches of up to ``batch_records`` as calmon does, and hands each to ``handle``."""
    consumer = KafkaConsumer(
        *set(topics),
        bootstrap_servers=bootstrap,
        group_id=f"ceiling-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=batch_records,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )
    # Timed as bench_ingest.py times calmon: from the end of the first batch (the group
    # join is not ingest work) to the end of the last, the first batch's messages left out.
    seen = first = 0
    start = None
    while seen < total:
        batch: list[Any] = []
        while len(batch) < batch_records:
            polled = consumer.poll(timeout_ms=500, max_records=batch_records - len(batch))
            for records in polled.values():
                batch.extend(records)
            if not polled and (batch or start is not None):
                break
        if batch and handle is not None:
            handle(consumer, batch)
        seen += len(batch)
        if batch and start is None:
            start, first = time.perf_counter(), seen
    elapsed = time.perf_counter() - (start or time.perf_counter())
    consumer.close()
    return (total - first) / elapsed


def decode_only(
    decode: Callable[[list[Any]], Columns],
) -> Callable[[KafkaConsumer, list[Any]], None]:
    def handle(consumer: KafkaConsumer, batch: list[Any]) -> None:
        decode(batch)

    return handle


def lean_write(engine: Engine) -> Callable[[KafkaConsumer, list[Any]], None]:
    """Decode, write (as the module docstring says) and commit the offsets, per batch."""
    decode = decoder()
    connection: Any = engine.raw_connection()
    write = _lean_postgres if engine.dialect.name == "postgresql" else _lean_sqlite
    if engine.dialect.name == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "CREATE TEMP TABLE lean_labels (label smallint, label_time_ms bigint,"
                " model_id text, event_id text) ON COMMIT DELETE ROWS"
            )
        connection.commit()
    else:
        connection.execute(
            "CREATE TEMP TABLE lean_labels (label, label_time_ms, model_id, event_id)"
        )

    def handle(consumer: KafkaConsumer, batch: list[Any]) -> None:
        write(connection, decode(batch))
        consumer.commit()

    return handle


_UPDATE_JOIN = (
    "UPDATE events SET label = l.label, label_time_ms = l.label_time_ms FROM lean_labels AS l"
    " WHERE events.model_id = l.model_id AND events.event_id = l.event_id"
)


def _lean_sqlite(connection: Any, columns: Columns) -> None:
    marks = ", ".join("?" for _ in PREDICTION_COLUMNS)
    connection.execute("BEGIN IMMEDIATE")
    connection.executemany(
        f"INSERT INTO events ({', '.join(PREDICTION_COLUMNS)}) VALUES ({marks})",
        columns.predictions,
    )
    if columns.labels:
        connection.executemany("INSERT INTO lean_labels VALUES (?, ?, ?, ?)", columns.labels)
        connection.execute(_UPDATE_JOIN)
        connection.execute("DELETE FROM lean_labels")
    connection.commit()


def _lean_postgres(connection: Any, columns: Columns) -> None:
    with connection.cursor() as cursor:
        with cursor.copy(f"COPY events ({', '.join(PREDICTION_COLUMNS)}) FROM STDIN") as copy:
            for row in columns.predictions:
                copy.write_row(row)
        if columns.labels:
            with cursor.copy("COPY lean_labels FROM STDIN") as copy:
                for row in columns.labels:
                    copy.write_row(row)
            cursor.execute(_UPDATE_JOIN)
    connection.commit()

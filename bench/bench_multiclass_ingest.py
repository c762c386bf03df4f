"""Multi-class messages through ingest's decode and the store's write path, per message,
as a ratio to binary messages of the same events.

A batch of N predictions, then a batch of their N labels, of one model, into a fresh
SQLite store (``EventStore.write_batch``, the common cases set-at-a-time); decode is
``ingest.decode.decode_batch`` on the JSON bytes. Binary: ``probability`` and a 0/1
label; multi-class: ``probabilities`` of K classes (Dirichlet) and a class name.

Run: ``.venv/bin/python bench/bench_multiclass_ingest.py [--quick]``.
"""

from __future__ import annotations

import sys
import tempfile
import time

import numpy as np
import orjson

from monitor.ingest.decode import decode_batch
from monitor.store.db import migrate
from monitor.store.db.engine import make_engine
from monitor.store.write.event_store import EventStore

NOW = 1_790_000_000_000


def messages(k: int, n: int) -> tuple[list[bytes], list[bytes]]:
    rng = np.random.default_rng(0)
    if k == 0:
        p = rng.uniform(size=n)
        predictions = [
            {"probability": float(p[i])} for i in range(n)
        ]  # fmt: skip
        labels = [int(i % 2) for i in range(n)]
    else:
        names = [f"c{j}" for j in range(k)]
        matrix = rng.dirichlet(np.ones(k), n)
        predictions = [
            {"probabilities": dict(zip(names, row.tolist(), strict=True))} for row in matrix
        ]
        labels = [names[i % k] for i in range(n)]  # type: ignore[misc]
    head = {"model_id": "m", "model_version": "v1", "timestamp": NOW - 1000}
    return (
        [
            orjson.dumps({"event_id": f"e{i}", **head, **fields})
            for i, fields in enumerate(predictions)
        ],
        [
            orjson.dumps({"event_id": f"e{i}", "model_id": "m", "label": y, "timestamp": NOW})
            for i, y in enumerate(labels)
        ],
    )


def per_message_us(k: int, n: int) -> tuple[float, float]:
    """(decode, write) microseconds per message, predictions and labels together."""
    predictions, labels = messages(k, n)
    with tempfile.TemporaryDirectory() as directory:
        engine = make_engine(f"sqlite:///{directory}/calmon.db")
        migrate.upgrade(engine)
        store = EventStore(engine, clock_ms=lambda: NOW)
        decode = write = 0.0
        for batch in (predictions, labels):
            started = time.perf_counter()
            records = decode_batch(batch, max_bytes=1 << 20)
            decoded = time.perf_counter()
            store.write_batch(records)  # type: ignore[arg-type]
            decode += decoded - started
            write += time.perf_counter() - decoded
        engine.dispose()
    return 1e6 * decode / (2 * n), 1e6 * write / (2 * n)


def main() -> int:
    n = 2_000 if "--quick" in sys.argv else 10_000
    per_message_us(0, 200)  # warm up imports and the decoder
    binary = per_message_us(0, n)
    print(f"{n:,} predictions then their labels, microseconds per message")
    print(f"{'classes':>8} {'decode':>8} {'write':>8} {'decode x':>9} {'write x':>8}")
    print(f"{'binary':>8} {binary[0]:8.1f} {binary[1]:8.1f} {1:9.1f} {1:8.1f}")
    for k in (3, 10, 100):
        decode, write = per_message_us(k, n)
        print(
            f"{k:>8} {decode:8.1f} {write:8.1f} {decode / binary[0]:9.1f} {write / binary[1]:8.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

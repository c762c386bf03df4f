"""Garbage-collector settings for the long-running daemon.

Ingest creates and drops several container objects per message (the parsed JSON, the
record, tuples for the store). CPython's collections of the oldest generation then
walk every live object, and after start-up the daemon holds several hundred thousand
that stay for good (modules, SQLAlchemy and pydantic metadata, numpy). Freezing them
takes them out of every later collection (``bench/bench_ingest_stages.py`` with and
without ``--no-freeze`` shows the difference; README, "Benchmarks").
"""

from __future__ import annotations

import gc


def freeze_startup_objects() -> None:
    """Move every object alive now out of the collector's sight (call once, at start-up,
    after the components are built)."""
    gc.collect()  # what is garbage now must not be frozen with the rest
    gc.freeze()

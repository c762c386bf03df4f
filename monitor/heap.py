"""Memory settings for the long-running daemon: the garbage collector and the C heap.

Ingest creates and drops several container objects per message (the parsed JSON, the
record, tuples for the store). CPython's collections of the oldest generation then
walk every live object, and after start-up the daemon holds several hundred thousand
that stay for good (modules, SQLAlchemy and pydantic metadata, numpy). Freezing them
takes them out of every later collection (``bench/bench_ingest_stages.py`` with and
without ``--no-freeze`` shows the difference; docs/benchmarks.md).

The C heap: glibc's malloc serves a large block (128 KiB or more) by mapping memory
and returns it when freed, but each time one is freed it raises that threshold to the
block's size. The daemon keeps freeing large blocks (a batch's lists, aggregate blobs
of hundreds of KB), so soon they all come from the heap, whose free space is
fragmented and never handed back: the resident set grew for as long as the daemon ran
(``bench/bench_memory.py``; docs/benchmarks.md). Fixing the threshold, and capping
the per-thread heaps (arenas) at two, keeps it flat.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import os

logger = logging.getLogger(__name__)

#: mallopt(3) parameters (glibc's malloc.h).
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
#: Blocks this large or larger are mapped, and returned when freed: glibc's default.
MMAP_THRESHOLD_BYTES = 128 * 1024
ARENA_MAX = 2


def freeze_startup_objects() -> None:
    """Move every object alive now out of the collector's sight (call once, at start-up,
    after the components are built)."""
    gc.collect()  # what is garbage now must not be frozen with the rest
    gc.freeze()


def limit_heap_fragmentation() -> bool:
    """Fix glibc's mmap threshold and cap its arenas (call once, at start-up, before
    threads start). Settings given in the environment (``MALLOC_MMAP_THRESHOLD_``,
    ``MALLOC_ARENA_MAX``) are left as they are. Returns whether anything was set; on
    other C libraries (musl, macOS) nothing is."""
    if not _is_glibc():
        return False
    libc = ctypes.CDLL(None)  # the process's own symbols, libc's mallopt among them
    changed = False
    for variable, parameter, value in (
        ("MALLOC_MMAP_THRESHOLD_", _M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES),
        ("MALLOC_ARENA_MAX", _M_ARENA_MAX, ARENA_MAX),
    ):
        if variable in os.environ:
            continue
        if libc.mallopt(parameter, value) != 1:  # mallopt returns 1 on success
            logger.warning("mallopt refused a setting", extra={"setting": variable})
            continue
        changed = True
    return changed


def _is_glibc() -> bool:
    """Whether the process runs on glibc: one confstr call (``platform.libc_ver`` reads
    the interpreter's binary instead)."""
    try:
        return bool(os.confstr("CS_GNU_LIBC_VERSION"))
    except (ValueError, OSError):  # the name is unknown outside glibc
        return False

"""Time buckets of the aggregates and how a window is covered by them.

Every event updates one bucket at each resolution (minute, hour, day). A window
[start, end) is covered greedily by whole days, then hours, then minutes at its two
edges, so it merges at most about 2*59 + 2*23 + days rows, whatever its event count.

Where a window's edges fall (``window_edge``): a recent edge is rounded outwards to
the whole minute (so the current, still-filling minute is part of the window that ends
now). The retention job deletes fine buckets once they are old (``BUCKETS_KEPT_S``), so
an edge whose hour began more than 3 days before the evaluation moves to the start of
its hour, and one whose day began more than 62 days before, to the start of its day.
Without this a 7-day window would silently lose the minutes at its old edge once
retention had run; with it, the window is exact over the bounds it covers, and gives
the same answer whether or not retention has run yet.

>>> DAY, HOUR, MINUTE = 86_400_000, 3_600_000, 60_000
>>> now = 1000 * DAY + 10 * HOUR + 23 * MINUTE + 30_000  # day 1000, 10:23:30
>>> cover(now - 2 * DAY, now, now)[0] == (60, 998 * DAY + 10 * HOUR + 23 * MINUTE)
True
>>> cover(now - 7 * DAY, now, now)[0] == (3600, 993 * DAY + 10 * HOUR)
True
>>> cover(now - 7 * DAY, now, now)[-1] == (60, 1000 * DAY + 10 * HOUR + 23 * MINUTE)
True
"""

from __future__ import annotations

MINUTE_S, HOUR_S, DAY_S = 60, 3600, 86400
RESOLUTIONS_S = (MINUTE_S, HOUR_S, DAY_S)

#: How long retention keeps each resolution's buckets, after the bucket's start
#: (``maintenance/retention.py``). A window reads a resolution only where it is still kept.
BUCKETS_KEPT_S = {MINUTE_S: 3 * DAY_S, HOUR_S: 62 * DAY_S, DAY_S: 400 * DAY_S}


def bucket_start(time_ms: int, resolution_s: int) -> int:
    size = resolution_s * 1000
    return time_ms - time_ms % size


def window_edge(time_ms: int, now_ms: int, *, end: bool) -> int:
    """Where a window edge at ``time_ms`` falls when evaluated at ``now_ms``.

    The buckets read next to an edge lie within the hour that holds it (minutes) and
    within its day (hours); retention, which runs at or before ``now``, has deleted
    only buckets that began more than ``BUCKETS_KEPT_S`` before ``now``. So an edge keeps
    minute precision while its hour began within the minutes' retention, hour precision
    while its day began within the hours' retention; the result does not depend on
    when retention last ran.
    """
    if bucket_start(time_ms, HOUR_S) >= now_ms - BUCKETS_KEPT_S[MINUTE_S] * 1000:
        if end:
            return -bucket_start(-time_ms, MINUTE_S)  # ceiling to the minute
        return bucket_start(time_ms, MINUTE_S)
    if bucket_start(time_ms, DAY_S) >= now_ms - BUCKETS_KEPT_S[HOUR_S] * 1000:
        return bucket_start(time_ms, HOUR_S)
    return bucket_start(time_ms, DAY_S)


def cover(start_ms: int, end_ms: int, now_ms: int) -> list[tuple[int, int]]:
    """(resolution_s, bucket_start_ms) pairs covering [start, end) as evaluated at ``now``,
    its edges placed by ``window_edge``."""
    return partition(
        window_edge(start_ms, now_ms, end=False), window_edge(end_ms, now_ms, end=True)
    )


def partition(start_ms: int, end_ms: int) -> list[tuple[int, int]]:
    """(resolution_s, bucket_start_ms) pairs covering [start, end) greedily, largest
    buckets first; both edges must be whole minutes (``cover`` places them)."""
    buckets: list[tuple[int, int]] = []
    position, end = start_ms, end_ms
    while position < end:
        for resolution in (DAY_S, HOUR_S, MINUTE_S):
            size = resolution * 1000
            if position % size == 0 and position + size <= end:
                buckets.append((resolution, position))
                position += size
                break
    return buckets

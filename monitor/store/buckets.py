"""Time buckets of the aggregates and how a window is covered by them.

Every event updates one bucket at each resolution (minute, hour, day). A window
[start, end) is covered greedily by whole days, then hours, then minutes at its two
edges, so it merges at most about 2*59 + 2*23 + days rows, whatever its event count.
Window edges are rounded outwards to whole minutes, so the current, still-filling
minute is part of the window that ends now.

>>> cover(0, 2 * 86_400_000 + 3_600_000 + 120_000)[:2]
[(86400, 0), (86400, 86400000)]
>>> len(cover(30_000, 90_000))
2
"""

from __future__ import annotations

MINUTE_S, HOUR_S, DAY_S = 60, 3600, 86400
RESOLUTIONS_S = (MINUTE_S, HOUR_S, DAY_S)


def bucket_start(time_ms: int, resolution_s: int) -> int:
    size = resolution_s * 1000
    return time_ms - time_ms % size


def cover(start_ms: int, end_ms: int) -> list[tuple[int, int]]:
    """(resolution_s, bucket_start_ms) pairs covering [start, end), rounded outwards."""
    start = bucket_start(start_ms, MINUTE_S)
    end = -bucket_start(-end_ms, MINUTE_S)  # ceiling to the minute
    buckets: list[tuple[int, int]] = []
    position = start
    while position < end:
        for resolution in (DAY_S, HOUR_S, MINUTE_S):
            size = resolution * 1000
            if position % size == 0 and position + size <= end:
                buckets.append((resolution, position))
                position += size
                break
    return buckets

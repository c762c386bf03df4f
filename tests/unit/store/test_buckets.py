"""Window edges and bucket cover: the window reads only buckets retention still keeps."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from monitor.store.buckets import BUCKETS_KEPT_S, DAY_S, HOUR_S, MINUTE_S, cover, window_edge

MINUTE, HOUR, DAY = 60_000, 3_600_000, 86_400_000
NOW = 20_000 * DAY + 10 * HOUR + 23 * MINUTE + 30_500  # 10:23:30.5 on some day


def test_recent_edges_round_outwards_to_the_minute() -> None:
    start, end = NOW - 2 * DAY, NOW
    assert window_edge(start, NOW, end=False) == NOW - 2 * DAY - 30_500
    assert window_edge(end, NOW, end=True) == NOW - 30_500 + MINUTE


def test_old_edges_move_to_the_start_of_their_hour_then_of_their_day() -> None:
    # 10:23:30 three days and one hour ago: its hour began more than 3 days ago.
    old = NOW - 3 * DAY - HOUR
    assert window_edge(old, NOW, end=False) == old - 23 * MINUTE - 30_500
    assert window_edge(old, NOW, end=True) == old - 23 * MINUTE - 30_500
    # Its hour began 3 days minus 37 minutes ago: minutes are still kept.
    recent = NOW - 3 * DAY + HOUR
    assert window_edge(recent, NOW, end=False) == recent - 30_500
    # 70 days back, past the hours' 62 days: the start of that day.
    ancient = NOW - 70 * DAY
    assert window_edge(ancient, NOW, end=False) == ancient - 10 * HOUR - 23 * MINUTE - 30_500


def test_a_week_ending_now_starts_on_the_hour() -> None:
    buckets = cover(NOW - 7 * DAY, NOW, NOW)
    assert buckets[0] == (HOUR_S, NOW - 7 * DAY - 23 * MINUTE - 30_500)
    assert buckets[-1] == (MINUTE_S, NOW - 30_500)
    assert sum(1 for resolution, _ in buckets if resolution == DAY_S) == 6


times = st.integers(min_value=1_000 * DAY, max_value=30_000 * DAY)
spans = st.integers(min_value=1, max_value=500 * DAY)
ages = st.integers(min_value=0, max_value=500 * DAY)


@given(end=times, span=spans, age=ages)
def test_cover_tiles_the_moved_edges_with_buckets_retention_keeps(
    end: int, span: int, age: int
) -> None:
    start, now = end - span, end + age
    first = window_edge(start, now, end=False)
    last = window_edge(end, now, end=True)
    buckets = cover(start, end, now)
    position = first
    for resolution, bucket_start in buckets:
        assert bucket_start == position  # contiguous, no gap, no overlap
        assert bucket_start % (resolution * 1000) == 0
        # Retention at any time up to `now` deleted only buckets older than this.
        assert bucket_start >= now - BUCKETS_KEPT_S[resolution] * 1000 or resolution == DAY_S
        position += resolution * 1000
    assert position == max(last, first)
    # An edge moves by less than its bucket: a minute while recent, at most a day.
    assert 0 <= start - first < DAY
    assert -MINUTE < end - last < DAY
    if start - (start % HOUR) >= now - BUCKETS_KEPT_S[MINUTE_S] * 1000:
        assert start - first < MINUTE


def test_edge_precision_changes_exactly_where_retention_deletes() -> None:
    # An edge whose hour began exactly 3 days before now keeps its minutes (retention
    # deletes only buckets that began *more* than BUCKETS_KEPT_S ago); 1 ms later, not.
    edge = 20_000 * DAY + 5 * HOUR + 17 * MINUTE  # 05:17:00
    hour = edge - 17 * MINUTE
    at = hour + BUCKETS_KEPT_S[MINUTE_S] * 1000
    assert window_edge(edge, at, end=False) == edge
    assert window_edge(edge, at + 1, end=False) == hour
    # Likewise hours: kept while the edge's day began at most 62 days before now.
    day = edge - 5 * HOUR - 17 * MINUTE
    at = day + BUCKETS_KEPT_S[HOUR_S] * 1000
    assert window_edge(edge, at, end=False) == hour
    assert window_edge(edge, at + 1, end=False) == day

"""A series' window split in time, candidates fitted on the earlier half and validated on
the later one: the recalibration a webhook, the API and ``calmon recalibrate`` hand over.

The window [start, end) is split at the minute boundary nearest its middle, so the two
halves are made of whole stored buckets: each half is read from the aggregates exactly
as the window itself is (``store.aggregates.load_window``), no event is re-read.

>>> MINUTE = 60_000
>>> now = 1_000 * MINUTE + 40_000  # a 1-minute window whose edges fall mid-minute
>>> split_point_ms(now - MINUTE, now, now) == 1_000 * MINUTE  # one bucket on each side
True
>>> split_point_ms(now - 60 * MINUTE, now, now) == 971 * MINUTE  # middle: 970:40
True
>>> later = 1_000 * MINUTE + 3_000  # a 2-minute window, its last bucket 3 s old
>>> split_point_ms(later - 2 * MINUTE, later, later) == 999 * MINUTE
True
"""

from __future__ import annotations

import zlib
from datetime import datetime
from typing import Any

from monitor.core.series import ALL, OTHER, SeriesWindow
from monitor.core.times import epoch_ms, to_datetime
from monitor.metrics.aggregates import EventAggregate
from monitor.metrics.calibrators.artifact import recommendation_to_json
from monitor.metrics.calibrators.cells import LabelledCells
from monitor.metrics.calibrators.validate import recommend
from monitor.settings import EvaluationSettings
from monitor.store.aggregates import load_window
from monitor.store.buckets import MINUTE_S, bucket_start, window_edge
from monitor.store.db.engine import Engine

#: Why a window offers no recalibration, when it does not.
UNAVAILABLE = "unavailable"


def split_point_ms(start_ms: int, end_ms: int, now_ms: int) -> int:
    """The minute boundary nearest the middle of [start, end), kept strictly inside the
    buckets the window covers (its edges placed as ``buckets.window_edge`` places them),
    so each half has at least one bucket. The last bucket is usually still filling:
    splitting at the middle of the time range, not of the covered buckets, keeps it
    with the later half's whole ones."""
    lower = window_edge(start_ms, now_ms, end=False)
    upper = window_edge(end_ms, now_ms, end=True)
    minute = MINUTE_S * 1000
    nearest = bucket_start(start_ms + (end_ms - start_ms) // 2 + minute // 2, MINUTE_S)
    return max(lower + minute, min(nearest, upper - minute))


def recalibration(
    engine: Engine,
    series: SeriesWindow,
    *,
    window_start: datetime,
    window_end: datetime,
    evaluated_at: datetime,
    settings: EvaluationSettings,
) -> dict[str, Any]:
    """The recommendation for one evaluated window, JSON-ready: ``status`` is
    ``recommended`` (with the artifact and every candidate's scores) or ``unavailable``
    (with the ``reason``)."""
    if series.segment.endswith(f"={OTHER}"):
        return unavailable("the merged __other__ segment is no single population to fit")
    start, end, now = epoch_ms(window_start), epoch_ms(window_end), epoch_ms(evaluated_at)
    split = split_point_ms(start, end, now)
    earlier, later = (
        load_window(
            engine,
            model_id=series.model,
            model_version=None if series.model_version == ALL else series.model_version,
            segment=series.segment,
            start_ms=lower,
            end_ms=upper,
            now_ms=now,
        ).aggregate
        for lower, upper in ((start, split), (split, end))
    )
    return recommendation_of(
        series,
        earlier,
        later,
        window_start=window_start,
        split_ms=split,
        window_end=window_end,
        settings=settings,
    )


def recommendation_of(
    series: SeriesWindow,
    earlier_part: EventAggregate,
    later_part: EventAggregate,
    *,
    window_start: datetime,
    split_ms: int,
    window_end: datetime,
    settings: EvaluationSettings,
) -> dict[str, Any]:
    """The recommendation from a window's two parts, [start, split) and [split, end):
    candidates fitted on the earlier, scored on the later, the chosen one refitted on
    both (also ``calmon evaluate --report``'s, from a file's aggregates)."""
    earlier, later = LabelledCells.of(earlier_part), LabelledCells.of(later_part)
    needed = max(settings.min_labelled // 2, 1)
    if earlier.n < needed or later.n < needed:
        return unavailable(
            f"each half of the window needs {needed} labelled events (half of "
            f"evaluation.min_labelled); it has {earlier.n} and {later.n}"
        )
    result = recommend(
        earlier,
        later,
        n_bins=settings.n_bins,
        seed=zlib.crc32(repr(series).encode()),
        refit_on=LabelledCells.of(EventAggregate.merge_all([earlier_part, later_part])),
    )
    split = to_datetime(split_ms)
    fitted_on = {
        "model": series.model,
        "model_version": series.model_version,
        "segment": series.segment,
        "window": series.window,
        # Candidates fitted on the earlier half, scored on the later one; the artifact
        # is the chosen method refitted on both.
        "fit": {"start": window_start.isoformat(), "end": split.isoformat()},
        "validation": {"start": split.isoformat(), "end": window_end.isoformat()},
        "fit_labelled": earlier.n,
        "validation_labelled": later.n,
        "refit": {"start": window_start.isoformat(), "end": window_end.isoformat()},
        "refit_labelled": earlier.n + later.n,
    }
    return recommendation_to_json(result, fitted_on)


def unavailable(reason: str) -> dict[str, Any]:
    return {"status": UNAVAILABLE, "reason": reason}

"""A series' window split in time, candidates fitted on the earlier half and validated on
the later one: the recalibration a webhook, the API and ``calmon recalibrate`` hand over.

The window [start, end) is split at its midpoint, floored to the minute, so the two
halves are made of whole stored buckets: each half is read from the aggregates exactly
as the window itself is (``store.aggregates.load_window``), no event is re-read.
"""

from __future__ import annotations

import zlib
from datetime import datetime
from typing import Any

from monitor.core.series import ALL, OTHER, SeriesWindow
from monitor.core.times import epoch_ms, to_datetime
from monitor.metrics.calibrators.artifact import recommendation_to_json
from monitor.metrics.calibrators.cells import LabelledCells
from monitor.metrics.calibrators.validate import recommend
from monitor.settings import EvaluationSettings
from monitor.store.aggregates import load_window
from monitor.store.buckets import MINUTE_S, bucket_start
from monitor.store.db.engine import Engine

#: Why a window offers no recalibration, when it does not.
UNAVAILABLE = "unavailable"


def split_point_ms(start_ms: int, end_ms: int) -> int:
    """The window's midpoint, floored to the minute (a bucket boundary)."""
    return bucket_start(start_ms + (end_ms - start_ms) // 2, MINUTE_S)


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
        return _unavailable("the merged __other__ segment is no single population to fit")
    start, end, now = epoch_ms(window_start), epoch_ms(window_end), epoch_ms(evaluated_at)
    split = split_point_ms(start, end)
    halves = [
        LabelledCells.of(
            load_window(
                engine,
                model_id=series.model,
                model_version=None if series.model_version == ALL else series.model_version,
                segment=series.segment,
                start_ms=lower,
                end_ms=upper,
                now_ms=now,
            ).aggregate
        )
        for lower, upper in ((start, split), (split, end))
    ]
    earlier, later = halves
    needed = max(settings.min_labelled // 2, 1)
    if earlier.n < needed or later.n < needed:
        return _unavailable(
            f"each half of the window needs {needed} labelled events (half of "
            f"evaluation.min_labelled); it has {earlier.n} and {later.n}"
        )
    result = recommend(
        earlier,
        later,
        n_bins=settings.n_bins,
        seed=zlib.crc32(repr(series).encode()),
    )
    fitted_on = {
        "model": series.model,
        "model_version": series.model_version,
        "segment": series.segment,
        "window": series.window,
        "fit": {"start": window_start.isoformat(), "end": to_datetime(split).isoformat()},
        "validation": {"start": to_datetime(split).isoformat(), "end": window_end.isoformat()},
        "fit_labelled": earlier.n,
        "validation_labelled": later.n,
    }
    return recommendation_to_json(result, fitted_on)


def _unavailable(reason: str) -> dict[str, Any]:
    return {"status": UNAVAILABLE, "reason": reason}

"""The recalibration a file's report shows (``calmon evaluate --report``, the Python
API's ``report()``): the daemon's recommendation (``windows/recalibration.py``) fitted
from the file's aggregates. The series' window is split in time as the daemon splits
one, at the boundary nearest its middle (here of the accumulator's time slices,
``slices.py``); candidates are fitted on the earlier part, scored on the later part,
and the chosen one is refitted on both."""

from __future__ import annotations

from typing import Any

from monitor.core.results import WindowResult
from monitor.core.series import OTHER
from monitor.core.times import epoch_ms
from monitor.offline.accumulate import Accumulator
from monitor.settings import EvaluationSettings
from monitor.windows.recalibration import recommendation_of, unavailable

#: Why events without their own time get no recommendation.
UNTIMED = (
    "every event has the same time, so there is no earlier part to fit on and later part "
    "to score on (give each event its timestamp)"
)

#: Why a multi-class model gets no recommendation.
MULTICLASS = (
    "a multi-class model: the recalibrations calmon fits (Platt, isotonic, temperature, "
    "histogram) map one probability, a binary model's"
)


def recalibration(
    accumulator: Accumulator,
    result: WindowResult,
    *,
    every_ms: int | None,
    settings: EvaluationSettings,
) -> dict[str, Any]:
    """The recommendation for one evaluated series and period, JSON-ready as the
    daemon's: ``status`` ``recommended`` (the artifact, every candidate's held-out
    scores) or ``unavailable`` (the ``reason``). ``accumulator`` kept its slices."""
    series = result.series
    if result.classes:
        return unavailable(MULTICLASS)
    if series.segment.endswith(f"={OTHER}"):
        return unavailable("the merged __other__ segment is no single population to fit")
    start, end = epoch_ms(result.window_start), epoch_ms(result.window_end)
    if end - start <= 1:
        return unavailable(UNTIMED)
    period = None if every_ms is None else start
    split, earlier, later = accumulator.halves(
        (series.model, series.model_version, series.segment, period), start, end
    )
    if not start < split < end:
        return unavailable(
            f"the window spans {(end - start) / 1000:g} s, too short to split into an "
            "earlier part to fit on and a later part to score on (a minute at least)"
        )
    return recommendation_of(
        series,
        earlier,
        later,
        window_start=result.window_start,
        split_ms=split,
        window_end=result.window_end,
        settings=settings,
    )

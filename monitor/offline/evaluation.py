"""Accumulated series evaluated by the daemon's window code (``windows/evaluate.py``).

Each period is a window: the whole file (``[first event, last event]``) or one period of
``--every``, evaluated as of its end. Segments are capped to the top values as the
daemon caps them (``windows/segments.py``). Drift is measured against:

- a reference file (``reference``, source ``file``): the same series in it, or, when it
  has no events of that model version, the model's all-versions series there (a new
  version against the old one's month);
- a period of the file itself (source ``period``), the same series in it;
- with ``--every`` and neither, the period before (source ``trailing``), like the
  daemon's default.

With ``--every``, each period also gets the sequential detector's values
(``calibration_cusum_*``), as the daemon's job computes them for a window one period
long evaluated once a period (``sequential_values``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from monitor.core.results import ReferenceUsed, WindowResult
from monitor.core.series import ALL, OTHER, SeriesWindow
from monitor.core.times import to_datetime
from monitor.metrics.drift import DISTRIBUTIONS, Distribution, ReferenceProfile
from monitor.metrics.errors import DegenerateReferenceError
from monitor.offline.accumulate import Accumulator, SeriesState
from monitor.settings import EvaluationSettings, WindowSettings
from monitor.store.aggregates import BucketResiduals, WindowAggregate
from monitor.store.buckets import bucket_start
from monitor.windows.evaluate import evaluate
from monitor.windows.multiclass import MulticlassOutcome, evaluate_multiclass
from monitor.windows.segments import cap_segments
from monitor.windows.sequential import detector_values, plan_for


@dataclass(frozen=True)
class Reference:
    """Where drift references come from: ``source`` ``file`` or ``period``."""

    source: str
    accumulator: Accumulator
    start_ms: int
    end_ms: int

    def lookup(self, model: str, version: str, segment: str) -> SeriesState | None:
        series = self.accumulator.series
        found = series.get((model, version, segment, None))
        if found is None and self.source == "file":
            found = series.get((model, ALL, segment, None))
        return found


def fit(state: SeriesState | None, psi_bins: int) -> dict[Distribution, ReferenceProfile | None]:
    fitted: dict[Distribution, ReferenceProfile | None] = {}
    for distribution in DISTRIBUTIONS:
        if state is None:
            fitted[distribution] = None
            continue
        histogram = (
            state.aggregate.scores if distribution == "raw_score" else state.aggregate.probabilities
        )
        try:
            fitted[distribution] = ReferenceProfile.from_histogram(
                histogram, kind=distribution, n_bins=psi_bins
            )
        except DegenerateReferenceError:
            fitted[distribution] = None
    return fitted


def evaluate_series(
    accumulator: Accumulator,
    *,
    settings: EvaluationSettings,
    window: str,
    every_ms: int | None,
    psi_bins: int,
    reference: Reference | None = None,
) -> list[WindowResult]:
    """One result per series and period, in (period, series) order."""
    if accumulator.first_ms is None or accumulator.last_ms is None:
        return []
    by_period: dict[int | None, dict[tuple[str, str], dict[str, SeriesState]]] = defaultdict(
        lambda: defaultdict(dict)
    )
    for (model, version, segment, period), state in accumulator.series.items():
        by_period[period][(model, version)][segment] = state
    results: list[WindowResult] = []
    for period in sorted(by_period, key=lambda p: -1 if p is None else p):
        if period is None or every_ms is None:
            start, end = accumulator.first_ms, accumulator.last_ms + 1
        else:
            start, end = period, period + every_ms
        for (model, version), segments in sorted(by_period[period].items()):
            windows = {
                segment: WindowAggregate(state.aggregate, state.predictions, 1)
                for segment, state in segments.items()
            }
            capped = cap_segments(windows, settings.max_segment_values)
            for segment, aggregate in sorted(capped.items()):
                members = [segments[segment]] if segment in segments else list(segments.values())
                used, profiles, reference_state = _reference(
                    accumulator, reference, model, version, segment, period, every_ms, psi_bins
                )
                sequential = (
                    {}
                    if every_ms is None
                    else sequential_values(
                        accumulator, (model, version, segment), end, every_ms, settings
                    )
                )
                results.append(
                    evaluate(
                        SeriesWindow(model, version, segment, window),
                        aggregate,
                        start_ms=start,
                        end_ms=end,
                        now_ms=end,
                        references=profiles,
                        reference_used=used,
                        last_prediction_ms=_latest(m.last_prediction_ms for m in members),
                        last_label_ms=_latest(m.last_label_ms for m in members),
                        settings=settings,
                        sequential_values=sequential,
                        multiclass=_multiclass(
                            segments.get(segment), used, reference_state, settings, psi_bins
                        ),
                    )
                )
    return results


def _multiclass(
    state: SeriesState | None,
    used: ReferenceUsed | None,
    reference: SeriesState | None,
    settings: EvaluationSettings,
    psi_bins: int,
) -> MulticlassOutcome | None:
    """A multi-class series' values, as the window job computes them (``jobs.py``
    ``_multiclass``): none for a merged tail (``__other__``, not in ``segments``) or a
    binary series; drift against the reference's events when the series has one."""
    if state is None or state.multiclass is None:
        return None
    fitted_from = None if used is None or reference is None else reference.multiclass
    return evaluate_multiclass(state.multiclass, fitted_from, settings, psi_bins=psi_bins)


def sequential_values(
    accumulator: Accumulator,
    series: tuple[str, str, str],
    end_ms: int,
    every_ms: int,
    settings: EvaluationSettings,
) -> dict[str, float]:
    """The CUSUM of a period as the daemon computes it for a window ``every`` long,
    evaluated every ``every``, at the period's end (``windows/jobs.py``): over the
    lookback's buckets, the newest the one starting at the end (empty: not read yet)."""
    if not settings.sequential.enabled or series[2].endswith(f"={OTHER}"):
        return {}
    window = WindowSettings(name="every", length=every_ms / 1000, every=every_ms / 1000)
    plan = plan_for(window, settings.sequential)
    first = bucket_start(end_ms, plan.resolution_s) - plan.lookback_ms + plan.resolution_ms
    sums = accumulator.bucket_residuals(series)
    starts = np.array(sorted(s for s in sums if first <= s < end_ms), dtype=np.int64)
    residuals = BucketResiduals(
        bucket_start_ms=starts,
        residual_sums=np.array([sums[s][0] for s in starts.tolist()], dtype=float),
        variances=np.array([sums[s][1] for s in starts.tolist()], dtype=float),
    )
    return detector_values(residuals, plan, settings.sequential)


def _latest(times: Iterable[int | None]) -> int | None:
    known = [t for t in times if t is not None]
    return max(known) if known else None


def _reference(
    accumulator: Accumulator,
    reference: Reference | None,
    model: str,
    version: str,
    segment: str,
    period: int | None,
    every_ms: int | None,
    psi_bins: int,
) -> tuple[ReferenceUsed | None, dict[Distribution, ReferenceProfile | None], SeriesState | None]:
    """The reference used, its fitted profiles, and its events (a multi-class series
    fits its per-class references from them)."""
    if segment.endswith(f"={OTHER}"):
        return None, {}, None  # a merged tail has no reference, as in the daemon
    if reference is not None:
        state = reference.lookup(model, version, segment)
        start, end, source = reference.start_ms, reference.end_ms, reference.source
    elif every_ms is not None and period is not None:
        state = accumulator.series.get((model, version, segment, period - every_ms))
        start, end, source = period - every_ms, period, "trailing"
    else:
        return None, {}, None
    profiles = fit(state, psi_bins)
    used = ReferenceUsed(
        source=source,
        start=to_datetime(start),
        end=to_datetime(end),
        events={d: (p.count if p else 0) for d, p in profiles.items()},
    )
    return used, profiles, state

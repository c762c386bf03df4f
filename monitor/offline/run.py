"""Evaluate a file: read it once into accumulators, evaluate every series and window."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from monitor.core.results import WindowResult
from monitor.offline.accumulate import Accumulator
from monitor.offline.checks import Reject
from monitor.offline.columns import BadFile
from monitor.offline.evaluation import Reference, evaluate_series
from monitor.offline.pipeline import ReadSummary, Source, accumulate
from monitor.offline.recalibration import recalibration
from monitor.report.from_results import shown
from monitor.settings import Settings, WindowSettings
from monitor.windows.sequential import plan_for

#: The window name of a whole-file evaluation (with ``--every``, its text: ``1d``).
WHOLE_FILE = "file"


@dataclass(frozen=True)
class Evaluation:
    results: list[WindowResult]
    read: ReadSummary
    labels_over_horizon: int
    reference_read: ReadSummary | None = None
    #: The recommendation for the series the report shows (``recalibrate``), else None.
    recalibration: dict[str, Any] | None = None


def detector_bucket_ms(every_ms: int | None, settings: Settings) -> int | None:
    """The bucket length the sequential detector reads for ``--every`` (None: no
    detector: a whole-file window, or the detector turned off)."""
    if every_ms is None or not settings.evaluation.sequential.enabled:
        return None
    window = WindowSettings(name="every", length=every_ms / 1000, every=every_ms / 1000)
    return plan_for(window, settings.evaluation.sequential).resolution_ms


def evaluate_file(
    source: Source,
    settings: Settings,
    *,
    every_s: float | None = None,
    window: str = WHOLE_FILE,
    reference_file: Source | None = None,
    reference_period: tuple[int, int] | None = None,
    on_reject: Callable[[Reject], None] | None = None,
    recalibrate: bool = False,
) -> Evaluation:
    """``recalibrate``: also fit the recalibration of the series a report shows
    (``report.from_results.shown``), keeping the labelled events by time slice."""
    every_ms = None if every_s is None else int(every_s * 1000)

    def accumulator(every: int | None, slices: bool = False) -> Accumulator:
        return Accumulator(
            source.segment_keys,
            all_versions=settings.evaluation.all_versions,
            every_ms=every,
            label_horizon_ms=int(settings.ingest.label_horizon * 1000),
            residual_bucket_ms=detector_bucket_ms(every, settings),
            slices=slices,
        )

    current = accumulator(every_ms, slices=recalibrate)
    reference: Reference | None = None
    reference_read = None
    period = accumulator(None) if reference_period is not None else None
    read = accumulate(
        source,
        current,
        period=reference_period,
        period_accumulator=period,
        on_reject=on_reject,
    )
    if period is not None and reference_period is not None:
        reference = Reference("period", period, *reference_period)
    elif reference_file is not None:
        fitted = accumulator(None)
        reference_read = accumulate(reference_file, fitted)
        if fitted.first_ms is None or fitted.last_ms is None:
            raise BadFile(f"{reference_file.path}: no valid rows to fit a reference on")
        reference = Reference("file", fitted, fitted.first_ms, fitted.last_ms + 1)
    results = evaluate_series(
        current,
        settings=settings.evaluation,
        window=window,
        every_ms=every_ms,
        psi_bins=settings.reference.psi_bins,
        reference=reference,
    )
    recommendation = None
    if recalibrate and results:
        main = shown(results).main
        recommendation = recalibration(
            current, main, every_ms=every_ms, settings=settings.evaluation
        )
    return Evaluation(results, read, current.labels_over_horizon, reference_read, recommendation)

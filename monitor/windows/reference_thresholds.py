"""Thresholds from the reference: a metric's spread over reference chunks of the window's size.

A rule may say ``threshold: {from_reference: 3 sigma}``. Per series, the window job cuts the
series' reference period into consecutive chunks as long as the window (from the period's
end backwards; a partial chunk at its start is left out), evaluates the metric on each
chunk that has ``evaluation.min_labelled`` labels, and exports ``<metric>_reference_mean``
and ``<metric>_reference_sd`` (sample sd) next to ``reference_chunks``, the chunks used.
The rule engine sets the series' threshold to mean + sigmas x sd from them.

Why chunks of the window's size: ECE's noise floor and spread depend on the window's
sample size, so the spread of the same metric at the same size is what a stationary
series shows (NannyML's reference-chunk thresholds). A reference shorter than
``MIN_CHUNKS`` windows exports ``reference_chunks`` only: the rule then has no evidence
either way (it neither fires nor resolves), never a silent fixed default; the trailing
reference (one window) is always too short, which check-config and start-up say.

A fixed period or a snapshot does not change once it has ended, so its statistics are
cached per series and period (a period still filling is recomputed at each tick).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from monitor.metrics.summary import calibration_summary
from monitor.settings import EvaluationSettings, ReferenceSettings, WindowSettings
from monitor.store.aggregates import load_window
from monitor.store.db.engine import Engine

#: Fewer reference chunks than this give no threshold (an sd of 2-4 values is noise).
MIN_CHUNKS = 5


@dataclass(frozen=True)
class ReferencePeriod:
    model_id: str
    model_version: str | None  # None: all versions
    segment: str
    start_ms: int
    end_ms: int


def chunk_bounds(start_ms: int, end_ms: int, length_ms: int) -> list[tuple[int, int]]:
    """Whole chunks of ``length_ms`` ending at ``end_ms``, oldest first."""
    count = max((end_ms - start_ms) // length_ms, 0)
    return [(end_ms - (i + 1) * length_ms, end_ms - i * length_ms) for i in reversed(range(count))]


def reference_statistics(
    engine: Engine,
    period: ReferencePeriod,
    *,
    length_ms: int,
    metrics: frozenset[str],
    settings: EvaluationSettings,
    now_ms: int,
) -> dict[str, float]:
    """``<metric>_reference_mean`` / ``_sd`` for each metric with MIN_CHUNKS values, and
    ``reference_chunks`` (the fewest chunks any of them had)."""
    samples: dict[str, list[float]] = {metric: [] for metric in metrics}
    for start, end in chunk_bounds(period.start_ms, period.end_ms, length_ms):
        window = load_window(
            engine,
            model_id=period.model_id,
            model_version=period.model_version,
            segment=period.segment,
            start_ms=start,
            end_ms=end,
            now_ms=now_ms,
        )
        if window.aggregate.n_labelled < settings.min_labelled:
            continue
        summary = calibration_summary(
            window.aggregate, n_bins=settings.n_bins, bootstrap_resamples=0
        )
        for metric in metrics:
            if metric in summary.values:
                samples[metric].append(summary.values[metric])
    values: dict[str, float] = {
        "reference_chunks": float(min((len(v) for v in samples.values()), default=0))
    }
    for metric, chunk_values in samples.items():
        if len(chunk_values) < MIN_CHUNKS:
            continue
        mean = math.fsum(chunk_values) / len(chunk_values)
        variance = math.fsum((v - mean) ** 2 for v in chunk_values) / (len(chunk_values) - 1)
        values[f"{metric}_reference_mean"] = mean
        values[f"{metric}_reference_sd"] = math.sqrt(variance)
    return values


def configuration_problems(
    windows_by_rule: Mapping[str, Iterable[WindowSettings]], reference: ReferenceSettings
) -> list[str]:
    """For each rule name and the windows it thresholds from the reference: the ones the
    configured reference can never give a threshold (too few chunks)."""
    problems = []
    for rule, windows in windows_by_rule.items():
        for window in windows:
            if reference.mode == "trailing":
                chunks, what = 1, "reference.mode trailing gives one window"
            else:
                start, end = reference.period_ms()
                chunks = int((end - start) // (window.length * 1000))
                what = f"the fixed reference period holds {chunks}"
            if chunks < MIN_CHUNKS:
                problems.append(
                    f"rule {rule}: a from_reference threshold on window {window.name} needs "
                    f"a reference of at least {MIN_CHUNKS} x {window.name}; {what} (set "
                    "reference.mode: fixed with a longer start/end)"
                )
    return problems

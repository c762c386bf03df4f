"""One series in one window: from a merged aggregate to a :class:`WindowResult`.

Pure: the caller loads the aggregate and the references; nothing here touches the store.
Metrics whose sample count is below the configured minimum are left out of ``values``
(insufficient: not exported, nothing to alert on).
"""

from __future__ import annotations

import zlib

from monitor.core.results import ReferenceUsed, WindowResult
from monitor.core.series import SeriesWindow
from monitor.core.times import to_datetime
from monitor.metrics.calibration import ReliabilityBin
from monitor.metrics.drift import DISTRIBUTIONS, Distribution, DriftBin, ReferenceProfile
from monitor.metrics.errors import MetricInputError
from monitor.metrics.estimates import estimate_gaps, estimate_values, estimated_performance
from monitor.metrics.summary import (
    calibration_summary,
    drift_bins_of,
    drift_summary,
    label_delay_quantiles,
)
from monitor.settings import EvaluationSettings
from monitor.store.aggregates import WindowAggregate
from monitor.windows.metric_names import DRIFT, LABEL_DELAY_QUANTILES, drift_key
from monitor.windows.multiclass import MulticlassOutcome


def evaluate(
    series: SeriesWindow,
    window: WindowAggregate,
    *,
    start_ms: int,
    end_ms: int,
    now_ms: int,
    references: dict[Distribution, ReferenceProfile | None],
    reference_used: ReferenceUsed | None = None,
    last_prediction_ms: int | None,
    last_label_ms: int | None,
    settings: EvaluationSettings,
    sequential_values: dict[str, float] | None = None,
    multiclass: MulticlassOutcome | None = None,
) -> WindowResult:
    """``multiclass``: a multi-class series' own values (``windows/multiclass.py``); its
    labelled count, coverage and reliability bins replace the binary aggregate's, which
    holds only its predictions and label delays."""
    aggregate = window.aggregate
    values: dict[str, float] = {
        "window_predictions": float(window.predictions),
        "window_labelled": float(aggregate.n_labelled),
    }
    if window.predictions > 0:
        values["label_coverage_ratio"] = aggregate.n_labelled / window.predictions
    if last_prediction_ms is not None:
        values["seconds_since_last_prediction"] = max(now_ms - last_prediction_ms, 0) / 1000
    if last_label_ms is not None:
        values["seconds_since_last_label"] = max(now_ms - last_label_ms, 0) / 1000
    values.update(sequential_values or {})
    for quantile, value in label_delay_quantiles(aggregate, tuple(LABEL_DELAY_QUANTILES)).items():
        values[LABEL_DELAY_QUANTILES[quantile]] = value

    bins: tuple[ReliabilityBin, ...] = ()
    if aggregate.n_labelled >= settings.min_labelled:
        summary = calibration_summary(
            aggregate,
            n_bins=settings.n_bins,
            bootstrap_resamples=settings.bootstrap_resamples,
            # Same seed on every replica and restart, different across series.
            seed=zlib.crc32(repr(series).encode()),
        )
        values.update(summary.values)
        values.update(estimate_gaps(aggregate, summary.values))
        bins = tuple(summary.reliability_bins)
    if aggregate.n_probabilities >= settings.min_predictions:
        # Label-free: assumes calibration; the gaps above say whether it held.
        values.update(estimate_values(estimated_performance(aggregate)))
    drift_bins: list[DriftBin] = []
    for distribution in DISTRIBUTIONS:
        profile = references.get(distribution)
        current = aggregate.n_scores if distribution == "raw_score" else aggregate.n_probabilities
        values[drift_key("drift_window_events", distribution)] = float(current)
        if reference_used is not None:
            values[drift_key("drift_reference_events", distribution)] = float(
                reference_used.events.get(distribution, 0)
            )
        if profile is None or current < settings.min_predictions:
            continue
        try:
            drift = drift_summary(profile, aggregate)
            drift_bins.extend(drift_bins_of(profile, aggregate))
        except MetricInputError:
            continue
        for name in DRIFT:
            values[drift_key(name, distribution)] = float(getattr(drift, name))
    labelled = aggregate.n_labelled
    if multiclass is not None:
        values.update(multiclass.values)
        bins = multiclass.reliability_bins
        labelled = round(multiclass.values["window_labelled"])
    # Plain floats whatever a metric returned (numpy scalars do not serialise to JSON,
    # and the values go into webhook payloads and the API as they are).
    values = {key: float(value) for key, value in values.items()}
    return WindowResult(
        series=series,
        evaluated_at=to_datetime(now_ms),
        window_start=to_datetime(start_ms),
        window_end=to_datetime(end_ms),
        predictions=window.predictions,
        labelled=labelled,
        values=values,
        reliability_bins=bins,
        drift_bins=tuple(drift_bins),
        reference=reference_used,
        classes={} if multiclass is None else multiclass.classes,
    )

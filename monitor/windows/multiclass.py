"""A multi-class series in one window: its metrics, overall and per class.

Pure, like ``evaluate.py``: the caller loads the window's ``MulticlassAggregate`` and its
reference period's. Over the series (``WindowResult.values``): the calibration and
discrimination metrics of ``metrics/multiclass_summary.py``, the label-free estimates,
and drift of the confidence (max_k p_k, distribution ``confidence``). Per class
(``WindowResult.classes``, exported with a ``class`` label): its one-vs-rest ECE,
Brier score, AUC and reliability bins, and drift of its probability p_k.

Drift is measured against per-class references (``metrics/class_references.py``):
stored ones (a ``calmon baseline`` snapshot, a settled fixed period), or ones fitted at
each evaluation from the reference period's events (``references.py`` says which period
applies); with fewer than ``evaluation.min_predictions`` events on either side, or a
single distinct value in the reference, there is no drift value.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from monitor.core.results import ClassResult, ReliabilityBin
from monitor.metrics.class_references import ClassReferences
from monitor.metrics.drift import DriftResult, ReferenceProfile, compare
from monitor.metrics.errors import MetricInputError
from monitor.metrics.histogram import SparseHistogram
from monitor.metrics.multiclass import MulticlassAggregate
from monitor.metrics.multiclass_summary import multiclass_estimates, multiclass_summary
from monitor.settings import EvaluationSettings
from monitor.windows.metric_names import CONFIDENCE, DRIFT, drift_key

#: Per-class result key -> the key of ``ClassSummary.values`` it comes from.
CLASS_LABELLED_KEYS = {
    "class_ece": "ece",
    "class_brier_score": "brier_score",
    "class_observed_ratio": "observed_ratio",
    "class_mean_predicted": "mean_predicted",
    "class_roc_auc_score": "roc_auc_score",
    "class_roc_auc_error_bound": "roc_auc_error_bound",
}


@dataclass(frozen=True)
class MulticlassOutcome:
    values: dict[str, float] = field(default_factory=dict)
    #: Reliability bins of the confidence (top label).
    reliability_bins: tuple[ReliabilityBin, ...] = ()
    classes: dict[str, ClassResult] = field(default_factory=dict)


def evaluate_multiclass(
    aggregate: MulticlassAggregate,
    reference: MulticlassAggregate | ClassReferences | None,
    settings: EvaluationSettings,
    *,
    psi_bins: int = 10,
) -> MulticlassOutcome:
    """Every multi-class value of one series' window (insufficient ones left out).

    ``reference``: the stored references (a snapshot, a settled fixed period), or the
    reference period's events to fit them from (``psi_bins``: ``reference.psi_bins``).
    """
    values = {
        "window_labelled": float(aggregate.n_labelled),
        drift_key("drift_window_events", CONFIDENCE): float(aggregate.n_predictions),
    }
    if aggregate.n_predictions:
        values["label_coverage_ratio"] = aggregate.n_labelled / aggregate.n_predictions
    per_class: dict[str, dict[str, float]] = {name: {} for name in aggregate.classes}
    class_bins: dict[str, tuple[ReliabilityBin, ...]] = {}
    bins: tuple[ReliabilityBin, ...] = ()
    if aggregate.n_labelled >= settings.min_labelled:
        summary = multiclass_summary(aggregate, n_bins=settings.n_bins)
        values.update(summary.values)
        bins = tuple(summary.reliability_bins)
        labelled_confidence = aggregate.top.labelled.column_total(1) / aggregate.n_labelled
        values["estimated_accuracy_score_gap"] = (
            summary.values["accuracy_score"] - labelled_confidence
        )
        for k, name in enumerate(aggregate.classes):
            found = summary.classes[k]
            per_class[name].update(
                {
                    key: found.values[v]
                    for key, v in CLASS_LABELLED_KEYS.items()
                    if v in found.values
                }
            )
            class_bins[name] = tuple(found.reliability_bins)
    if isinstance(reference, MulticlassAggregate):
        reference = ClassReferences.fit(reference, psi_bins=psi_bins)
    if reference is not None:
        values[drift_key("drift_reference_events", CONFIDENCE)] = float(reference.count)
    if aggregate.n_predictions >= settings.min_predictions:
        values.update(multiclass_estimates(aggregate))
        if reference is not None and reference.count >= settings.min_predictions:
            values.update(_drift_values(reference, aggregate, per_class))
    classes = {
        name: ClassResult(values=per_class[name], reliability_bins=class_bins.get(name, ()))
        for name in aggregate.classes
    }
    return MulticlassOutcome(values=values, reliability_bins=bins, classes=classes)


def _drift_values(
    reference: ClassReferences,
    aggregate: MulticlassAggregate,
    per_class: dict[str, dict[str, float]],
) -> dict[str, float]:
    """Drift of the confidence (returned) and of each class's probability (into
    ``per_class``; a class the reference has no profile of gets none)."""
    values: dict[str, float] = {}
    confidence = _drift(reference.confidence, aggregate.top.probabilities)
    if confidence is not None:
        values.update(
            {drift_key(name, CONFIDENCE): float(getattr(confidence, name)) for name in DRIFT}
        )
    for k, name in enumerate(aggregate.classes):
        found = _drift(reference.classes.get(name), aggregate.class_probability_histogram(k))
        if found is not None:
            per_class[name].update(
                {f"class_{metric}": float(getattr(found, metric)) for metric in DRIFT}
            )
    return values


def _drift(reference: ReferenceProfile | None, current: SparseHistogram) -> DriftResult | None:
    if reference is None:
        return None
    with contextlib.suppress(MetricInputError):
        return compare(reference, current)
    return None

"""Performance estimated from the probabilities alone, before the labels arrive.

If the model is calibrated, an event with probability p is positive with probability p,
so the expected value of every per-event loss is a function of p alone (the idea of
NannyML's confidence-based performance estimation, CBPE):

- Brier score: E[(p - y)^2] = p (1 - p);
- log loss: E[-y log p - (1 - y) log(1 - p)] = the binary entropy of p (p clipped to
  [1e-15, 1 - 1e-15] as the realised log loss clips it);
- accuracy at the 0.5 threshold: max(p, 1 - p);
- ROC AUC: the AUC of the expected positives (p) and negatives (1 - p) per probability
  cell, CBPE's estimate (the ratio of expected pair counts, not the expected ratio; the
  two agree as the window grows).

The estimates are only as good as that assumption. Once the labels of a window arrive,
``estimate_gaps`` reports realised minus estimated on the labelled events themselves: a
gap well beyond sampling noise means the model was not calibrated, and the estimates of
the windows still waiting for labels are off by as much. No estimate can see a concept
shift that leaves the distribution of p unchanged.

All events' probabilities are kept as counts per cell (``EventAggregate.probabilities``),
so an unlabelled event's p is known to its cell: the estimate puts it at the cell's
midpoint and carries the bound of that (``*_error_bound``: about 5e-5 for Brier and
accuracy, at most 1e-3 for log loss, whose entropy is steep in the tails). Labelled
events also keep sum p and sum p^2 per cell, which makes the estimated Brier score and
accuracy of ``estimate_gaps`` exact.

>>> import numpy as np
>>> from monitor.metrics.aggregates import EventAggregate
>>> a = EventAggregate.empty()
>>> a.add_probabilities(np.array([0.1, 0.5, 0.9]))
>>> round(estimated_performance(a).brier_score, 3)  # (0.09 + 0.25 + 0.09) / 3
0.143
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from monitor.metrics import grids
from monitor.metrics.aggregates import COLUMN, EventAggregate
from monitor.metrics.clipping import LOG_LOSS_EPS
from monitor.metrics.discrimination import roc_auc_from_cells
from monitor.metrics.errors import MetricInputError, UndefinedMetricError
from monitor.metrics.validation import FloatArray


def expected_brier(p: FloatArray) -> FloatArray:
    return p * (1.0 - p)


def expected_log_loss(p: FloatArray) -> FloatArray:
    clipped = np.clip(p, LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS)
    return -(p * np.log(clipped) + (1.0 - p) * np.log1p(-clipped))


def expected_accuracy(p: FloatArray) -> FloatArray:
    return np.maximum(p, 1.0 - p)


@dataclass(frozen=True)
class PerformanceEstimate:
    """Expected metrics of a window's events under the calibration assumption."""

    events: int
    brier_score: float
    brier_score_error_bound: float
    log_loss: float
    log_loss_error_bound: float
    accuracy: float
    accuracy_error_bound: float
    #: None when every p is 0 or every p is 1 (no expected positive, or negative).
    roc_auc: float | None


def _mean_and_bound(
    expected: Callable[[FloatArray], FloatArray],
    count: FloatArray,
    at: FloatArray,
    lower: FloatArray,
    upper: FloatArray,
) -> tuple[float, float]:
    # Each function is monotone inside a cell (no cell straddles 0.5), so its range over
    # the cell lies between its values at the edges.
    n = count.sum()
    value = expected(at)
    spread = np.maximum(np.abs(value - expected(lower)), np.abs(value - expected(upper)))
    return float((count * value).sum() / n), float((count * spread).sum() / n)


def estimated_performance(aggregate: EventAggregate) -> PerformanceEstimate:
    """Estimates over every event of the window that has a probability."""
    histogram = aggregate.probabilities
    if histogram.keys.size == 0:
        raise MetricInputError("no probabilities in this window")
    count = histogram.values[:, 0]
    lower = grids.PROBABILITY_CELL_LOWER[histogram.keys]
    upper = grids.PROBABILITY_CELL_UPPER[histogram.keys]
    mid = (lower + upper) / 2.0
    brier = _mean_and_bound(expected_brier, count, mid, lower, upper)
    log_loss = _mean_and_bound(expected_log_loss, count, mid, lower, upper)
    accuracy = _mean_and_bound(expected_accuracy, count, mid, lower, upper)
    try:
        auc: float | None = roc_auc_from_cells(count * mid, count * (1.0 - mid))
    except UndefinedMetricError:
        auc = None
    return PerformanceEstimate(
        events=round(count.sum()),
        brier_score=brier[0],
        brier_score_error_bound=brier[1],
        log_loss=log_loss[0],
        log_loss_error_bound=log_loss[1],
        accuracy=accuracy[0],
        accuracy_error_bound=accuracy[1],
        roc_auc=auc,
    )


def estimated_on_labelled(aggregate: EventAggregate) -> PerformanceEstimate:
    """The same estimates over the labelled events only, from their exact sums of p."""
    labelled = aggregate.labelled
    if labelled.keys.size == 0:
        raise MetricInputError("no labelled events in this window")
    count = labelled.values[:, COLUMN["count"]]
    sum_p = labelled.values[:, COLUMN["sum_p"]]
    n = count.sum()
    lower = grids.PROBABILITY_CELL_LOWER[labelled.keys]
    upper = grids.PROBABILITY_CELL_UPPER[labelled.keys]
    # Cells at or above 0.5 predict the positive class (as the realised accuracy does).
    positive_side = lower >= 0.5
    log_loss = _mean_and_bound(expected_log_loss, count, sum_p / count, lower, upper)
    try:
        auc: float | None = roc_auc_from_cells(sum_p, count - sum_p)
    except UndefinedMetricError:
        auc = None
    return PerformanceEstimate(
        events=round(n),
        brier_score=float((sum_p - labelled.values[:, COLUMN["sum_p2"]]).sum() / n),
        brier_score_error_bound=0.0,
        log_loss=log_loss[0],
        log_loss_error_bound=log_loss[1],
        accuracy=float(np.where(positive_side, sum_p, count - sum_p).sum() / n),
        accuracy_error_bound=0.0,
        roc_auc=auc,
    )


def estimate_values(estimate: PerformanceEstimate) -> dict[str, float]:
    """Result keys (``estimated_*``) of an estimate; an undefined AUC is absent."""
    values = {
        "estimated_brier_score": estimate.brier_score,
        "estimated_log_loss": estimate.log_loss,
        "estimated_accuracy_score": estimate.accuracy,
    }
    if estimate.roc_auc is not None:
        values["estimated_roc_auc_score"] = estimate.roc_auc
    return values


def estimate_gaps(aggregate: EventAggregate, realised: dict[str, float]) -> dict[str, float]:
    """Realised minus estimated, on the labelled events, for each metric in ``realised``
    (``brier_score``, ``log_loss``, ``accuracy_score``, ``roc_auc_score``)."""
    estimated = estimate_values(estimated_on_labelled(aggregate))
    return {
        f"estimated_{name}_gap": realised[name] - estimated[f"estimated_{name}"]
        for name in ("brier_score", "log_loss", "accuracy_score", "roc_auc_score")
        if name in realised and f"estimated_{name}" in estimated
    }

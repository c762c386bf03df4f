"""Every window metric of a multi-class model from one merged :class:`MulticlassAggregate`.

Definitions (K classes, n labelled events, p_ik the probability of class k for event i):

- top-label ECE: the binary ECE of the confidence max_k p_ik against whether the
  predicted class argmax_k p_ik was right (the background guide's multi-class ECE;
  netcal's ``ECE`` on a probability matrix); MCE and reliability bins likewise;
- classwise ECE: the mean over the K classes of the one-vs-rest ECE of p_k against
  1[y = k] (Kull et al. 2019; netcal's classwise convention), each on ``n_bins`` bins;
- multi-class Brier score: mean over events of sum_k (p_ik - y_ik)^2 (0 to 2; what
  scikit-learn's ``brier_score_loss`` gives on a probability matrix of 3 or more classes;
  for 2 it gives the binary score, half of this);
- log loss: mean of -log p_i,label (p clipped at 1e-15); accuracy: share of events whose
  top class is the label;
- ROC AUC, one-vs-rest macro: the mean over classes of the one-vs-rest AUC (classes with
  no positive or no negative in the window are left out of the mean); per class, with
  its error bound as for a binary model (``discrimination.py``);
- label-free estimates (calibration assumed, every prediction of the window): accuracy
  = mean confidence, Brier = mean of 1 - sum_k p_k^2, log loss = mean entropy.

Exact from the aggregate (to rounding): top-label ECE/MCE/bins, classwise ECE, per-class
bins and Brier, multi-class Brier, log loss, accuracy, the estimates. Within a stated
bound: the AUCs (ties inside a cell; class cells are 8 fine cells wide in (1/10240,
1 - 1/10240)).

>>> import numpy as np
>>> from monitor.metrics.multiclass import MulticlassAggregate
>>> a = MulticlassAggregate.empty(3)
>>> p = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.3, 0.4, 0.3]])
>>> a.add_predictions(p); a.add_labelled(p, np.array([0, 2, 0]))
>>> round(multiclass_summary(a).values["accuracy_score"], 3)
0.667
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import numpy as np

from monitor.metrics import binned, grids
from monitor.metrics.aggregates import COLUMN
from monitor.metrics.binned import BinSums
from monitor.metrics.calibration import ReliabilityBin, reliability_bins_from_sums
from monitor.metrics.discrimination import discrimination_from_cells
from monitor.metrics.errors import UndefinedMetricError
from monitor.metrics.multiclass import CLASS_COLUMN, FIRST_FINE_CELL, MulticlassAggregate
from monitor.metrics.summary import calibration_summary


@dataclass(frozen=True)
class ClassSummary:
    """One class, one-vs-rest."""

    values: dict[str, float] = field(default_factory=dict)
    reliability_bins: list[ReliabilityBin] = field(default_factory=list)


@dataclass(frozen=True)
class MulticlassSummary:
    n_labelled: int
    #: Metric key to value (``top_label_ece``, ``classwise_ece``...); undefined ones absent.
    values: dict[str, float] = field(default_factory=dict)
    #: Reliability bins of the confidence (top label).
    reliability_bins: list[ReliabilityBin] = field(default_factory=list)
    #: Per class index.
    classes: dict[int, ClassSummary] = field(default_factory=dict)


def class_bin_sums(aggregate: MulticlassAggregate, k: int, n_bins: int) -> BinSums:
    """Class ``k``'s labelled cells folded into ``n_bins`` equal-width bins."""
    cells = aggregate.class_slice(aggregate.class_labelled, k)
    to_bin = grids.probability_cell_to_bin(n_bins)[FIRST_FINE_CELL[cells.keys]]

    def fold(column: str) -> np.ndarray:
        weights = cells.values[:, CLASS_COLUMN[column]]
        return np.bincount(to_bin, weights=weights, minlength=n_bins)

    return BinSums(count=fold("count"), sum_p=fold("sum_p"), sum_y=fold("sum_y"))


def _class_summary(aggregate: MulticlassAggregate, k: int, n_bins: int) -> ClassSummary:
    cells = aggregate.class_slice(aggregate.class_labelled, k)
    count = cells.values[:, CLASS_COLUMN["count"]]
    sums = class_bin_sums(aggregate, k, n_bins)
    n = float(count.sum())
    values = {
        "ece": binned.expected_calibration_error_from_bins(sums),
        "brier_score": float(cells.values[:, CLASS_COLUMN["sum_squared_error"]].sum() / n),
        "observed_ratio": float(sums.sum_y.sum() / n),
        "mean_predicted": float(sums.sum_p.sum() / n),
    }
    with contextlib.suppress(UndefinedMetricError):
        found = discrimination_from_cells(count, cells.values[:, CLASS_COLUMN["sum_y"]])
        values["roc_auc_score"] = found.roc_auc
        values["roc_auc_error_bound"] = found.roc_auc_error_bound
    return ClassSummary(values=values, reliability_bins=reliability_bins_from_sums(sums))


def multiclass_estimates(aggregate: MulticlassAggregate) -> dict[str, float]:
    """Label-free estimates over every prediction of the window (calibration assumed)."""
    n = aggregate.n_predictions
    if n == 0:
        return {}
    return {
        "estimated_accuracy_score": aggregate.sum_of("confidence") / n,
        "estimated_multiclass_brier_score": aggregate.sum_of("expected_brier") / n,
        "estimated_log_loss": aggregate.sum_of("entropy") / n,
    }


def multiclass_summary(aggregate: MulticlassAggregate, *, n_bins: int = 10) -> MulticlassSummary:
    """Every multi-class calibration and discrimination metric of the labelled events."""
    n = aggregate.n_labelled
    if n == 0:
        return MulticlassSummary(n_labelled=0)
    top = calibration_summary(aggregate.top, n_bins=n_bins, bootstrap_resamples=0)
    classes = {k: _class_summary(aggregate, k, n_bins) for k in range(aggregate.n_classes)}
    values = {
        "top_label_ece": top.values["ece"],
        "top_label_mce": top.values["mce"],
        "classwise_ece": float(np.mean([c.values["ece"] for c in classes.values()])),
        "multiclass_brier_score": aggregate.sum_of("brier") / n,
        "log_loss": aggregate.sum_of("log_loss") / n,
        "accuracy_score": float(aggregate.top.labelled.column_total(COLUMN["sum_y"]) / n),
    }
    aucs = [c.values["roc_auc_score"] for c in classes.values() if "roc_auc_score" in c.values]
    if aucs:
        values["roc_auc_ovr_macro_score"] = float(np.mean(aucs))
        # The mean of the classes' bounds bounds the mean's distance to the exact mean.
        bounds = [
            c.values["roc_auc_error_bound"] for c in classes.values() if "roc_auc_score" in c.values
        ]
        values["roc_auc_ovr_macro_error_bound"] = float(np.mean(bounds))
    return MulticlassSummary(
        n_labelled=n, values=values, reliability_bins=top.reliability_bins, classes=classes
    )

"""Recalibrate, retrain or neither: discrimination and calibration against a reference.

Recalibration can fix how probabilities are scaled, never how events are ranked. So,
comparing a window with a reference period of the same series:

- ``retrain``: ROC AUC fell — its change's 95% interval lies below 0 and the drop is at
  least ``min_auc_drop`` — the ranking itself is worse;
- ``recalibrate``: AUC did not fall, but ECE rose — its change's interval lies above 0
  and the rise is at least ``min_ece_rise``;
- ``none``: neither change is both clear and large enough.

Intervals: the AUC change uses DeLong's standard errors of the two periods (disjoint
events, so the variances add), widened by both cells' error bounds; the ECE change is
the percentile interval of the difference of independent bin-level bootstrap resamples
(``bootstrap.py``).

>>> import numpy as np
>>> from monitor.metrics.aggregates import EventAggregate
>>> rng = np.random.default_rng(0)
>>> def period(sharpen):  # the same population; the model's logits scaled by sharpen
...     a = EventAggregate.empty()
...     truth = rng.uniform(0.01, 0.99, 20_000)
...     p = 1 / (1 + np.exp(-sharpen * np.log(truth / (1 - truth))))
...     a.add_labelled(p, (rng.uniform(size=p.size) < truth).astype(float))
...     return a
>>> recommend_action(period(2.0), period(1.0)).action  # over-confident, same ranking
'recalibrate'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from monitor.metrics.aggregates import COLUMN, EventAggregate
from monitor.metrics.binned import WILSON_Z_95, expected_calibration_error_from_bins
from monitor.metrics.bootstrap import ece_bootstrap_resamples_from_bins
from monitor.metrics.discrimination import Discrimination, discrimination_from_cells
from monitor.metrics.errors import UndefinedMetricError
from monitor.metrics.summary import folded_bin_sums

RETRAIN, RECALIBRATE, NONE = "retrain", "recalibrate", "none"


@dataclass(frozen=True)
class Change:
    """A metric in the reference and the current window, their difference and its 95%
    interval (current minus reference)."""

    reference: float
    current: float
    lower: float
    upper: float

    @property
    def difference(self) -> float:
        return self.current - self.reference

    def to_json(self) -> dict[str, float]:
        return {
            "reference": self.reference,
            "current": self.current,
            "change": self.difference,
            "change_ci_lower": self.lower,
            "change_ci_upper": self.upper,
        }


@dataclass(frozen=True)
class ActionRecommendation:
    action: str
    reasons: list[str]
    auc: Change | None
    ece: Change

    def to_json(self) -> dict[str, Any]:
        return {
            "reasons": self.reasons,
            "roc_auc": None if self.auc is None else self.auc.to_json(),
            "ece": self.ece.to_json(),
        }


def _discrimination(aggregate: EventAggregate) -> Discrimination:
    cells = aggregate.labelled.values
    return discrimination_from_cells(cells[:, COLUMN["count"]], cells[:, COLUMN["sum_y"]])


def auc_change(current: EventAggregate, reference: EventAggregate) -> Change:
    now, before = _discrimination(current), _discrimination(reference)
    spread = WILSON_Z_95 * float(
        np.hypot(now.roc_auc_standard_error, before.roc_auc_standard_error)
    )
    slack = now.roc_auc_error_bound + before.roc_auc_error_bound
    difference = now.roc_auc - before.roc_auc
    return Change(
        before.roc_auc, now.roc_auc, difference - spread - slack, difference + spread + slack
    )


def ece_change(
    current: EventAggregate, reference: EventAggregate, *, n_bins: int, resamples: int, seed: int
) -> Change:
    now, before = folded_bin_sums(current, n_bins), folded_bin_sums(reference, n_bins)
    difference = ece_bootstrap_resamples_from_bins(
        now, n_resamples=resamples, seed=seed
    ) - ece_bootstrap_resamples_from_bins(before, n_resamples=resamples, seed=seed + 1)
    lower, upper = np.quantile(difference, [0.025, 0.975])
    return Change(
        expected_calibration_error_from_bins(before),
        expected_calibration_error_from_bins(now),
        float(lower),
        float(upper),
    )


def recommend_action(
    current: EventAggregate,
    reference: EventAggregate,
    *,
    n_bins: int = 10,
    min_auc_drop: float = 0.01,
    min_ece_rise: float = 0.01,
    resamples: int = 1000,
    seed: int = 0,
) -> ActionRecommendation:
    """What to do about ``current`` given ``reference`` (both need labelled events)."""
    if current.n_labelled == 0 or reference.n_labelled == 0:
        raise UndefinedMetricError("both periods need labelled events")
    ece = ece_change(current, reference, n_bins=n_bins, resamples=resamples, seed=seed)
    try:
        auc: Change | None = auc_change(current, reference)
    except UndefinedMetricError:
        auc = None  # one class only in a period: no AUC to compare
    reasons = []
    if auc is not None and auc.upper < 0.0 and -auc.difference >= min_auc_drop:
        reasons.append(
            f"ROC AUC fell from {auc.reference:.3f} to {auc.current:.3f} (change 95% interval "
            f"{auc.lower:+.3f} to {auc.upper:+.3f}): the ranking is worse; recalibration "
            "cannot restore it"
        )
        action = RETRAIN
    elif ece.lower > 0.0 and ece.difference >= min_ece_rise:
        held = "ROC AUC held" if auc is not None else "ROC AUC not comparable"
        reasons.append(
            f"ECE rose from {ece.reference:.3f} to {ece.current:.3f} (change 95% interval "
            f"{ece.lower:+.3f} to {ece.upper:+.3f}) while {held}: the probabilities are "
            "mis-scaled, the ranking is not worse"
        )
        action = RECALIBRATE
    else:
        reasons.append(
            f"no clear change: ECE {ece.reference:.3f} to {ece.current:.3f} (interval "
            f"{ece.lower:+.3f} to {ece.upper:+.3f})"
            + (
                ""
                if auc is None
                else f", ROC AUC {auc.reference:.3f} to {auc.current:.3f} (interval "
                f"{auc.lower:+.3f} to {auc.upper:+.3f})"
            )
        )
        action = NONE
    return ActionRecommendation(action=action, reasons=reasons, auc=auc, ece=ece)

"""A window's labelled events as the fits see them: one row per occupied probability cell.

The aggregate keeps, per cell of the probability grid (``grids.py``), the event count,
the sums of p, y and logit(p). A calibrator fitted from these rows treats every event
of a cell as if it sat at the cell's mean (of p, or of logit p): that is the only
approximation of fitting from aggregates, and cells are narrow (1/10240 in p, 0.5 in
logit in the two tails), see ``docs/recalibration.md`` for the bounds.
"""

from __future__ import annotations

from dataclasses import dataclass

from monitor.metrics.aggregates import COLUMN, EventAggregate
from monitor.metrics.validation import FloatArray


@dataclass(frozen=True)
class LabelledCells:
    """Occupied cells in increasing order of p (so ``mean_p`` is strictly increasing)."""

    count: FloatArray
    positives: FloatArray
    mean_p: FloatArray
    mean_logit: FloatArray

    @property
    def n(self) -> int:
        return round(float(self.count.sum()))

    @property
    def n_positive(self) -> int:
        return round(float(self.positives.sum()))

    @classmethod
    def of(cls, aggregate: EventAggregate) -> LabelledCells:
        values = aggregate.labelled.values
        count = values[:, COLUMN["count"]]
        keep = count > 0
        count = count[keep]
        return cls(
            count=count,
            positives=values[keep, COLUMN["sum_y"]],
            mean_p=values[keep, COLUMN["sum_p"]] / count,
            mean_logit=values[keep, COLUMN["sum_logit"]] / count,
        )

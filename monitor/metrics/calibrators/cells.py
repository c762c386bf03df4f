"""A window's labelled events as the fits see them: one row per occupied probability cell,
and one per occupied raw-score cell.

The aggregate keeps, per cell of the probability grid (``grids.py``), the event count,
the sums of p, y and logit(p). A calibrator fitted from these rows treats every event
of a cell as if it sat at the cell's mean (of p, or of logit p): that is the only
approximation of fitting from aggregates, and cells are narrow (1/10240 in p, 0.5 in
logit in the two tails), see ``docs/recalibration.md`` for the bounds. The same holds
for the raw-score cells (``grids.score_cells``) a refit from the raw score reads: each
keeps the count and the sums of y, of the raw score and of the served p.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np

from monitor.metrics import grids
from monitor.metrics.aggregates import COLUMN, RAW_COLUMN, EventAggregate
from monitor.metrics.validation import FloatArray

#: Uniform cells per row of the logistic fits: 10240 / 10 = 1024 rows, 1/1024 wide in p.
LOGISTIC_FIT_FACTOR = 10


@dataclass(frozen=True)
class RawScoreCells:
    """Labelled events by occupied raw-score cell, in increasing order of the raw score
    (so ``mean_score`` is strictly increasing)."""

    #: Cell numbers on the score grid.
    keys: np.ndarray
    count: FloatArray
    positives: FloatArray
    mean_score: FloatArray
    #: The mean probability served to the cell's events: to score corrections of p on
    #: the raw-score cells, next to the refits.
    mean_p: FloatArray

    @property
    def n(self) -> int:
        return round(float(self.count.sum()))

    @property
    def n_positive(self) -> int:
        return round(float(self.positives.sum()))

    @property
    def unit_interval(self) -> bool:
        """Every raw score lies in [0, 1]: it may be a probability (fitted on its logit)."""
        return bool(np.all(grids.unit_interval_score_cells(self.keys)))

    @classmethod
    def of(cls, aggregate: EventAggregate) -> RawScoreCells:
        values = aggregate.raw_labelled.values
        count = values[:, RAW_COLUMN["count"]]
        keep = count > 0
        count = count[keep]
        return cls(
            keys=aggregate.raw_labelled.keys[keep],
            count=count,
            positives=values[keep, RAW_COLUMN["sum_y"]],
            mean_score=values[keep, RAW_COLUMN["sum_score"]] / count,
            mean_p=values[keep, RAW_COLUMN["sum_p"]] / count,
        )


@dataclass(frozen=True)
class LabelledCells:
    """Occupied cells in increasing order of p (so ``mean_p`` is strictly increasing)."""

    #: Cell numbers on the probability grid.
    keys: np.ndarray
    count: FloatArray
    positives: FloatArray
    mean_p: FloatArray
    mean_logit: FloatArray
    #: The same events by raw-score cell, those whose raw score is known.
    raw: RawScoreCells | None = None

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
            keys=aggregate.labelled.keys[keep],
            count=count,
            positives=values[keep, COLUMN["sum_y"]],
            mean_p=values[keep, COLUMN["sum_p"]] / count,
            mean_logit=values[keep, COLUMN["sum_logit"]] / count,
            raw=RawScoreCells.of(aggregate),
        )

    @cached_property
    def logistic_rows(self) -> LabelledCells:
        """The rows of the logistic fits (``coarsened``), made once for all of them."""
        return self.coarsened()

    def coarsened(self, factor: int = LOGISTIC_FIT_FACTOR) -> LabelledCells:
        """Every ``factor`` consecutive uniform cells summed into one (the tail cells
        stay): what the logistic fits run on, ten times fewer rows at no visible cost
        (their error is second order in the spread of logit p inside a group)."""
        uniform = self.keys - grids.TAIL_CELLS
        inside = (uniform >= 0) & (uniform < grids.GRID_CELLS)
        group = np.where(inside, grids.TAIL_CELLS + uniform // factor * factor, self.keys)
        starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
        count = np.add.reduceat(self.count, starts)
        return replace(
            self,
            keys=group[starts],
            count=count,
            positives=np.add.reduceat(self.positives, starts),
            mean_p=np.add.reduceat(self.mean_p * self.count, starts) / count,
            mean_logit=np.add.reduceat(self.mean_logit * self.count, starts) / count,
        )

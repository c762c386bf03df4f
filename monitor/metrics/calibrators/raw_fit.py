"""Candidate calibrators refitted from the raw score: the calibrator's own input.

Where every labelled event of the window carries its raw score, the calibrator itself
can be refitted instead of corrected: new p = h(raw score), from the aggregate's cells
of labelled events by raw score (``cells.RawScoreCells``), never from the events.

What a raw score looks like decides the Platt feature: scores that all lie in [0, 1]
may be probabilities (a forest's vote share, an uncalibrated classifier's p), fitted on
their logit; any other (a margin, log-odds) is fitted on the score itself:

- ``raw_platt``: logit h = intercept + slope * t, t = logit(s) or s, slope >= 0;
- ``raw_histogram``: equal-mass bins of whole raw-score cells, each mapped to its rate
  (bins that break monotonicity pooled);
- ``raw_isotonic``: PAVA over the raw-score cells weighted by their counts.

Every event of a cell is put at the cell's mean raw score (the logit of it for scores
in [0, 1]); cells are 0.5% wide relative to the score outside [0, 1], at most 1/1024
and ln 2 in logit inside (``grids.score_cells``).

>>> import numpy as np
>>> from monitor.metrics.aggregates import EventAggregate
>>> from monitor.metrics.calibrators.cells import LabelledCells
>>> rng = np.random.default_rng(1)
>>> margin = rng.normal(0.0, 2.0, 50_000)
>>> p = 1 / (1 + np.exp(-margin))  # the calibrator served p = expit(margin)
>>> y = (rng.uniform(size=p.size) < 1 / (1 + np.exp(-(0.5 * margin - 1)))).astype(float)
>>> aggregate = EventAggregate.empty()
>>> aggregate.add_labelled(p, y)
>>> aggregate.add_raw_labelled(margin, p, y)
>>> fit = fit_raw_platt(LabelledCells.of(aggregate))
>>> round(fit.parameters["slope"], 1), round(fit.parameters["intercept"], 1)
(0.5, -1.0)
"""

from __future__ import annotations

import numpy as np

from monitor.metrics.calibrators.cells import LabelledCells, RawScoreCells
from monitor.metrics.calibrators.fit import (
    HISTOGRAM_BINS,
    Calibrator,
    fit_logistic,
    histogram_map,
    isotonic_map,
    require_both_labels,
)
from monitor.metrics.calibrators.maps import PiecewiseLinearMap, Space
from monitor.metrics.clipping import clipped_logit
from monitor.metrics.errors import UndefinedMetricError
from monitor.metrics.validation import FloatArray

#: Refits from the raw score, simplest first.
RAW_METHODS = ("raw_platt", "raw_histogram", "raw_isotonic")


def raw_score_cells(cells: LabelledCells) -> RawScoreCells:
    """The raw-score cells to fit on: every labelled event's, with both labels."""
    raw = complete_raw_score_cells(cells)
    require_both_labels(raw.n_positive, raw.n)
    return raw


def complete_raw_score_cells(cells: LabelledCells) -> RawScoreCells:
    """The raw-score cells, if every labelled event has its raw score there (a refit
    must be scored on the same events as the corrections of p)."""
    raw = cells.raw
    if raw is None or raw.n == 0:
        raise UndefinedMetricError("the window's labelled events carry no raw score")
    if raw.n != cells.n:
        raise UndefinedMetricError(
            f"only {raw.n} of the {cells.n} labelled events carry a raw score "
            "(buckets written before aggregate format 3 keep none)"
        )
    return raw


def fit_raw_platt(cells: LabelledCells) -> Calibrator:
    raw = raw_score_cells(cells)
    on_logit = raw.unit_interval
    feature = clipped_logit(np.clip(raw.mean_score, 0.0, 1.0)) if on_logit else raw.mean_score
    intercept, slope = _logistic_line(feature, raw)
    knots = np.array([-1.0, 1.0])
    space: Space = "logit" if on_logit else "score_logit"
    return Calibrator(
        "raw_platt",
        {"intercept": intercept, "slope": slope},
        PiecewiseLinearMap(space, knots, intercept + slope * knots),
        2,
        "raw_score",
    )


def fit_raw_histogram(cells: LabelledCells, *, n_bins: int = HISTOGRAM_BINS) -> Calibrator:
    raw = raw_score_cells(cells)
    parameters, calibration_map = histogram_map(raw.mean_score, raw, "score", n_bins)
    return Calibrator(
        "raw_histogram", parameters, calibration_map, int(parameters["bins"]), "raw_score"
    )


def fit_raw_isotonic(cells: LabelledCells) -> Calibrator:
    raw = raw_score_cells(cells)
    parameters, calibration_map = isotonic_map(raw.mean_score, raw, "score")
    return Calibrator(
        "raw_isotonic", parameters, calibration_map, int(parameters["blocks"]), "raw_score"
    )


def _logistic_line(feature: FloatArray, raw: RawScoreCells) -> tuple[float, float]:
    """intercept, slope >= 0 of logit P(y) = intercept + slope * feature, fitted on the
    feature standardised (raw scores may be margins of any scale)."""
    centre = float(np.average(feature, weights=raw.count))
    scale = float(np.sqrt(np.average((feature - centre) ** 2, weights=raw.count)))
    if not scale > 0:
        raise UndefinedMetricError("raw_platt: every raw score is the same")
    standard = np.column_stack([np.ones_like(feature), (feature - centre) / scale])
    intercept, slope = fit_logistic(standard, raw, start=[0.0, 1.0])
    if slope < 0:  # monotone only with slope >= 0: the constrained optimum has slope 0
        (intercept,), slope = fit_logistic(standard[:, :1], raw, start=[0.0]), 0.0
    return intercept - slope * centre / scale, slope / scale

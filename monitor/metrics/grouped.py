"""Many aggregates in one pass: the events of several groups (a file's models, versions,
segment values and periods) reduced to one :class:`EventAggregate` per group.

Building each group's aggregate on its own costs a sort of the events by group, a copy
of every column in that order, and four histogram builds per group. Here each histogram
is built once over (group, cell) keys, a bincount when the keys are dense, and cut into
the groups' rows. The sums are those ``EventAggregate.add_*`` would make of each group's
events: the same per-event terms (``labelled_columns``), added per cell.

>>> import numpy as np
>>> groups = np.array([0, 1, 0])
>>> p = np.array([0.2, 0.7, 0.9])
>>> a, b = grouped_aggregates(
...     groups, 2, raw_scores=np.full(3, np.nan), probabilities=p,
...     labels=np.array([0, 1, -1]), label_delays_s=np.full(3, np.nan))
>>> a.n_probabilities, a.n_labelled, b.n_labelled
(2, 1, 1)
"""

from __future__ import annotations

import itertools

import numpy as np

from monitor.metrics import grids
from monitor.metrics.aggregates import EventAggregate, labelled_columns
from monitor.metrics.errors import MetricInputError
from monitor.metrics.histogram import SparseHistogram
from monitor.metrics.validation import FloatArray, binary_labels, finite_values
from monitor.metrics.validation import probabilities as check_probabilities

#: ``labels`` of an event without one.
NO_LABEL = -1


def grouped_aggregates(
    groups: np.ndarray,
    n_groups: int,
    *,
    raw_scores: FloatArray,
    probabilities: FloatArray,
    labels: np.ndarray,
    label_delays_s: FloatArray,
) -> list[EventAggregate]:
    """One aggregate per group of ``groups`` (each event's group, 0..n_groups-1).

    Absent values: a NaN raw score or probability, label ``NO_LABEL``, a NaN delay. An
    event is labelled (calibration, and its delay) when it has a probability and a label.
    """
    groups = np.asarray(groups, dtype=np.int64)
    if groups.size and (groups.min() < 0 or groups.max() >= n_groups):
        raise MetricInputError(f"groups: each must be in [0, {n_groups})")
    result = [EventAggregate.empty() for _ in range(n_groups)]
    has_raw = ~np.isnan(raw_scores)
    if has_raw.any():
        cells = grids.value_cells(finite_values(raw_scores[has_raw], "raw_scores"))
        for aggregate, part in zip(result, _split(groups[has_raw], n_groups, cells), strict=True):
            aggregate.scores = part
    has_p = ~np.isnan(probabilities)
    if has_p.any():
        cells = grids.probability_cells(check_probabilities(probabilities[has_p]))
        for aggregate, part in zip(result, _split(groups[has_p], n_groups, cells), strict=True):
            aggregate.probabilities = part
    _add_labelled(result, groups, probabilities, labels, label_delays_s)
    _add_raw_labelled(result, groups, raw_scores, probabilities, labels)
    return result


def _add_raw_labelled(
    result: list[EventAggregate],
    groups: np.ndarray,
    raw: FloatArray,
    p_all: FloatArray,
    labels: np.ndarray,
) -> None:
    """Labelled events with a raw score, by score cell (``add_raw_labelled``)."""
    chosen = ~np.isnan(raw) & ~np.isnan(p_all) & (labels != NO_LABEL)
    if not chosen.any():
        return
    scores = finite_values(raw[chosen], "raw_scores")
    y = binary_labels(labels[chosen])
    columns: list[FloatArray | None] = [None, y, scores, p_all[chosen]]
    parts = _split(groups[chosen], len(result), grids.score_cells(scores), columns)
    for aggregate, part in zip(result, parts, strict=True):
        aggregate.raw_labelled = part


def _add_labelled(
    result: list[EventAggregate],
    groups: np.ndarray,
    p_all: FloatArray,
    labels: np.ndarray,
    delays: FloatArray,
) -> None:
    labelled = ~np.isnan(p_all) & (labels != NO_LABEL)
    if not labelled.any():
        return
    n_groups = len(result)
    members = groups[labelled]
    p = check_probabilities(p_all[labelled])
    y = binary_labels(labels[labelled])
    parts = _split(members, n_groups, grids.probability_cells(p), labelled_columns(p, y))
    for aggregate, part in zip(result, parts, strict=True):
        aggregate.labelled = part
    # Spiegelhalter's two sums (tests_of_fit.spiegelhalter_terms), per group.
    weight = 1.0 - 2.0 * p
    numerator = np.bincount(members, (y - p) * weight, n_groups)
    variance = np.bincount(members, weight * weight * p * (1.0 - p), n_groups)
    for aggregate, n, v in zip(result, numerator.tolist(), variance.tolist(), strict=True):
        aggregate.spiegelhalter_numerator, aggregate.spiegelhalter_variance = n, v
    timed = ~np.isnan(delays[labelled])
    if timed.any():
        cells = grids.value_cells(finite_values(delays[labelled][timed], "label_delays"))
        for aggregate, part in zip(result, _split(members[timed], n_groups, cells), strict=True):
            aggregate.label_delays = part


def _split(
    groups: np.ndarray,
    n_groups: int,
    cells: np.ndarray,
    columns: list[FloatArray | None] | None = None,
) -> list[SparseHistogram]:
    """One histogram of ``cells`` per group, from one histogram over (group, cell)."""
    width = int(cells.max()) + 1
    keyed = SparseHistogram.from_cells(groups * width + cells, columns or [None])
    owner = keyed.keys // width
    bounds = np.searchsorted(owner, np.arange(n_groups + 1)).tolist()
    return [
        SparseHistogram(keyed.keys[a:b] - g * width, keyed.values[a:b].copy())
        for g, (a, b) in enumerate(itertools.pairwise(bounds))
    ]

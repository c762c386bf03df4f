"""Many aggregates in one pass: the events of several groups (a file's models, versions,
segment values and periods; an ingest batch's series and buckets) reduced to one
:class:`EventAggregate` per group.

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
from typing import Any

import numpy as np

from monitor.metrics import grids
from monitor.metrics.aggregates import EventAggregate, labelled_columns, raw_labelled_columns
from monitor.metrics.errors import MetricInputError
from monitor.metrics.histogram import SparseHistogram
from monitor.metrics.tests_of_fit import spiegelhalter_event_terms
from monitor.metrics.validation import (
    FloatArray,
    binary_labels,
    finite_values,
    probabilities_and_labels,
)
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


#: Events of one kind for :func:`tagged_aggregates`: each one's group, then its values.
Tagged = tuple[np.ndarray, ...]


def tagged_aggregates(
    n_groups: int,
    *,
    probabilities: Tagged | None = None,
    scores: Tagged | None = None,
    labelled: Tagged | None = None,
    label_delays: Tagged | None = None,
    raw_labelled: Tagged | None = None,
) -> list[EventAggregate]:
    """One aggregate per group, from events of each kind tagged with their group, as
    ``add_probabilities`` (p), ``add_scores`` (raw score), ``add_labelled`` (p, y),
    ``add_label_delays`` (seconds) and ``add_raw_labelled`` (raw score, p, y) take them.

    For histograms whose events differ, as in an ingest batch: its new predictions,
    the stored predictions its labels join, raw scores that came after their join.
    """
    result = [EventAggregate.empty() for _ in range(n_groups)]

    def assign(name: str, groups: np.ndarray, cells: np.ndarray, columns: Any = None) -> None:
        for aggregate, part in zip(result, _split(groups, n_groups, cells, columns), strict=True):
            if part.keys.size:
                setattr(aggregate, name, part)

    # A kind without events adds nothing (and the input checks refuse empty arrays).
    if probabilities is not None and probabilities[0].size:
        groups, p = probabilities
        assign("probabilities", groups, grids.probability_cells(check_probabilities(p)))
    if scores is not None and scores[0].size:
        groups, raw = scores
        assign("scores", groups, grids.value_cells(finite_values(raw, "raw_scores")))
    if label_delays is not None and label_delays[0].size:
        groups, seconds = label_delays
        assign("label_delays", groups, grids.value_cells(finite_values(seconds, "label_delays")))
    if labelled is not None and labelled[0].size:
        groups, p, y = labelled
        probs, labels = probabilities_and_labels(p, y)
        assign("labelled", groups, grids.probability_cells(probs), labelled_columns(probs, labels))
        numerators, variances = (
            np.bincount(groups, terms, n_groups).tolist()
            for terms in spiegelhalter_event_terms(probs, labels)
        )
        for aggregate, numerator, variance in zip(result, numerators, variances, strict=True):
            aggregate.spiegelhalter_numerator += numerator
            aggregate.spiegelhalter_variance += variance
    if raw_labelled is not None and raw_labelled[0].size:
        groups, raw, p, y = raw_labelled
        probs, labels = probabilities_and_labels(p, y)
        values = finite_values(raw, "raw_scores")
        columns = raw_labelled_columns(values, probs, labels)
        assign("raw_labelled", groups, grids.score_cells(values), columns)
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

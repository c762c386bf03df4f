"""`grouped_aggregates` against the reference it replaces: each group's events added to
its own aggregate with ``EventAggregate.add_*``."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.metrics.aggregates import EventAggregate
from monitor.metrics.errors import MetricInputError
from monitor.metrics.grouped import NO_LABEL, grouped_aggregates


def one_by_one(groups, n_groups, raw, p, y, delays) -> list[EventAggregate]:
    result = []
    for g in range(n_groups):
        mine = groups == g
        aggregate = EventAggregate.empty()
        scores = raw[mine & ~np.isnan(raw)]
        if scores.size:
            aggregate.add_scores(scores)
        has_p = mine & ~np.isnan(p)
        if has_p.any():
            aggregate.add_probabilities(p[has_p])
        labelled = has_p & (y != NO_LABEL)
        if labelled.any():
            aggregate.add_labelled(p[labelled], y[labelled].astype(float))
            timed = labelled & ~np.isnan(delays)
            if timed.any():
                aggregate.add_label_delays(delays[timed])
            scored = labelled & ~np.isnan(raw)
            if scored.any():
                aggregate.add_raw_labelled(raw[scored], p[scored], y[scored].astype(float))
        result.append(aggregate)
    return result


def test_each_group_gets_the_sums_of_its_own_events() -> None:
    rng = np.random.default_rng(4)
    n, n_groups = 20_000, 7
    groups = rng.integers(0, n_groups - 1, n)  # the last group stays empty
    p = rng.beta(2, 5, n)
    p[rng.uniform(size=n) < 0.1] = np.nan
    p[:3] = [0.0, 1.0, 1e-12]  # the grid's tails
    raw = rng.normal(0, 3, n)
    raw[rng.uniform(size=n) < 0.2] = np.nan
    y = (rng.uniform(size=n) < np.nan_to_num(p)).astype(np.int8)
    y[rng.uniform(size=n) < 0.3] = NO_LABEL
    delays = np.where(rng.uniform(size=n) < 0.5, rng.exponential(3600, n), np.nan)
    grouped = grouped_aggregates(
        groups, n_groups, raw_scores=raw, probabilities=p, labels=y, label_delays_s=delays
    )
    expected = one_by_one(groups, n_groups, raw, p, y, delays)
    for got, want in zip(grouped, expected, strict=True):
        for name in ("probabilities", "labelled", "scores", "label_delays", "raw_labelled"):
            mine, theirs = getattr(got, name), getattr(want, name)
            np.testing.assert_array_equal(mine.keys, theirs.keys)
            np.testing.assert_allclose(mine.values, theirs.values, rtol=1e-12, atol=1e-12)
        assert got.spiegelhalter_numerator == pytest.approx(want.spiegelhalter_numerator, 1e-12)
        assert got.spiegelhalter_variance == pytest.approx(want.spiegelhalter_variance, 1e-12)
    assert grouped[-1].n_probabilities == 0 and grouped[-1].n_labelled == 0


def test_a_group_out_of_range_or_a_bad_probability_is_refused() -> None:
    ones = np.ones(3)
    with pytest.raises(MetricInputError, match="groups"):
        grouped_aggregates(
            np.array([0, 1, 2]), 2, raw_scores=ones, probabilities=ones / 2,
            labels=np.zeros(3), label_delays_s=ones,
        )  # fmt: skip
    with pytest.raises(MetricInputError, match="outside"):
        grouped_aggregates(
            np.zeros(3, dtype=int), 1, raw_scores=ones, probabilities=ones * 2,
            labels=np.zeros(3), label_delays_s=ones,
        )  # fmt: skip

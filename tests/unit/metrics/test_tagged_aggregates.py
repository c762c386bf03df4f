"""Aggregates of many buckets at once (``tagged_aggregates``, as ingest builds its deltas)
against adding each bucket's events on its own."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.metrics.aggregates import EventAggregate
from monitor.metrics.grouped import tagged_aggregates

HISTOGRAMS = ("probabilities", "labelled", "scores", "label_delays", "raw_labelled")


def test_each_bucket_is_what_adding_its_own_events_gives() -> None:
    rng = np.random.default_rng(7)
    # Many buckets, events at the grids' low cells (p near 0), bucket 4 without events,
    # bucket 7 with scores only, bucket 9 with one event.
    n, n_buckets = 6000, 300
    p = np.where(rng.uniform(size=n) < 0.05, 1e-9, rng.beta(2, 5, n))
    y = (rng.uniform(size=n) < p).astype(float)
    raw = np.log(p / (1 - p)) * rng.choice([1.0, 40.0], n)  # spread over the score grid
    delays = rng.exponential(3600.0, n)
    buckets = rng.choice(np.setdiff1d(np.arange(n_buckets), [4, 7, 9]), n)
    buckets[0] = 9
    score_buckets = np.where(rng.uniform(size=n) < 0.1, 7, buckets)
    labelled = rng.uniform(size=n) < 0.6
    built = tagged_aggregates(
        n_buckets,
        probabilities=(buckets, p),
        scores=(score_buckets, raw),
        labelled=(buckets[labelled], p[labelled], y[labelled]),
        label_delays=(buckets[labelled], delays[labelled]),
        raw_labelled=(buckets[labelled], raw[labelled], p[labelled], y[labelled]),
    )
    assert len(built) == n_buckets
    for bucket, aggregate in enumerate(built):
        expected = EventAggregate.empty()
        mine, own = buckets == bucket, (buckets == bucket) & labelled
        if mine.any():
            expected.add_probabilities(p[mine])
        if (score_buckets == bucket).any():
            expected.add_scores(raw[score_buckets == bucket])
        if own.any():
            expected.add_labelled(p[own], y[own])
            expected.add_label_delays(delays[own])
            expected.add_raw_labelled(raw[own], p[own], y[own])
        for name in HISTOGRAMS:
            got, want = getattr(aggregate, name), getattr(expected, name)
            assert np.array_equal(got.keys, want.keys), (bucket, name)
            np.testing.assert_allclose(got.values, want.values, rtol=1e-12, atol=1e-9)
        assert aggregate.spiegelhalter_numerator == pytest.approx(
            expected.spiegelhalter_numerator, rel=1e-12, abs=1e-9
        )
        assert aggregate.spiegelhalter_variance == pytest.approx(
            expected.spiegelhalter_variance, rel=1e-12, abs=1e-9
        )
    assert built[4].n_probabilities == built[4].n_scores == 0
    assert built[9].n_probabilities == 1
    assert built[7].n_scores > 0 and built[7].n_probabilities == 0
    assert sum(a.n_labelled for a in built) == labelled.sum()


def test_no_events_make_empty_aggregates() -> None:
    empty = np.empty(0, dtype=np.int64)
    built = tagged_aggregates(2, probabilities=(empty, np.empty(0)))
    assert [a.n_probabilities for a in built] == [0, 0]

"""Properties the issue names, checked by hypothesis on arbitrary input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.metrics import calibration as cal
from monitor.metrics.aggregates import EventAggregate
from monitor.metrics.drift import ReferenceProfile, population_stability_index
from monitor.metrics.summary import calibration_summary


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.integers(0, 9), min_size=1, max_size=10, unique=True),
    st.integers(1, 20),
)
def test_ece_is_zero_when_each_bin_frequency_equals_its_mean_p(bins: list[int], k: int) -> None:
    # In bin b, forecasts (b + 0.5)/10 on 10k events of which (b + 0.5) k are positive:
    # both the mean forecast and the observed frequency are (b + 0.5)/10.
    p, y = [], []
    for b in bins:
        n = 20 * k
        positives = round((b + 0.5) / 10 * n)
        p += [(b + 0.5) / 10] * n
        y += [1] * positives + [0] * (n - positives)
    assert cal.expected_calibration_error(p, y) == pytest.approx(0.0, abs=1e-12)
    assert cal.maximum_calibration_error(p, y) == pytest.approx(0.0, abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31), st.integers(20, 2000), st.sampled_from(["raw_score", "probability"]))
def test_psi_of_a_sample_against_itself_is_zero(seed: int, n: int, kind: str) -> None:
    rng = np.random.default_rng(seed)
    values = rng.normal(0, 2, n) if kind == "raw_score" else rng.beta(2, 5, n)
    if np.unique(values).size < 2:
        return
    profile = ReferenceProfile.fit(values, kind=kind)  # type: ignore[arg-type]
    assert population_stability_index(profile, values) == pytest.approx(0.0, abs=1e-12)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31), st.integers(50, 3000), st.integers(1, 12))
def test_aggregates_merged_equal_computed_at_once(seed: int, n: int, parts: int) -> None:
    rng = np.random.default_rng(seed)
    p = rng.uniform(0, 1, n)
    y = (rng.uniform(size=n) < p).astype(float)
    whole = EventAggregate.empty()
    whole.add_labelled(p, y)
    pieces = []
    for part_p, part_y in zip(np.array_split(p, parts), np.array_split(y, parts), strict=True):
        piece = EventAggregate.empty()
        if part_p.size:
            piece.add_labelled(part_p, part_y)
        pieces.append(EventAggregate.from_bytes(piece.to_bytes()))
    merged = EventAggregate.merge_all(pieces)
    at_once = calibration_summary(whole, bootstrap_resamples=0).values
    from_parts = calibration_summary(merged, bootstrap_resamples=0).values
    assert from_parts.keys() == at_once.keys()
    for key, value in at_once.items():
        assert from_parts[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key

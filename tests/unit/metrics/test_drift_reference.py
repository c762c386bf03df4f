"""Drift metrics checked against scipy and hand-computed cases.

PSI is checked against a direct computation on numpy quantile edges of the reference
sample (the textbook recipe), JS against scipy's ``jensenshannon``, KS and Wasserstein on
raw samples against scipy's ``ks_2samp`` and ``wasserstein_distance``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.spatial.distance import jensenshannon

from monitor.metrics import drift
from monitor.metrics.drift import ReferenceProfile


def textbook_psi(reference: np.ndarray, current: np.ndarray, n_bins: int = 10) -> float:
    """PSI on edges at the reference's empirical quantiles, open outer bins, eps 1e-4."""
    edges = np.quantile(reference, np.arange(1, n_bins) / n_bins, method="inverted_cdf")
    r = np.bincount(np.searchsorted(edges, reference, side="right"), minlength=n_bins)
    c = np.bincount(np.searchsorted(edges, current, side="right"), minlength=n_bins)
    r = np.maximum(r / r.sum(), drift.PSI_EPS)
    c = np.maximum(c / c.sum(), drift.PSI_EPS)
    return float(((c - r) * np.log(c / r)).sum())


@pytest.mark.parametrize("shift", [0.0, 0.1, 0.5, 2.0])
def test_psi_on_raw_scores_close_to_the_textbook_recipe(shift: float) -> None:
    rng = np.random.default_rng(1)
    reference = rng.normal(0, 1, 50_000)
    current = rng.normal(shift, 1, 20_000)
    profile = ReferenceProfile.fit(reference, kind="raw_score")
    ours = drift.population_stability_index(profile, current)
    # Edges sit on grid cells (relative width 1%): a tiny shift of each edge.
    assert ours == pytest.approx(textbook_psi(reference, current), abs=2e-3 + 0.02 * ours)


def test_psi_hand_computed_two_bins() -> None:
    # Reference: half below 0, half above; current: 80% above. Two bins (median edge).
    reference = np.array([-1.0] * 50 + [1.0] * 50)
    current = np.array([-1.0] * 20 + [1.0] * 80)
    profile = ReferenceProfile.fit(reference, kind="raw_score", n_bins=2)
    expected = (0.2 - 0.5) * math.log(0.2 / 0.5) + (0.8 - 0.5) * math.log(0.8 / 0.5)
    assert drift.population_stability_index(profile, current) == pytest.approx(expected)
    # Same distributions: zero.
    assert drift.population_stability_index(profile, reference) == pytest.approx(0.0)


def test_drift_bins_hand_computed_two_bins() -> None:
    reference = np.array([-1.0] * 50 + [1.0] * 50)
    current = np.array([-1.0] * 20 + [1.0] * 80)
    profile = ReferenceProfile.fit(reference, kind="raw_score", n_bins=2)
    bins = drift.drift_bins(profile, drift.histogram_of(current, "raw_score"))
    assert [b.index for b in bins] == [0, 1]
    assert [b.reference_fraction for b in bins] == pytest.approx([0.5, 0.5])
    assert [b.current_fraction for b in bins] == pytest.approx([0.2, 0.8])
    assert bins[0].lower is None
    assert bins[1].lower == pytest.approx(1.0, rel=0.01)  # a grid cell's representative


def test_drift_bins_match_the_textbook_quantile_bins() -> None:
    rng = np.random.default_rng(4)
    reference = rng.normal(0, 1, 50_000)
    current = rng.normal(0.5, 1, 20_000)
    profile = ReferenceProfile.fit(reference, kind="raw_score")
    bins = drift.drift_bins(profile, drift.histogram_of(current, "raw_score"))
    edges = np.quantile(reference, np.arange(1, 10) / 10, method="inverted_cdf")
    expected = np.bincount(np.searchsorted(edges, current, side="right"), minlength=10)
    # Edges sit on grid cells (relative width 1%): a few events near an edge change bins.
    assert [b.current_fraction for b in bins] == pytest.approx(expected / expected.sum(), abs=4e-3)
    assert [b.reference_fraction for b in bins] == pytest.approx([0.1] * 10, abs=4e-3)
    # The bins are the ones PSI is computed from.
    r = np.maximum([b.reference_fraction for b in bins], drift.PSI_EPS)
    c = np.maximum([b.current_fraction for b in bins], drift.PSI_EPS)
    assert float(((c - r) * np.log(c / r)).sum()) == pytest.approx(
        drift.population_stability_index(profile, current), rel=1e-12
    )


def test_psi_uses_the_epsilon_for_an_empty_bin() -> None:
    reference = np.array([-1.0] * 50 + [1.0] * 50)
    current = np.array([1.0] * 100)
    profile = ReferenceProfile.fit(reference, kind="raw_score", n_bins=2)
    eps = drift.PSI_EPS
    expected = (eps - 0.5) * math.log(eps / 0.5) + (1.0 - 0.5) * math.log(1.0 / 0.5)
    assert drift.population_stability_index(profile, current) == pytest.approx(expected)


def test_reference_edges_are_fixed_not_refitted_on_the_current_window() -> None:
    rng = np.random.default_rng(2)
    profile = ReferenceProfile.fit(rng.normal(0, 1, 10_000), kind="raw_score")
    edges = profile.psi_edges.copy()
    drift.population_stability_index(profile, rng.normal(3, 1, 10_000))
    np.testing.assert_array_equal(profile.psi_edges, edges)
    # A persisted profile scores a window identically.
    restored = ReferenceProfile.from_dict(profile.to_dict())
    current = rng.normal(0.3, 1, 5_000)
    assert drift.population_stability_index(restored, current) == drift.population_stability_index(
        profile, current
    )


def test_js_distance_matches_scipy_on_the_psi_bins() -> None:
    rng = np.random.default_rng(3)
    reference = rng.beta(2, 5, 30_000)
    current = rng.beta(2, 3, 10_000)
    profile = ReferenceProfile.fit(reference, kind="probability")
    r = profile.psi_bin_counts(profile.histogram())
    c = profile.psi_bin_counts(drift.histogram_of(current, "probability"))
    expected = jensenshannon(r / r.sum(), c / c.sum(), base=2)
    assert drift.jensen_shannon_distance(profile, current) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("sizes", [(1000, 1000), (5000, 700), (37, 4000)])
def test_ks_and_wasserstein_match_scipy(sizes: tuple[int, int]) -> None:
    rng = np.random.default_rng(sum(sizes))
    a = rng.normal(0, 1, sizes[0])
    b = rng.standard_t(5, sizes[1]) + 0.1
    ours = drift.ks_2samp(a, b)
    reference = stats.ks_2samp(a, b, method="asymp")
    assert ours.statistic == pytest.approx(reference.statistic, abs=1e-15)
    assert ours.pvalue == pytest.approx(reference.pvalue, rel=1e-9, abs=1e-300)
    assert drift.wasserstein_distance(a, b) == pytest.approx(
        stats.wasserstein_distance(a, b), rel=1e-12
    )


@pytest.mark.parametrize("en", [1001, 5000, 30_000])
def test_ks_pvalue_of_large_samples_is_within_six_percent_of_scipys(en: int) -> None:
    # Above KS_EXACT_UP_TO, Stephens' form of the limiting distribution; scipy's kstwo
    # (what ks_2samp(method="asymp") evaluates) is the reference, down to p = 1e-14.
    assert en > drift.KS_EXACT_UP_TO
    for z in np.linspace(0.3, 7.5, 12):
        statistic = z / np.sqrt(en)
        exact = stats.kstwo.sf(statistic, en)
        ours = drift.ks_pvalue(statistic, 2 * en, 2 * en)  # en = n1 n2 / (n1 + n2)
        if exact >= 1e-14:
            assert abs(ours - exact) <= 0.06 * exact, (en, z, ours, exact)
        else:  # far beyond any threshold either way
            assert ours < 1e-12, (en, z, ours, exact)


def test_ks_with_ties_matches_scipy() -> None:
    a = np.array([0.1, 0.2, 0.2, 0.3, 0.5, 0.5, 0.5])
    b = np.array([0.2, 0.5, 0.5, 0.9])
    assert drift.ks_2samp(a, b).statistic == pytest.approx(stats.ks_2samp(a, b).statistic)


@pytest.mark.parametrize("kind", ["raw_score", "probability"])
def test_window_comparison_is_within_its_stated_error_bounds(kind: str) -> None:
    rng = np.random.default_rng(4)
    if kind == "raw_score":
        reference, current = rng.normal(0, 2, 40_000), rng.normal(0.4, 2.5, 15_000)
    else:
        reference, current = rng.beta(2, 5, 40_000), rng.beta(2.5, 5, 15_000)
    profile = ReferenceProfile.fit(reference, kind=kind)  # type: ignore[arg-type]
    result = drift.compare(profile, drift.histogram_of(current, kind))  # type: ignore[arg-type]
    exact_ks = stats.ks_2samp(reference, current).statistic
    exact_w = stats.wasserstein_distance(reference, current)
    assert abs(result.ks_statistic - exact_ks) <= result.ks_error_bound
    assert abs(result.wasserstein_distance - exact_w) <= result.wasserstein_error_bound
    assert result.ks_error_bound < 0.01


@settings(max_examples=40, deadline=None)
@given(
    st.floats(-5, 5),
    st.floats(0.2, 3),
    st.integers(0, 2**31),
)
def test_drift_properties(location: float, scale: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    reference = rng.normal(0, 1, 2000)
    current = rng.normal(location, scale, 1000)
    profile = ReferenceProfile.fit(reference, kind="raw_score")
    psi = drift.population_stability_index(profile, current)
    js = drift.jensen_shannon_distance(profile, current)
    ks = drift.ks_2samp(reference, current)
    assert psi >= 0.0
    assert 0.0 <= js <= 1.0
    assert 0.0 <= ks.statistic <= 1.0 and 0.0 <= ks.pvalue <= 1.0
    # Wasserstein-1 is symmetric and at least the difference of the means.
    w = drift.wasserstein_distance(reference, current)
    assert w == pytest.approx(drift.wasserstein_distance(current, reference))
    assert w >= abs(reference.mean() - current.mean()) - 1e-9

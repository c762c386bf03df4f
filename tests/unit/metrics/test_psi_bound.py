"""calmon's PSI against the textbook PSI at the reference's exact quantiles (numpy): the
two differ because calmon's edges are snapped to grid cells, by no more than
``psi_snapping_bound`` says."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.metrics import drift
from monitor.metrics.drift import PSI_EPS, ReferenceProfile, histogram_of, psi_snapping_bound

N_BINS = 10


def textbook_psi(reference: np.ndarray, current: np.ndarray, edges: np.ndarray) -> float:
    """PSI on bins [q_{j-1}, q_j) at the given quantiles; fractions floored alike."""
    r = np.bincount(np.searchsorted(edges, reference, side="right"), minlength=N_BINS)
    c = np.bincount(np.searchsorted(edges, current, side="right"), minlength=N_BINS)
    r = np.maximum(r / reference.size, PSI_EPS)
    c = np.maximum(c / current.size, PSI_EPS)
    return float(((c - r) * np.log(c / r)).sum())


def exact_quantiles(reference: np.ndarray) -> dict[str, np.ndarray]:
    """The sample quantiles j/10: the order statistic of rank floor(q n) (0-based) that
    calmon locates, and numpy's two common definitions."""
    q = np.arange(1, N_BINS) / N_BINS
    ordered = np.sort(reference)
    return {
        "order statistic": ordered[np.floor(q * reference.size).astype(int)],
        "inverted_cdf": np.quantile(reference, q, method="inverted_cdf"),
        "linear": np.quantile(reference, q, method="linear"),
    }


def check(kind: str, reference: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """|calmon's PSI - textbook PSI| for each quantile definition that lies in the cells
    calmon snapped its edges to (the bound's premise: always true of the order
    statistic; of numpy's when the neighbouring order statistics share the cell)."""
    profile = ReferenceProfile.fit(reference, kind=kind, n_bins=N_BINS)  # type: ignore[arg-type]
    ours = drift.population_stability_index(profile, current)
    bound = psi_snapping_bound(profile, histogram_of(current, kind), n_bins=N_BINS)  # type: ignore[arg-type]
    worst = 0.0
    for name, edges in exact_quantiles(reference).items():
        in_snapped_cells = np.array_equal(
            np.unique(histogram_of(edges, kind).keys),
            profile.psi_edges,  # type: ignore[arg-type]
        )
        if name == "order statistic":
            assert in_snapped_cells
        elif not in_snapped_cells:
            continue
        difference = abs(ours - textbook_psi(reference, current, edges))
        assert difference <= bound + 1e-12, (name, ours, difference, bound)
        worst = max(worst, difference)
    return worst, bound


@settings(max_examples=60, deadline=None)
@given(
    shift=st.floats(-2.0, 2.0),
    scale=st.floats(0.3, 3.0),
    sizes=st.tuples(st.integers(200, 20_000), st.integers(50, 20_000)),
    seed=st.integers(0, 2**31),
)
def test_raw_score_psi_is_within_the_bound_of_the_textbook_psi(
    shift: float, scale: float, sizes: tuple[int, int], seed: int
) -> None:
    rng = np.random.default_rng(seed)
    check("raw_score", rng.normal(0, 1, sizes[0]), rng.normal(shift, scale, sizes[1]))


@settings(max_examples=40, deadline=None)
@given(
    a=st.floats(0.3, 8.0),
    b=st.floats(0.3, 8.0),
    sizes=st.tuples(st.integers(200, 20_000), st.integers(50, 20_000)),
    seed=st.integers(0, 2**31),
)
def test_probability_psi_is_within_the_bound_of_the_textbook_psi(
    a: float, b: float, sizes: tuple[int, int], seed: int
) -> None:
    rng = np.random.default_rng(seed)
    check("probability", rng.beta(2, 5, sizes[0]), rng.beta(a, b, sizes[1]))


def test_the_bound_is_near_tight_when_the_window_sits_in_the_edge_cells() -> None:
    """Worst case: window events in an edge cell, just below the exact quantile, where
    calmon counts them in the bin above and the textbook in the bin below."""
    rng = np.random.default_rng(3)
    reference = rng.normal(0, 1, 50_000)
    profile = ReferenceProfile.fit(reference, kind="raw_score", n_bins=N_BINS)
    quantiles = exact_quantiles(reference)["order statistic"]
    below = np.nextafter(quantiles, -np.inf)
    assert np.array_equal(histogram_of(below, "raw_score").keys, profile.psi_edges)
    # (On a window that shifted up, so that the bins on either side of those edges
    # differ: moving mass between two alike bins leaves PSI as it is.)
    current = np.concatenate([np.repeat(below[[7, 8]], 400), rng.normal(1, 1, 2000)])
    worst, bound = check("raw_score", reference, current)
    assert worst > 0.1  # the snapping matters here...
    assert bound < 2.5 * worst  # ...and the bound says by about how much


def test_the_bound_measured_at_a_psi_of_two_tenths() -> None:
    """The issue's case: raw scores, PSI about 0.2 (docs/windows-and-metrics.md)."""
    rng = np.random.default_rng(1)
    worst, bound = check("raw_score", rng.normal(0, 1, 50_000), rng.normal(0.45, 1.1, 20_000))
    assert worst < 0.001 and bound < 0.01


def test_no_bound_when_quantiles_were_merged() -> None:
    reference = np.concatenate([np.zeros(6000), np.linspace(1, 2, 4000)])  # 60% ties
    profile = ReferenceProfile.fit(reference, kind="raw_score", n_bins=N_BINS)
    assert profile.n_bins < N_BINS
    bound = psi_snapping_bound(profile, histogram_of(reference, "raw_score"), n_bins=N_BINS)
    assert bound == math.inf

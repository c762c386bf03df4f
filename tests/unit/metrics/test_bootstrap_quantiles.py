"""The bootstrap's percentile interval reads its quantiles as ``np.quantile`` does."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.metrics.bootstrap import quantiles


@pytest.mark.parametrize("n", [1, 2, 3, 200, 1000, 1001])
def test_quantiles_are_numpys_linear_quantiles(n: int) -> None:
    rng = np.random.default_rng(n)
    probabilities = np.array([0.0, 0.025, 0.5, 0.975, 1.0])
    for _ in range(50):
        values = rng.normal(size=n) * rng.uniform(0.0, 10.0)
        np.testing.assert_allclose(
            quantiles(values, probabilities), np.quantile(values, probabilities), atol=1e-14
        )

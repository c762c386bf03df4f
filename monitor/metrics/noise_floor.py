"""ECE's noise floor: what a perfectly calibrated model would show at this window's size.

Binned ECE is biased upwards: with n_b events in a bin, |mean y - mean p| is about
sqrt(p(1-p)/n_b) from sampling noise alone, so a perfectly calibrated model of 500
labelled events per window shows an ECE of about 0.04. A fixed threshold on ECE is then
deaf on large segments and fires on small ones.

The noise floor is the expected ECE of a perfectly calibrated model with the window's
bin counts and probabilities: E|S_b| summed over bins and divided by n, where
S_b = sum of (y_i - p_i) over bin b. Under perfect calibration S_b has mean 0 and
variance v_b = sum p_i (1 - p_i) = sum_p - sum_p2 (a Poisson-binomial, centred). We take
E|S_b| from the binomial(n_b, mean p) — exactly, by its probability mass — rescaled to
the Poisson-binomial's standard deviation (within-bin spread of p only lowers the
variance; bins are 0.1 wide, so the rescale changes the floor by about 1%). Once the
bin's standard deviation reaches ``NORMAL_FROM_SD`` the normal limit sigma * sqrt(2 / pi)
is used: its relative error is about 0.06 / sigma^2, below 1e-3 there.

``ece_debiased = ece - noise_floor`` is then an unbiased estimate of 0 for a calibrated
model at every n (tests/unit/metrics/test_noise_floor.py checks it on simulated streams at
n = 200 ... 200,000). For a miscalibrated model it under-states the true ECE by at most
the floor (once the miscalibration is several standard errors, E|S_b| ~ |bias| and the
subtraction removes a little too much): it is "calibration error beyond what noise
explains", the quantity a rule that must not fire on small segments wants.
"""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln

from monitor.metrics.binned import BinSums

#: Bins whose sum has a smaller standard deviation get the exact binomial deviation.
NORMAL_FROM_SD = 10.0
#: The exact sum covers mean +- this many standard deviations (the rest is < 1e-40).
_SUM_RANGE_SD = 15.0

_SQRT_2_OVER_PI = float(np.sqrt(2.0 / np.pi))


def binomial_mean_absolute_deviation(n: int, p: float) -> float:
    """E|K - n p| for K ~ binomial(n, p), by summing the probability mass."""
    if n <= 0 or p <= 0.0 or p >= 1.0:
        return 0.0
    mean = n * p
    reach = _SUM_RANGE_SD * np.sqrt(mean * (1.0 - p)) + 1.0
    k = np.arange(max(0, int(mean - reach)), min(n, int(mean + reach)) + 1)
    # The log-pmf by hand: scipy.stats.binom.pmf costs ~1 ms a call in argument checks.
    log_pmf = (
        gammaln(n + 1.0)
        - gammaln(k + 1.0)
        - gammaln(n - k + 1.0)
        + k * np.log(p)
        + (n - k) * np.log1p(-p)
    )
    return float(np.dot(np.exp(log_pmf), np.abs(k - mean)))


def expected_absolute_gap(count: float, sum_p: float, sum_p2: float) -> float:
    """E|sum (y - p)| over one bin of a perfectly calibrated model."""
    n = round(count)
    if n <= 0:
        return 0.0
    variance = max(sum_p - sum_p2, 0.0)
    if variance == 0.0:
        return 0.0
    mean_p = min(max(sum_p / n, 0.0), 1.0)
    binomial_variance = n * mean_p * (1.0 - mean_p)
    if binomial_variance >= NORMAL_FROM_SD**2 or binomial_variance <= 0.0:
        return float(np.sqrt(variance)) * _SQRT_2_OVER_PI
    deviation = binomial_mean_absolute_deviation(n, mean_p)
    return deviation * float(np.sqrt(variance / binomial_variance))


def ece_noise_floor_from_bins(bins: BinSums) -> float:
    """Expected ECE of a perfectly calibrated model with these bins' counts and p's."""
    if bins.sum_p2 is None:
        raise ValueError("ece_noise_floor_from_bins needs sum_p2 per bin")
    total = bins.total
    if total <= 0:
        return 0.0
    gaps = [
        expected_absolute_gap(float(c), float(s), float(s2))
        for c, s, s2 in zip(bins.count, bins.sum_p, bins.sum_p2, strict=True)
        if c > 0
    ]
    return float(sum(gaps) / total)

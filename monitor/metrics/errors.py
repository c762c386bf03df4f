"""Typed errors of the metrics core.

Every problem with the input is reported by a specific exception whose message names the
problem (and where it is), so a caller never gets a silent NaN.
"""

from __future__ import annotations


class MetricInputError(ValueError):
    """The arrays given to a metric are not valid input for it."""


class UndefinedMetricError(ValueError):
    """The input is valid but the metric is mathematically undefined on it.

    Examples: calibration slope when every label is 0, the Brier skill score when the
    prevalence is 0 or 1. Callers that summarise many metrics skip these.
    """


class DegenerateReferenceError(MetricInputError):
    """A drift reference cannot be fitted (too few events or a single distinct value)."""

"""What one window evaluation produces: the record the exporter, the history table and
the rules engine all read.

Metric keys are the Prometheus names without the ``calmon_`` prefix (``ece``,
``brier_score``, ``spiegelhalter_pvalue``...). Drift metrics carry the distribution as a
suffix: ``psi_raw_score``, ``ks_pvalue_probability``, ``wasserstein_distance_raw_score``.
A metric whose sample count is below its configured minimum is simply absent from
``values``: nothing downstream can alert on noise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from monitor.metrics.calibration import ReliabilityBin
from monitor.metrics.drift import DriftBin

ALL = "__all__"


@dataclass(frozen=True, slots=True, order=True)
class SeriesWindow:
    """One exported series: a model, a version (or ``__all__``), a segment, a window."""

    model: str
    model_version: str
    segment: str
    window: str


@dataclass(frozen=True, slots=True)
class WindowResult:
    series: SeriesWindow
    evaluated_at: datetime
    window_start: datetime
    window_end: datetime
    predictions: int
    labelled: int
    values: Mapping[str, float] = field(default_factory=dict)
    reliability_bins: tuple[ReliabilityBin, ...] = ()
    #: PSI bins of each distribution with a reference (reference vs current fractions).
    drift_bins: tuple[DriftBin, ...] = ()

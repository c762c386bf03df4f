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
from typing import Any

from monitor.core.series import SeriesWindow


@dataclass(frozen=True)
class ReliabilityBin:
    """One occupied bin of a reliability diagram with a Wilson 95% interval."""

    index: int
    lower: float
    upper: float
    count: int
    mean_predicted: float
    observed_ratio: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class DriftBin:
    """One PSI bin of a distribution: the reference's share of events and the window's.

    Bins are the reference's quantile bins, so reference fractions are close to 1/n_bins
    and drift shows as current fractions moving away from them.
    """

    distribution: str
    index: int
    #: Smallest value in the bin (a grid cell's representative); None for the first,
    #: open bin.
    lower: float | None
    reference_fraction: float
    current_fraction: float


@dataclass(frozen=True, slots=True)
class ReferenceUsed:
    """What a result's drift values were measured against."""

    #: ``snapshot`` (calmon baseline), ``fixed`` (the configured period) or ``trailing``
    #: (the window of the same length before this one).
    source: str
    start: datetime
    end: datetime
    #: Events the reference was fitted on, per distribution; 0 when it had too few (or a
    #: single distinct value) to fit one, and so no drift value.
    events: Mapping[str, int]

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "events": dict(self.events),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ReferenceUsed:
        return cls(
            source=data["source"],
            start=datetime.fromisoformat(data["start"]),
            end=datetime.fromisoformat(data["end"]),
            events=data["events"],
        )


@dataclass(frozen=True, slots=True)
class ClassResult:
    """One class of a multi-class series, one-vs-rest: its values (``class_ece``,
    ``class_psi``...; exported with a ``class`` label) and reliability bins."""

    values: Mapping[str, float] = field(default_factory=dict)
    reliability_bins: tuple[ReliabilityBin, ...] = ()


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
    #: The drift reference; None for a segment's ``__other__`` series, which has none.
    reference: ReferenceUsed | None = None
    #: A multi-class series' classes, by name (empty for a binary series).
    classes: Mapping[str, ClassResult] = field(default_factory=dict)

    @classmethod
    def empty(cls, series: SeriesWindow, like: WindowResult | None, now: datetime) -> WindowResult:
        """A series with no events in the window: the times of ``like`` (another result
        of the same tick), or ``now`` for all three when the tick had none."""
        if like is None:
            return cls(series, now, now, now, 0, 0)
        return cls(series, like.evaluated_at, like.window_start, like.window_end, 0, 0)

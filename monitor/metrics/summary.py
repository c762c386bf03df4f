"""All window metrics from one merged :class:`EventAggregate`.

What is exact and what is approximate, compared with the metrics core run on the
window's events (``tests/unit/metrics/test_summary.py`` checks each statement):

Exact (to floating-point rounding of sums): ECE, MCE, RMSCE, reliability bins, Brier
score and its decomposition, log loss, accuracy, calibration-in-the-large, observed/expected,
Spiegelhalter's Z and p-value, PSI, Jensen-Shannon, for any ``n_bins`` with
10240 / n_bins a power of two (5, 10, 20, 40...).

Approximate:
- ACE: equal-mass groups are built from whole grid cells;
  |ACE_aggregate - ACE_events| <= ``ace_error_bound`` = 2/n x (events in cells that a
  group boundary cuts).
- Calibration slope/intercept: the logistic fit uses each cell's mean logit; cells are
  at most 1/10240 wide in p and 0.5 wide in logit in the tails.
- ECE interval: the bin-level bootstrap of ``bootstrap.py``.
- ROC AUC and average precision: events in one grid cell count as tied; the result
  carries the bound on the distance to the events' exact values
  (``roc_auc_error_bound``, ``average_precision_error_bound``, see ``discrimination.py``).
- KS and Wasserstein-1: evaluated on grid cells, see ``drift.py`` for the bounds.
- Label-delay quantiles: within 0.5% relative error (the value sketch).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from monitor.metrics import binned, grids
from monitor.metrics.aggregates import COLUMN, EventAggregate
from monitor.metrics.binned import BinSums
from monitor.metrics.bootstrap import ece_bootstrap_interval_from_bins
from monitor.metrics.calibration import (
    ReliabilityBin,
    in_the_large_from_sums,
    reliability_bins_from_sums,
)
from monitor.metrics.discrimination import discrimination_from_cells
from monitor.metrics.drift import DriftBin, DriftResult, ReferenceProfile, compare, drift_bins
from monitor.metrics.errors import MetricInputError, UndefinedMetricError
from monitor.metrics.noise_floor import ece_noise_floor_from_bins
from monitor.metrics.recalibration import fit_grouped_logistic
from monitor.metrics.tests_of_fit import spiegelhalter_from_terms


@dataclass(frozen=True)
class CalibrationSummary:
    n_labelled: int
    #: Metric key (contracts: ``ece``, ``brier_score``...) to value; undefined ones absent.
    values: dict[str, float] = field(default_factory=dict)
    reliability_bins: list[ReliabilityBin] = field(default_factory=list)
    ace_error_bound: float = 0.0


def folded_bin_sums(aggregate: EventAggregate, n_bins: int) -> BinSums:
    """The labelled cells folded into ``n_bins`` equal-width bins."""
    labelled = aggregate.labelled
    to_bin = grids.probability_cell_to_bin(n_bins)[labelled.keys]

    def fold(column: str) -> np.ndarray:
        return np.bincount(to_bin, weights=labelled.values[:, COLUMN[column]], minlength=n_bins)

    return BinSums(
        count=fold("count"),
        sum_p=fold("sum_p"),
        sum_y=fold("sum_y"),
        sum_p2=fold("sum_p2"),
        sum_py=fold("sum_py"),
    )


def adaptive_calibration_error_from_aggregate(
    aggregate: EventAggregate, n_bins: int
) -> tuple[float, float]:
    """ACE from whole cells, and the bound on its distance to the event-level ACE."""
    labelled = aggregate.labelled
    counts = labelled.values[:, COLUMN["count"]]
    groups = binned.equal_mass_groups(counts, n_bins)
    sums = BinSums(
        count=np.bincount(groups, weights=counts, minlength=n_bins),
        sum_p=np.bincount(groups, weights=labelled.values[:, COLUMN["sum_p"]], minlength=n_bins),
        sum_y=np.bincount(groups, weights=labelled.values[:, COLUMN["sum_y"]], minlength=n_bins),
    )
    n = counts.sum()
    upper = np.cumsum(counts)
    lower = upper - counts
    boundaries = np.arange(1, n_bins) * n / n_bins
    cut = ((lower[:, None] < boundaries) & (boundaries < upper[:, None])).any(axis=1)
    return binned.expected_calibration_error_from_bins(sums), float(2.0 * counts[cut].sum() / n)


def calibration_summary(
    aggregate: EventAggregate,
    *,
    n_bins: int = 10,
    bootstrap_resamples: int = 1000,
    seed: int = 0,
) -> CalibrationSummary:
    """Every calibration metric of the labelled events of ``aggregate``."""
    n = aggregate.n_labelled
    if n == 0:
        return CalibrationSummary(n_labelled=0)
    labelled = aggregate.labelled
    total = {name: labelled.column_total(i) for name, i in COLUMN.items()}
    bins = folded_bin_sums(aggregate, n_bins)
    values: dict[str, float] = {}

    def put(name: str, compute: Callable[[], float]) -> None:
        # Undefined on this window (e.g. one class only): absent, never NaN.
        with contextlib.suppress(UndefinedMetricError):
            values[name] = compute()

    put("ece", lambda: binned.expected_calibration_error_from_bins(bins))
    noise_floor = ece_noise_floor_from_bins(bins)
    values["ece_noise_floor"] = noise_floor
    values["ece_debiased"] = values["ece"] - noise_floor
    ace, ace_bound = adaptive_calibration_error_from_aggregate(aggregate, n_bins)
    values["ace"] = ace
    put("mce", lambda: binned.maximum_calibration_error_from_bins(bins))
    put("rmsce", lambda: binned.rms_calibration_error_from_bins(bins))
    brier = total["sum_squared_error"] / n
    base_rate = total["sum_y"] / n
    values["brier_score"] = brier
    decomposition = binned.brier_decomposition_from_bins(bins)
    values["brier_reliability"] = decomposition.reliability
    values["brier_resolution"] = decomposition.resolution
    values["brier_uncertainty"] = decomposition.uncertainty
    put("brier_skill_score", lambda: binned.brier_skill_score_from_brier(brier, base_rate))
    values["log_loss"] = total["sum_log_loss"] / n
    values["accuracy_score"] = accuracy_from_cells(aggregate)
    put(
        "calibration_in_the_large",
        lambda: in_the_large_from_sums(total["sum_p"], total["sum_y"], n).difference,
    )
    put(
        "observed_expected_ratio",
        lambda: in_the_large_from_sums(total["sum_p"], total["sum_y"], n).observed_expected_ratio,
    )
    try:
        count = labelled.values[:, COLUMN["count"]]
        fit = fit_grouped_logistic(
            labelled.values[:, COLUMN["sum_logit"]] / count,
            count,
            labelled.values[:, COLUMN["sum_y"]],
        )
        values["calibration_slope"] = fit.slope
        values["calibration_intercept"] = fit.intercept
    except UndefinedMetricError:
        pass
    put(
        "spiegelhalter_pvalue",
        lambda: (
            spiegelhalter_from_terms(
                aggregate.spiegelhalter_numerator, aggregate.spiegelhalter_variance
            ).pvalue
        ),
    )
    with contextlib.suppress(UndefinedMetricError):
        values.update(discrimination_values(aggregate))
    if bootstrap_resamples > 0:
        interval = ece_bootstrap_interval_from_bins(
            bins, n_resamples=bootstrap_resamples, seed=seed
        )
        values["ece_ci_lower"] = interval.lower
        values["ece_ci_upper"] = interval.upper
    return CalibrationSummary(
        n_labelled=n,
        values=values,
        reliability_bins=reliability_bins_from_sums(bins),
        ace_error_bound=ace_bound,
    )


def accuracy_from_cells(aggregate: EventAggregate) -> float:
    """Share of labelled events on the right side of 0.5 (p >= 0.5 predicts 1): exact,
    since 0.5 is a cell edge."""
    labelled = aggregate.labelled
    count = labelled.values[:, COLUMN["count"]]
    positives = labelled.values[:, COLUMN["sum_y"]]
    predicts_one = grids.PROBABILITY_CELL_LOWER[labelled.keys] >= 0.5
    return float(np.where(predicts_one, positives, count - positives).sum() / count.sum())


def discrimination_values(aggregate: EventAggregate) -> dict[str, float]:
    """ROC AUC and average precision of the labelled cells, with their error bounds."""
    labelled = aggregate.labelled
    found = discrimination_from_cells(
        labelled.values[:, COLUMN["count"]], labelled.values[:, COLUMN["sum_y"]]
    )
    lower, upper = found.roc_auc_interval()
    return {
        "roc_auc_score": found.roc_auc,
        "roc_auc_error_bound": found.roc_auc_error_bound,
        "roc_auc_ci_lower": lower,
        "roc_auc_ci_upper": upper,
        "average_precision_score": found.average_precision,
        "average_precision_error_bound": found.average_precision_error_bound,
    }


def drift_summary(reference: ReferenceProfile, aggregate: EventAggregate) -> DriftResult:
    """Drift of the aggregate's raw scores or probabilities (the reference's kind)."""
    histogram = aggregate.scores if reference.kind == "raw_score" else aggregate.probabilities
    if histogram.keys.size == 0:
        raise MetricInputError(f"no {reference.kind} values in this window")
    return compare(reference, histogram)


def drift_bins_of(reference: ReferenceProfile, aggregate: EventAggregate) -> tuple[DriftBin, ...]:
    """PSI bins of the aggregate's raw scores or probabilities (the reference's kind)."""
    histogram = aggregate.scores if reference.kind == "raw_score" else aggregate.probabilities
    return drift_bins(reference, histogram)


def label_delay_quantiles(
    aggregate: EventAggregate, quantiles: tuple[float, ...]
) -> dict[float, float]:
    """Quantiles of label delay in seconds (0.5% relative error); empty if no labels."""
    delays = aggregate.label_delays
    if delays.keys.size == 0:
        return {}
    cumulative = np.cumsum(delays.values[:, 0])
    ranks = np.floor(np.asarray(quantiles) * cumulative[-1])
    cells = delays.keys[
        np.minimum(np.searchsorted(cumulative, ranks, side="right"), delays.keys.size - 1)
    ]
    return {
        q: float(grids.VALUE_CELL_REPRESENTATIVE[c]) for q, c in zip(quantiles, cells, strict=True)
    }

"""Fit on the earlier part of a window, score on the later part, recommend one candidate.

A time split, never a random one: the later part stands for the traffic the calibrator
will meet once deployed. Each fitted candidate is scored on the later part's cells:
held-out log loss, Brier score and ECE (equal-width bins of the recalibrated p), each
with a 95% interval.

The recommendation (``recommend``):

1. the candidate with the lowest held-out log loss (a proper scoring rule) is the best;
2. the recommended one is the simplest candidate (in the order of
   ``candidates.METHODS``: identity, temperature, Platt, beta, histogram, isotonic, then
   the refits from the raw score) that the best does not beat by more than ``margin``
   nats per event with the lower end of its 95% interval: the difference is inside the
   interval, so the simpler map is kept.

``identity`` is the simplest, so it is recommended unless a fitted map is better on the
later part by a clear, significant amount: a calibrated window recommends identity.
The artifact handed over is the recommended method refitted on the whole window
(``refit_on``): validated on unseen events, then fitted on all of them, the most recent
included.

Intervals: log loss and Brier are means of per-event losses, so the 95% interval of a
candidate's value and of its paired difference with the best is the normal one with
the held-out events' own variance, which is what a bootstrap of the events converges
to (``tests/unit/metrics/test_recalibration_choice.py`` checks it against one); ECE's is
the bin-level bootstrap of ``bootstrap.py``.

From aggregates, each held-out event is put at its cell's mean p before it is mapped;
cells are 1/10240 wide in p (0.5 in logit in the tails), so the held-out values are
those of the events to within the map's change across one cell. A refit from the raw
score is scored on the raw-score cells (each event at its cell's mean raw score), the
same events; its paired difference with a correction of p is taken there too, the
correction applied to each raw-score cell's mean served p.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import numpy as np

from monitor.metrics.binned import BinSums, expected_calibration_error_from_bins
from monitor.metrics.bootstrap import ece_bootstrap_interval_from_bins
from monitor.metrics.calibrators.candidates import FITTERS, METHODS, fit_candidates
from monitor.metrics.calibrators.cells import LabelledCells, RawScoreCells
from monitor.metrics.calibrators.fit import Calibrator
from monitor.metrics.calibrators.raw_fit import complete_raw_score_cells
from monitor.metrics.clipping import LOG_LOSS_EPS
from monitor.metrics.errors import UndefinedMetricError

#: Two-sided 95% normal quantile.
_Z_95 = 1.959963984540054
#: Smallest improvement in held-out log loss (nats per event) worth a new calibrator.
DEFAULT_MARGIN = 1e-3


@dataclass(frozen=True)
class Estimate:
    value: float
    lower: float
    upper: float

    def to_json(self) -> dict[str, float]:
        return {"value": float(self.value), "lower": float(self.lower), "upper": float(self.upper)}


@dataclass(frozen=True)
class CandidateScore:
    calibrator: Calibrator
    log_loss: Estimate
    brier_score: Estimate
    ece: Estimate
    #: This candidate's held-out log loss minus the best candidate's (>= 0).
    log_loss_above_best: Estimate

    @property
    def method(self) -> str:
        return self.calibrator.method


@dataclass(frozen=True)
class Recommendation:
    recommended: Calibrator
    #: Every fitted candidate, in ``METHODS`` order.
    candidates: list[CandidateScore]
    #: Candidates that could not be fitted, and why.
    skipped: dict[str, str] = field(default_factory=dict)
    n_fit: int = 0
    n_validation: int = 0

    def score_of(self, method: str) -> CandidateScore:
        return next(c for c in self.candidates if c.method == method)


def recommend(
    fit_part: LabelledCells,
    later_part: LabelledCells,
    *,
    n_bins: int = 10,
    margin: float = DEFAULT_MARGIN,
    bootstrap_resamples: int = 200,
    seed: int = 0,
    refit_on: LabelledCells | None = None,
) -> Recommendation:
    """Fit every candidate on ``fit_part``, score them on ``later_part``, pick one.

    With ``refit_on`` (the whole window), the recommended method is fitted again on it:
    chosen by its score on events it did not see, then given all the data, and the
    most recent.
    """
    if later_part.n == 0:
        raise ValueError("the later part of the window has no labelled events to score on")
    fitted, skipped = fit_candidates(fit_part)
    _skip_refits_the_later_part_cannot_score(fitted, skipped, later_part)
    held_out = {method: _HeldOut.of(c, later_part) for method, c in fitted.items()}
    best = min(held_out, key=lambda method: held_out[method].losses.log_loss.mean)
    scores = [
        CandidateScore(
            calibrator=calibrator,
            log_loss=held_out[method].losses.log_loss.estimate(),
            brier_score=held_out[method].losses.brier.estimate(),
            ece=_ece(held_out[method], n_bins, bootstrap_resamples, seed),
            log_loss_above_best=_log_loss_difference(held_out[method], held_out[best]),
        )
        for method, calibrator in fitted.items()
    ]
    chosen = next(s for s in scores if s.log_loss_above_best.lower <= margin or s.method == best)
    recommended = chosen.calibrator
    if refit_on is not None:
        with contextlib.suppress(UndefinedMetricError):  # keep the validated fit
            recommended = FITTERS[chosen.method](refit_on)
    return Recommendation(
        recommended=recommended,
        candidates=sorted(scores, key=lambda s: METHODS.index(s.method)),
        skipped=skipped,
        n_fit=fit_part.n,
        n_validation=later_part.n,
    )


@dataclass(frozen=True)
class _PerEvent:
    """A per-event quantity on the held-out cells: its value for a positive and for a
    negative event of each cell, with the cells' positive and negative counts."""

    positive: np.ndarray
    negative: np.ndarray
    n_positive: np.ndarray
    n_negative: np.ndarray

    @property
    def n(self) -> float:
        return float(self.n_positive.sum() + self.n_negative.sum())

    @property
    def mean(self) -> float:
        return float((self.n_positive * self.positive + self.n_negative * self.negative).sum()) / (
            self.n
        )

    def estimate(self) -> Estimate:
        mean = self.mean
        second = (self.n_positive * self.positive**2 + self.n_negative * self.negative**2).sum()
        variance = max(float(second) / self.n - mean**2, 0.0)
        half = _Z_95 * np.sqrt(variance / self.n)
        return Estimate(mean, mean - half, mean + half)

    def minus(self, other: _PerEvent) -> Estimate:
        """The paired difference, event by event (both are on the same events)."""
        return _PerEvent(
            self.positive - other.positive,
            self.negative - other.negative,
            self.n_positive,
            self.n_negative,
        ).estimate()


@dataclass(frozen=True)
class _Losses:
    log_loss: _PerEvent
    brier: _PerEvent


def _skip_refits_the_later_part_cannot_score(
    fitted: dict[str, Calibrator], skipped: dict[str, str], later: LabelledCells
) -> None:
    """A refit from the raw score is scored only where every held-out event has its raw
    score: on fewer, it would be compared with the corrections on other events."""
    refits = [method for method, c in fitted.items() if c.input == "raw_score"]
    if not refits:
        return
    try:
        complete_raw_score_cells(later)
    except UndefinedMetricError as error:
        for method in refits:
            del fitted[method]
            skipped[method] = f"the later part: {error}"


@dataclass(frozen=True)
class _HeldOut:
    """A fitted candidate on the later part: its new p on the cells of its input, the
    losses they give, and (for the pairing with a refit from the raw score) its losses
    on the raw-score cells."""

    calibrator: Calibrator
    mapped: np.ndarray
    count: np.ndarray
    positives: np.ndarray
    losses: _Losses
    on_raw_cells: _Losses | None

    @classmethod
    def of(cls, calibrator: Calibrator, later: LabelledCells) -> _HeldOut:
        raw: RawScoreCells | None = later.raw
        if calibrator.input == "raw_score":
            assert raw is not None  # a refit is only fitted when every event has one
            mapped = calibrator(raw.mean_score)
            losses = _held_out_losses(mapped, raw.count, raw.positives)
            return cls(calibrator, mapped, raw.count, raw.positives, losses, losses)
        mapped = calibrator(later.mean_p)
        on_raw = None
        if raw is not None and raw.n == later.n:
            on_raw = _held_out_losses(calibrator(raw.mean_p), raw.count, raw.positives)
        losses = _held_out_losses(mapped, later.count, later.positives)
        return cls(calibrator, mapped, later.count, later.positives, losses, on_raw)


def _log_loss_difference(candidate: _HeldOut, best: _HeldOut) -> Estimate:
    """candidate minus best, event by event: on the probability cells when both correct
    p, else on the raw-score cells (where both have the same events in each cell)."""
    if candidate.calibrator.input == best.calibrator.input == "probability":
        return candidate.losses.log_loss.minus(best.losses.log_loss)
    assert candidate.on_raw_cells is not None and best.on_raw_cells is not None
    return candidate.on_raw_cells.log_loss.minus(best.on_raw_cells.log_loss)


def _held_out_losses(mapped: np.ndarray, count: np.ndarray, positives: np.ndarray) -> _Losses:
    q = np.clip(mapped, LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS)
    negatives = count - positives
    return _Losses(
        log_loss=_PerEvent(-np.log(q), -np.log1p(-q), positives, negatives),
        brier=_PerEvent((1.0 - q) ** 2, q**2, positives, negatives),
    )


def _ece(held_out: _HeldOut, n_bins: int, resamples: int, seed: int) -> Estimate:
    q, count, positives = held_out.mapped, held_out.count, held_out.positives
    to_bin = np.minimum(np.floor(q * n_bins).astype(np.int64), n_bins - 1)

    def fold(weights: np.ndarray) -> np.ndarray:
        return np.bincount(to_bin, weights=weights, minlength=n_bins)

    bins = BinSums(
        count=fold(count),
        sum_p=fold(count * q),
        sum_y=fold(positives),
        sum_p2=fold(count * q * q),
    )
    value = expected_calibration_error_from_bins(bins)
    if resamples <= 0:
        return Estimate(value, value, value)
    interval = ece_bootstrap_interval_from_bins(bins, n_resamples=resamples, seed=seed)
    return Estimate(value, interval.lower, interval.upper)

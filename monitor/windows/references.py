"""Which reference a series' drift is measured against: resolving and fitting it.

Order of precedence for a (model, version, segment):

1. a snapshot taken with ``calmon baseline`` for that model version (stored);
2. otherwise the configured mode: ``fixed`` (a period, fitted from the stored
   aggregates of that period) or ``trailing`` (the window of the same length just
   before the current one).

A new model version has no snapshot and so gets its own reference from its own events.

A fixed period is fitted afresh at each evaluation until ``FIXED_SETTLE_MS`` after it
ends, then stored (source ``fixed``) and read back from then on. Retention coarsens and
later deletes the buckets it was fitted from (``monitor/store/buckets.py``); without
the stored copy a fixed reference would change as it aged and vanish after 400 days.
"""

from __future__ import annotations

from monitor.core.series import ALL
from monitor.metrics.class_references import ClassReferences
from monitor.metrics.drift import DISTRIBUTIONS, ReferenceProfile
from monitor.metrics.errors import DegenerateReferenceError
from monitor.metrics.histogram import SparseHistogram
from monitor.settings import ReferenceSettings
from monitor.store.aggregates import list_series, load_window
from monitor.store.buckets import window_edge
from monitor.store.db.engine import Engine
from monitor.store.references import (
    FIXED,
    SNAPSHOT,
    TRAILING,
    FittedReferences,
    References,
    load_stored,
    save_references,
)

#: Predictions of a fixed period that arrive late (consumer lag, a replayed partition)
#: still count for this long after it ends; then its reference is stored as it is.
FIXED_SETTLE_MS = 3_600_000


def fit_period(
    engine: Engine,
    *,
    model_id: str,
    model_version: str,
    segment: str,
    start_ms: int,
    end_ms: int,
    psi_bins: int,
    now_ms: int,
) -> tuple[References, ClassReferences | None]:
    """Both distributions' references of a period, and a multi-class series' own."""
    window = load_window(
        engine,
        model_id=model_id,
        model_version=None if model_version == ALL else model_version,
        segment=segment,
        start_ms=start_ms,
        end_ms=end_ms,
        now_ms=now_ms,
    )
    classes = window.multiclass
    return (
        fit_from_histograms(
            window.aggregate.scores, window.aggregate.probabilities, psi_bins=psi_bins
        ),
        None if classes is None else ClassReferences.fit(classes, psi_bins=psi_bins),
    )


def fit_from_histograms(
    scores: SparseHistogram, probabilities: SparseHistogram, *, psi_bins: int
) -> References:
    """Both distributions' references from a period's score and probability cells."""
    fitted: References = {}
    for distribution in DISTRIBUTIONS:
        histogram = scores if distribution == "raw_score" else probabilities
        try:
            fitted[distribution] = ReferenceProfile.from_histogram(
                histogram, kind=distribution, n_bins=psi_bins
            )
        except DegenerateReferenceError:
            fitted[distribution] = None
    return fitted


def snapshot_period(
    engine: Engine,
    *,
    model_id: str,
    model_version: str,
    start_ms: int,
    end_ms: int,
    psi_bins: int,
    now_ms: int,
) -> dict[str, dict[str, int]]:
    """``calmon baseline``: snapshot every segment of a model version from a period.

    Returns, per segment, the event count of each stored reference (empty: no data).
    """
    segments = sorted(
        {
            s.segment
            for s in list_series(engine)
            if (s.model_id, s.model_version) == (model_id, model_version)
        }
    )
    stored: dict[str, dict[str, int]] = {}
    for segment in segments:
        references, classes = fit_period(
            engine,
            model_id=model_id,
            model_version=model_version,
            segment=segment,
            start_ms=start_ms,
            end_ms=end_ms,
            psi_bins=psi_bins,
            now_ms=now_ms,
        )
        save_references(
            engine,
            model_id=model_id,
            model_version=model_version,
            segment=segment,
            references=references,
            start_ms=start_ms,
            end_ms=end_ms,
            now_ms=now_ms,
            psi_bins=psi_bins,
            classes=classes,
        )
        stored[segment] = {d: (p.count if p else 0) for d, p in references.items()}
        if classes is not None:
            stored[segment]["confidence"] = classes.count
    return stored


class ReferenceResolver:
    """Finds each series' references, as evaluated at ``now_ms``.

    ``keep_fixed``: store a fixed period's reference once it has settled. The window
    jobs do; a report, which only reads, does not.
    """

    def __init__(
        self,
        engine: Engine,
        settings: ReferenceSettings,
        *,
        now_ms: int,
        keep_fixed: bool = False,
        stored: dict[tuple[str, str, str], FittedReferences] | None = None,
    ) -> None:
        self._engine = engine
        #: Every series' stored references, read once for all (None: read per series).
        self._stored = stored
        self._settings = settings
        self._now_ms = now_ms  # when the windows are evaluated: it places their edges
        self._keep_fixed = keep_fixed

    def resolve(
        self,
        model_id: str,
        model_version: str,
        segment: str,
        start_ms: int,
        end_ms: int,
        *,
        trailing: tuple[SparseHistogram, SparseHistogram] | None = None,
    ) -> FittedReferences:
        """The references of the series whose current window is [start, end).

        ``trailing``: the score and probability cells of the trailing period, when the
        caller has them (the window caches do); otherwise they are read from the store.
        """
        if self._stored is None:
            stored = load_stored(self._engine, model_id, model_version, segment)
        else:
            stored = self._stored.get((model_id, model_version, segment))
        if stored is not None and stored.source == SNAPSHOT:
            return stored
        if self._settings.mode == "fixed":
            return self._fixed_period(model_id, model_version, segment, stored)
        # The reference ends where the window's first bucket begins. Ending it at the
        # nominal start instead would round that edge up (an end edge is rounded up to
        # the minute) into the window's first minute, and count its events in both.
        length = end_ms - start_ms
        window_start = window_edge(start_ms, self._now_ms, end=False)
        if trailing is None:
            fitted = self._fit(
                model_id, model_version, segment, window_start - length, window_start
            )
        else:
            fitted = fit_from_histograms(*trailing, psi_bins=self._settings.psi_bins)
        return FittedReferences(
            TRAILING, window_start - length, window_start, fitted, self._settings.psi_bins
        )

    def _fit(
        self, model_id: str, model_version: str, segment: str, start_ms: int, end_ms: int
    ) -> References:
        return self._fit_period(model_id, model_version, segment, start_ms, end_ms)[0]

    def _fit_period(
        self, model_id: str, model_version: str, segment: str, start_ms: int, end_ms: int
    ) -> tuple[References, ClassReferences | None]:
        return fit_period(
            self._engine,
            model_id=model_id,
            model_version=model_version,
            segment=segment,
            start_ms=start_ms,
            end_ms=end_ms,
            psi_bins=self._settings.psi_bins,
            now_ms=self._now_ms,
        )

    def _fixed_period(
        self,
        model_id: str,
        model_version: str,
        segment: str,
        stored: FittedReferences | None,
    ) -> FittedReferences:
        start_ms, end_ms = self._settings.period_ms()
        psi_bins = self._settings.psi_bins
        if stored is not None and stored.fitted_as(FIXED, start_ms, end_ms, psi_bins):
            return stored
        fitted, classes = self._fit_period(model_id, model_version, segment, start_ms, end_ms)
        settled = self._now_ms >= end_ms + FIXED_SETTLE_MS
        if self._keep_fixed and settled and (any(fitted.values()) or classes is not None):
            save_references(
                self._engine,
                model_id=model_id,
                model_version=model_version,
                segment=segment,
                references=fitted,
                start_ms=start_ms,
                end_ms=end_ms,
                now_ms=self._now_ms,
                psi_bins=psi_bins,
                source=FIXED,
                classes=classes,
            )
        return FittedReferences(FIXED, start_ms, end_ms, fitted, psi_bins, classes)

"""Incremental sliding windows: each series' window kept in memory between ticks.

A window job used to re-read and re-merge every bucket of every series' window at
every tick. The cache keeps, per stored series (model, version, segment), the sum of
the aggregate ROWS over the window's buckets (``spans.py``), the trailing reference's
probability and score histograms, and the detector's per-bucket residual sums. A tick
then costs what changed, read for all series at once in one snapshot
(``store/fleet.py``):

1. the change log's records since the last tick (``store/changes.py``) inside the
   buckets held: row(now) = row(then) + records, so the held sums become those of
   the rows as they are now;
2. the rows of buckets entering the spans are added, those of buckets leaving taken
   out. Both come from the same snapshot as the records, so a bucket taken out is
   exactly what had been added for it, whatever resolution replaces it (an hour of
   minutes becoming one hour row, an hour split into minutes at the window's start);
3. the deltas not compacted yet are read afresh and added to a copy at evaluation,
   never cached (the next compaction turns them into records).

Exactness: every count (events per cell, labelled, predictions, label delays, the
score and probability histograms, and the positives, sums of 0/1 labels) is an
integer below 2**53, so the incremental value equals a cold read's bit for bit. The
other float sums (of p, p², p·y, squared errors, log losses, logits and Spiegelhalter's
terms) carry the rounding of each addition and subtraction: after k updates of a cell
since it was last read afresh, the error of its sum is at most k·u·(sum of the
magnitudes added and taken out), u = 2**-53 (recursive summation, Higham, Accuracy and
Stability of Numerical Algorithms, 2nd ed., eq. 4.4); a cell whose events all left is
reset to exact zeros. To keep k bounded, each series is read afresh (its exact rebuild)
once every ``rebuild_ticks`` ticks, staggered by series; a cold read rounds too, so the
two agree to the sum of both bounds (``tests/integration/windows/test_incremental.py``).

A restart, a replica that takes the job over, or a change log pruned past the last
tick (the job missed ``CHANGE_LOG_TICKS`` ticks) starts cold: one read per series.
"""

from __future__ import annotations

import logging
import zlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from monitor.metrics.aggregates import COLUMN, EventAggregate
from monitor.metrics.histogram import SparseHistogram
from monitor.settings import Settings, WindowSettings
from monitor.store.aggregates import FOLD_EVERY, BucketResiduals, WindowAggregate
from monitor.store.db.engine import Engine
from monitor.store.fleet import Bucket, BucketPart, SeriesKey, Snapshot, read_snapshot
from monitor.windows.spans import Spans, Targets, spans_at

logger = logging.getLogger(__name__)

#: The raw-score cells (``raw_labelled``): no window metric reads them (the
#: recalibration refit reads its window from the store), so the cache neither decodes
#: nor holds them; they were a third of a window's memory.
_NOT_EVALUATED = frozenset({"raw_labelled"})

#: The change log is kept this many times the longest window ``every`` (plus a minute):
#: a job that misses fewer ticks than that still catches up from it.
CHANGE_LOG_TICKS = 2


def change_log_kept_s(settings: Settings) -> float:
    """How long compaction keeps the change log for the configured windows."""
    return CHANGE_LOG_TICKS * max(window.every for window in settings.windows) + 60.0


def rebuild_ticks(window: WindowSettings) -> int:
    """Ticks between two exact rebuilds of a series: once per window length."""
    return max(1, round(window.length / window.every))


@dataclass
class SeriesState:
    """What the cache holds for one stored series: sums of rows only."""

    window: EventAggregate = field(default_factory=EventAggregate.empty)
    predictions: int = 0
    reference_probabilities: SparseHistogram = field(
        default_factory=lambda: SparseHistogram.empty(1)
    )
    reference_scores: SparseHistogram = field(default_factory=lambda: SparseHistogram.empty(1))
    #: bucket start -> [sum(y - p), sum p(1 - p), labelled events] of the plan's buckets
    residuals: dict[int, np.ndarray] = field(default_factory=dict)

    def apply(self, part: BucketPart, targets: Targets, sign: float) -> None:
        """Add (or with ``sign=-1`` take out) a bucket's row, delta or record wherever
        ``targets`` hold its bucket."""
        if part.bucket in targets.window:
            self.window.add(part.aggregate, sign)
            self.predictions += round(sign) * part.predictions
        if part.bucket in targets.reference:
            self.reference_probabilities = self.reference_probabilities.plus(
                part.aggregate.probabilities, sign
            )
            self.reference_scores = self.reference_scores.plus(part.aggregate.scores, sign)
        if part.bucket in targets.plan:
            start = part.bucket[1]
            self.residuals[start] = self.residuals.get(start, 0.0) + sign * residual_terms(
                part.labelled()
            )

    def keep_plan(self, plan: frozenset[Bucket]) -> None:
        """Forget the residuals of buckets that left the detector's lookback."""
        kept = {start for _, start in plan}
        for start in [s for s in self.residuals if s not in kept]:
            del self.residuals[start]


@dataclass
class Batch:
    """What one tick adds to and takes out of one series, merged before it is applied:
    one in-place update of the window per direction, not one per bucket."""

    window: dict[float, list[EventAggregate]] = field(default_factory=lambda: defaultdict(list))
    reference: dict[float, list[EventAggregate]] = field(default_factory=lambda: defaultdict(list))
    predictions: int = 0
    residuals: dict[int, np.ndarray] = field(default_factory=dict)

    def add(self, part: BucketPart, targets: Targets, sign: float) -> None:
        if part.bucket in targets.window:
            self.window[sign].append(part.aggregate)
            self.predictions += round(sign) * part.predictions
        if part.bucket in targets.reference:
            self.reference[sign].append(part.aggregate)
        if part.bucket in targets.plan:
            start = part.bucket[1]
            terms = sign * residual_terms(part.labelled())
            self.residuals[start] = self.residuals.get(start, 0.0) + terms

    def apply_to(self, state: SeriesState) -> None:
        """Additions first: what leaves may hold events a record of this tick added."""
        for sign in sorted(self.window, reverse=True):
            state.window.add(EventAggregate.merge_all(self.window[sign]), sign)
        for sign in sorted(self.reference, reverse=True):
            merged = EventAggregate.merge_all(self.reference[sign])
            state.reference_probabilities = state.reference_probabilities.plus(
                merged.probabilities, sign
            )
            state.reference_scores = state.reference_scores.plus(merged.scores, sign)
        state.predictions += self.predictions
        for start, terms in self.residuals.items():
            state.residuals[start] = state.residuals.get(start, 0.0) + terms


def residual_terms(labelled: SparseHistogram) -> np.ndarray:
    """[sum(y - p), sum p(1 - p), labelled events] of an aggregate's labelled cells."""
    if labelled.keys.size == 0:
        return np.zeros(3)
    totals = labelled.values.sum(axis=0)
    sum_p, sum_y, sum_p2 = (totals[COLUMN[c]] for c in ("sum_p", "sum_y", "sum_p2"))
    return np.array([sum_y - sum_p, sum_p - sum_p2, totals[COLUMN["count"]]])


@dataclass(frozen=True)
class SeriesView:
    """One stored series at this tick: the cached sums plus the pending deltas."""

    window: WindowAggregate
    reference_scores: SparseHistogram
    reference_probabilities: SparseHistogram
    residuals: BucketResiduals


class WindowCache:
    """The window aggregates of every series of one window, kept between ticks."""

    def __init__(self, window: WindowSettings, settings: Settings) -> None:
        self._window = window
        self._settings = settings
        self._states: dict[SeriesKey, SeriesState] = {}
        self._held: Spans | None = None
        self._seq: int | None = None
        self._ticks = 0
        #: What the last tick did: series read afresh, and rows or records applied.
        self.last_cold = 0
        self.last_parts = 0

    def forget(self) -> None:
        """Drop every state: the next tick reads every series afresh."""
        self._states.clear()
        self._held = self._seq = None

    def advance(
        self,
        engine: Engine,
        now_ms: int,
        series: Iterable[SeriesKey],
        *,
        retained_at: int | None = None,
        models: Sequence[str] | None = None,
    ) -> dict[SeriesKey, SeriesView]:
        """Bring every listed series up to ``now_ms`` and return its view; series not
        listed are dropped from the cache. ``retained_at``: see ``spans_at``.

        ``models``: the model ids of the listed series, when they are a part of the
        fleet (a shard): the reads then leave the other models out. A cache holds one
        part of the fleet, always the same (one cache per shard).
        """
        spans = spans_at(self._window, self._settings, now_ms, retained_at=retained_at)
        wanted = set(series)
        with read_snapshot(engine, skip=_NOT_EVALUATED) as snapshot:
            if not self._can_catch_up(snapshot, spans):
                self._states.clear()
            for key in [k for k in self._states if k not in wanted or self._rebuild_due(k)]:
                del self._states[key]
            self.last_parts = self._catch_up(snapshot, spans, models)
            cold = sorted(wanted - self._states.keys())
            for key in cold:
                self._states[key] = self._read_cold(snapshot, key, spans)
            pending = self._pending(snapshot, spans, models)
            self._seq, self._held = snapshot.position.seq, spans
        self._ticks += 1
        self.last_cold = len(cold)
        return {key: self._view(key, spans, pending.get(key)) for key in sorted(wanted)}

    def _can_catch_up(self, snapshot: Snapshot, spans: Spans) -> bool:
        position = snapshot.position
        return (
            self._held is not None
            and self._seq is not None
            and position.pruned_seq <= self._seq <= position.seq
            and self._held.can_move_to(spans)
        )

    def _rebuild_due(self, key: SeriesKey) -> bool:
        offset = zlib.crc32(repr(key).encode())
        return (self._ticks + offset) % rebuild_ticks(self._window) == 0

    def _catch_up(self, snapshot: Snapshot, spans: Spans, models: Sequence[str] | None) -> int:
        """Records since the last tick, then the rows entering and leaving (steps 1, 2)."""
        held, seq = self._held, self._seq
        if held is None or seq is None or not self._states:
            return 0
        batches: dict[SeriesKey, Batch] = defaultdict(Batch)
        steps = [
            (snapshot.records(seq, held.every_bucket, models), [(held.targets, 1.0)]),
            (
                snapshot.rows(held.entering_or_leaving(spans), models),
                [(held.entering(spans), 1.0), (held.leaving(spans), -1.0)],
            ),
        ]
        applied = 0
        for parts, moves in steps:
            for part in parts:
                if part.series in self._states:
                    applied += 1
                    for targets, sign in moves:
                        batches[part.series].add(part, targets, sign)
        for key, batch in batches.items():
            try:
                batch.apply_to(self._states[key])
            except ValueError:
                # Taking out events the state never held: the store changed in a way
                # the change log does not tell (a restore, a clock far off). Read afresh.
                logger.warning(
                    "window cache out of step; series read afresh",
                    extra={"window": self._window.name, "series": "/".join(key)},
                )
                del self._states[key]
        for state in self._states.values():
            state.keep_plan(spans.plan_set)
        return applied

    def _read_cold(self, snapshot: Snapshot, key: SeriesKey, spans: Spans) -> SeriesState:
        state = SeriesState()
        others = _without_window(spans)
        window_parts: list[EventAggregate] = []
        for part in snapshot.series_rows(key, spans.every_bucket):
            if part.bucket in spans.window_set:
                # Merged a few at a time: cheaper than adding rows one by one, and
                # holding all of a week's rows at once costs memory.
                window_parts.append(part.aggregate)
                state.predictions += part.predictions
                if len(window_parts) > FOLD_EVERY:
                    window_parts = [EventAggregate.merge_all(window_parts)]
            state.apply(part, others, 1.0)
        state.window = EventAggregate.merge_all(window_parts).copy()
        return state

    def _pending(
        self, snapshot: Snapshot, spans: Spans, models: Sequence[str] | None
    ) -> dict[SeriesKey, SeriesState]:
        """The deltas not compacted yet, per series, in a state of their own (step 3)."""
        pending: dict[SeriesKey, list[BucketPart]] = defaultdict(list)
        for part in snapshot.pending(spans.every_bucket, models):
            pending[part.series].append(part)
        others = _without_window(spans)
        states = {}
        for key, parts in pending.items():
            state = states[key] = SeriesState()
            in_window = [p for p in parts if p.bucket in spans.window_set]
            state.window = EventAggregate.merge_all([p.aggregate for p in in_window])
            state.predictions = sum(p.predictions for p in in_window)
            for part in parts:
                state.apply(part, others, 1.0)
        return states

    def _view(self, key: SeriesKey, spans: Spans, pending: SeriesState | None) -> SeriesView:
        state = self._states[key]
        return combine([state] if pending is None else [state, pending], len(spans.window))


def _without_window(spans: Spans) -> Targets:
    return Targets(frozenset(), spans.reference_set, spans.plan_set)


def combine(states: Sequence[SeriesState], buckets: int) -> SeriesView:
    """The sum of several states (a series and its pending deltas; or every version of
    a model's segment), as the window job evaluates it. Never modifies ``states``."""
    window = EventAggregate.merge_all([s.window for s in states])
    residuals: dict[int, np.ndarray] = {}
    for state in states:
        for start, terms in state.residuals.items():
            residuals[start] = residuals.get(start, 0.0) + terms
    labelled = sorted(start for start, terms in residuals.items() if terms[2] > 0)
    return SeriesView(
        window=WindowAggregate(window, sum(s.predictions for s in states), buckets),
        reference_scores=SparseHistogram.merge_many([s.reference_scores for s in states]),
        reference_probabilities=SparseHistogram.merge_many(
            [s.reference_probabilities for s in states]
        ),
        residuals=BucketResiduals(
            bucket_start_ms=np.array(labelled, dtype=np.int64),
            residual_sums=np.array([residuals[s][0] for s in labelled], dtype=float),
            variances=np.array([residuals[s][1] for s in labelled], dtype=float),
        ),
    )


def merge_views(views: Sequence[SeriesView]) -> SeriesView:
    """Several stored series as one (a model's segment over all its versions)."""
    if len(views) == 1:
        return views[0]
    residuals: dict[int, np.ndarray] = {}
    for view in views:
        r = view.residuals
        for start, total, variance in zip(
            r.bucket_start_ms.tolist(), r.residual_sums, r.variances, strict=True
        ):
            residuals[start] = residuals.get(start, 0.0) + np.array([total, variance])
    starts = sorted(residuals)
    return SeriesView(
        window=WindowAggregate(
            EventAggregate.merge_all([v.window.aggregate for v in views]),
            sum(v.window.predictions for v in views),
            sum(v.window.buckets for v in views),
        ),
        reference_scores=SparseHistogram.merge_many([v.reference_scores for v in views]),
        reference_probabilities=SparseHistogram.merge_many(
            [v.reference_probabilities for v in views]
        ),
        residuals=BucketResiduals(
            bucket_start_ms=np.array(starts, dtype=np.int64),
            residual_sums=np.array([residuals[s][0] for s in starts], dtype=float),
            variances=np.array([residuals[s][1] for s in starts], dtype=float),
        ),
    )

"""Which stored buckets one window job reads at a given time, for every series.

Three sets, the same for every series of the window:

- ``window``: the buckets covering the window [now - length, now) as every reader of
  the store places its edges (``store.buckets.cover``);
- ``reference``: those of the trailing drift reference, the window of the same length
  just before it (``windows.references``), when the reference mode is trailing;
- ``plan``: the buckets of the sequential detector's lookback (``windows.sequential``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from monitor.settings import Settings, WindowSettings
from monitor.store.buckets import BUCKETS_KEPT_S, bucket_start, cover
from monitor.store.fleet import Bucket
from monitor.windows.sequential import plan_for


@dataclass(frozen=True)
class Targets:
    """Where a bucket's row counts: in the window, the reference, the detector's plan."""

    window: frozenset[Bucket]
    reference: frozenset[Bucket]
    plan: frozenset[Bucket]


@dataclass(frozen=True)
class Spans:
    now_ms: int
    window: tuple[Bucket, ...]
    reference: tuple[Bucket, ...]
    plan: tuple[Bucket, ...]
    #: The clock retention deleted by when these buckets were placed (``now_ms`` unless
    #: a past window is evaluated).
    kept_at: int = 0

    @cached_property
    def window_set(self) -> frozenset[Bucket]:
        return frozenset(self.window)

    @cached_property
    def reference_set(self) -> frozenset[Bucket]:
        return frozenset(self.reference)

    @cached_property
    def plan_set(self) -> frozenset[Bucket]:
        return frozenset(self.plan)

    @cached_property
    def every_bucket(self) -> frozenset[Bucket]:
        return self.window_set | self.reference_set | self.plan_set

    @cached_property
    def targets(self) -> Targets:
        return Targets(self.window_set, self.reference_set, self.plan_set)

    def leaving(self, later: Spans) -> Targets:
        """Buckets held now and not ``later`` (the plan's are dropped, not taken out)."""
        return Targets(
            self.window_set - later.window_set,
            self.reference_set - later.reference_set,
            frozenset(),
        )

    def entering(self, later: Spans) -> Targets:
        return Targets(
            later.window_set - self.window_set,
            later.reference_set - self.reference_set,
            later.plan_set - self.plan_set,
        )

    def entering_or_leaving(self, later: Spans) -> frozenset[Bucket]:
        """Buckets whose rows a move from these spans to ``later`` adds or takes out
        (the plan's leaving buckets are dropped, not read)."""
        return (
            (self.window_set ^ later.window_set)
            | (self.reference_set ^ later.reference_set)
            | (later.plan_set - self.plan_set)
        )

    def can_move_to(self, later: Spans) -> bool:
        """Whether every bucket leaving the window or the reference is still stored
        at ``later`` (retention keeps each resolution ``BUCKETS_KEPT_S`` after its
        start), so that taking it out removes what was added."""
        leaving = (self.window_set - later.window_set) | (self.reference_set - later.reference_set)
        return later.now_ms >= self.now_ms and all(
            start >= max(later.now_ms, later.kept_at) - BUCKETS_KEPT_S[resolution] * 1000
            for resolution, start in leaving
        )


def spans_at(
    window: WindowSettings, settings: Settings, now_ms: int, *, retained_at: int | None = None
) -> Spans:
    """The buckets of the window ending at ``now_ms``, its edges placed on what retention
    keeps at ``retained_at`` (default ``now_ms``; the wall clock for a past window)."""
    length = int(window.length * 1000)
    kept_at = now_ms if retained_at is None else retained_at
    buckets = tuple(cover(now_ms - length, now_ms, kept_at))
    reference: tuple[Bucket, ...] = ()
    if settings.reference.mode == "trailing":
        window_start = buckets[0][1]
        reference = tuple(cover(window_start - length, window_start, kept_at))
    return Spans(now_ms, buckets, reference, plan_buckets(window, settings, now_ms), kept_at)


def plan_buckets(window: WindowSettings, settings: Settings, now_ms: int) -> tuple[Bucket, ...]:
    """The detector's buckets: its lookback, the newest being the one filling at ``now``."""
    sequential = settings.evaluation.sequential
    if not sequential.enabled:
        return ()
    plan = plan_for(window, sequential)
    first = bucket_start(now_ms, plan.resolution_s) - plan.lookback_ms + plan.resolution_ms
    return tuple((plan.resolution_s, start) for start in range(first, now_ms, plan.resolution_ms))

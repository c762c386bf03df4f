"""This replica's share of every window's series, and what of it a tick evaluates.

The store leases the shards (``monitor/store/shards.py``); here ``beat`` keeps the
leases (a scheduled job, every third of ``store.replica_lease``) and ``work`` says which
held shards a window job runs at a given time:

- ``current``: the shards not stored yet for the slot (tick) the time falls in;
- ``missed``: those whose previous slot nobody stored because their owner died in it
  (this replica took them over since): evaluated once, as of that slot's last
  millisecond, so a replica's death costs no series a tick. Only the one slot: older
  gaps (everything down for a while) are not queued up.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from monitor.core.times import wall_clock_ms
from monitor.store import shards as leases
from monitor.store.db.engine import Engine

logger = logging.getLogger(__name__)

ALL_SHARDS = frozenset(range(leases.SHARDS))


@dataclass(frozen=True)
class Work:
    slot_ms: int
    current: frozenset[int]
    missed: frozenset[int]


class ShardCoordinator:
    def __init__(
        self,
        engine: Engine,
        owner: str,
        windows: Iterable[str],
        *,
        lease_s: float,
        clock_ms: Callable[[], int] = wall_clock_ms,
        on_gained: Callable[[str, frozenset[int]], None] | None = None,
    ) -> None:
        """``on_gained(window, shards)``: told after a beat took shards over, except the
        first beat's (start-up: the window jobs run at their first scheduled time, as
        they always have)."""
        self._engine = engine
        self._owner = owner
        self._windows = list(windows)
        self._lease_ms = int(lease_s * 1000)
        self._clock_ms = clock_ms
        self._on_gained = on_gained
        self._lock = threading.Lock()
        self._held: dict[str, frozenset[int]] | None = None  # None: no beat yet

    @property
    def beat_every_s(self) -> float:
        return self._lease_ms / 3000

    def beat(self) -> dict[str, frozenset[int]]:
        held = leases.balance(
            self._engine,
            self._owner,
            self._windows,
            now_ms=self._clock_ms(),
            lease_ms=self._lease_ms,
        )
        with self._lock:
            first, before, self._held = self._held is None, self._held or {}, held
        for window, shards in held.items():
            gained, lost = (
                shards - before.get(window, frozenset()),
                before.get(window, frozenset()) - shards,
            )
            if gained or lost:
                logger.info(
                    "window shards moved",
                    extra={"window": window, "gained": sorted(gained), "lost": sorted(lost)},
                )
            if gained and not first and self._on_gained is not None:
                self._on_gained(window, gained)
        return held

    def held(self, window: str) -> frozenset[int]:
        with self._lock:
            held = self._held
        if held is None:
            held = self.beat()  # a job run before the first scheduled beat
        return held.get(window, frozenset())

    def work(
        self, window: str, every_ms: int, now_ms: int, *, among: frozenset[int] | None = None
    ) -> Work:
        """What of ``window`` this replica evaluates at ``now_ms`` (of the shards
        ``among``, or every held one)."""
        slot = now_ms - now_ms % every_ms
        held = self.held(window) & (ALL_SHARDS if among is None else among)
        if not held:
            return Work(slot, frozenset(), frozenset())
        done = {
            state.shard: state.done_slot_ms
            for state in leases.shard_states(self._engine, window)
            if state.owner == self._owner
        }
        current = frozenset(s for s in held if s in done and (done[s] or -1) < slot)
        missed = frozenset(s for s in current if done[s] == slot - 2 * every_ms)
        return Work(slot, current, missed)

    def leave(self) -> None:
        leases.leave(self._engine, self._owner)


def tick_done(engine: Engine, window: str, every_ms: int) -> int | None:
    """The newest tick (slot) of ``window`` whose results are all stored, as far as they
    will be: the newest slot any shard was stored for, once every shard has it, else
    the slot before it (a shard still behind then skipped it, or is late). None before
    any tick was stored."""
    done = [state.done_slot_ms for state in leases.shard_states(engine, window)]
    known = [slot for slot in done if slot is not None]
    if not known:
        return None
    newest = max(known)
    if len(known) == leases.SHARDS and min(known) == newest:
        return newest
    return newest - every_ms


class TakeOvers:
    """Runs a window job's ``take_over`` as soon as a beat hands this replica shards,
    in a thread of its own: not in the beat's (it must go on renewing the leases), not
    through the scheduler (a job that calls into APScheduler while it shuts down
    deadlocks it)."""

    def __init__(self, take_over: Mapping[str, Callable[[], object]]) -> None:
        """``take_over``: window name -> its job's ``take_over``."""
        self._take_over = dict(take_over)
        self._queue: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="take-over", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def request(self, window: str, shards: frozenset[int]) -> None:
        self._queue.put(window)

    def stop(self, timeout_s: float) -> None:
        self._queue.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def _loop(self) -> None:
        while (window := self._queue.get()) is not None:
            try:
                self._take_over[window]()
            except Exception:  # the store away, a bug: the next scheduled run retries
                logger.exception("taking window shards over failed", extra={"window": window})

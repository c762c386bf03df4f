"""Keeps /metrics' window results as stored, reading the store at most once per tick.

Every replica exports the same series, but not every replica evaluates every series.
A replica that evaluated a whole tick (it holds every shard: alone) exports what it
stored as it is, without a read; otherwise each window is read back from the store
once its tick is done (every replica's share stored), by every replica within
``REFRESH_EVERY_S`` of the others, so they serve the same tick — never on a scrape.
``refresh`` runs on that schedule and costs one small query per window until a tick is
done.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from monitor.core.results import WindowResult
from monitor.export.exposition import WindowExposition
from monitor.store.db.engine import Engine
from monitor.store.results import latest_results

logger = logging.getLogger(__name__)

#: How often replicas look for a finished tick of each window.
REFRESH_EVERY_S = 2.0


class ExpositionRefresher:
    def __init__(
        self,
        engine: Engine,
        exposition: WindowExposition,
        windows: Sequence[str],
        *,
        tick_done: Callable[[str], int | None],
    ) -> None:
        """``tick_done(window)``: the newest slot (epoch ms) of the window whose results
        are all stored, or None."""
        self._engine = engine
        self._exposition = exposition
        self._windows = list(windows)
        self._tick_done = tick_done
        #: window -> the slot whose results the exposition holds (None: read before any
        #: tick was done); absent until first read.
        self._held: dict[str, int | None] = {}
        # One at a time: a read of the store must not overwrite newer local results.
        self._lock = threading.Lock()

    def stored(
        self,
        window: str,
        slot_ms: int,
        results: list[WindowResult],
        *,
        models: Callable[[str], bool] | None = None,
    ) -> None:
        """This replica stored ``results`` of ``window`` for ``slot_ms``, of the models
        ``models`` selects (None: every model, the whole tick: exported as they are).
        A share of a tick is exported when the tick is done, read back with the other
        replicas' shares, so that every replica serves one tick at a time."""
        if models is not None:
            return
        with self._lock:
            self._exposition.replace(window, results)
            self._held[window] = max(slot_ms, self._held.get(window) or slot_ms)

    def refresh(self) -> None:
        """Read back each window whose newest done tick the exposition does not hold."""
        for window in self._windows:
            with self._lock:
                done = self._tick_done(window)
                if not self._behind(window, done):
                    continue
                self._exposition.replace(window, latest_results(self._engine, window=window))
                self._held[window] = done
            logger.debug("window results read back", extra={"window": window, "slot_ms": done})

    def _behind(self, window: str, done: int | None) -> bool:
        if window not in self._held:
            return True  # never read: start-up
        held = self._held[window]
        return done is not None and (held is None or done > held)

"""SIGINT and SIGTERM as a flag the main thread polls.

Why not ``event.set()`` in the handler, the obvious way: a signal handler runs in the
main thread, between two bytecodes of whatever it was doing. If that was
``Event.wait``, the main thread may hold the event's condition lock (taken back as the
wait wakes or times out), and ``set()`` then blocks on that lock for ever: the demo hung
this way under load, Ctrl-C ignored. The handler here only stores the signal; the main
thread sees it within ``poll_s`` and stops the rest from ordinary code.
"""

from __future__ import annotations

import signal
import time
from types import FrameType


class ShutdownSignals:
    def __init__(self) -> None:
        #: The signal received, or None.
        self.received: int | None = None

    def install(self) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._handle)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self.received = signum

    def wait(self, timeout_s: float | None = None, *, poll_s: float = 0.1) -> bool:
        """Sleep until a signal arrives (True) or ``timeout_s`` passes (False)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while self.received is None:
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(poll_s)
        return True

"""``calmon backfill --history``: the window results of a backfilled period, as the
daemon would have computed them had it been running then.

Each configured window is evaluated by the daemon's own job (``windows/jobs.py``) at
every multiple of its ``every`` (or of ``--history-step``, when coarser) from the first
backfilled event until the last one's next step, never past now. The values go to the
metric history the JSON API, ``calmon report`` and relative rules read (never to the
latest results the exporter shows, which stay the daemon's), and, with
``--openmetrics FILE``, to a file Prometheus imports as blocks (``export/openmetrics.py``).

What differs from a daemon that was running then: a window's edges are placed on the
buckets retention keeps *now* (minutes for 3 days, hours for 62, then days:
``store/buckets.py``), as the daemon places the edges of a window reaching that far
back; alert rules are not run (nothing fires for the past) and thresholds ``from_reference``
are not computed.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry

from monitor.export.openmetrics import OpenMetricsHistory
from monitor.settings import Settings, WindowSettings
from monitor.store.db.engine import Engine
from monitor.store.results import save_history
from monitor.windows.jobs import JobMetrics, WindowJob


@dataclass(frozen=True)
class Plan:
    """One window's evaluations: every ``step_ms`` from ``first_ms`` to ``last_ms``."""

    window: WindowSettings
    first_ms: int
    last_ms: int
    step_ms: int

    @property
    def evaluations(self) -> int:
        return (
            0
            if self.last_ms < self.first_ms
            else (self.last_ms - self.first_ms) // self.step_ms + 1
        )

    def times(self) -> Iterator[int]:
        return iter(range(self.first_ms, self.last_ms + 1, self.step_ms))


def plans(
    settings: Settings,
    first_event_ms: int,
    last_event_ms: int,
    *,
    now_ms: int,
    step_s: float | None,
) -> list[Plan]:
    """Each window's evaluation times over the backfilled period."""
    result = []
    for window in settings.windows:
        step = int(max(window.every, step_s or 0) * 1000)
        first = (first_event_ms // step + 1) * step  # the first step after the first event
        last = min((last_event_ms // step + 1) * step, now_ms - now_ms % step)
        result.append(Plan(window, first, last, step))
    return result


@dataclass
class HistorySummary:
    evaluations: int = 0
    points: int = 0
    samples: int = 0


def write_history(
    engine: Engine,
    settings: Settings,
    schedule: list[Plan],
    *,
    models: Collection[str],
    now_ms: int,
    openmetrics: OpenMetricsHistory | None = None,
    on_progress: Callable[[int], None] = lambda evaluations: None,
) -> HistorySummary:
    """Evaluate and store every planned window of the backfilled ``models`` (other
    models of the store keep the history their daemon wrote)."""
    summary = HistorySummary()
    registry = CollectorRegistry()  # the jobs' own timings: not the daemon's
    metrics = JobMetrics(registry)
    for plan in schedule:
        job = WindowJob(engine, settings, plan.window, owner="backfill", metrics=metrics)
        for at in plan.times():
            results = [
                r for r in job.evaluate_all(at, retained_at=now_ms) if r.series.model in models
            ]
            summary.points += save_history(engine, results)
            if openmetrics is not None:
                openmetrics.add(results, at)
            summary.evaluations += 1
            on_progress(1)
    summary.samples = openmetrics.samples if openmetrics is not None else 0
    return summary

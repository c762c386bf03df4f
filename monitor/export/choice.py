"""Which metrics and bins each series exports on /metrics (``export.series``).

The first entry whose ``windows``, ``segments`` and ``models`` all match a series
decides; a series no entry matches is not exported. Only /metrics follows the choice:
the JSON API, rules and webhooks see every metric of every series.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass

from monitor.core.series import ALL
from monitor.settings import ExportSeriesSettings, ExportSettings


@dataclass(frozen=True)
class SeriesExport:
    """What one series exports: metric names (None: every one) and which bins."""

    metrics: frozenset[str] | None
    reliability_bins: bool
    drift_bins: bool

    def exports(self, metric: str) -> bool:
        return self.metrics is None or metric in self.metrics


class ExportChoice:
    def __init__(self, settings: ExportSettings) -> None:
        self._entries = [(entry, _export_of(entry)) for entry in settings.series]
        #: (model, segment, window) -> decision; a fleet has a few thousand of them.
        self._decided: dict[tuple[str, str, str], SeriesExport | None] = {}

    def of(self, model: str, segment: str, window: str) -> SeriesExport | None:
        """What the series exports; None: nothing (no entry matches it)."""
        key = (model, segment, window)
        if key not in self._decided:
            self._decided[key] = next(
                (
                    export
                    for entry, export in self._entries
                    if _matches(entry, model, segment, window)
                ),
                None,
            )
        return self._decided[key]


def _export_of(entry: ExportSeriesSettings) -> SeriesExport:
    return SeriesExport(
        metrics=None if entry.metrics == "all" else frozenset(entry.metrics),
        reliability_bins="reliability" in entry.bins,
        drift_bins="drift" in entry.bins,
    )


def _matches(entry: ExportSeriesSettings, model: str, segment: str, window: str) -> bool:
    if entry.windows is not None and window not in entry.windows:
        return False
    if entry.segments is not None and not any(
        segment == wanted if wanted == ALL else segment.startswith(f"{wanted}=")
        for wanted in entry.segments
    ):
        return False
    return entry.models is None or any(
        fnmatch.fnmatchcase(model, pattern) for pattern in entry.models
    )


def export_problems(
    settings: ExportSettings,
    *,
    metrics: Iterable[str],
    windows: Iterable[str],
    segment_keys: Iterable[str],
) -> list[str]:
    """What in ``export.series`` names a metric, window or segment key that does not
    exist (it would silently export nothing), one line each, with the key's path."""
    known_metrics, known_windows = sorted(metrics), set(windows)
    known_segments = {ALL, *segment_keys}
    problems = []
    for index, entry in enumerate(settings.series):
        path = f"export.series.{index}"
        for metric in [] if entry.metrics == "all" else entry.metrics:
            if metric not in known_metrics:
                problems.append(
                    f"{path}.metrics: no metric {metric!r}{_did_you_mean(metric, known_metrics)}"
                )
        for window in entry.windows or []:
            if window not in known_windows:
                problems.append(f"{path}.windows: {window!r} is no configured window")
        for segment in entry.segments or []:
            if segment not in known_segments:
                problems.append(
                    f"{path}.segments: {segment!r} is neither {ALL} (the whole-model "
                    "series) nor one of store.segment_keys"
                )
    return problems


def _did_you_mean(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""

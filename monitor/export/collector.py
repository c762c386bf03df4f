"""Prometheus collectors read on each scrape: calmon's alerts and recalibrations (small
tables). The window results, a fleet's bulk, are rendered ahead of scrapes
(``exposition.py``).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from monitor.core.recalibrations import STATES
from monitor.core.series import SeriesWindow
from monitor.export.exposition import SERIES_LABELS
from monitor.store.alerts import load_alerts
from monitor.store.db.engine import Engine
from monitor.store.recalibrations import load as load_recalibrations


class AlertsCollector(Collector):
    """``calmon_alerts{alertname, severity, state, model, model_version, segment, window}``:
    calmon's own alerts per state, from the store (Grafana annotates charts with them)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "calmon_alerts",
            "calmon's alerts by rule, severity, state (pending, firing, resolved) and series.",
            labels=["alertname", "severity", "state", *SERIES_LABELS],
        )
        counts: dict[tuple[str, ...], int] = {}
        for alert in load_alerts(self._engine).values():
            series = alert.state.series
            key = (
                alert.state.rule,
                alert.labels.get("severity", ""),
                str(alert.state.state),
                series.model,
                series.model_version,
                series.segment,
                series.window,
            )
            counts[key] = counts.get(key, 0) + 1
        for labels, count in sorted(counts.items()):
            family.add_metric(list(labels), count)
        yield family

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())


class RecalibrationsCollector(Collector):
    """``calmon_recalibration_outcome{model, model_version, segment, window, state}``: the
    latest recommended calibrator of each series and where it stands (state set: 1 for
    its state), from the store."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "calmon_recalibration_outcome",
            "The latest recommended calibrator of each series, 1 for its state: awaiting "
            "(not deployed, or too few labels yet), verified, failed or expired (not "
            "measured within evaluation.recalibration_expiry).",
            labels=[*SERIES_LABELS, "state"],
        )
        seen: set[SeriesWindow] = set()
        for recalibration in load_recalibrations(self._engine):  # newest first
            series = recalibration.series
            if series in seen:
                continue
            seen.add(series)
            labels = [series.model, series.model_version, series.segment, series.window]
            for state in STATES:
                family.add_metric([*labels, state], float(state == recalibration.state))
        yield family

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())

"""Prometheus collectors read on each scrape: calmon's alerts and recalibrations (small
tables). The window results, a fleet's bulk, are rendered ahead of scrapes
(``exposition.py``).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from monitor.core.recalibrations import STATES, Recalibration
from monitor.core.series import SeriesWindow
from monitor.export.exposition import SERIES_LABELS
from monitor.store.alerts import load_alerts
from monitor.store.db.engine import Engine
from monitor.store.recalibrations import load as load_recalibrations
from monitor.store.recalibrations import switches as recalibration_switches


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
    its state), from the store; and when its calibrator went live
    (``calmon_recalibration_switch_timestamp_seconds``)."""

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
        switch_family = GaugeMetricFamily(
            "calmon_recalibration_switch_timestamp_seconds",
            "When the latest recommended calibrator of each series went live: calmon's "
            "first prediction of the series version that runs it (deployed_model_version); "
            "absent until one arrives. The drill-down dashboard's annotation at the switch.",
            labels=[*SERIES_LABELS, "deployed_model_version", "state"],
        )
        latest: dict[SeriesWindow, Recalibration] = {}
        for recalibration in load_recalibrations(self._engine):  # newest first
            latest.setdefault(recalibration.series, recalibration)
        switches = recalibration_switches(self._engine, latest.values())
        for series, recalibration in latest.items():
            labels = [series.model, series.model_version, series.segment, series.window]
            for state in STATES:
                family.add_metric([*labels, state], float(state == recalibration.state))
            switch = switches.get(recalibration.alert_id)
            if switch is not None:
                switch_family.add_metric(
                    [*labels, switch.model_version, recalibration.state], switch.at_ms / 1000
                )
        yield family
        yield switch_family

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())

"""Prometheus export of the latest window results, as a custom Collector.

On each scrape the collector reads the latest results from the store (cached for a few
seconds), so every replica exports the same values, and series of models or segments
that disappeared go away by themselves. Metric names are listed in docs/operations.md
("Prometheus metrics").
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from monitor.core.recalibrations import STATES
from monitor.core.results import WindowResult
from monitor.core.series import SeriesWindow
from monitor.store.alerts import load_alerts
from monitor.store.db.engine import Engine
from monitor.store.recalibrations import load as load_recalibrations
from monitor.store.results import latest_results
from monitor.windows import metric_names
from monitor.windows.metric_names import LABEL_DELAY_QUANTILES

SERIES_LABELS = ["model", "model_version", "segment", "window"]
DISTRIBUTION_SUFFIXES = ("_raw_score", "_probability")
QUANTILE_KEYS = {key: str(q) for q, key in LABEL_DELAY_QUANTILES.items()}
#: Metric key -> help text. Only these keys are exported (a typo cannot leak out).
CALIBRATION_HELP = {
    **metric_names.LABELLED,
    **metric_names.ESTIMATED,
    **metric_names.ESTIMATE_GAPS,
    **metric_names.SEQUENTIAL,
    **metric_names.REFERENCE_STATISTICS,
    **metric_names.VOLUME,
}
DRIFT_HELP = {**metric_names.DRIFT, **metric_names.DRIFT_VOLUME}
CACHE_SECONDS = 5.0


class WindowResultsCollector(Collector):
    def __init__(
        self,
        load: Callable[[], list[WindowResult]],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: list[WindowResult] = []
        self._loaded_at: float | None = None

    @classmethod
    def from_engine(cls, engine: Engine) -> WindowResultsCollector:
        return cls(lambda: latest_results(engine))

    def _results(self) -> list[WindowResult]:
        with self._lock:
            now = self._clock()
            if self._loaded_at is None or now - self._loaded_at > CACHE_SECONDS:
                self._cached = self._load()
                self._loaded_at = now
            return self._cached

    def collect(self) -> Iterator[GaugeMetricFamily]:
        results = self._results()
        families = {
            key: GaugeMetricFamily(f"calmon_{key}", text, labels=SERIES_LABELS)
            for key, text in CALIBRATION_HELP.items()
        }
        drift = {
            key: GaugeMetricFamily(f"calmon_{key}", text, labels=[*SERIES_LABELS, "distribution"])
            for key, text in DRIFT_HELP.items()
        }
        delay = GaugeMetricFamily(
            "calmon_window_label_delay_seconds",
            "Quantiles of label delay (prediction to label) of the window's labelled events.",
            labels=[*SERIES_LABELS, "quantile"],
        )
        bins = {
            name: GaugeMetricFamily(
                f"calmon_reliability_bin_{name}", text, labels=[*SERIES_LABELS, "bin"]
            )
            for name, text in (
                ("mean_predicted", "Mean predicted probability of the reliability bin."),
                ("observed_ratio", "Observed frequency of positives in the reliability bin."),
                ("events", "Labelled events in the reliability bin."),
            )
        }
        drift_bins = GaugeMetricFamily(
            "calmon_drift_bin_fraction",
            "Share of events in each PSI bin (the reference's quantile bins), for the "
            "reference and the current window (source label).",
            labels=[*SERIES_LABELS, "distribution", "bin", "source"],
        )
        for result in results:
            labels = [
                result.series.model,
                result.series.model_version,
                result.series.segment,
                result.series.window,
            ]
            for key, value in result.values.items():
                if key in families:
                    families[key].add_metric(labels, value)
                elif key in QUANTILE_KEYS:
                    delay.add_metric([*labels, QUANTILE_KEYS[key]], value)
                else:
                    for suffix in DISTRIBUTION_SUFFIXES:
                        base = key.removesuffix(suffix)
                        if base != key and base in drift:
                            drift[base].add_metric([*labels, suffix[1:]], value)
            for point in result.reliability_bins:
                bin_labels = [*labels, str(point.index)]
                bins["mean_predicted"].add_metric(bin_labels, point.mean_predicted)
                bins["observed_ratio"].add_metric(bin_labels, point.observed_ratio)
                bins["events"].add_metric(bin_labels, point.count)
            for drift_bin in result.drift_bins:
                # Zero-padded so Grafana's bar chart orders bins as numbers.
                index = f"{drift_bin.index:02d}"
                for source, fraction in (
                    ("reference", drift_bin.reference_fraction),
                    ("current", drift_bin.current_fraction),
                ):
                    drift_bins.add_metric(
                        [*labels, drift_bin.distribution, index, source], fraction
                    )
        yield from families.values()
        yield from drift.values()
        yield delay
        yield from bins.values()
        yield drift_bins

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())  # unchecked: families depend on the stored results


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
            "(not deployed, or too few labels yet), verified or failed.",
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

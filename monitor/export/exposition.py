"""The window results' part of /metrics, rendered as Prometheus text when results
change (once per window job), not on every scrape.

A fleet's results are a few hundred thousand samples: prometheus_client's
``generate_latest`` formats each sample on each scrape (about 30 µs a sample here, so
seconds per scrape), and a Collector can only hand it sample objects. So each model's
samples are rendered once, when its window's results are stored or reloaded, and a
scrape joins the bytes. Families are emitted whole (every window's and model's samples
under one HELP/TYPE), sorted, so every replica serves the same text for the same
results. Which samples a series has follows ``export.series`` (``choice.py``); metric
names are listed in docs/operations.md ("Prometheus metrics").
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from prometheus_client.utils import floatToGoString

from monitor.core.results import ClassResult, WindowResult
from monitor.export.choice import ExportChoice, SeriesExport
from monitor.windows import metric_names
from monitor.windows.metric_names import LABEL_DELAY_QUANTILES

SERIES_LABELS = ("model", "model_version", "segment", "window")
#: Metric key -> help text, for one gauge per key. Only listed keys are exported (a
#: typo cannot leak out).
CALIBRATION_HELP = {
    **metric_names.LABELLED,
    **metric_names.MULTICLASS,
    **metric_names.ESTIMATED,
    **metric_names.MULTICLASS_ESTIMATED,
    **metric_names.ESTIMATE_GAPS,
    **metric_names.SEQUENTIAL,
    **metric_names.REFERENCE_STATISTICS,
    **metric_names.VOLUME,
}
#: Drift metric -> help text: one gauge with a ``distribution`` label.
DRIFT_HELP = {**metric_names.DRIFT, **metric_names.DRIFT_VOLUME}
#: Per-class metric -> help text: one gauge with a ``class`` label (multi-class series).
CLASS_HELP = metric_names.CLASS_METRICS
LABEL_DELAY = "window_label_delay_seconds"
#: calmon_reliability_bin_<name> -> (help text, the ``ReliabilityBin`` field it shows).
RELIABILITY_BINS = {
    "mean_predicted": ("Mean predicted probability of the reliability bin.", "mean_predicted"),
    "observed_ratio": ("Observed frequency of positives in the reliability bin.", "observed_ratio"),
    "events": ("Labelled events in the reliability bin.", "count"),
}


@dataclass(frozen=True)
class Family:
    name: str
    help: str
    labels: tuple[str, ...]

    def header(self) -> bytes:
        text = self.help.replace("\\", r"\\").replace("\n", r"\n")
        return f"# HELP {self.name} {text}\n# TYPE {self.name} gauge\n".encode()


FAMILIES: tuple[Family, ...] = (
    *(Family(f"calmon_{key}", text, SERIES_LABELS) for key, text in CALIBRATION_HELP.items()),
    *(
        Family(f"calmon_{key}", text, (*SERIES_LABELS, "distribution"))
        for key, text in DRIFT_HELP.items()
    ),
    Family(
        f"calmon_{LABEL_DELAY}",
        "Quantiles of label delay (prediction to label) of the window's labelled events.",
        (*SERIES_LABELS, "quantile"),
    ),
    *(
        Family(f"calmon_reliability_bin_{name}", text, (*SERIES_LABELS, "bin"))
        for name, (text, _) in RELIABILITY_BINS.items()
    ),
    Family(
        "calmon_drift_bin_fraction",
        "Share of events in each PSI bin (the reference's quantile bins), for the "
        "reference and the current window (source label).",
        (*SERIES_LABELS, "distribution", "bin", "source"),
    ),
    *(Family(f"calmon_{key}", text, (*SERIES_LABELS, "class")) for key, text in CLASS_HELP.items()),
    *(
        Family(
            f"calmon_class_reliability_bin_{name}",
            f"{text} One class, one-vs-rest.",
            (*SERIES_LABELS, "class", "bin"),
        )
        for name, (text, _) in RELIABILITY_BINS.items()
    ),
)
_INDEX = {family.name: index for index, family in enumerate(FAMILIES)}
#: Names ``export.series[].metrics`` accepts: the families without ``calmon_``, bins aside.
METRICS = (*CALIBRATION_HELP, *DRIFT_HELP, LABEL_DELAY, *CLASS_HELP)


@dataclass(frozen=True)
class _Target:
    """Where a result's value key goes: family, extra labels, and the metric name the
    export choice knows it by."""

    family: int
    name: str
    extra_labels: str
    metric: str


def _targets() -> dict[str, _Target]:
    targets = {
        key: _Target(_INDEX[f"calmon_{key}"], f"calmon_{key}", "", key) for key in CALIBRATION_HELP
    }
    for metric in DRIFT_HELP:
        for distribution in metric_names.DRIFT_DISTRIBUTIONS:
            targets[metric_names.drift_key(metric, distribution)] = _Target(
                _INDEX[f"calmon_{metric}"],
                f"calmon_{metric}",
                f',distribution="{distribution}"',
                metric,
            )
    for quantile, key in LABEL_DELAY_QUANTILES.items():
        name = f"calmon_{LABEL_DELAY}"
        targets[key] = _Target(_INDEX[name], name, f',quantile="{quantile}"', LABEL_DELAY)
    return targets


_TARGETS = _targets()
_RELIABILITY = [
    (_INDEX[f"calmon_reliability_bin_{name}"], f"calmon_reliability_bin_{name}", field)
    for name, (_, field) in RELIABILITY_BINS.items()
]
_DRIFT_BINS = _INDEX["calmon_drift_bin_fraction"]
_CLASS_RELIABILITY = [
    (_INDEX[f"calmon_class_reliability_bin_{name}"], f"calmon_class_reliability_bin_{name}", field)
    for name, (_, field) in RELIABILITY_BINS.items()
]


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def render(result: WindowResult, export: SeriesExport, lines: list[list[str]]) -> None:
    """Append the series' samples to ``lines`` (one list per family)."""
    series = result.series
    labels = (
        f'model="{_escape(series.model)}",model_version="{_escape(series.model_version)}",'
        f'segment="{_escape(series.segment)}",window="{_escape(series.window)}"'
    )
    for key, value in result.values.items():
        target = _TARGETS.get(key)
        if target is not None and export.exports(target.metric):
            lines[target.family].append(
                f"{target.name}{{{labels}{target.extra_labels}}} {floatToGoString(value)}\n"
            )
    if export.reliability_bins:
        for point in result.reliability_bins:
            bin_labels = f'{labels},bin="{point.index}"'
            for family, name, field in _RELIABILITY:
                value = floatToGoString(getattr(point, field))
                lines[family].append(f"{name}{{{bin_labels}}} {value}\n")
    if export.drift_bins:
        for drift_bin in result.drift_bins:
            # Zero-padded so Grafana's bar chart orders bins as numbers.
            bin_labels = (
                f'{labels},distribution="{drift_bin.distribution}",bin="{drift_bin.index:02d}"'
            )
            for source, fraction in (
                ("reference", drift_bin.reference_fraction),
                ("current", drift_bin.current_fraction),
            ):
                lines[_DRIFT_BINS].append(
                    f'calmon_drift_bin_fraction{{{bin_labels},source="{source}"}} '
                    f"{floatToGoString(fraction)}\n"
                )
    for name, found in result.classes.items():
        _render_class(labels + f',class="{_escape(name)}"', found, export, lines)


def _render_class(
    labels: str, found: ClassResult, export: SeriesExport, lines: list[list[str]]
) -> None:
    """One class's samples (``labels`` name the series and the class)."""
    for key, value in found.values.items():
        if key in CLASS_HELP and export.exports(key):
            lines[_INDEX[f"calmon_{key}"]].append(
                f"calmon_{key}{{{labels}}} {floatToGoString(value)}\n"
            )
    if export.reliability_bins:
        for point in found.reliability_bins:
            bin_labels = f'{labels},bin="{point.index}"'
            for family, name, field in _CLASS_RELIABILITY:
                value = floatToGoString(getattr(point, field))
                lines[family].append(f"{name}{{{bin_labels}}} {value}\n")


class WindowExposition:
    """The latest results of every window, rendered per (window, model)."""

    def __init__(self, choice: ExportChoice) -> None:
        self._choice = choice
        self._lock = threading.Lock()
        #: window -> model -> one bytes chunk per family (empty where it has no sample).
        self._rendered: dict[str, dict[str, list[bytes]]] = {}

    def replace(
        self,
        window: str,
        results: Iterable[WindowResult],
        *,
        models: Callable[[str], bool] | None = None,
    ) -> None:
        """The window's results of the models ``models`` selects (every model when None)
        are now ``results``: the models' series not in them are no longer exported."""
        rendered = self._render_by_model(results)
        with self._lock:
            held = self._rendered.setdefault(window, {})
            for model in [m for m in held if models is None or models(m)]:
                del held[model]
            held.update(rendered)

    def _render_by_model(self, results: Iterable[WindowResult]) -> dict[str, list[bytes]]:
        lines: dict[str, list[list[str]]] = defaultdict(lambda: [[] for _ in FAMILIES])
        for result in sorted(results, key=lambda r: r.series):
            series = result.series
            export = self._choice.of(series.model, series.segment, series.window)
            if export is not None:
                render(result, export, lines[series.model])
        return {
            model: ["".join(family).encode() for family in families]
            for model, families in lines.items()
        }

    def body(self) -> bytes:
        """Every window family, whole, in the Prometheus text format."""
        with self._lock:
            chunks = [
                self._rendered[window][model]
                for window in sorted(self._rendered)
                for model in sorted(self._rendered[window])
            ]
        return b"".join(
            part
            for index, family in enumerate(FAMILIES)
            for part in (family.header(), *(model[index] for model in chunks))
        )

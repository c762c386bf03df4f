"""The window results' text on /metrics: the same samples prometheus_client renders for
the same results (its own formatter and parser are the reference), families whole, and
the export choice (``export.series``) applied per series."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.parser import text_string_to_metric_families

from monitor.core.results import ClassResult, DriftBin, ReliabilityBin, WindowResult
from monitor.core.series import SeriesWindow
from monitor.export.choice import ExportChoice
from monitor.export.exposition import FAMILIES, WindowExposition
from monitor.settings import HEADLINE_METRICS, ExportSeriesSettings, ExportSettings
from monitor.windows import metric_names

NOW = datetime(2026, 12, 7, tzinfo=UTC)
DISTRIBUTIONS = ("raw_score", "probability", "confidence")
#: Each series of the fleet is given two classes (as a multi-class series would be).
CLASSES = ("cat", 'd"og')
EVERYTHING = ExportSettings(
    series=[ExportSeriesSettings(metrics="all", bins=["reliability", "drift"])]
)
Sample = tuple[str, tuple[tuple[str, str], ...], float]


def _result(model: str, version: str, segment: str, window: str, seed: int = 0) -> WindowResult:
    rng = random.Random(f"{model}{version}{segment}{window}{seed}")
    values = {key: rng.random() for key in sorted(metric_names.ALL_KEYS)}
    values["window_predictions"] = 1234.0
    return WindowResult(
        series=SeriesWindow(model, version, segment, window),
        evaluated_at=NOW,
        window_start=NOW,
        window_end=NOW,
        predictions=1234,
        labelled=1000,
        values=values,
        reliability_bins=tuple(
            ReliabilityBin(i, i / 10, (i + 1) / 10, 10 * i + 1, rng.random(), rng.random(), 0, 1)
            for i in range(0, 10, 2)  # only occupied bins are results' bins
        ),
        drift_bins=tuple(
            DriftBin(d, i, None, rng.random(), rng.random())
            for d in DISTRIBUTIONS[:2]
            for i in range(10)
        ),
        classes={
            name: ClassResult(
                values={key: rng.random() for key in sorted(metric_names.CLASS_METRICS)},
                reliability_bins=(
                    ReliabilityBin(3, 0.3, 0.4, 7, rng.random(), rng.random(), 0, 1),
                ),
            )
            for name in CLASSES
        },
    )


def _fleet(models: int = 3, window: str = "1h", seed: int = 0) -> list[WindowResult]:
    return [
        _result(f"m{m}", version, segment, window, seed)
        for m in range(models)
        for version in ("v1", "__all__")
        for segment in ("__all__", "region=eu", "region=us", "region=__other__")
    ]


def _samples(text: str) -> set[Sample]:
    return {
        (s.name, tuple(sorted(s.labels.items())), s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


class _Reference:
    """What /metrics carried before the exposition: prometheus_client's own families and
    formatter over the same results (a Collector, as its docs show)."""

    def __init__(self, results: list[WindowResult]) -> None:
        self._results = results

    def collect(self) -> Iterator[GaugeMetricFamily]:
        families = {f.name: GaugeMetricFamily(f.name, f.help, labels=f.labels) for f in FAMILIES}
        quantiles = {key: str(q) for q, key in metric_names.LABEL_DELAY_QUANTILES.items()}
        for r in self._results:
            labels = [r.series.model, r.series.model_version, r.series.segment, r.series.window]
            for key, value in r.values.items():
                if key in quantiles:
                    families["calmon_window_label_delay_seconds"].add_metric(
                        [*labels, quantiles[key]], value
                    )
                    continue
                for d in DISTRIBUTIONS:
                    if key.endswith(f"_{d}"):
                        families[f"calmon_{key.removesuffix(f'_{d}')}"].add_metric(
                            [*labels, d], value
                        )
                        break
                else:
                    families[f"calmon_{key}"].add_metric(labels, value)
            for b in r.reliability_bins:
                for name, value in (
                    ("mean_predicted", b.mean_predicted),
                    ("observed_ratio", b.observed_ratio),
                    ("events", b.count),
                ):
                    families[f"calmon_reliability_bin_{name}"].add_metric(
                        [*labels, str(b.index)], value
                    )
            for b in r.drift_bins:
                for source, value in (
                    ("reference", b.reference_fraction),
                    ("current", b.current_fraction),
                ):
                    families["calmon_drift_bin_fraction"].add_metric(
                        [*labels, b.distribution, f"{b.index:02d}", source], value
                    )
            for name, found in r.classes.items():
                for key, value in found.values.items():
                    families[f"calmon_{key}"].add_metric([*labels, name], value)
                for b in found.reliability_bins:
                    for field, value in (
                        ("mean_predicted", b.mean_predicted),
                        ("observed_ratio", b.observed_ratio),
                        ("events", b.count),
                    ):
                        families[f"calmon_class_reliability_bin_{field}"].add_metric(
                            [*labels, name, str(b.index)], value
                        )
        yield from families.values()


def _reference_text(results: list[WindowResult]) -> str:
    registry = CollectorRegistry()
    registry.register(_Reference(results))  # type: ignore[arg-type]
    return generate_latest(registry).decode()


def test_every_value_and_bin_as_prometheus_client_renders_them() -> None:
    results = _fleet() + _fleet(window="24h")
    exposition = WindowExposition(ExportChoice(EVERYTHING))
    exposition.replace("1h", [r for r in results if r.series.window == "1h"])
    exposition.replace("24h", [r for r in results if r.series.window == "24h"])
    ours, reference = exposition.body().decode(), _reference_text(results)
    assert _samples(ours) == _samples(reference)
    # Each family once, whole, for both windows; HELP and TYPE as the client writes them.
    for family in FAMILIES:
        assert ours.count(f"# TYPE {family.name} gauge\n") == 1
        help_line = next(
            line for line in reference.splitlines() if line.startswith(f"# HELP {family.name} ")
        )
        assert f"{help_line}\n" in ours
    per_class = len(metric_names.CLASS_METRICS) + 3
    assert len(_samples(ours)) == 2 * 3 * 8 * (
        len(metric_names.ALL_KEYS) + 3 * 5 + 2 * 2 * 10 + len(CLASSES) * per_class
    )


def test_label_values_are_escaped() -> None:
    hostile = _result('m"1\\x\ny', "v1", 'shop=a"b', "1h")
    exposition = WindowExposition(ExportChoice(EVERYTHING))
    exposition.replace("1h", [hostile])
    assert _samples(exposition.body().decode()) == _samples(_reference_text([hostile]))


def test_the_default_choice_bins_and_every_metric_for_whole_model_series_only() -> None:
    exposition = WindowExposition(ExportChoice(ExportSettings()))
    exposition.replace("1h", _fleet(models=2))
    by_series: dict[tuple[str, str, str], set[str]] = {}
    for name, labels, _ in _samples(exposition.body().decode()):
        label = dict(labels)
        by_series.setdefault((label["model"], label["model_version"], label["segment"]), set()).add(
            name
        )
    assert len(by_series) == 2 * 2 * 4
    everything = {f.name for f in FAMILIES}
    headline = {f"calmon_{m}" for m in HEADLINE_METRICS}
    for (_, _, segment), names in by_series.items():
        assert names == (everything if segment == "__all__" else headline)


def test_the_first_matching_entry_decides_and_unmatched_series_are_not_exported() -> None:
    settings = ExportSettings(
        series=[
            ExportSeriesSettings(windows=["24h"], segments=["__all__"], bins=["reliability"]),
            ExportSeriesSettings(segments=["region"], models=["m1*"], metrics=["ece", "psi"]),
        ]
    )
    exposition = WindowExposition(ExportChoice(settings))
    exposition.replace("1h", _fleet(models=2, window="1h"))
    exposition.replace("24h", _fleet(models=2, window="24h"))
    exported = {
        (dict(labels)["model"], dict(labels)["segment"], dict(labels)["window"], name)
        for name, labels, _ in _samples(exposition.body().decode())
    }
    whole_24h = {(m, s, w) for m, s, w, _ in exported if s == "__all__"}
    assert whole_24h == {("m0", "__all__", "24h"), ("m1", "__all__", "24h")}
    assert not any(n == "calmon_drift_bin_fraction" for *_, n in exported)
    assert any(n == "calmon_reliability_bin_events" for *_, n in exported)
    segments = {(m, s, w, n) for m, s, w, n in exported if s != "__all__"}
    assert segments == {
        ("m1", segment, window, name)
        for segment in ("region=eu", "region=us", "region=__other__")
        for window in ("1h", "24h")
        for name in ("calmon_ece", "calmon_psi")
    }


def test_replacing_some_models_keeps_the_others_and_drops_vanished_series() -> None:
    exposition = WindowExposition(ExportChoice(EVERYTHING))
    exposition.replace("1h", _fleet(models=3, seed=0))
    newer = [
        r
        for r in _fleet(models=3, seed=1)
        if r.series.model == "m1" and r.series.segment != "region=us"
    ]
    exposition.replace("1h", newer, models=lambda model: model in ("m1", "m2"))
    expected = [r for r in _fleet(models=3, seed=0) if r.series.model == "m0"] + newer
    assert _samples(exposition.body().decode()) == _samples(_reference_text(expected))


@pytest.mark.parametrize("models", [1, 7])
def test_series_per_model_follow_the_documented_formula(models: int) -> None:
    """docs/operations.md#sizing-metrics: per model and window, with V versions (plus
    __all__), S segment series per version, F metrics, B bins."""
    exposition = WindowExposition(ExportChoice(ExportSettings()))
    exposition.replace("1h", _fleet(models=models))
    versions, segments = 1 + 1, 3
    values = len(metric_names.ALL_KEYS)  # every value present in these results
    occupied, psi_bins = 5, 10
    # a multi-class series adds, per class, its metrics and its reliability bins
    per_class = len(CLASSES) * (len(metric_names.CLASS_METRICS) + 3 * 1)
    whole = values + 3 * occupied + 2 * 2 * psi_bins + per_class
    headline = len(HEADLINE_METRICS) + 2  # psi: one per distribution (3 here, as every key)
    assert len(_samples(exposition.body().decode())) == models * versions * (
        whole + segments * headline
    )

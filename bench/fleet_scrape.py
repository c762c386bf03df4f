"""/metrics of a fleet: its size and the time of a scrape over HTTP, at an export choice.

``measure_scrape(results, settings)`` takes a fleet's window results (what the window
jobs stored), renders them as a daemon does when results change
(``monitor/export/exposition.py``), serves them through the daemon's HTTP server and
times real GETs of /metrics. Goals (issue 23): under 1 s and under 20 MB at the default
``export.series``. ``bench_fleet.py`` calls it with the results of its fleet.

Run alone, it measures a synthetic fleet shaped like the issue's (100 models x (the
whole model + 10 regions) x (v1 + ``__all__``) x the 3 default windows, every metric
present, 10 occupied reliability bins, 2 x 10 PSI bins), at the default choice and with
everything exported, against prometheus_client's own rendering of the same samples
(what /metrics did before: a Collector formatted every sample on every scrape):
``.venv/bin/python bench/fleet_scrape.py``.
"""

from __future__ import annotations

import random
import statistics
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily

from monitor.core.results import DriftBin, ReliabilityBin, WindowResult
from monitor.core.series import SeriesWindow
from monitor.demo.broker import free_loopback_port
from monitor.export.choice import ExportChoice
from monitor.export.exposition import FAMILIES, WindowExposition
from monitor.export.http import HttpApi, serve
from monitor.settings import ExportSeriesSettings, ExportSettings
from monitor.store.db.engine import make_engine
from monitor.windows import metric_names

SCRAPES = 5
DISTRIBUTIONS = ("raw_score", "probability")
QUANTILES = {key: str(q) for q, key in metric_names.LABEL_DELAY_QUANTILES.items()}


@dataclass(frozen=True)
class ScrapeNumbers:
    series: int  # window results
    samples: int
    megabytes: float
    render_s: float  # rendering every window once (each window's share: once per its tick)
    scrape_s: float  # median of SCRAPES GETs of /metrics over loopback HTTP


def measure_scrape(results: Sequence[WindowResult], export: ExportSettings) -> ScrapeNumbers:
    exposition = WindowExposition(ExportChoice(export))
    windows = sorted({r.series.window for r in results})
    started = time.perf_counter()
    for window in windows:
        exposition.replace(window, [r for r in results if r.series.window == window])
    render_s = time.perf_counter() - started
    body, scrape_s = _scraped(exposition.body)
    samples = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
    return ScrapeNumbers(len(results), samples, len(body) / 1e6, render_s, scrape_s)


def _scraped(window_metrics: object) -> tuple[bytes, float]:
    engine = make_engine("sqlite://")  # the API's other endpoints: not used here
    api = HttpApi(
        engine=engine,
        registry=CollectorRegistry(),
        readiness=dict,
        window_metrics=window_metrics,  # type: ignore[arg-type]
    )
    port = free_loopback_port()
    server = serve(api, "127.0.0.1", port)
    try:
        timings, body = [], b""
        for _ in range(SCRAPES):
            started = time.perf_counter()
            body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=120).read()
            timings.append(time.perf_counter() - started)
    finally:
        server.shutdown()
        server.server_close()
        engine.dispose()
    return body, statistics.median(timings)


class _ClientRendered:
    """Every sample and bin as /metrics served them before: a prometheus_client
    Collector, every sample formatted on every scrape."""

    def __init__(self, results: Sequence[WindowResult]) -> None:
        self._results = results

    def collect(self) -> Iterator[GaugeMetricFamily]:
        families = {f.name: GaugeMetricFamily(f.name, f.help, labels=f.labels) for f in FAMILIES}
        for r in self._results:
            labels = [r.series.model, r.series.model_version, r.series.segment, r.series.window]
            for key, value in r.values.items():
                if key in QUANTILES:
                    family, extra = "calmon_window_label_delay_seconds", [QUANTILES[key]]
                else:
                    family, extra = f"calmon_{key}", []
                    for distribution in DISTRIBUTIONS:
                        if key.endswith(f"_{distribution}"):
                            family = f"calmon_{key.removesuffix(f'_{distribution}')}"
                            extra = [distribution]
                families[family].add_metric([*labels, *extra], value)
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
        yield from families.values()


def synthetic_fleet(models: int = 100, regions: int = 10) -> list[WindowResult]:
    rng = random.Random(0)
    now = datetime.now(UTC)
    scalar = [k for k in metric_names.ALL_KEYS if f"calmon_{k}" in {f.name for f in FAMILIES}]
    drift = [
        metric_names.drift_key(m, d)
        for m in (*metric_names.DRIFT, *metric_names.DRIFT_VOLUME)
        for d in ("raw_score", "probability")
    ]
    quantiles = list(metric_names.LABEL_DELAY_QUANTILES.values())
    keys = [k for k in scalar if k not in metric_names.REFERENCE_STATISTICS] + drift + quantiles
    return [
        WindowResult(
            series=SeriesWindow(f"model-{m:03d}", version, segment, window),
            evaluated_at=now,
            window_start=now,
            window_end=now,
            predictions=100_000,
            labelled=90_000,
            values={key: rng.random() for key in keys},
            reliability_bins=tuple(
                ReliabilityBin(i, i / 10, (i + 1) / 10, 9000, rng.random(), rng.random(), 0, 1)
                for i in range(10)
            ),
            drift_bins=tuple(
                DriftBin(d, i, None, rng.random(), rng.random())
                for d in ("raw_score", "probability")
                for i in range(10)
            ),
        )
        for m in range(models)
        for version in ("v1", "__all__")
        for segment in ("__all__", *(f"region=r{i:02d}" for i in range(regions)))
        for window in ("1h", "24h", "7d")
    ]


def _client_scrape_s(results: Sequence[WindowResult]) -> tuple[float, int]:
    registry = CollectorRegistry()
    registry.register(_ClientRendered(results))  # type: ignore[arg-type]
    started = time.perf_counter()
    body = generate_latest(registry)
    return time.perf_counter() - started, len(body)


def report(name: str, numbers: ScrapeNumbers) -> None:
    print(
        f"{name:<28} {numbers.series:>6} series {numbers.samples:>8} samples "
        f"{numbers.megabytes:7.1f} MB  render {numbers.render_s:6.2f} s  "
        f"scrape {numbers.scrape_s:6.3f} s",
        flush=True,
    )


def main() -> int:
    results = synthetic_fleet()
    report("default export.series", measure_scrape(results, ExportSettings()))
    everything = ExportSettings(
        series=[ExportSeriesSettings(metrics="all", bins=["reliability", "drift"])]
    )
    report("everything exported", measure_scrape(results, everything))
    seconds, size = _client_scrape_s(results)
    print(
        f"{'before: prometheus_client':<28} {len(results):>6} series "
        f"{size / 1e6:7.1f} MB  (every scrape) {seconds:6.2f} s",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

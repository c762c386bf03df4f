"""The JSON API over real HTTP on loopback, on a SQLite store a window job has filled:
values against the metrics core and scikit-learn, the drift reference each result was
measured against, filters, and errors that name the problem."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from scipy import stats
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss
from sqlalchemy import Engine

from monitor.core.records import Label, Prediction
from monitor.demo.broker import free_loopback_port
from monitor.export.choice import ExportChoice
from monitor.export.exposition import WindowExposition
from monitor.export.http import HttpApi, serve
from monitor.metrics import calibration as core
from monitor.settings import (
    EvaluationSettings,
    ExportSeriesSettings,
    ExportSettings,
    Settings,
    StoreSettings,
    WindowSettings,
)
from monitor.store.results import latest_results
from monitor.store.write.event_store import EventStore
from monitor.windows.jobs import JobMetrics, WindowJob

NOW = 1_790_000_000_000
HOUR = 3_600_000
N = 2000


@pytest.fixture
def events() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    p = rng.uniform(0.02, 0.98, N)
    y = (rng.uniform(size=N) < p**1.3).astype(int)  # miscalibrated: ECE well above 0
    region = np.where(np.arange(N) % 4 == 0, "eu", "us")
    return p, y, region


@pytest.fixture
def api_url(
    sqlite_engine: Engine, events: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> Iterator[str]:
    p, y, region = events
    raw = np.log(p / (1 - p))
    store = EventStore(sqlite_engine, segment_keys=["region"], clock_ms=lambda: NOW)
    # The hour before the window, the same events again, all in region eu: the trailing
    # reference of the whole model and of eu; region us has none.
    store.write_batch(
        [
            Prediction(
                "m", f"r{i}", "v1", NOW - 2 * HOUR + i, raw[i], float(p[i]), {"region": "eu"}
            )
            for i in range(N)
        ]
        + [
            Prediction(
                "m", str(i), "v1", NOW - HOUR + i, raw[i], float(p[i]), {"region": str(region[i])}
            )
            for i in range(N)
        ]
        + [Label("m", str(i), int(y[i]), NOW - 10) for i in range(N)]
    )
    settings = Settings(
        evaluation=EvaluationSettings(min_labelled=100, min_predictions=100),
        store=StoreSettings(segment_keys=["region"]),
        windows=[WindowSettings(name="1h", length=3600, every=60)],
    )
    job = WindowJob(
        sqlite_engine,
        settings,
        settings.windows[0],
        owner="test",
        metrics=JobMetrics(CollectorRegistry()),
        clock_ms=lambda: NOW,
    )
    assert job.run() is not None
    # Every metric of every series on /metrics: these tests check exported values.
    everything = ExportSeriesSettings(metrics="all", bins=["reliability", "drift"])
    exposition = WindowExposition(ExportChoice(ExportSettings(series=[everything])))
    exposition.replace("1h", latest_results(sqlite_engine, window="1h"))
    api = HttpApi(
        engine=sqlite_engine,
        registry=CollectorRegistry(),
        readiness=dict,
        window_metrics=exposition.body,
    )
    port = free_loopback_port()
    server = serve(api, "127.0.0.1", port)
    yield f"http://127.0.0.1:{port}"
    server.shutdown()
    server.server_close()


def _get(url: str, **params: str) -> httpx.Response:
    return httpx.get(url, params=params, timeout=10)


def test_series_carry_values_bins_and_their_reference(
    api_url: str, events: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> None:
    p, y, region = events
    response = _get(f"{api_url}/api/v1/series")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    series = {(s["model_version"], s["segment"]): s for s in response.json()}
    assert set(series) == {
        (version, segment)
        for version in ("v1", "__all__")
        for segment in ("__all__", "region=eu", "region=us")
    }
    whole = series["v1", "__all__"]
    assert whole["predictions"] == whole["labelled"] == N
    assert whole["window_start"] == "2026-09-21T13:13:20+00:00"
    assert whole["values"]["ece"] == pytest.approx(core.expected_calibration_error(p, y), abs=1e-9)
    assert whole["values"]["brier_score"] == pytest.approx(brier_score_loss(y, p), abs=1e-12)
    eu = region == "eu"
    assert series["v1", "region=eu"]["values"]["ece"] == pytest.approx(
        core.expected_calibration_error(p[eu], y[eu]), abs=1e-9
    )
    observed, predicted = calibration_curve(y, p, n_bins=10)
    bins = whole["reliability_bins"]
    assert [b["observed_ratio"] for b in bins] == pytest.approx(observed, abs=1e-12)
    assert [b["mean_predicted"] for b in bins] == pytest.approx(predicted, abs=1e-12)

    # Drift: the trailing reference ends at the window's first whole minute.
    assert whole["reference"] == {
        "source": "trailing",
        "start": "2026-09-21T12:13:00+00:00",
        "end": "2026-09-21T13:13:00+00:00",
        "events": {"raw_score": N, "probability": N},
    }
    # The same events as the reference: PSI is exactly 0 (bin fractions equal).
    assert whole["values"]["psi_raw_score"] == 0.0
    assert series["v1", "region=eu"]["values"]["psi_probability"] > 0.0
    assert series["v1", "region=us"]["reference"]["events"] == {"raw_score": 0, "probability": 0}
    assert "psi_probability" not in series["v1", "region=us"]["values"]


def test_reliability_and_history_filter_by_series(
    api_url: str, events: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> None:
    p, y, region = events
    eu = _get(f"{api_url}/api/v1/reliability", model="m", model_version="v1", segment="region=eu")
    assert [(s["model_version"], s["segment"]) for s in eu.json()] == [("v1", "region=eu")]
    observed, _ = calibration_curve(y[region == "eu"], p[region == "eu"], n_bins=10)
    assert [b["observed_ratio"] for b in eu.json()[0]["reliability_bins"]] == pytest.approx(
        observed, abs=1e-12
    )
    history = _get(f"{api_url}/api/v1/history", model="m", metric="ece", segment="__all__")
    points = history.json()
    assert {(h["model_version"], h["evaluated_ms"]) for h in points} == {
        ("v1", NOW),
        ("__all__", NOW),
    }
    assert all(
        h["value"] == pytest.approx(core.expected_calibration_error(p, y), abs=1e-9) for h in points
    )


@pytest.mark.parametrize(
    ("path", "params", "status", "error"),
    [
        ("/api/v1/history", {"model": "m"}, 400, "parameter 'metric': is required"),
        ("/api/v1/reliability", {}, 400, "parameter 'model': is required"),
        ("/api/v1/nothing", {}, 404, "no such endpoint: /api/v1/nothing"),
    ],
)
def test_errors_name_the_problem(
    api_url: str, path: str, params: dict[str, str], status: int, error: str
) -> None:
    response = _get(f"{api_url}{path}", **params)
    assert (response.status_code, response.json()) == (status, {"error": error})


def test_metrics_export_the_events_drift_is_measured_on(
    api_url: str, events: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> None:
    _, _, region = events
    response = _get(f"{api_url}/metrics")
    families = {
        family.name: {
            (s.labels["model_version"], s.labels["segment"], s.labels["distribution"]): s.value
            for s in family.samples
        }
        for family in text_string_to_metric_families(response.text)
        if family.name in ("calmon_drift_reference_events", "calmon_drift_window_events")
    }
    series = [
        (version, segment, distribution)
        for version in ("v1", "__all__")
        for segment in ("__all__", "region=eu", "region=us")
        for distribution in ("raw_score", "probability")
    ]
    # Every series but us has the trailing hour's events (all eu) as its reference.
    assert families["calmon_drift_reference_events"] == {
        key: (0.0 if key[1] == "region=us" else float(N)) for key in series
    }
    # Every window event carries both a raw score and a probability.
    in_window = {
        "__all__": N,
        "region=eu": int(np.sum(region == "eu")),
        "region=us": int(np.sum(region == "us")),
    }
    assert in_window["region=eu"] == N // 4
    assert families["calmon_drift_window_events"] == {
        key: float(in_window[key[1]]) for key in series
    }


def test_ks_and_wasserstein_come_with_their_error_bounds(
    api_url: str, events: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> None:
    """From aggregates KS and Wasserstein-1 are computed on grid cells: the API and
    /metrics carry the bound on their distance to scipy's values on the events."""
    p, _, region = events
    eu = region == "eu"
    series = {
        (s["model_version"], s["segment"]): s["values"]
        for s in _get(f"{api_url}/api/v1/series").json()
    }
    values = series["v1", "region=eu"]
    raw = np.log(p / (1 - p))
    for distribution, reference, current in (
        ("raw_score", raw, raw[eu]),
        ("probability", p, p[eu]),
    ):
        ks_bound = values[f"ks_error_bound_{distribution}"]
        w_bound = values[f"wasserstein_error_bound_{distribution}"]
        exact_ks = stats.ks_2samp(reference, current).statistic
        exact_w = stats.wasserstein_distance(reference, current)
        assert -1e-12 <= exact_ks - values[f"ks_statistic_{distribution}"] <= ks_bound
        assert abs(values[f"wasserstein_distance_{distribution}"] - exact_w) <= w_bound
        # Both bounds are small: KS's the largest cell mass, Wasserstein's each sample's
        # mean distance to its cell representative (0.5% relative for raw scores, half a
        # cell of 1/10240 for probabilities).
        assert 0 < ks_bound <= 0.01
        spread = np.mean(np.abs(reference)) + np.mean(np.abs(current))
        assert 0 < w_bound < 0.0051 * spread + 2 / 20480
    exported = {
        (family.name, s.labels["distribution"]): s.value
        for family in text_string_to_metric_families(_get(f"{api_url}/metrics").text)
        if family.name in ("calmon_ks_error_bound", "calmon_wasserstein_error_bound")
        for s in family.samples
        if (s.labels["model_version"], s.labels["segment"]) == ("v1", "region=eu")
    }
    assert exported == {
        (f"calmon_{name}", distribution): values[f"{name}_{distribution}"]
        for name in ("ks_error_bound", "wasserstein_error_bound")
        for distribution in ("raw_score", "probability")
    }

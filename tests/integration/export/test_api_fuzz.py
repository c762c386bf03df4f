"""The JSON API as a contract: schemathesis fuzzes a real `calmon run --no-ingest` process,
on SQLite and on PostgreSQL with stored results, against the OpenAPI document it serves.
No input may give a 500 or a response (status, content type, body) the document does
not describe; then the unhappy paths by hand, over the same real HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, given, settings
from prometheus_client import CollectorRegistry
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from monitor.core.records import Label, Prediction
from monitor.demo.broker import free_loopback_port
from monitor.export.openapi import document
from monitor.settings import EvaluationSettings, Settings, StoreSettings, WindowSettings
from monitor.store.db import migrate
from monitor.store.db.engine import make_engine
from monitor.store.write.event_store import EventStore
from monitor.windows.jobs import JobMetrics, WindowJob
from tests.integration.ingest.helpers import wait_until

pytestmark = pytest.mark.integration
HOUR = 3_600_000
N = 400


def _fill(database_url: str) -> None:
    """Events in one hour, half labelled, and one window job's results over them."""
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    now = 1_790_000_000_000
    rng = np.random.default_rng(1)
    p = rng.uniform(0.05, 0.95, N)
    store = EventStore(engine, segment_keys=["region"], clock_ms=lambda: now)
    store.write_batch(
        [
            Prediction(
                "m",
                str(i),
                "v1",
                now - HOUR + i,
                float(np.log(p[i] / (1 - p[i]))),
                float(p[i]),
                {"region": "eu" if i % 2 else "us"},
            )
            for i in range(N)
        ]
        + [Label("m", str(i), int(rng.uniform() < p[i]), now - 10) for i in range(0, N, 2)]
    )
    config = Settings(
        evaluation=EvaluationSettings(min_labelled=50, min_predictions=50),
        store=StoreSettings(segment_keys=["region"]),
        windows=[WindowSettings(name="1h", length=3600, every=60)],
    )
    job = WindowJob(
        engine,
        config,
        config.windows[0],
        owner="t",
        metrics=JobMetrics(CollectorRegistry()),
        clock_ms=lambda: now,
    )
    assert job.run() is not None
    engine.dispose()


@pytest.fixture
def daemon(database_url: str, tmp_path: Path) -> Iterator[str]:
    _fill(database_url)
    port = free_loopback_port()
    config = tmp_path / "calmon.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "store": {"segment_keys": ["region"]},
                "windows": [{"name": "1h", "length": "1h", "every": "1h"}],
                "http": {"host": "127.0.0.1", "port": port},
            }
        )
    )
    log = (tmp_path / "calmon.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "monitor", "run", "--no-ingest", "--config", str(config)],
        env={**os.environ, "CALMON_STORE_URL": database_url},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return process.poll() is not None  # died: stop waiting, the asserts say why

    wait_until(answers, timeout_s=90, what="calmon run answers /healthz")
    assert process.poll() is None, (tmp_path / "calmon.log").read_text()
    yield url
    process.terminate()
    assert process.wait(timeout=30) == 0
    output = (tmp_path / "calmon.log").read_text()
    assert "Traceback" not in output, output


@pytest.mark.parametrize("mode", list(GenerationMode))
def test_no_input_gives_a_500_or_a_response_the_document_does_not_describe(
    daemon: str, mode: GenerationMode
) -> None:
    # schemathesis' pytest plugin (schemathesis.pytest) fails on pytest 9 (it reads a
    # removed node attribute), so each operation's Hypothesis strategy is run by hand.
    schema = schemathesis.openapi.from_url(f"{daemon}/api/v1/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    # Every operation but the document itself, which schemathesis leaves out.
    assert {op.path for op in operations} == set(document()["paths"]) - {"/api/v1/openapi.json"}
    for operation in operations:
        if mode is GenerationMode.NEGATIVE and not document()["paths"][operation.path]["get"].get(
            "parameters"
        ):
            continue  # no parameter to get wrong

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
        def fuzz(case: schemathesis.Case) -> None:
            case.call_and_validate(
                checks=[
                    not_a_server_error,
                    status_code_conformance,
                    content_type_conformance,
                    response_schema_conformance,
                ]
            )

        fuzz()


@pytest.mark.parametrize(
    ("path", "params", "status", "error"),
    [
        (
            "/api/v1/history",
            {"model": "m", "metric": "ece", "since": "7x"},
            400,
            "parameter 'since': '7x' is not a duration",
        ),
        (
            "/api/v1/history",
            {"model": "m", "metric": "ecee"},
            400,
            "parameter 'metric': 'ecee' is not a metric; did you mean 'ece'?",
        ),
        (
            "/api/v1/history",
            {"model": "m\x00", "metric": "ece"},
            400,
            "parameter 'model': contains a NUL character",
        ),
        (
            "/api/v1/history",
            {"model": "m", "metric": "ece", "modle": "m"},
            400,
            "parameter 'modle': unknown",
        ),
        ("/api/v1/reliability", {"model": ""}, 400, "parameter 'model': is empty"),
        (
            "/api/v1/alerts",
            {"fingerprint": "x" * 2000},
            400,
            "parameter 'fingerprint': longer than 1024",
        ),
        ("/api/v2/series", {}, 404, "no such endpoint: /api/v2/series"),
    ],
)
def test_bad_requests_name_the_problem(  # type: ignore[no-untyped-def]
    daemon: str, path: str, params: dict[str, str], status: int, error: str
) -> None:
    response = httpx.get(f"{daemon}{path}", params=params, timeout=10)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"].startswith(error)


def test_since_takes_a_duration_an_rfc3339_time_and_epoch_ms(daemon: str) -> None:
    def history(since: str) -> list[int]:
        response = httpx.get(
            f"{daemon}/api/v1/history",
            params={
                "model": "m",
                "metric": "window_predictions",
                "segment": "__all__",
                "since": since,
            },
            timeout=10,
        )
        assert response.status_code == 200, response.text
        return sorted({point["evaluated_ms"] for point in response.json()})

    evaluated = 1_790_000_000_000
    assert history("100000d") == history("2026-09-21T14:13:20Z") == [evaluated]
    assert history(str(evaluated)) == [evaluated]
    assert history(str(evaluated + 1)) == history("2026-09-21T14:13:20.001Z") == []
    assert history("1d") == []  # the stored point is from September 2026, before "now - 1d"

"""The recalibration in the webhook, end to end through both stores: events written by
the ingest write path, the window job, the alert pipeline, the outbox, a real HTTP
receiver. The payload follows docs/webhook.schema.json, and its artifact, applied to
fresh events, lowers their ECE (computed here, independently of calmon)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from prometheus_client import CollectorRegistry
from scipy.special import expit, logit
from sqlalchemy import Engine

from monitor.alerts import signing
from monitor.alerts.pipeline import AlertPipeline
from monitor.alerts.webhooks import DeliveryMetrics, WebhookDeliverer
from monitor.core.records import Label, Prediction
from monitor.metrics.calibrators import apply
from monitor.rules.model import Rule
from monitor.settings import EvaluationSettings, Settings, WebhookSettings, WindowSettings
from monitor.store.write.event_store import EventStore
from monitor.windows.jobs import JobMetrics, WindowJob
from tests.fixtures.http_receiver import Receiver

pytestmark = pytest.mark.integration

SECRET = "recalibration-key"
NOW = 1_790_000_040_000 - 1_790_000_040_000 % 60_000  # on a minute
HOUR = 3_600_000
SCHEMA = json.loads((Path(__file__).parents[3] / "docs" / "webhook.schema.json").read_text())
RULE = Rule.model_validate(
    {"name": "CalibrationErrorHigh", "metric": "ece", "op": ">", "threshold": 0.03,
     "actions": ["recalibrate"]}
)  # fmt: skip


def _drifted(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """An over-confident model: the truth is expit(0.5 * logit p)."""
    p = rng.beta(1.5, 1.5, n)
    return p, (rng.uniform(size=n) < expit(0.5 * logit(p))).astype(float)


def _ece(p: np.ndarray, y: np.ndarray) -> float:
    bins = np.minimum((p * 10).astype(int), 9)
    return sum(abs(y[bins == k].sum() - p[bins == k].sum()) for k in range(10)) / p.size


def _fire(engine: Engine, receiver: Receiver, n: int, *, later_share: float = 0.5) -> dict:
    """n drifted events, ``later_share`` of them in the later half of the window."""
    rng = np.random.default_rng(0)
    p, y = _drifted(rng, n)
    later = rng.uniform(size=n) < later_share
    offsets = rng.integers(0, HOUR // 2, n) + np.where(later, HOUR // 2, 0)
    times = NOW - HOUR + offsets
    predictions = [
        Prediction("fraud", str(i), "v1", int(times[i]), probability=float(p[i])) for i in range(n)
    ]
    labels = [Label("fraud", str(i), int(y[i]), NOW - 1000) for i in range(n)]
    EventStore(engine, clock_ms=lambda: NOW).write_batch(predictions + labels)
    webhooks = {"recalibrate": WebhookSettings(url=f"{receiver.url}/hook")}
    settings = Settings(
        evaluation=EvaluationSettings(min_labelled=200, min_predictions=200),
        windows=[WindowSettings(name="1h", length=3600, every=60)],
        webhooks=webhooks,
    )
    pipeline = AlertPipeline(engine, settings, [RULE], CollectorRegistry(), notifier=None)
    job = WindowJob(
        engine,
        settings,
        settings.windows[0],
        owner="a",
        metrics=JobMetrics(CollectorRegistry()),
        clock_ms=lambda: NOW,
        on_results=pipeline.on_results,
    )
    job.evaluate_now(NOW)
    deliverer = WebhookDeliverer(engine, webhooks, DeliveryMetrics(CollectorRegistry()))
    deliverer.deliver_due()
    deliverer.close()
    receiver.wait_for(lambda received: len(received) >= 2)  # __all__ of v1 and of all versions
    bodies = {}
    for received in receiver.accepted():
        assert signing.verify(SECRET.encode(), received.body, received.headers)
        body = json.loads(received.body)
        jsonschema.validate(body, SCHEMA, format_checker=jsonschema.FormatChecker())
        bodies[body["model_version"]] = body
    return bodies


def test_the_webhook_carries_a_calibrator_that_fixes_fresh_events(
    migrated_engine: Engine, http_receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALMON_WEBHOOK_SECRET", SECRET)
    bodies = _fire(migrated_engine, http_receiver, 6_000)
    recalibration = bodies["v1"]["recalibration"]
    assert recalibration["status"] == "recommended"
    artifact = recalibration["recommended"]
    assert artifact["method"] != "identity"
    fitted_on = artifact["fitted_on"]
    assert (fitted_on["model"], fitted_on["model_version"], fitted_on["window"]) == (
        "fraud", "v1", "1h"
    )  # fmt: skip
    assert fitted_on["fit_labelled"] + fitted_on["validation_labelled"] == 6_000
    assert fitted_on["fit"]["end"] == fitted_on["validation"]["start"]
    scores = {c["method"]: c["held_out"] for c in recalibration["candidates"]}
    assert scores[artifact["method"]]["log_loss"]["value"] < scores["identity"]["log_loss"]["value"]
    p, y = _drifted(np.random.default_rng(99), 40_000)  # never seen by calmon
    assert _ece(apply(artifact, p), y) < 0.4 * _ece(p, y)


def test_too_few_labels_in_a_half_says_why(
    migrated_engine: Engine, http_receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALMON_WEBHOOK_SECRET", SECRET)
    # 1,000 labelled events fire the alert, but about 50 are in the later half: fewer
    # than the 100 (half of min_labelled) a validation needs.
    bodies = _fire(migrated_engine, http_receiver, 1_000, later_share=0.05)
    assert bodies["v1"]["recalibration"]["status"] == "unavailable"
    assert (
        "each half of the window needs 100 labelled events"
        in (bodies["v1"]["recalibration"]["reason"])
    )

"""The recalibration in the webhook, end to end through both stores: events written by
the ingest write path, the window job, the alert pipeline, the outbox, a real HTTP
receiver. The payload follows docs/webhook.schema.json, and its artifact, applied to
fresh events, lowers their ECE (computed here, independently of calmon)."""

from __future__ import annotations

import json
import re
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
from monitor.core.series import with_calibrator
from monitor.export.collector import RecalibrationsCollector
from monitor.export.http import HttpApi
from monitor.metrics.calibrators import apply
from monitor.metrics.calibrators.fit import CORRECTIONS
from monitor.metrics.calibrators.raw_fit import RAW_METHODS
from monitor.rules.model import Rule
from monitor.settings import EvaluationSettings, Settings, WebhookSettings, WindowSettings
from monitor.store import recalibrations
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


class Loop:
    """The daemon's path from stored events to delivered webhooks, on one store."""

    def __init__(self, engine: Engine, receiver: Receiver) -> None:
        self.engine, self.receiver = engine, receiver
        self.webhooks = {"recalibrate": WebhookSettings(url=f"{receiver.url}/hook")}
        self.settings = Settings(
            evaluation=EvaluationSettings(min_labelled=200, min_predictions=200),
            windows=[WindowSettings(name="1h", length=3600, every=60)],
            webhooks=self.webhooks,
        )
        self.now = NOW
        self.pipeline = AlertPipeline(
            engine, self.settings, [RULE], CollectorRegistry(), notifier=None,
            clock_ms=lambda: self.now,
        )  # fmt: skip

    def write(self, version: str, p: np.ndarray, y: np.ndarray, *, later_share: float = 0.5):
        """Events of the hour before ``now``, ``later_share`` of them in its later half."""
        rng = np.random.default_rng(len(p))
        later = rng.uniform(size=p.size) < later_share
        times = self.now - HOUR + rng.integers(0, HOUR // 2, p.size) + np.where(later, HOUR // 2, 0)
        ids = [f"{version}-{self.now}-{i}" for i in range(p.size)]
        predictions = [
            # The raw score: the log-odds the calibrator served as p.
            Prediction("fraud", event, version, int(at), float(logit(q)), float(q))
            for event, at, q in zip(ids, times, p, strict=True)
        ]
        labels = [
            Label("fraud", event, int(label), self.now - 1000)
            for event, label in zip(ids, y, strict=True)
        ]
        EventStore(self.engine, clock_ms=lambda: self.now).write_batch(predictions + labels)

    def evaluate_and_deliver(self) -> list[dict]:
        """Run the window job at ``now`` and deliver; the bodies received so far."""
        job = WindowJob(
            self.engine, self.settings, self.settings.windows[0], owner="a",
            metrics=JobMetrics(CollectorRegistry()), clock_ms=lambda: self.now,
            on_results=self.pipeline.on_results,
        )  # fmt: skip
        job.evaluate_now(self.now)
        deliverer = WebhookDeliverer(
            self.engine, self.webhooks, DeliveryMetrics(CollectorRegistry())
        )
        while deliverer.deliver_due():
            pass
        deliverer.close()
        bodies = []
        for received in self.receiver.accepted():
            assert signing.verify(SECRET.encode(), received.body, received.headers)
            body = json.loads(received.body)
            jsonschema.validate(body, SCHEMA, format_checker=jsonschema.FormatChecker())
            bodies.append(body)
        return bodies


def _fire(engine: Engine, receiver: Receiver, n: int, *, later_share: float = 0.5) -> dict:
    """n drifted events of v1, ``later_share`` of them in the later half of the window."""
    loop = Loop(engine, receiver)
    loop.write("v1", *_drifted(np.random.default_rng(0), n), later_share=later_share)
    bodies = loop.evaluate_and_deliver()
    assert {b["model_version"] for b in bodies} == {"v1", "__all__"}
    return {b["model_version"]: b for b in bodies}


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
    # The refits from the raw score are offered next to the corrections; a refit of a
    # log-odds calibrator is no better than a correction, which comes first.
    assert list(scores) == [*CORRECTIONS, *RAW_METHODS] and not recalibration["skipped"]
    assert artifact["input"] == "probability"
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


def _deploy(loop: Loop, calibrate, version: str, n: int = 4_000) -> list[dict]:
    """Two hours later, the producer serves ``calibrate(p)`` as calibrator version
    ``version``; the model behind it is as over-confident as before."""
    loop.now = NOW + 2 * HOUR
    p, y = _drifted(np.random.default_rng(5), n)
    loop.write(with_calibrator("v1", version), calibrate(p), y)
    return [b for b in loop.evaluate_and_deliver() if b["type"] != "calmon.alert.firing"]


def test_the_deployed_recommendation_is_reported_verified_once(
    migrated_engine: Engine, http_receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALMON_WEBHOOK_SECRET", SECRET)
    loop = Loop(migrated_engine, http_receiver)
    loop.write("v1", *_drifted(np.random.default_rng(0), 6_000))
    (firing,) = [b for b in loop.evaluate_and_deliver() if b["model_version"] == "v1"]
    artifact = firing["recalibration"]["recommended"]
    assert recalibrations.load(migrated_engine)[0].state == "awaiting"

    (verdict,) = _deploy(loop, lambda p: apply(artifact, p), "2")
    assert verdict["type"] == "calmon.recalibration.verified"
    assert (verdict["alert_id"], verdict["model_version"]) == (firing["alert_id"], "v1")
    assert verdict["deployed_model_version"] == "v1+cal=2"
    assert verdict["after"]["ece"]["upper"] < verdict["before"]["ece"]["value"]
    assert verdict["before"]["ece"]["value"] == firing["metrics"]["ece"]
    assert verdict["promised"]["method"] == artifact["method"]
    # Once: the next evaluation decides nothing new, and the store says verified.
    loop.now += 60_000
    assert len([b for b in loop.evaluate_and_deliver() if "recalibration." in b["type"]]) == 1
    (stored,) = recalibrations.load(migrated_engine, model="fraud")
    assert stored.state == "verified"
    api = HttpApi(engine=migrated_engine, registry=CollectorRegistry(), readiness=dict)
    status, _, body = api.handle("/api/v1/recalibration", {"model": "fraud", "window": "1h"})
    (listed,) = json.loads(body)
    assert (status, listed["state"], listed["alert_id"]) == (200, "verified", firing["alert_id"])
    assert listed["recommendation"]["recommended"] == artifact
    assert listed["outcome"]["after"] == verdict["after"]
    assert api.handle("/api/v1/recalibration", {})[0] == 400
    registry = CollectorRegistry()
    registry.register(RecalibrationsCollector(migrated_engine))
    labels = {"model": "fraud", "model_version": "v1", "segment": "__all__", "window": "1h"}
    assert (
        registry.get_sample_value("calmon_recalibration_outcome", {**labels, "state": "verified"})
        == 1
    )
    assert (
        registry.get_sample_value("calmon_recalibration_outcome", {**labels, "state": "failed"})
        == 0
    )


def test_a_wrong_calibrator_is_reported_failed(
    migrated_engine: Engine, http_receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALMON_WEBHOOK_SECRET", SECRET)
    loop = Loop(migrated_engine, http_receiver)
    loop.write("v1", *_drifted(np.random.default_rng(0), 6_000))
    loop.evaluate_and_deliver()
    # The opposite of the fix: sharpen an over-confident model further.
    (verdict,) = _deploy(loop, lambda p: expit(1.5 * logit(p)), "wrong")
    assert verdict["type"] == "calmon.recalibration.failed"
    assert verdict["after"]["ece"]["value"] > verdict["before"]["ece"]["value"]


def test_a_deployment_with_too_few_labels_expires_at_the_expiry_and_not_before(
    migrated_engine: Engine, http_receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALMON_WEBHOOK_SECRET", SECRET)
    loop = Loop(migrated_engine, http_receiver)
    loop.write("v1", *_drifted(np.random.default_rng(0), 6_000))
    (firing,) = [b for b in loop.evaluate_and_deliver() if b["model_version"] == "v1"]
    week = 7 * 24 * HOUR  # evaluation.recalibration_expiry's default
    # A new calibrator version, but 1,000 labelled events where 3,000 (half the 6,000
    # that fired) are needed: no verdict, and a minute before the expiry no expiry.
    loop.now = firing["fired_at_ms"] + week - 60_000
    p, y = _drifted(np.random.default_rng(5), 1_000)
    loop.write(with_calibrator("v1", "2"), p, y)
    assert not [b for b in loop.evaluate_and_deliver() if "recalibration." in b["type"]]
    assert _stored(migrated_engine, firing["alert_id"]).state == "awaiting"
    loop.now += 60_000
    (expired,) = [b for b in loop.evaluate_and_deliver() if "recalibration." in b["type"]]
    assert expired["type"] == "calmon.recalibration.expired"  # and the schema held
    assert (expired["alert_id"], expired["deployed_model_version"]) == (
        firing["alert_id"],
        "v1+cal=2",
    )
    reason = re.fullmatch(
        r"expired: no new calibrator measured within 7d of the alert: v1\+cal=2 has (\d+) "
        r"labelled events in the window, 3000 needed \(half the window that fired\)",
        expired["rule"],
    )
    assert reason and 900 < int(reason[1]) <= 1_000  # the window moved on by a minute
    assert expired["after"] is None and expired["before"]["labelled"] == 6_000
    stored = _stored(migrated_engine, firing["alert_id"])
    assert (stored.state, stored.decided_ms) == ("expired", expired["decided_at_ms"])
    # Decided: more labels on the new calibrator later change nothing.
    loop.now += 60_000
    loop.write(with_calibrator("v1", "2"), *_drifted(np.random.default_rng(6), 4_000))
    bodies = loop.evaluate_and_deliver()  # every body received so far
    assert [b["type"] for b in bodies if "recalibration." in b["type"]] == [expired["type"]]
    assert _stored(migrated_engine, firing["alert_id"]).state == "expired"


def _stored(engine: Engine, alert_id: str) -> recalibrations.Recalibration:
    (stored,) = [r for r in recalibrations.load(engine) if r.alert_id == alert_id]
    return stored

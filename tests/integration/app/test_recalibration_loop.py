"""The recalibration loop from outside: `calmon run` as a process, a real broker, a real
webhook receiver. Two over-confident models drift; each alert's signed webhook carries a
calibrator that, applied to held-out events, lowers their ECE (computed here, by hand).
The producer then "deploys": it sends new events through a new calibrator_version, the
right artifact for one model and a deliberately wrong map for the other; calmon
reports the first verified and the second failed, each once."""

from __future__ import annotations

import json
import os
import time
import urllib.request
from pathlib import Path

import jsonschema
import numpy as np
import orjson
import pytest
import yaml
from kafka import KafkaProducer
from scipy.special import expit, logit

from monitor.alerts import signing
from monitor.demo.broker import free_loopback_port
from monitor.metrics.calibrators import apply
from monitor.settings import KafkaSettings
from monitor.store.db import migrate
from monitor.store.db.engine import make_engine
from tests.fixtures.http_receiver import Receiver
from tests.integration.app.test_daemon import _start, _stop, scrape
from tests.integration.ingest.helpers import send_all, wait_until

pytestmark = pytest.mark.integration
SECRET = "loop-signing-key"
MINUTE = 60_000


def _drifted(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """What the models serve, and labels from the truth: expit(0.5 logit p)."""
    p = rng.beta(1.5, 1.5, n)
    return p, (rng.uniform(size=n) < expit(0.5 * logit(p))).astype(int)


def _ece(p: np.ndarray, y: np.ndarray) -> float:
    """Ten equal-width bins, written out: independent of calmon's metrics core."""
    bins = np.minimum((p * 10).astype(int), 9)
    return float(sum(abs(y[bins == k].sum() - p[bins == k].sum()) for k in range(10)) / p.size)


def _send(
    producer: KafkaProducer,
    kafka: KafkaSettings,
    model: str,
    p: np.ndarray,
    y: np.ndarray,
    times: np.ndarray,
    *,
    calibrator_version: str | None = None,
) -> None:
    tag = calibrator_version or "0"
    predictions = [
        {
            "event_id": f"{tag}-{i}",
            "model_id": model,
            "model_version": "v1",
            "timestamp": int(times[i]),
            "probability": float(p[i]),
            **({"calibrator_version": calibrator_version} if calibrator_version else {}),
        }
        for i in range(p.size)
    ]
    labels = [
        {"event_id": f"{tag}-{i}", "model_id": model, "label": int(y[i]), "timestamp": int(t)}
        for i, t in enumerate(times + 1000)
    ]
    send_all(producer, kafka.topics.probabilities, [orjson.dumps(m) for m in predictions])
    send_all(producer, kafka.topics.labels, [orjson.dumps(m) for m in labels])


def _config(
    tmp_path: Path, kafka: KafkaSettings, port: int, receiver: Receiver, **evaluation: str
) -> Path:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        yaml.safe_dump(
            {
                "rules": [
                    {
                        "name": "CalibrationErrorHigh",
                        "select": {"model_version": "v1", "segment": "__all__"},
                        "metric": "ece",
                        "op": ">",
                        "threshold": 0.05,
                        "actions": ["recalibrate"],
                    }
                ]
            }
        )
    )
    path = tmp_path / "calmon.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "kafka": kafka.model_dump(mode="json", exclude_none=True),
                "store": {"compaction_interval": "1s"},
                "windows": [{"name": "1h", "length": "1h", "every": "2s"}],
                "evaluation": {"min_labelled": 400, "min_predictions": 400, **evaluation},
                "http": {"host": "127.0.0.1", "port": port},
                "rules": [str(rules)],
                "webhooks": {"recalibrate": {"url": f"{receiver.url}/hook", "backoff_max": 1}},
            }
        )
    )
    return path


def _bodies(receiver: Receiver) -> list[dict]:
    bodies = []
    for received in receiver.accepted():
        assert signing.verify(SECRET.encode(), received.body, received.headers)
        bodies.append(orjson.loads(received.body))
    return bodies


def _firing(receiver: Receiver, model: str) -> list[dict]:
    return [
        b
        for b in _bodies(receiver)
        if b["type"] == "calmon.alert.firing"
        and (b["model"], b["model_version"]) == (model, "v1")
        and b["recalibration"]["status"] == "recommended"
    ]


def _verdicts(receiver: Receiver) -> dict[str, list[dict]]:
    verdicts: dict[str, list[dict]] = {}
    for body in _bodies(receiver):
        if body["type"].startswith("calmon.recalibration."):
            verdicts.setdefault(body["model"], []).append(body)
    return verdicts


def test_drift_webhook_deploy_verified_and_a_wrong_fix_failed(
    kafka_settings: KafkaSettings,
    producer: KafkaProducer,
    http_receiver: Receiver,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CALMON_WEBHOOK_SECRET", SECRET)
    database_url = f"sqlite:///{tmp_path / 'calmon.db'}"
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    engine.dispose()
    rng = np.random.default_rng(0)
    now = int(time.time() * 1000)
    # 50 minutes of drifted traffic: both halves of the 1h window have labels to fit on.
    n = 4_000
    times = now - 50 * MINUTE + np.sort(rng.integers(0, 48 * MINUTE, n))
    for model in ("fraud", "churn"):
        _send(producer, kafka_settings, model, *_drifted(rng, n), times)

    port = free_loopback_port()
    log = tmp_path / "calmon.log"
    daemon = _start(_config(tmp_path, kafka_settings, port, http_receiver), database_url, log)
    assert os.environ["CALMON_WEBHOOK_SECRET"] == SECRET  # inherited by the daemon
    try:
        wait_until(
            lambda: _firing(http_receiver, "fraud") and _firing(http_receiver, "churn"),
            timeout_s=180,
            what="a recommendation in each model's firing webhook",
        )
        (fraud,) = _firing(http_receiver, "fraud")
        artifact = fraud["recalibration"]["recommended"]
        assert artifact["method"] != "identity"
        held_out_p, held_out_y = _drifted(np.random.default_rng(42), 50_000)
        assert _ece(apply(artifact, held_out_p), held_out_y) < 0.4 * _ece(held_out_p, held_out_y)

        # Deploy: the next minutes' traffic goes through calibrator version 2: the
        # recommended artifact for fraud, a map that sharpens it further for churn.
        recent = int(time.time() * 1000) - 5 * MINUTE + np.sort(rng.integers(0, 4 * MINUTE, n))
        p, y = _drifted(rng, n)
        _send(
            producer, kafka_settings, "fraud", apply(artifact, p), y, recent, calibrator_version="2"
        )
        p, y = _drifted(rng, n)
        sharper = expit(1.5 * logit(p))
        _send(producer, kafka_settings, "churn", sharper, y, recent, calibrator_version="2")

        wait_until(
            lambda: {"fraud", "churn"} <= set(_verdicts(http_receiver)),
            timeout_s=120,
            what="both verdicts",
        )
        verdicts = _verdicts(http_receiver)
        (fixed,), (broken,) = verdicts["fraud"], verdicts["churn"]
        assert fixed["type"] == "calmon.recalibration.verified"
        assert fixed["alert_id"] == fraud["alert_id"]
        assert fixed["deployed_model_version"] == "v1+cal=2"
        # Decided as soon as the new series has min_labelled labels, maybe before all.
        assert 400 <= fixed["after"]["labelled"] <= n
        assert broken["type"] == "calmon.recalibration.failed"

        # Once: two more evaluations later, still one verdict each; /metrics agrees.
        last_success = ("calmon_window_last_success_timestamp_seconds", (("window", "1h"),))
        decided_at = time.time()
        wait_until(
            lambda: scrape(port).get(last_success, 0) > decided_at + 2,
            timeout_s=30,
            what="two more evaluations",
        )
        assert {m: len(v) for m, v in _verdicts(http_receiver).items()} == {"fraud": 1, "churn": 1}
        metrics = scrape(port)

        def outcome(model: str, state: str) -> float | None:
            labels = {"model": model, "model_version": "v1", "segment": "__all__"}
            key = tuple(sorted({**labels, "window": "1h", "state": state}.items()))
            return metrics.get(("calmon_recalibration_outcome", key))

        assert (outcome("fraud", "verified"), outcome("churn", "failed")) == (1.0, 1.0)
    finally:
        _stop(daemon, log)


def test_a_recalibration_never_deployed_expires_once(
    kafka_settings: KafkaSettings,
    producer: KafkaProducer,
    http_receiver: Receiver,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Nobody deploys the recommended calibrator: once evaluation.recalibration_expiry
    has passed since the alert fired, calmon decides it expired, says so once in a
    signed webhook, in /metrics and in the API, and stops waiting for it."""
    monkeypatch.setenv("CALMON_WEBHOOK_SECRET", SECRET)
    database_url = f"sqlite:///{tmp_path / 'calmon.db'}"
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    engine.dispose()
    rng = np.random.default_rng(1)
    n, now = 4_000, int(time.time() * 1000)
    times = now - 50 * MINUTE + np.sort(rng.integers(0, 48 * MINUTE, n))
    _send(producer, kafka_settings, "stale", *_drifted(rng, n), times)
    port = free_loopback_port()
    log = tmp_path / "calmon.log"
    config = _config(tmp_path, kafka_settings, port, http_receiver, recalibration_expiry="8s")
    daemon = _start(config, database_url, log)
    try:
        wait_until(
            lambda: _firing(http_receiver, "stale"), timeout_s=180, what="the firing webhook"
        )
        (fired,) = _firing(http_receiver, "stale")
        wait_until(lambda: "stale" in _verdicts(http_receiver), timeout_s=60, what="the expiry")
        (expired,) = _verdicts(http_receiver)["stale"]
        schema = json.loads(
            (Path(__file__).parents[3] / "docs" / "webhook.schema.json").read_text()
        )
        jsonschema.validate(expired, schema, format_checker=jsonschema.FormatChecker())
        assert expired["type"] == "calmon.recalibration.expired"
        assert (expired["state"], expired["alert_id"]) == ("expired", fired["alert_id"])
        assert expired["after"] is None and expired["deployed_model_version"] is None
        assert expired["rule"] == (
            "expired: no new calibrator measured within 8s of the alert: "
            "no series of v1 with a new calibrator version"
        )
        assert expired["decided_at_ms"] - fired["fired_at_ms"] >= 8_000
        assert expired["promised"]["method"] == fired["recalibration"]["recommended"]["method"]

        # Once: two more evaluations later, still one; /metrics and the API agree.
        last_success = ("calmon_window_last_success_timestamp_seconds", (("window", "1h"),))
        decided_at = time.time()
        wait_until(
            lambda: scrape(port).get(last_success, 0) > decided_at + 2,
            timeout_s=30,
            what="two more evaluations",
        )
        assert len(_verdicts(http_receiver)["stale"]) == 1
        labels = {"model": "stale", "model_version": "v1", "segment": "__all__", "window": "1h"}
        states = {
            state: scrape(port).get(
                ("calmon_recalibration_outcome", tuple(sorted({**labels, "state": state}.items())))
            )
            for state in ("awaiting", "verified", "failed", "expired")
        }
        assert states == {"awaiting": 0.0, "verified": 0.0, "failed": 0.0, "expired": 1.0}
        url = f"http://127.0.0.1:{port}/api/v1/recalibration?model=stale"
        (listed,) = json.loads(urllib.request.urlopen(url, timeout=5).read())
        assert (listed["state"], listed["alert_id"]) == ("expired", fired["alert_id"])
        assert listed["outcome"]["rule"] == expired["rule"]
        assert listed["decided_at_ms"] == expired["decided_at_ms"]
    finally:
        _stop(daemon, log)

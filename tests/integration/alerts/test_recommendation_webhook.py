"""Recalibrate or retrain, in the firing webhook, end to end through both stores: a
healthy hour (the trailing drift reference), then an hour in which the model either
turned over-confident (same ranking: recalibrate) or noisier (ranking lost: retrain).
The window job, the alert pipeline, the outbox and a real HTTP receiver, as in the
daemon; the payload follows docs/webhook.schema.json (checked by ``Loop``)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit, logit
from sklearn.metrics import roc_auc_score
from sqlalchemy import Engine

from tests.fixtures.http_receiver import Receiver
from tests.integration.alerts.test_recalibration_webhook import HOUR, NOW, SECRET, Loop

pytestmark = pytest.mark.integration


def _hour(rng: np.random.Generator, n: int, *, sharpen: float, noise: float):  # type: ignore[no-untyped-def]
    truth = rng.beta(2, 3, n)
    p = expit(sharpen * logit(truth) + noise * rng.normal(size=n))
    return np.clip(p, 1e-6, 1 - 1e-6), (rng.uniform(size=n) < truth).astype(float)


@pytest.mark.parametrize(
    ("sharpen", "noise", "expected"),
    [(3.0, 0.0, "recalibrate"), (1.0, 2.0, "retrain")],
)
def test_the_webhook_says_whether_to_recalibrate_or_retrain(
    migrated_engine: Engine,
    http_receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
    sharpen: float,
    noise: float,
    expected: str,
) -> None:
    monkeypatch.setenv("CALMON_WEBHOOK_SECRET", SECRET)
    rng = np.random.default_rng(11)
    loop = Loop(migrated_engine, http_receiver)
    loop.now = NOW - HOUR
    healthy_p, healthy_y = _hour(rng, 6_000, sharpen=1.0, noise=0.0)
    loop.write("v1", healthy_p, healthy_y)
    loop.now = NOW
    p, y = _hour(rng, 6_000, sharpen=sharpen, noise=noise)
    loop.write("v1", p, y)
    bodies = {b["model_version"]: b for b in loop.evaluate_and_deliver()}
    body = bodies["v1"]
    assert body["recommendation"] == expected, body["recommendation_evidence"]
    evidence = body["recommendation_evidence"]
    assert evidence["status"] == "compared"
    assert evidence["reference"]["source"] == "trailing"
    assert evidence["reference"]["labelled"] == 6_000
    auc = evidence["roc_auc"]
    assert auc["reference"] == pytest.approx(roc_auc_score(healthy_y, healthy_p), abs=1e-3)
    assert auc["current"] == pytest.approx(roc_auc_score(y, p), abs=1e-3)
    if expected == "retrain":
        assert auc["change_ci_upper"] < 0
    else:
        assert auc["change_ci_lower"] < 0 < auc["change_ci_upper"]
        assert evidence["ece"]["change_ci_lower"] > 0

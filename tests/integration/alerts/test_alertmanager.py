"""An injected calibration drift fires an alert that arrives through a real Alertmanager;
recovery resolves it. Events go into a real SQLite store; the daemon's own wiring (App:
window job -> rules -> alert state -> Alertmanager client) does the rest."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import orjson
import pytest
from sqlalchemy import Engine

from monitor.app import App
from monitor.core.records import Label, Prediction
from monitor.demo.broker import free_loopback_port
from monitor.metrics.calibration import expected_calibration_error
from monitor.settings import (
    AlertmanagerSettings,
    EvaluationSettings,
    Settings,
    StoreSettings,
    WindowSettings,
)
from monitor.store.write.event_store import EventStore
from tests.fixtures.alertmanager import Alertmanager

pytestmark = pytest.mark.integration

MINUTE = 60_000
RULES = """
rules:
  - name: CalibrationErrorHigh
    select: {window: 5m, model_version: v1, segment: "region=*"}
    metric: ece
    op: ">"
    threshold: 0.06
    resolve_threshold: 0.04
    min_samples: 500
    severity: warning
    labels: {team: risk}
    annotations:
      summary: "ECE {ece:.4f} on {model} {segment}"
"""


class Clock:
    def __init__(self, ms: int) -> None:
        self.ms = ms

    def __call__(self) -> int:
        return self.ms


def write_traffic(
    store: EventStore,
    at_ms: int,
    first_id: int,
    eu_overconfident: bool,
    seed: int,
    regions: tuple[str, ...] = ("eu", "us"),
    model: str = "fraud",
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """2,000 labelled predictions per region in the 2 minutes before ``at_ms``."""
    rng = np.random.default_rng(seed)
    written = {}
    records: list[Prediction | Label] = []
    for r, region in enumerate(regions):
        truth = rng.uniform(0.05, 0.95, 2000)
        y = (rng.uniform(size=truth.size) < truth).astype(int)
        p = truth
        if region == "eu" and eu_overconfident:
            logit = np.log(truth / (1 - truth))
            p = 1 / (1 + np.exp(-3 * logit))
        written[region] = (p, y)
        for i in range(truth.size):
            event_id = f"{first_id + r * 10_000 + i}"
            t = at_ms - 2 * MINUTE + i * 50
            records.append(
                Prediction(
                    model,
                    event_id,
                    "v1",
                    t,
                    raw_score=float(np.log(truth[i] / (1 - truth[i]))),
                    probability=float(p[i]),
                    segment={"region": region},
                )
            )
            records.append(Label(model, event_id, int(y[i]), t + 1000))
    store.write_batch(records)
    return written


def make_app(engine: Engine, rules: Path, urls: list[str], clock: Clock) -> App:
    settings = Settings(
        store=StoreSettings(segment_keys=["region"]),
        windows=[WindowSettings(name="5m", length=300, every=60)],
        evaluation=EvaluationSettings(min_labelled=200, min_predictions=200),
        rules=[str(rules)],
        alertmanager=AlertmanagerSettings(urls=urls, resend_interval=3600),
    )
    return App(settings, engine=engine, clock_ms=clock)


def firing(alerts: list[dict]) -> list[dict]:  # type: ignore[type-arg]
    return [a for a in alerts if a["status"]["state"] == "active"]


def notifications(alertmanager: Alertmanager) -> list[dict]:  # type: ignore[type-arg]
    return [orjson.loads(r.body) for r in alertmanager.receiver.received]


def test_drift_fires_through_alertmanager_and_recovery_resolves(
    alertmanager: Alertmanager, sqlite_engine: Engine, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    real_now = int(time.time() * 1000)
    clock = Clock(real_now - 20 * MINUTE)
    # An HA pair whose second member is down: alerts still go through the first.
    down = f"http://127.0.0.1:{free_loopback_port()}"
    app = make_app(sqlite_engine, rules, [alertmanager.url, down], clock)
    store = EventStore(sqlite_engine, segment_keys=["region"], clock_ms=clock)

    # Healthy: both regions calibrated, nothing fires.
    write_traffic(store, clock.ms, 0, eu_overconfident=False, seed=1)
    app.jobs[0].evaluate_now(clock.ms)
    assert app.alerts.transitions.labels("CalibrationErrorHigh", "firing")._value.get() == 0

    # Drift: region eu becomes over-confident.
    clock.ms = real_now - 10 * MINUTE
    written = write_traffic(store, clock.ms, 100_000, eu_overconfident=True, seed=2)
    app.jobs[0].evaluate_now(clock.ms)
    expected_ece = expected_calibration_error(*written["eu"])
    assert expected_ece > 0.06 > expected_calibration_error(*written["us"])

    deadline = time.monotonic() + 20
    while not firing(alertmanager.alerts()) and time.monotonic() < deadline:
        time.sleep(0.2)
    (alert,) = firing(alertmanager.alerts())
    assert alert["labels"] == {
        "alertname": "CalibrationErrorHigh",
        "model": "fraud",
        "model_version": "v1",
        "segment": "region=eu",
        "window": "5m",
        "severity": "warning",
        "team": "risk",
    }
    assert alert["annotations"]["summary"] == f"ECE {expected_ece:.4f} on fraud region=eu"
    # ...and Alertmanager notified its receiver.
    alertmanager.receiver.wait_for(
        lambda got: any(orjson.loads(r.body)["status"] == "firing" for r in got)
    )
    sends = app.notifier.sends  # type: ignore[union-attr]
    assert sends.labels(alertmanager.url, "success")._value.get() >= 1
    assert sends.labels(down, "failure")._value.get() >= 1

    # A restarted daemon does not fire the same alert again.
    restarted = make_app(sqlite_engine, rules, [alertmanager.url], clock)
    clock.ms += MINUTE
    assert not [
        t
        for t in restarted.alerts.on_results("5m", restarted.jobs[0].evaluate_all(clock.ms))
        if t.kind == "firing"
    ]

    # Recovery: calibrated traffic again; the alert resolves in Alertmanager.
    clock.ms = real_now
    write_traffic(store, clock.ms, 200_000, eu_overconfident=False, seed=3)
    transitions = restarted.alerts.on_results("5m", restarted.jobs[0].evaluate_all(clock.ms))
    assert [(t.kind, t.alert.series.segment) for t in transitions] == [("resolved", "region=eu")]
    alertmanager.receiver.wait_for(
        lambda got: any(orjson.loads(r.body)["status"] == "resolved" for r in got)
    )
    resolved = next(n for n in notifications(alertmanager) if n["status"] == "resolved")
    assert resolved["alerts"][0]["labels"]["segment"] == "region=eu"


def with_eu_overconfident(
    alertmanager: Alertmanager, engine: Engine, tmp_path: Path
) -> tuple[App, EventStore, Clock]:
    """A daemon on ``engine`` ten minutes ago, with fraud's eu traffic over-confident."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    clock = Clock(int(time.time() * 1000) - 10 * MINUTE)
    app = make_app(engine, rules, [alertmanager.url], clock)
    store = EventStore(engine, segment_keys=["region"], clock_ms=clock)
    write_traffic(store, clock.ms, 0, eu_overconfident=True, seed=2)
    return app, store, clock


def test_a_segment_that_goes_quiet_resolves_its_alert_in_alertmanager(
    alertmanager: Alertmanager, sqlite_engine: Engine, tmp_path: Path
) -> None:
    """The eu segment fires, then stops sending (traffic moved elsewhere): once its last
    events leave the 5-minute window, its alert resolves instead of firing forever."""
    app, store, clock = with_eu_overconfident(alertmanager, sqlite_engine, tmp_path)
    fired = app.alerts.on_results("5m", app.jobs[0].evaluate_all(clock.ms))
    assert [(t.kind, t.alert.series.segment) for t in fired] == [("firing", "region=eu")]
    alertmanager.receiver.wait_for(
        lambda got: any(orjson.loads(r.body)["status"] == "firing" for r in got)
    )

    # Four minutes on, only us sends: eu's events are still in the window, no change.
    clock.ms += 4 * MINUTE
    write_traffic(store, clock.ms, 100_000, eu_overconfident=False, seed=3, regions=("us",))
    assert app.alerts.on_results("5m", app.jobs[0].evaluate_all(clock.ms)) == []
    # Six minutes on: eu's last event left the window; the alert resolves, saying why.
    clock.ms += 6 * MINUTE
    write_traffic(store, clock.ms, 200_000, eu_overconfident=False, seed=4, regions=("us",))
    (resolved,) = app.alerts.on_results("5m", app.jobs[0].evaluate_all(clock.ms))
    assert (resolved.kind, resolved.no_data, resolved.alert.series.segment) == (
        "resolved",
        True,
        "region=eu",
    )
    alertmanager.receiver.wait_for(
        lambda got: any(orjson.loads(r.body)["status"] == "resolved" for r in got)
    )
    notification = next(n for n in notifications(alertmanager) if n["status"] == "resolved")
    (alert,) = notification["alerts"]
    assert alert["labels"]["segment"] == "region=eu"
    assert alert["annotations"]["resolved_reason"] == "no events of the series in the window"
    # The summary keeps the last ECE that had evidence.
    assert alert["annotations"]["summary"].startswith("ECE 0.")
    assert not firing(alertmanager.alerts())


def test_a_retired_model_resolves_its_alert_once_its_last_events_leave_the_window(
    alertmanager: Alertmanager, sqlite_engine: Engine, tmp_path: Path
) -> None:
    """fraud fires, then is retired (no events at all) while churn goes on: its alert
    resolves, through the job's own hand-over to the rules (the models the tick covered)
    rather than a test's call."""
    app, store, clock = with_eu_overconfident(alertmanager, sqlite_engine, tmp_path)
    app.jobs[0].evaluate_now(clock.ms)
    fired = app.alerts.transitions.labels("CalibrationErrorHigh", "firing")._value.get()
    assert fired == 1
    alertmanager.receiver.wait_for(
        lambda got: any(orjson.loads(r.body)["status"] == "firing" for r in got)
    )

    clock.ms += 10 * MINUTE
    write_traffic(store, clock.ms, 0, eu_overconfident=False, seed=3, model="churn")
    results = app.jobs[0].evaluate_now(clock.ms)
    # fraud's whole-model series stays known to the store (retention keeps series
    # rows), evaluated empty; its eu segment, unseen in the window, has no result.
    assert {(r.series.model, r.series.segment, r.predictions) for r in results} >= {
        ("fraud", "__all__", 0)
    }
    assert ("fraud", "region=eu") not in {(r.series.model, r.series.segment) for r in results}
    resolved = app.alerts.transitions.labels("CalibrationErrorHigh", "resolved")._value.get()
    assert resolved == 1
    alertmanager.receiver.wait_for(
        lambda got: any(orjson.loads(r.body)["status"] == "resolved" for r in got)
    )
    notification = next(n for n in notifications(alertmanager) if n["status"] == "resolved")
    (alert,) = notification["alerts"]
    assert (alert["labels"]["model"], alert["labels"]["segment"]) == ("fraud", "region=eu")
    assert alert["annotations"]["resolved_reason"] == "no events of the series in the window"
    assert not firing(alertmanager.alerts())

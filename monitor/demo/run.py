"""``calmon demo``: everything embedded, a drift injected, and what calmon saw.

Starts the Kafka-compatible broker (tansu, from the ``embedded`` extra) on a free
loopback port, an SQLite store in a temporary directory, the daemon with a short
window (90 s, evaluated every 5 s) and one alert rule, a local webhook receiver
standing in for a recalibration pipeline, and the simulator (``calmon simulate``)
playing ``monitor/demo/scenario.yaml``. After a healthy period the model becomes
over-confident on region ``eu`` and its raw scores shift; the console shows ECE and PSI
moving, the alert firing, and the signed webhook arriving with a recommended calibrator.
The receiver deploys it: the simulator serves eu through it as calibrator version 2,
eu's ECE recovers, and calmon reports the recalibration verified.
"""

from __future__ import annotations

import base64
import functools
import logging
import os
import secrets
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from monitor.alerts.signing import signing_key
from monitor.app import App
from monitor.core.series import CALIBRATOR_SEPARATOR, with_calibrator
from monitor.core.times import epoch_ms, to_datetime
from monitor.demo.broker import EmbeddedBroker, free_loopback_port
from monitor.demo.receiver import Deploy, WebhookReceiver
from monitor.metrics.calibrators import apply
from monitor.report.build import ReportError, ReportRequest, build_report
from monitor.settings import (
    EvaluationSettings,
    HttpSettings,
    KafkaSettings,
    ReferenceSettings,
    Settings,
    StoreSettings,
    TopicSettings,
    WebhookSettings,
    WindowSettings,
)
from monitor.shutdown import ShutdownSignals
from monitor.sim.producer import Simulator, kafka_sender
from monitor.sim.scenario import Scenario, load_scenario
from monitor.store.aggregates import list_series
from monitor.store.alerts import load_alerts
from monitor.store.db import migrate
from monitor.store.db.engine import Engine, make_engine
from monitor.store.results import latest_results
from monitor.windows.references import snapshot_period

logger = logging.getLogger(__name__)

EVENTS_PER_SECOND = 200
SCENARIO = Path(__file__).with_name("scenario.yaml")


def demo_scenario(healthy_s: float) -> Scenario:
    """The shipped demo scenario with its drifts starting after ``healthy_s``."""
    scenario = load_scenario(SCENARIO)
    drifts = [drift.model_copy(update={"start": healthy_s}) for drift in scenario.drifts]
    return scenario.model_copy(update={"drifts": drifts})


DEMO_RULES = """
rules:
  - name: CalibrationErrorHigh
    select: {window: 90s, model_version: v1, segment: "region=*"}
    metric: ece
    op: ">"
    threshold: 0.05
    resolve_threshold: 0.035
    for: 45s
    min_samples: 300
    severity: warning
    annotations:
      summary: "ECE {ece:.3f} on {model} {segment} ({window})"
    actions: [recalibrate]
"""


def demo_settings(
    bootstrap: str,
    database: Path,
    http_port: int,
    healthy_start_ms: int,
    drift_at_ms: int,
    rules: Path,
    webhook_url: str,
) -> Settings:
    return Settings(
        kafka=KafkaSettings(
            bootstrap_servers=[bootstrap],
            group_id="calmon-demo",
            topics=TopicSettings(
                raw_scores="predictions", probabilities="predictions", labels="labels"
            ),
            dead_letter_topic="dead-letter",
            session_timeout_ms=6000,
            heartbeat_interval_ms=1000,
        ),
        store=StoreSettings(url=f"sqlite:///{database}", segment_keys=["region"]),
        windows=[WindowSettings(name="90s", length=90, every=5)],
        evaluation=EvaluationSettings(
            min_labelled=300, min_predictions=300, bootstrap_resamples=200
        ),
        # The drift reference: the healthy period at the start of the demo.
        reference=ReferenceSettings(
            mode="fixed", start=to_datetime(healthy_start_ms), end=to_datetime(drift_at_ms)
        ),
        http=HttpSettings(host="127.0.0.1", port=http_port),
        rules=[str(rules)],
        webhooks={
            "recalibrate": WebhookSettings(url=webhook_url, backoff_initial=0.5, backoff_max=5)
        },
    )


def _status(engine: Engine, phase: str, *, since_ms: int, deployed: list[str]) -> str:
    """One console line: this run's latest results (a store kept with ``--dir`` holds a
    previous run's until this run's first evaluation), eu through the calibrator
    version this run deployed last, if any."""
    rows = {
        (r.series.model_version, r.series.segment): r.values
        for r in latest_results(engine)
        if epoch_ms(r.evaluated_at) >= since_ms
    }

    def value(segment: str, key: str, version: str = "v1") -> str:
        found = rows.get((version, segment), {}).get(key)
        return f"{found:.3f}" if found is not None else "  -  "

    # Once eu is served through a recalibrated version (v1+cal=2), show that one's ECE.
    recalibrated = [with_calibrator("v1", version) for version in deployed[-1:]]
    eu = value("region=eu", "ece", *recalibrated)
    served = f" (cal {deployed[-1]})" if deployed else ""
    return (
        f"[{phase:>8}] ECE all {value('__all__', 'ece')}  eu {eu}{served}  "
        f"us {value('region=us', 'ece')} | PSI raw score {value('__all__', 'psi_raw_score')}  "
        f"probability {value('__all__', 'psi_probability')}"
    )


def run_demo(
    *, duration_s: float | None, healthy_s: float = 45.0, directory: Path | None = None
) -> int:
    stop = threading.Event()  # the threads' stop; set from ordinary code only
    signals = ShutdownSignals()
    signals.install()
    # The signing key is a secret from the environment; the demo makes one up.
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    key = signing_key(os.environ.setdefault("CALMON_WEBHOOK_SECRET", secret))
    receiver = WebhookReceiver(key)
    with tempfile.TemporaryDirectory(prefix="calmon-demo-") as scratch, EmbeddedBroker() as broker:
        database = (directory or Path(scratch)) / "calmon-demo.db"
        rules = Path(scratch) / "demo-rules.yaml"
        rules.write_text(DEMO_RULES)
        start = time.time()
        drift_at = start + healthy_s
        settings = demo_settings(
            broker.bootstrap_servers,
            database,
            free_loopback_port(),
            int(start * 1000),
            int(drift_at * 1000),
            rules,
            receiver.url,
        )
        engine = make_engine(settings.store.url.get_secret_value())
        migrate.upgrade(engine)
        app = App(settings, engine=engine)
        app.start()
        send, producer = kafka_sender({"bootstrap_servers": broker.bootstrap_servers})
        simulator = Simulator(
            demo_scenario(healthy_s), send, settings.kafka.topics, rate=EVENTS_PER_SECOND, seed=7
        )
        deployed: list[str] = []  # calibrator versions this run deployed
        receiver.deploy = _deployer(simulator, engine, deployed)
        traffic = threading.Thread(
            target=simulator.run,
            kwargs={"duration_s": None, "count": None, "stop": stop.is_set},
            name="traffic",
        )
        traffic.start()
        # As a user would run `calmon baseline` on a validated period: the healthy traffic
        # becomes the drift reference, snapshotted the moment the drift starts.
        baseline = threading.Timer(
            healthy_s,
            snapshot_period,
            kwargs={
                "engine": engine,
                "model_id": "fraud-detector",
                "model_version": "v1",
                "start_ms": int(start * 1000),
                "end_ms": int(drift_at * 1000),
                "psi_bins": settings.reference.psi_bins,
                "now_ms": int(drift_at * 1000),
            },
        )
        baseline.start()
        base = f"http://127.0.0.1:{app.http_port}"
        print(f"calmon demo: broker {broker.bootstrap_servers}, store {database}")
        print(f"  metrics  {base}/metrics\n  series   {base}/api/v1/series")
        print(
            f"  history  {base}/api/v1/history?model=fraud-detector&metric=ece&segment=region%3Deu"
        )
        print(f"  alerts   {base}/api/v1/alerts\n  webhook receiver {receiver.url}")
        print(
            f"healthy traffic for {healthy_s:.0f} s, then region eu turns over-confident "
            "and raw scores shift (Ctrl-C to stop)"
        )
        announced: dict[str, str] = {}
        report: Path | None = None
        status = functools.partial(
            _status, app.engine, since_ms=int(start * 1000), deployed=deployed
        )
        try:
            while not signals.wait(5.0):
                elapsed = time.time() - start
                phase = "drift" if time.time() >= drift_at else "healthy"
                print(status(phase), flush=True)
                _announce_alerts(app.engine, announced)
                if duration_s is not None and elapsed >= duration_s:
                    break
        finally:
            stop.set()
            baseline.cancel()
            traffic.join(timeout=10)
            producer.close(timeout=5)
            print(status("final"))
            report = _write_report(app, (directory or Path.cwd()) / "calmon-demo-report.html")
            app.shutdown()
            receiver.close()
        print(
            f"summary: {simulator.stats.predictions} predictions; {len(announced)} alert(s) fired; "
            f"{len(receiver.deliveries)} recalibration webhook(s) received; "
            f"{sum(v['state'] == 'verified' for v in receiver.verdicts)} recalibration(s) verified"
        )
        if report is not None:
            print(f"report (reliability diagram, ECE and PSI over time): {report}")
        print("everything stopped, nothing left listening")
    return 0


def _deployer(simulator: Simulator, engine: Engine, deployed: list[str]) -> Deploy:
    """What the demo's recalibration pipeline does with a recommended artifact: serve it,
    as a new calibrator version, to the segment it was fitted on (appended to
    ``deployed``)."""

    def deploy(payload: dict[str, Any], artifact: dict[str, Any]) -> str:
        version = _next_calibrator_version(engine)
        deployed.append(version)
        segment = dict([payload["segment"].split("=", 1)]) if "=" in payload["segment"] else {}
        # The artifact takes what its "input" says: the served p, or the raw score.
        simulator.set_calibrator(segment, version, lambda raw, p: apply(artifact, p, raw_score=raw))
        return version

    return deploy


def _next_calibrator_version(engine: Engine) -> str:
    """One above the highest calibrator version of the demo's model in the store: 2 in a
    new store (1 is the model's own calibrator), more in one a previous run kept, so a
    re-run's deployment is a new series and is verified on its own events."""
    versions = [
        s.model_version.split(CALIBRATOR_SEPARATOR, 1)[1]
        for s in list_series(engine)
        if s.model_id == "fraud-detector" and CALIBRATOR_SEPARATOR in s.model_version
    ]
    return str(max((int(v) for v in versions if v.isdigit()), default=1) + 1)


def _write_report(app: App, path: Path) -> Path | None:
    """The region eu report: what the drift did to calibration, and what the deployed
    calibrator did to it (all versions: v1, then v1+cal=2), as a user would see it."""
    request = ReportRequest(
        model="fraud-detector", window="90s", model_version="__all__", segment="region=eu"
    )
    try:
        path.write_text(build_report(app.engine, app.settings, request))
    except (ReportError, OSError) as problem:
        print(f"no report: {problem}")
        return None
    return path


def _announce_alerts(engine: Engine, announced: dict[str, str]) -> None:
    """Print each alert once as it fires, and once more if it resolves; ``announced``
    keeps what was printed of each (fingerprint -> "firing" or "resolved")."""
    alerts = load_alerts(engine)
    for key, alert in alerts.items():
        if alert.state.state == "firing" and key not in announced:
            announced[key] = "firing"
            print(f">>> ALERT firing {alert.state.rule}: {alert.annotations.get('summary')}")
        if alert.state.state == "resolved" and announced.get(key) == "firing":
            # After the switch, v1's alert resolves once v1 has no events left in the window.
            announced[key] = "resolved"
            why = alert.annotations.get("resolved_reason", "back under the threshold")
            version = alert.state.series.model_version
            print(f">>> ALERT resolved {alert.state.rule} on {version} ({why})")

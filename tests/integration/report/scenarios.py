"""Stores the daemon's own code fills for the report tests (and the docs' screenshots:
``python -m tests.integration.report.scenarios DIR`` writes each scenario's store,
config, HTML and PNG into DIR).

One timeline, 10-minute evaluations of a 30-minute window over two regions:
three healthy hours (the fixed drift reference), then eu turns over-confident; the
alert fires with a recommended calibrator; an hour later eu is served through it as
calibrator version 2, and calmon verifies it. Three rules: a fixed ECE threshold with
hysteresis, a threshold from the reference (3 sigma) and the sequential detector.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.special import expit, logit
from sqlalchemy import Engine

from monitor.app import App
from monitor.core.records import Label, Prediction
from monitor.core.times import to_datetime
from monitor.metrics.calibrators import apply
from monitor.settings import (
    EvaluationSettings,
    ReferenceSettings,
    Settings,
    StoreSettings,
    WebhookSettings,
    WindowSettings,
)
from monitor.store import recalibrations
from monitor.store.write.event_store import EventStore

MINUTE = 60_000
HOUR = 60 * MINUTE
#: A whole hour, so the charts' ticks fall on round times.
START = 1_790_002_800_000
STEP = 10 * MINUTE
EVENTS_PER_STEP = 1000  # per region
DRIFT_AT = START + 3 * HOUR
SWITCH_AT = START + 4 * HOUR
END = START + 5 * HOUR

RULES = """
rules:
  - name: CalibrationErrorHigh
    select: {window: 30m, model_version: v1, segment: "region=*"}
    metric: ece
    op: ">"
    threshold: 0.05
    resolve_threshold: 0.035
    for: 20m
    min_samples: 300
    actions: [recalibrate]
  - name: CalibrationAboveReference
    select: {window: 30m, segment: "region=*"}
    metric: ece
    op: ">"
    threshold: {from_reference: 3 sigma}
    min_samples: 300
  - name: CalibrationShiftDetected
    kind: sequential
    select: {window: 30m, model_version: v1, segment: "region=*"}
"""


@dataclass(frozen=True)
class Scenario:
    config: Path
    settings: Settings


class Clock:
    def __init__(self, ms: int) -> None:
        self.ms = ms

    def __call__(self) -> int:
        return self.ms


def settings_for(url: str, rules: Path) -> Settings:
    return Settings(
        store=StoreSettings(url=url, segment_keys=["region"]),
        windows=[WindowSettings(name="30m", length=1800, every=600)],
        evaluation=EvaluationSettings(
            min_labelled=300, min_predictions=300, bootstrap_resamples=100
        ),
        reference=ReferenceSettings(
            mode="fixed", start=to_datetime(START), end=to_datetime(DRIFT_AT)
        ),
        rules=[str(rules)],
        webhooks={"recalibrate": WebhookSettings(url="http://127.0.0.1:9/hook")},
    )


def write_config(directory: Path, url: str) -> Scenario:
    rules = directory / "rules.yaml"
    rules.write_text(RULES)
    config = directory / "calmon.yaml"
    config.write_text(
        "store: {segment_keys: [region]}\n"
        "windows: [{name: 30m, length: 30m, every: 10m}]\n"
        "evaluation: {min_labelled: 300, min_predictions: 300, bootstrap_resamples: 100}\n"
        f"reference: {{mode: fixed, start: '{to_datetime(START).isoformat()}', "
        f"end: '{to_datetime(DRIFT_AT).isoformat()}'}}\n"
        f"rules: ['{rules}']\n"
        "webhooks: {recalibrate: {url: 'http://127.0.0.1:9/hook'}}\n"
    )
    return Scenario(config, settings_for(url, rules))


def _step(
    store: EventStore, at_ms: int, seed: int, calibrator: dict | None, *, drift: bool
) -> None:  # type: ignore[type-arg]
    """One step's events of both regions, labelled a minute after their prediction."""
    rng = np.random.default_rng(seed)
    records: list[Prediction | Label] = []
    for r, region in enumerate(("eu", "us")):
        truth = rng.beta(2, 3, EVENTS_PER_STEP)
        y = (rng.uniform(size=truth.size) < truth).astype(int)
        served, version = truth, "v1"
        if region == "eu" and drift:
            served = expit(2.5 * logit(truth))  # over-confident
            if calibrator is not None:  # a correction of p, or a refit from the score
                served = apply(calibrator, served, raw_score=logit(truth))
                version = "v1+cal=2"
        times = at_ms - STEP + np.sort(rng.integers(0, STEP - MINUTE, truth.size))
        for i in range(truth.size):
            event = f"{at_ms}-{r}-{i}"
            records.append(
                Prediction("fraud", event, version, int(times[i]), float(logit(truth[i])),
                           float(served[i]), {"region": region})
            )  # fmt: skip
            records.append(Label("fraud", event, int(y[i]), int(times[i]) + MINUTE))
    store.write_batch(records)


def fill(engine: Engine, scenario: Scenario, *, since_ms: int = START, until_ms: int = END) -> None:
    """Run the timeline through the daemon's window job from ``since_ms`` (where an
    earlier call stopped) to ``until_ms``."""
    os.environ.setdefault("CALMON_WEBHOOK_SECRET", "report-scenario")  # never delivered
    clock = Clock(since_ms)
    app = App(scenario.settings, engine=engine, clock_ms=clock)
    store = EventStore(engine, segment_keys=["region"], clock_ms=clock)
    while clock.ms < until_ms:
        clock.ms += STEP
        # From the switch on, eu is served through the calibrator its alert handed over.
        calibrator = _recommended(engine) if clock.ms > SWITCH_AT else None
        _step(store, clock.ms, (clock.ms - START) // STEP, calibrator, drift=clock.ms > DRIFT_AT)
        app.jobs[0].evaluate_now(clock.ms)


def _recommended(engine: Engine) -> dict | None:  # type: ignore[type-arg]
    """What the recalibration pipeline deploys: the artifact the alert handed over."""
    for recalibration in recalibrations.load(engine, model="fraud"):
        if recalibration.series.segment == "region=eu":
            return dict(recalibration.recommendation["recommended"])
    return None


def main(directory: Path) -> None:
    """Write the scenarios' stores, configs and reports (the docs' screenshots)."""
    from monitor.report.build import ReportRequest, report_from_store
    from monitor.report.html import render
    from monitor.report.png import write_png
    from monitor.store.db import migrate
    from monitor.store.db.engine import make_engine

    directory.mkdir(parents=True, exist_ok=True)
    for name, until, version, segment in (
        ("healthy", DRIFT_AT, "v1", "__all__"),
        ("drifting", SWITCH_AT, "v1", "region=eu"),
        ("recalibrated", END, "__all__", "region=eu"),
    ):
        database = directory / f"{name}.db"
        database.unlink(missing_ok=True)
        url = f"sqlite:///{database}"
        engine = make_engine(url)
        migrate.upgrade(engine)
        scenario = write_config(directory, url)
        fill(engine, scenario, until_ms=until)
        report = report_from_store(
            engine, scenario.settings, ReportRequest("fraud", "30m", version, segment)
        )
        (directory / f"{name}.html").write_text(render(report))
        write_png(report, directory / f"{name}.png")
        engine.dispose()
        print(f"wrote {directory / name}.html, .png, .db")


if __name__ == "__main__":
    main(Path(sys.argv[1]))

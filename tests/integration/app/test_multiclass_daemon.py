"""A multi-class model end to end: the simulator's class-drift scenario through the real
broker into `calmon run` (a process, PostgreSQL); /metrics and the JSON API checked
against scikit-learn and event-level loops on the same events, bad vectors dead-lettered
with their reasons, and a rule on the drifting class's PSI firing for that class only."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import orjson
import pytest
import yaml
from kafka import KafkaProducer
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

from monitor.demo.broker import free_loopback_port
from monitor.metrics.drift import ReferenceProfile, population_stability_index
from monitor.settings import KafkaSettings
from monitor.sim.scenario import generate, load_scenario
from monitor.store.db import migrate
from monitor.store.db.engine import make_engine
from tests.integration.app.test_daemon import _start, _stop, scrape
from tests.integration.ingest.helpers import send_all, wait_until

pytestmark = pytest.mark.integration
SCENARIO = (
    Path(__file__).resolve().parents[3] / "config" / "scenarios" / "multiclass-class-drift.yaml"
)
N = 1500
MINUTE = 60_000


def _config(tmp_path: Path, kafka: KafkaSettings, port: int) -> Path:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        yaml.safe_dump(
            {
                "rules": [
                    {
                        "name": "ClassProbabilityDrift",
                        "select": {"model": "intent", "model_version": "v1", "segment": "__all__"},
                        "metric": "class_psi",
                        "op": ">",
                        "threshold": 0.25,
                        "annotations": {"summary": "class {class} drifted: PSI {class_psi:.2f}"},
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
                "ingest": {"max_batch_age": "0.1s", "multiclass": {"max_classes": 6}},
                "store": {"compaction_interval": "1s"},
                "windows": [{"name": "1h", "length": "1h", "every": "2s"}],
                "evaluation": {"min_labelled": 50, "min_predictions": 50},
                "http": {"host": "127.0.0.1", "port": port},
                "rules": [str(rules)],
            }
        )
    )
    return path


def _traffic(now_ms: int):  # type: ignore[no-untyped-def]
    """The scenario's events: the previous hour before the drift (the trailing
    reference), this hour after it (the window), all in [start + 5 min, end - 5 min]."""
    scenario = load_scenario(SCENARIO)
    model = scenario.models[0]
    rng = np.random.default_rng(7)
    before = generate(rng, scenario, model, N, t=0.0)
    after = generate(rng, scenario, model, N, t=3600.0)
    reference_times = now_ms - 115 * MINUTE + np.arange(N) * (50 * MINUTE // N)
    window_times = now_ms - 55 * MINUTE + np.arange(N) * (45 * MINUTE // N)
    return model.classes, before, after, reference_times, window_times


def _predictions(classes, events, times, tag):  # type: ignore[no-untyped-def]
    return [
        orjson.dumps(
            {
                "event_id": f"{tag}-{i}",
                "model_id": "intent",
                "model_version": "v1",
                "timestamp": int(times[i]),
                "probabilities": dict(zip(classes, events.probabilities[i].tolist(), strict=True)),
            }
        )
        for i in range(N)
    ]


def _api(port: int, path: str):  # type: ignore[no-untyped-def]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
        return json.loads(response.read())


def _ece_loop(confidence: np.ndarray, hit: np.ndarray, n_bins: int = 10) -> float:
    totals = np.zeros((n_bins, 3))
    for c, h in zip(confidence, hit, strict=True):
        totals[min(int(np.floor(c * n_bins)), n_bins - 1)] += (1.0, c, h)
    return float(np.abs(totals[:, 1] - totals[:, 2]).sum() / len(confidence))


def test_a_multiclass_model_through_broker_and_daemon(
    kafka_settings: KafkaSettings, producer: KafkaProducer, postgres_url: str, tmp_path: Path
) -> None:
    engine = make_engine(postgres_url)
    migrate.upgrade(engine)
    engine.dispose()
    now_ms = int(time.time() * 1000)
    classes, before, after, reference_times, window_times = _traffic(now_ms)
    topics = kafka_settings.topics
    send_all(producer, topics.probabilities, _predictions(classes, before, reference_times, "r"))
    send_all(producer, topics.probabilities, _predictions(classes, after, window_times, "w"))
    labels = [
        orjson.dumps(
            {
                "event_id": f"w-{i}",
                "model_id": "intent",
                "label": classes[int(after.label[i])],
                "timestamp": int(window_times[i] + 1000),
            }
        )
        for i in range(N)
    ]
    bad = [
        {"probabilities": {"billing": 0.5, "tech": 0.3}},  # sums to 0.8
        {"probabilities": {"billing": 1.2, "tech": -0.2}},
        {"probabilities": {f"c{k}": 1 / 7 for k in range(7)}},  # over max_classes
        {"probability": 0.4},  # a binary prediction of a multi-class model
    ]
    send_all(
        producer,
        topics.probabilities,
        [
            orjson.dumps(
                {
                    "event_id": f"bad-{i}",
                    "model_id": "intent",
                    "model_version": "v1",
                    "timestamp": now_ms,
                    **fields,
                }
            )
            for i, fields in enumerate(bad)
        ],
    )
    send_all(producer, topics.labels, labels)

    port = free_loopback_port()
    log = tmp_path / "calmon.log"
    process = _start(_config(tmp_path, kafka_settings, port), postgres_url, log)
    labels_of = {"model": "intent", "model_version": "v1", "segment": "__all__", "window": "1h"}

    def sample(name: str, **extra: str) -> float | None:
        try:
            return scrape(port).get((name, tuple(sorted({**labels_of, **extra}.items()))))
        except OSError:
            return None

    try:
        wait_until(lambda: sample("calmon_window_labelled") == N, timeout_s=180, what="every label")
        metrics = scrape(port)

        def value(name: str, **extra: str) -> float:
            return metrics[(name, tuple(sorted({**labels_of, **extra}.items())))]

        p, y = after.probabilities, after.label
        hit = (p.argmax(axis=1) == y).astype(float)
        assert value("calmon_window_predictions") == N
        assert value("calmon_top_label_ece") == pytest.approx(
            _ece_loop(p.max(axis=1), hit), abs=1e-9
        )
        classwise = np.mean([_ece_loop(p[:, k], (y == k).astype(float)) for k in range(4)])
        assert value("calmon_classwise_ece") == pytest.approx(classwise, abs=1e-9)
        assert value("calmon_log_loss") == pytest.approx(log_loss(y, p, labels=range(4)), abs=1e-9)
        assert value("calmon_multiclass_brier_score") == pytest.approx(
            brier_score_loss(y, p, labels=range(4)), abs=1e-9
        )
        assert value("calmon_accuracy_score") == pytest.approx(hit.mean(), abs=1e-12)
        for k, name in enumerate(classes):
            assert value("calmon_class_brier_score", **{"class": name}) == pytest.approx(
                brier_score_loss(y == k, p[:, k]), abs=1e-9
            )
            exact = roc_auc_score(y == k, p[:, k])
            bound = value("calmon_class_roc_auc_error_bound", **{"class": name})
            assert abs(value("calmon_class_roc_auc_score", **{"class": name}) - exact) <= bound
        # drift against the trailing hour: the scenario's drifting class moves, others less
        psi = {name: value("calmon_class_psi", **{"class": name}) for name in classes}
        reference = ReferenceProfile.fit(before.probabilities[:, 3], kind="probability")
        events_psi = population_stability_index(reference, p[:, 3])
        assert psi["tech"] == pytest.approx(events_psi, rel=0.05)
        assert psi["tech"] > 0.25 > max(psi["billing"], psi["other"])
        confidence = population_stability_index(
            ReferenceProfile.fit(before.probabilities.max(axis=1), kind="probability"),
            p.max(axis=1),
        )
        assert value("calmon_psi", distribution="confidence") == pytest.approx(confidence, rel=1e-9)
        for reason in (
            "probabilities_sum",
            "bad_probabilities",
            "too_many_classes",
            "kind_mismatch",
        ):
            assert metrics[("calmon_ingest_rejected_total", (("reason", reason),))] == 1, reason

        # The JSON API carries the classes too.
        (found,) = [
            r
            for r in _api(port, "/api/v1/series")
            if (r["model"], r["model_version"], r["segment"]) == ("intent", "v1", "__all__")
        ]
        assert set(found["classes"]) == set(classes)
        assert found["classes"]["tech"]["values"]["class_psi"] == psi["tech"]
        assert sum(b["count"] for b in found["classes"]["sales"]["reliability_bins"]) == N

        # The rule fires for the drifting class, and only for it.
        def firing() -> list[dict]:
            return [a for a in _api(port, "/api/v1/alerts") if a["state"] == "firing"]

        wait_until(lambda: len(firing()) > 0, timeout_s=30, what="the class drift alert")
        drifted = {a["labels"]["class"] for a in firing() if a["labels"]["model_version"] == "v1"}
        assert drifted == {"tech"}
        (alert,) = [a for a in firing() if a["labels"]["model_version"] == "v1"]
        assert alert["annotations"]["summary"] == f"class tech drifted: PSI {psi['tech']:.2f}"
    finally:
        _stop(process, log)

    # The report shows the classes, from the same stored results.
    out = tmp_path / "report.html"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "monitor",
            "report",
            "--config",
            str(tmp_path / "calmon.yaml"),
            "--model",
            "intent",
            "--version",
            "v1",
            "--window",
            "1h",
            "--out",
            str(out),
        ],
        env={**os.environ, "CALMON_STORE_URL": postgres_url},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    table = ElementTree.fromstring(
        re.search(r"<table id='classes'>.*?</table>", out.read_text()).group(0)
    )
    rows = {r[0].text: [cell.text for cell in r[1:]] for r in table.findall("tr")[1:]}
    assert set(rows) == set(classes)
    assert rows["tech"][5] == f"{psi['tech']:.3f}"
    assert rows["billing"][1] == f"{brier_score_loss(y == 0, p[:, 0]):.3f}"

"""`calmon simulate` into the real broker: bounded, seeded, with delayed, early and
missing labels, and malformed messages that the ingest validator rejects by name."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.core.records import Label, Prediction
from monitor.ingest.validation import InvalidMessage, parse_message
from monitor.settings import KafkaSettings
from tests.fixtures.kafka import read_all

pytestmark = pytest.mark.integration

SCENARIO = """
models:
  - {model_id: fraud, model_version: v1, segments: {region: [eu, us]}}
labels: {median_delay: 0.2s, delay_sigma: 0.3, never: 0.1, before_prediction: 0.1}
malformed: 0.1
"""


def test_simulate_produces_bounded_realistic_traffic(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(SCENARIO)
    topics = kafka_settings.topics
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CALMON")},
        "CALMON__KAFKA__TOPICS__RAW_SCORES": topics.raw_scores,
        "CALMON__KAFKA__TOPICS__PROBABILITIES": topics.probabilities,
        "CALMON__KAFKA__TOPICS__LABELS": topics.labels,
    }
    bootstrap = kafka_settings.bootstrap_servers[0]
    run = subprocess.run(
        [
            sys.executable, "-m", "monitor", "simulate",
            "--scenario", str(scenario),
            "--bootstrap-servers", bootstrap,
            "--count", "400", "--rate", "400", "--duration", "20s", "--seed", "3",
        ],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    stats = dict(
        zip(
            ["predictions", "labels", "early", "malformed", "never", "pending"],
            map(int, re.findall(r"(\d+)", run.stdout)),
            strict=True,
        )
    )
    assert stats["predictions"] == 400
    assert stats["labels"] + stats["never"] + stats["pending"] == 400
    assert 20 <= stats["never"] <= 70 and 20 <= stats["early"] <= 70

    prediction_records = read_all(bootstrap, topics.raw_scores, 400 + stats["malformed"])
    parsed, rejected = [], []
    for record in prediction_records:
        try:
            parsed.append(parse_message(record.value))
        except InvalidMessage as problem:
            rejected.append(problem.reason)
    assert len(parsed) == 400 and all(isinstance(p, Prediction) for p in parsed)
    assert len(rejected) == stats["malformed"] > 10
    assert {"unparseable_json", "bad_probability", "missing_field"} <= set(rejected)
    assert {p.segment["region"] for p in parsed if isinstance(p, Prediction)} == {"eu", "us"}

    labels = [parse_message(r.value) for r in read_all(bootstrap, topics.labels, stats["labels"])]
    assert len(labels) == stats["labels"] and all(isinstance(x, Label) for x in labels)
    predicted = {p.event_id for p in parsed}
    assert {x.event_id for x in labels} <= predicted

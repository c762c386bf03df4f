"""The daemon end to end: real broker, real PostgreSQL, `calmon run` as a process,
/metrics scraped and checked against the metrics core on the same events."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import orjson
import pytest
import yaml
from kafka import KafkaProducer
from prometheus_client.parser import text_string_to_metric_families
from sklearn.metrics import accuracy_score, average_precision_score, roc_auc_score
from sqlalchemy import text

from monitor.demo.broker import free_loopback_port
from monitor.metrics import calibration as core
from monitor.settings import KafkaSettings
from monitor.store.db import migrate
from monitor.store.db.engine import make_engine
from tests.integration.ingest.helpers import send_all, wait_until

pytestmark = pytest.mark.integration
N = 2000


def _events(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.beta(2, 5, N)
    y = (rng.uniform(size=N) < np.clip(1.4 * p, 0, 1)).astype(int)  # under-predicting
    raw = np.log(p / (1 - p))
    return p, y, raw


def _produce(
    producer: KafkaProducer, kafka: KafkaSettings, version: str, p, y, raw, labels_for
) -> int:  # type: ignore[no-untyped-def]
    now = int(time.time() * 1000)
    start = now - 30 * 60_000
    send_all(
        producer,
        kafka.topics.probabilities,
        [
            orjson.dumps(
                {
                    "event_id": f"{version}-{i}",
                    "model_id": "fraud",
                    "model_version": version,
                    "timestamp": start + i * 600,
                    "raw_score": float(raw[i]),
                    "probability": float(p[i]),
                    "segment": {"region": ["eu", "us", "apac"][i % 3]},
                }
            )
            for i in range(N)
        ],
    )
    send_label(producer, kafka, version, y, labels_for, start)
    return start


def send_label(producer, kafka, version, y, indices, start):  # type: ignore[no-untyped-def]
    send_all(
        producer,
        kafka.topics.labels,
        [
            orjson.dumps(
                {
                    "event_id": f"{version}-{i}",
                    "model_id": "fraud",
                    "label": int(y[i]),
                    "timestamp": int(start + i * 600 + 1000),
                }
            )
            for i in indices
        ],
    )


def _config(tmp_path: Path, kafka: KafkaSettings, port: int, name: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "kafka": {**kafka.model_dump(mode="json", exclude_none=True)},
                "store": {"segment_keys": ["region"], "compaction_interval": "1s"},
                "windows": [{"name": "1h", "length": "1h", "every": "2s"}],
                "evaluation": {
                    "min_labelled": 50,
                    "min_predictions": 50,
                    "bootstrap_resamples": 200,
                },
                "http": {"host": "127.0.0.1", "port": port},
            }
        )
    )
    return path


def _start(config: Path, database_url: str, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "CALMON_STORE_URL": database_url}
    return subprocess.Popen(
        [sys.executable, "-m", "monitor", "run", "--config", str(config)],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    samples = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def series(name: str, version: str = "v1", segment: str = "__all__", **extra: str):  # type: ignore[no-untyped-def]
    labels = {
        "model": "fraud",
        "model_version": version,
        "segment": segment,
        "window": "1h",
        **extra,
    }
    return (name, tuple(sorted(labels.items())))


def _stop(process: subprocess.Popen[bytes], log: Path) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    assert process.returncode == 0, log.read_text()[-3000:]


def test_daemon_exports_exact_metrics_late_labels_versions_and_two_replicas(
    kafka_settings: KafkaSettings, producer: KafkaProducer, postgres_url: str, tmp_path: Path
) -> None:
    engine = make_engine(postgres_url)
    migrate.upgrade(engine)
    engine.dispose()
    p, y, raw = _events()
    early = np.arange(N)[: N * 3 // 4]
    start = _produce(producer, kafka_settings, "v1", p, y, raw, early)

    port_a, port_b = free_loopback_port(), free_loopback_port()
    log_a, log_b = tmp_path / "a.log", tmp_path / "b.log"
    a = _start(_config(tmp_path, kafka_settings, port_a, "a"), postgres_url, log_a)
    b = _start(_config(tmp_path, kafka_settings, port_b, "b"), postgres_url, log_b)
    try:

        def labelled(port: int) -> float | None:
            try:
                return scrape(port).get(series("calmon_window_labelled"))
            except OSError:
                return None

        wait_until(lambda: labelled(port_a) == len(early), timeout_s=120, what="first evaluation")
        metrics = scrape(port_a)
        pe, ye = p[early], y[early]
        assert metrics[series("calmon_ece")] == pytest.approx(
            core.expected_calibration_error(pe, ye), abs=1e-9
        )
        assert metrics[series("calmon_brier_score")] == pytest.approx(
            core.brier_score_loss(pe, ye), abs=1e-9
        )
        assert metrics[series("calmon_log_loss")] == pytest.approx(core.log_loss(pe, ye), abs=1e-9)
        assert metrics[series("calmon_window_predictions")] == N
        # Discrimination next to calibration, within its stated bound of scikit-learn.
        auc, auc_bound = (
            metrics[series("calmon_roc_auc_score")],
            metrics[series("calmon_roc_auc_error_bound")],
        )
        assert abs(auc - roc_auc_score(ye, pe)) <= auc_bound + 1e-12
        assert (
            metrics[series("calmon_roc_auc_ci_lower")]
            < auc
            < metrics[series("calmon_roc_auc_ci_upper")]
        )
        assert (
            abs(metrics[series("calmon_average_precision_score")] - average_precision_score(ye, pe))
            <= metrics[series("calmon_average_precision_error_bound")] + 1e-12
        )
        assert metrics[series("calmon_accuracy_score")] == pytest.approx(
            accuracy_score(ye, pe >= 0.5), abs=1e-12
        )
        # Label-free: from every prediction, labelled or not; the gap on the labelled ones.
        assert metrics[series("calmon_estimated_brier_score")] == pytest.approx(
            float(np.mean(p * (1 - p))), abs=5e-5
        )
        assert metrics[series("calmon_estimated_brier_score_gap")] == pytest.approx(
            core.brier_score_loss(pe, ye) - float(np.mean(pe * (1 - pe))), abs=1e-9
        )
        eu = np.arange(N)[early] % 3 == 0
        assert metrics[series("calmon_ece", segment="region=eu")] == pytest.approx(
            core.expected_calibration_error(pe[eu], ye[eu]), abs=1e-9
        )

        # Late labels: the next evaluation reflects them.
        late = np.arange(N)[N * 3 // 4 :]
        send_label(producer, kafka_settings, "v1", y, late, start)
        wait_until(lambda: labelled(port_a) == N, timeout_s=60, what="late labels evaluated")
        assert scrape(port_a)[series("calmon_ece")] == pytest.approx(
            core.expected_calibration_error(p, y), abs=1e-9
        )

        # Two replicas export one consistent series: same values from either.
        wait_until(lambda: labelled(port_b) == N, timeout_s=60, what="replica b")
        ours, theirs = scrape(port_a), scrape(port_b)
        calibration = [
            k
            for k in ours
            if k[0] in ("calmon_ece", "calmon_brier_score", "calmon_window_labelled")
        ]
        assert calibration and all(ours[k] == theirs.get(k) for k in calibration)

        # The compaction job (claimed by one replica per slot) folds ingest's deltas
        # into the buckets, and the windows read the same from them.
        engine = make_engine(postgres_url)
        with engine.connect() as connection:
            count = "SELECT count(*) FROM {}"
            rows = lambda table: connection.execute(text(count.format(table))).scalar_one()  # noqa: E731
            wait_until(lambda: rows("aggregate_deltas") == 0, timeout_s=30, what="compaction")
            assert rows("aggregates") > 0
        engine.dispose()
        pending = ("calmon_aggregate_deltas", ())
        wait_until(
            lambda: all(scrape(port)[pending] == 0 for port in (port_a, port_b)),
            timeout_s=30,
            what="both replicas export the empty backlog",
        )
        compacted = ("calmon_aggregate_deltas_compacted_total", ())
        assert sum(scrape(port)[compacted] for port in (port_a, port_b)) > 0
        compacted_at = time.time()
        # The replica that claims a slot runs the window job; either one may.
        last_success = ("calmon_window_last_success_timestamp_seconds", (("window", "1h"),))
        wait_until(
            lambda: (
                max(scrape(port).get(last_success, 0) for port in (port_a, port_b)) > compacted_at
            ),
            timeout_s=30,
            what="an evaluation after compaction",
        )
        assert scrape(port_a)[series("calmon_ece")] == pytest.approx(
            core.expected_calibration_error(p, y), abs=1e-9
        )
    finally:
        _stop(a, log_a)
        _stop(b, log_b)

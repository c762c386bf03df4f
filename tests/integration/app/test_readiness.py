"""Readiness, liveness, start-up and broker outages, as Kubernetes and an operator meet
them: a real `calmon run` process, a real broker (tansu; with s3 storage on a local moto
S3 server where it must survive a restart), and the probes exactly as the Helm chart
renders them, asked the way kubelet asks (HTTP GET of the probe's path and port, with
its timeoutSeconds; 200-399 is a success)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from kafka import KafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from monitor.demo.broker import EmbeddedBroker, free_loopback_port
from monitor.settings import KafkaSettings
from monitor.store.db import migrate
from monitor.store.db.engine import make_engine
from tests.fixtures.kafka import TEST_GROUP_TIMEOUTS, create_topics
from tests.integration.deploy.chart import one, render
from tests.integration.ingest.helpers import count_events, send_all, wait_until

pytestmark = pytest.mark.integration

#: The documented bounds (helm/calmon/README.md, "Probes"), with the defaults of
#: kafka.readiness_timeout (15 s), the store check's cache (5 s) and a probe's timeout.
NOT_READY_WITHIN_S = 15 + 5 + 5
#: Ingest resumes within reconnect_backoff_max_ms (2 s, +20% jitter) of the broker's
#: return plus one group join (tansu: half the session timeout, 3 s here); generous
#: for a shared test machine.
RESUMES_WITHIN_S = 30
#: Outage lines: "unreachable", "reachable again", and room for one rate-limited
#: retry or commit warning each way. Without folding, kafka-python wrote ~50 a minute.
MAX_OUTAGE_LINES = 6


@dataclass(frozen=True)
class Probe:
    path: str
    port: int
    timeout_s: float

    def succeeds(self) -> bool:
        url = f"http://127.0.0.1:{self.port}{self.path}"
        try:
            with urllib.request.urlopen(url, timeout=self.timeout_s) as response:
                return 200 <= response.status < 400
        except urllib.error.HTTPError as error:
            return 200 <= error.code < 400
        except OSError:  # refused, reset or timed out: a failure, as for kubelet
            return False


def chart_probes(http_port: int) -> dict[str, Probe]:
    """The calmon container's probes from `helm template` with the chart's defaults
    (and calmon's HTTP port set to a free one: the probes' named port follows it)."""
    deployment = one(render([], f"config.http.port={http_port}"), "Deployment")
    (container,) = [
        c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "calmon"
    ]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    probes = {}
    for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
        spec = container[kind]
        port = spec["httpGet"]["port"]
        probes[kind] = Probe(
            path=spec["httpGet"]["path"],
            port=ports[port] if isinstance(port, str) else int(port),
            timeout_s=float(spec.get("timeoutSeconds", 1)),  # kubelet's default: 1 s
        )
    assert {p.port for p in probes.values()} == {http_port}
    return probes


def holds_for(seconds: float, condition: Any) -> bool:
    """``condition()`` is true every time it is asked, for ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not condition():
            return False
        time.sleep(0.5)
    return True


def kafka_settings_for(bootstrap: str) -> KafkaSettings:
    from monitor.settings import TopicSettings

    suffix = uuid.uuid4().hex[:8]
    return KafkaSettings(
        bootstrap_servers=[bootstrap],
        group_id=f"calmon-ready-{suffix}",
        topics=TopicSettings(
            raw_scores=f"preds-{suffix}", probabilities=f"preds-{suffix}", labels=f"labels-{suffix}"
        ),
        dead_letter_topic=f"dead-{suffix}",
        **TEST_GROUP_TIMEOUTS,
    )


def write_config(tmp_path: Path, kafka: KafkaSettings, http_port: int) -> Path:
    path = tmp_path / "calmon.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "kafka": kafka.model_dump(mode="json", exclude_none=True),
                "http": {"host": "127.0.0.1", "port": http_port},
            }
        )
    )
    return path


def start_daemon(config: Path, store_url: str, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "monitor", "run", "--config", str(config)],
        env={**os.environ, "CALMON_STORE_URL": store_url},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


def migrated_sqlite(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path}/calmon.db"
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    return url


def predictions(first: int, count: int) -> list[bytes]:
    now = int(time.time() * 1000)
    return [
        orjson.dumps(
            {
                "event_id": f"e{i}",
                "model_id": "fraud",
                "model_version": "v1",
                "timestamp": now,
                "raw_score": 0.5,
                "probability": 0.62,
            }
        )
        for i in range(first, first + count)
    ]


def produce(bootstrap: str, topic: str, payloads: list[bytes]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    try:
        send_all(producer, topic, payloads)
    finally:
        producer.close()


def predictions_counted(port: int) -> float:
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
    except OSError:
        return -1
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            if sample.name == "calmon_ingest_messages_total" and sample.labels == {
                "stream": "prediction"
            }:
                return sample.value
    return 0


def readiness_problems(port: int) -> dict[str, str]:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5)
    except urllib.error.HTTPError as error:
        problems: dict[str, str] = orjson.loads(error.read())["problems"]
        return problems
    except OSError:
        return {}
    return {}


def log_lines(log: Path) -> list[dict[str, Any]]:
    """The daemon's JSON log lines; anything else (a traceback) fails the test."""
    lines = []
    for text in log.read_text().splitlines():
        try:
            lines.append(orjson.loads(text))
        except orjson.JSONDecodeError:
            raise AssertionError(f"a line that is not JSON: {text!r}\n{log.read_text()}") from None
    return lines


def stop_daemon(daemon: subprocess.Popen[bytes], log: Path, *, within_s: float = 30) -> None:
    daemon.send_signal(signal.SIGTERM)
    try:
        daemon.wait(timeout=within_s)
    except subprocess.TimeoutExpired:
        daemon.kill()
        daemon.wait()
        raise AssertionError(f"not stopped {within_s} s after SIGTERM\n{log.read_text()}") from None
    assert daemon.returncode == 0, log.read_text()


def test_probes_follow_the_broker_through_start_up_an_outage_and_its_return(
    unstarted_persistent_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    broker = unstarted_persistent_broker
    bootstrap = broker.bootstrap_servers
    http_port = free_loopback_port()
    probes = chart_probes(http_port)
    startup, liveness, readiness = (
        probes["startupProbe"],
        probes["livenessProbe"],
        probes["readinessProbe"],
    )
    kafka = kafka_settings_for(bootstrap)
    store_url = migrated_sqlite(tmp_path)
    log = tmp_path / "calmon.log"
    daemon = start_daemon(write_config(tmp_path, kafka, http_port), store_url, log)
    try:
        # No broker yet: started and alive (kubelet must not restart it), not ready.
        wait_until(startup.succeeds, timeout_s=60, what="the startup probe")
        assert holds_for(5, lambda: liveness.succeeds() and not readiness.succeeds())

        broker.start()
        topic = kafka.topics.probabilities
        create_topics(bootstrap, [*kafka.topics.unique(), kafka.dead_letter_topic or ""])
        produce(bootstrap, topic, predictions(0, 100))
        wait_until(readiness.succeeds, timeout_s=90, what="ready once the broker is up")
        wait_until(lambda: predictions_counted(http_port) == 100, timeout_s=60, what="ingest")

        # Probes are silent: a hundred of them add no log line (each used to add two).
        wait_until(
            lambda: (
                "connected to the Kafka cluster" in [line["message"] for line in log_lines(log)]
            ),
            what="the ingest loop's own line about the connection",
        )
        quiet_from = len(log_lines(log))
        assert all(readiness.succeeds() and liveness.succeeds() for _ in range(100))
        assert log_lines(log)[quiet_from:] == []

        # The broker goes away: not ready within the bound, alive all along.
        before = len(log_lines(log))
        broker.stop()
        wait_until(lambda: not readiness.succeeds(), timeout_s=NOT_READY_WITHIN_S, what="not ready")
        assert liveness.succeeds()

        # It comes back (its data on S3): ingest resumes within the bound, ready again.
        broker.start()
        produce(bootstrap, topic, predictions(100, 80))
        wait_until(
            lambda: predictions_counted(http_port) >= 180,
            timeout_s=RESUMES_WITHIN_S,
            what="ingest resumed",
        )
        wait_until(readiness.succeeds, timeout_s=RESUMES_WITHIN_S, what="ready again")
        assert liveness.succeeds()
        outage = log_lines(log)[before:]
        assert len(outage) <= MAX_OUTAGE_LINES, outage
        assert not [line for line in outage if line["logger"].startswith("kafka")], outage
        assert [
            line["message"] for line in outage if line["logger"] == "monitor.ingest.cluster"
        ] == [
            "Kafka cluster unreachable; ingest resumes when it is back",
            "Kafka cluster reachable again",
        ], outage
    finally:
        stop_daemon(daemon, log)
    # Nothing lost, nothing stored twice.
    engine = make_engine(store_url)
    assert count_events(engine) == 180
    engine.dispose()
    assert not [line for line in log_lines(log) if line["logger"].startswith("kafka")]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_during_the_bootstrap_stops_it_within_2_s(
    signum: int, unstarted_persistent_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    """Nothing listens on the broker's port: the daemon keeps trying to bootstrap (each
    attempt up to kafka.bootstrap_timeout_ms, 10 s) and must still stop at once."""
    http_port = free_loopback_port()
    kafka = kafka_settings_for(unstarted_persistent_broker.bootstrap_servers)
    log = tmp_path / "calmon.log"
    daemon = start_daemon(write_config(tmp_path, kafka, http_port), migrated_sqlite(tmp_path), log)
    try:
        # The broker's problem is reported once the ingest thread is trying to connect.
        wait_until(
            lambda: (
                readiness_problems(http_port).get("broker")
                == "not connected to the Kafka cluster yet"
            ),
            timeout_s=60,
            what="the bootstrap under way",
        )
        daemon.send_signal(signum)
        daemon.wait(timeout=2)
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
    assert daemon.returncode == 0, log.read_text()
    lines = log_lines(log)  # every line JSON: no traceback
    assert lines[-1]["message"] == "stopped"
    assert not [line for line in lines if line["level"] == "error"]

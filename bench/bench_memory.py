"""Daemon memory while ingesting: `calmon run` (a real process, SQLite store, embedded
broker) under steady traffic, its resident set size sampled from /proc every 30 s,
split into anonymous and file-backed pages, with the database's size on disk.

Traffic: RATE predictions/s with their labels 5 s later, three segment values, one
model; windows 1h and 24h evaluated every 30 s (so window jobs run throughout).

Run: ``.venv/bin/python bench/bench_memory.py [MINUTES] [RATE]`` (default 10, 500).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import orjson
import yaml
from kafka import KafkaProducer

from monitor.demo.broker import EmbeddedBroker, free_loopback_port


def status_mib(pid: int) -> dict[str, float]:
    """VmRSS and its parts from /proc: anonymous memory (the heaps) and file pages
    (code, and any memory-mapped database), in MiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "RssAnon", "RssFile"):
            fields[name] = int(value.split()[0]) / 1024
    return fields


def traffic(bootstrap: str, rate: int, stop: threading.Event) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20)
    rng = np.random.default_rng(0)
    pending: list[tuple[float, bytes]] = []
    sent = 0
    while not stop.is_set():
        tick = time.time()
        raw = rng.normal(-1.2, 1.3, rate)
        p = 1 / (1 + np.exp(-raw))
        y = rng.uniform(size=rate) < p
        for i in range(rate):
            event = {
                "event_id": f"e{sent}",
                "model_id": "m",
                "model_version": "v1",
                "timestamp": int(tick * 1000),
                "raw_score": float(raw[i]),
                "probability": float(p[i]),
                "segment": {"region": ("eu", "us", "apac")[sent % 3]},
            }
            producer.send("predictions", orjson.dumps(event))
            label = {"event_id": f"e{sent}", "model_id": "m", "label": int(y[i])}
            pending.append((tick + 5, orjson.dumps({**label, "timestamp": int(tick * 1000)})))
            sent += 1
        due = [payload for at, payload in pending if at <= tick]
        pending = [(at, payload) for at, payload in pending if at > tick]
        for payload in due:
            producer.send("labels", payload)
        stop.wait(max(0.0, 1.0 - (time.time() - tick)))
    producer.close(timeout=10)


def main() -> int:
    minutes = float(sys.argv[1]) if len(sys.argv) > 1 else 10.0
    rate = int(sys.argv[2]) if len(sys.argv) > 2 else 500
    with tempfile.TemporaryDirectory() as scratch, EmbeddedBroker() as broker:
        config = Path(scratch) / "calmon.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "kafka": {
                        "bootstrap_servers": [broker.bootstrap_servers],
                        "topics": {
                            "raw_scores": "predictions",
                            "probabilities": "predictions",
                            "labels": "labels",
                        },
                        "dead_letter_topic": None,
                    },
                    "store": {"segment_keys": ["region"]},
                    "windows": [
                        {"name": "1h", "length": "1h", "every": "30s"},
                        {"name": "24h", "length": "24h", "every": "30s"},
                    ],
                    "http": {"host": "127.0.0.1", "port": free_loopback_port()},
                }
            )
        )
        env = {**os.environ, "CALMON_STORE_URL": f"sqlite:///{Path(scratch) / 'bench.db'}"}
        subprocess.run([sys.executable, "-m", "monitor", "migrate"], env=env, check=True)
        daemon = subprocess.Popen(
            [sys.executable, "-m", "monitor", "run", "-c", str(config)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        stop = threading.Event()
        producer = threading.Thread(target=traffic, args=(broker.bootstrap_servers, rate, stop))
        producer.start()
        print(f"rate {rate} predictions/s (+ labels), {minutes:g} min; RSS of calmon run:")
        print(f"{'minute':>7} {'RSS MiB':>8} {'anon':>7} {'file':>7} {'db MiB':>7}")
        started = time.time()
        samples = []
        try:
            while time.time() - started < minutes * 60:
                time.sleep(30)
                memory = status_mib(daemon.pid)
                samples.append(memory["VmRSS"])
                database = (
                    sum(path.stat().st_size for path in Path(scratch).glob("bench.db*")) / 2**20
                )
                print(
                    f"{(time.time() - started) / 60:>7.1f} {samples[-1]:>8.1f}"
                    f" {memory['RssAnon']:>7.1f} {memory['RssFile']:>7.1f} {database:>7.1f}",
                    flush=True,
                )
        finally:
            stop.set()
            producer.join()
            daemon.terminate()
            daemon.wait(timeout=60)
        half = len(samples) // 2
        print(
            f"first-half max {max(samples[:half] or samples):.1f} MiB, "
            f"second-half max {max(samples[half:]):.1f} MiB"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

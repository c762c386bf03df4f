"""`calmon demo` in a bounded run: the injected drift shows in the ECE of region eu
only, the alert fires for eu, the recalibration webhook arrives with a valid signature
and a recommended calibrator, the receiver deploys it, eu's ECE recovers and calmon
reports the recalibration verified; every child process (the broker) and server is gone
afterwards."""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

STATUS = re.compile(r"\[\s*(\w+)\] ECE all ([\d.]+)\s+eu ([\d.]+)(?: \(cal \d+\))?\s+us ([\d.]+)")


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_demo_shows_the_drift_and_stops_cleanly(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "monitor",
            "demo",
            "--duration",
            "170s",
            "--healthy",
            "30s",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output, _ = process.communicate(timeout=360)
    assert process.returncode == 0, output
    rows = [(phase, float(a), float(eu), float(us)) for phase, a, eu, us in STATUS.findall(output)]
    healthy = [row for row in rows if row[0] == "healthy"]
    final = rows[-1]
    assert healthy and final[0] == "final", output
    # Region eu became over-confident: its ECE rises well above its healthy level
    # and above region us, which stayed calibrated...
    drifted = [row for row in rows if row[0] == "drift"]
    peak = max(drifted, key=lambda row: row[2])
    assert peak[2] > max(0.07, 2 * healthy[-1][2]), output
    assert peak[2] > 2 * peak[3], output
    # ... until the recommended calibrator is deployed (version 2): eu recovers.
    (final_line,) = [line for line in output.splitlines() if line.startswith("[   final]")]
    assert "eu" in final_line and "(cal 2)" in final_line, output
    assert final[2] < 0.6 * peak[2], output
    assert "nothing left listening" in output
    fired = re.findall(
        r">>> ALERT firing CalibrationErrorHigh: ECE ([\d.]+) on (\S+) (\S+)", output
    )
    assert [(model, segment) for _, model, segment in fired] == [("fraud-detector", "region=eu")]
    assert float(fired[0][0]) > 0.05
    webhooks = re.findall(
        r">>> recalibration webhook received, signature (\w+): fraud-detector v1 (\S+)", output
    )
    assert webhooks == [("valid", "region=eu")], output
    fitted = "(temperature|platt|beta|histogram|isotonic|raw_platt|raw_histogram|raw_isotonic)"
    assert re.search(rf">>> recommended calibrator: {fitted} ", output), output
    assert ">>> deployed as calibrator version 2" in output
    verified = re.findall(
        r">>> recalibration verified, signature valid: fraud-detector v1 region=eu \(90s\) "
        r"ECE ([\d.]+) -> ([\d.]+) .* on v1\+cal=2",
        output,
    )
    assert len(verified) == 1 and float(verified[0][1]) < float(verified[0][0]), output
    assert "1 alert(s) fired; 1 recalibration webhook(s) received; 1 recalibration(s) verified" in (
        output
    )
    # Raw scores shifted by one logit: PSI against the healthy snapshot moves well off 0.
    psi = re.findall(r"\[\s*(\w+)\].*PSI raw score ([\d.]+)", output)
    assert [float(v) for phase, v in psi if phase == "healthy"][-1] < 0.02
    assert float(psi[-1][1]) > 0.1, output
    report = tmp_path / "calmon-demo-report.html"
    assert f"report (reliability diagram, ECE and PSI over time): {report}" in output
    assert '<svg id="reliability-diagram"' in report.read_text()
    # Nothing left listening: neither the embedded broker nor the HTTP server.
    ports = [int(p) for p in re.findall(r"127\.0\.0\.1:(\d+)", output)]
    assert len(set(ports)) >= 2
    assert not any(_listening(port) for port in set(ports))


def test_ctrl_c_stops_everything_cleanly(tmp_path: Path) -> None:
    # Ctrl-C in a terminal signals the whole foreground process group: do the same.
    process = subprocess.Popen(
        [sys.executable, "-m", "monitor", "demo", "--dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        lines.append(line)
        if re.match(r"\[ healthy\] ECE all [\d.]+", line):  # ingest and windows are running
            break
    os.killpg(process.pid, signal.SIGINT)
    rest, _ = process.communicate(timeout=60)
    output = "".join(lines) + rest
    assert process.returncode == 0, output
    assert "Traceback" not in output and "ERROR" not in output, output
    ports = {int(p) for p in re.findall(r"127\.0\.0\.1:(\d+)", output)}
    assert len(ports) >= 2 and not any(_listening(port) for port in ports)


def _short_run(directory: Path) -> str:
    command = ["demo", "--duration", "30s", "--healthy", "20s", "--dir", str(directory)]
    run = subprocess.run(
        [sys.executable, "-m", "monitor", *command],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout


def test_a_second_run_on_the_kept_store_measures_its_own_events(tmp_path: Path) -> None:
    """`calmon demo --dir D` twice: the second run's events are stored and measured, not
    dropped as replays of the first run's (both runs' simulators used to number their
    events sim-0, sim-1, ...: the second run printed no ECE of its own)."""
    first, second = _short_run(tmp_path), _short_run(tmp_path)
    predictions = [
        int(re.search(r"summary: (\d+) predictions", output)[1])  # type: ignore[index]
        for output in (first, second)
    ]
    with sqlite3.connect(tmp_path / "calmon-demo.db") as store:
        (stored,) = store.execute("SELECT count(*) FROM events").fetchone()
        (labelled,) = store.execute(
            "SELECT count(*) FROM events WHERE label IS NOT NULL AND probability IS NOT NULL"
        ).fetchone()
    # Each run's last events may still be on their way at its stop; with the first
    # run's ids, the second run would add none (stored <= predictions[0]).
    assert predictions[0] + 0.8 * predictions[1] <= stored <= sum(predictions)
    assert labelled > predictions[0]  # more than the first run alone could have
    final = [(a, eu, us) for phase, a, eu, us in STATUS.findall(second) if phase == "final"]
    assert final, second  # numbers for all, eu and us: the second run's own windows

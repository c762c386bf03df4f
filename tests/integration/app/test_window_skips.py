"""A window job that overruns its `every` is skipped and counted, never queued: a real
`calmon run` whose window job waits on a PostgreSQL lock for several periods."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, text

from monitor.demo.broker import free_loopback_port
from monitor.store.db import migrate
from monitor.store.db.engine import make_engine
from tests.integration.app.test_readiness import log_lines, stop_daemon
from tests.integration.ingest.helpers import wait_until

pytestmark = pytest.mark.integration

EVERY_S = 1.0


def test_an_overrunning_window_job_is_skipped_counted_and_never_queued(
    postgres_url: str, tmp_path: Path
) -> None:
    engine = make_engine(postgres_url)
    migrate.upgrade(engine)
    port = free_loopback_port()
    config = tmp_path / "calmon.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "windows": [{"name": "1h", "length": "1h", "every": EVERY_S}],
                "http": {"host": "127.0.0.1", "port": port},
            }
        )
    )
    log = tmp_path / "calmon.log"
    daemon = subprocess.Popen(
        [sys.executable, "-m", "monitor", "run", "--no-ingest", "--config", str(config)],
        env={**os.environ, "CALMON_STORE_URL": postgres_url},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    lock = engine.connect()
    try:
        wait_until(lambda: _job_counters(port)[0] >= 2, timeout_s=60, what="two runs")
        assert _job_counters(port)[1] == 0  # runs on an empty store never overrun

        # Every run reads the series table first: holding it locked holds the run.
        lock.execute(text("LOCK TABLE series IN ACCESS EXCLUSIVE MODE"))
        held_at = _job_counters(port)[0]
        wait_until(lambda: _job_counters(port)[1] >= 4, timeout_s=30, what="four skipped runs")
        assert _job_counters(port)[0] <= held_at + 1  # at most the run already going ended
        # One run waits on the lock; the runs due meanwhile were skipped, not started.
        assert _waiting_on_locks(engine) == 1
        lock.rollback()

        released_at = _job_counters(port)[0]
        wait_until(
            lambda: _job_counters(port)[0] >= released_at + 2, timeout_s=30, what="runs again"
        )
        skipped = _job_counters(port)[1]
    finally:
        lock.close()
        stop_daemon(daemon, log)
        engine.dispose()
    warnings = [
        line for line in log_lines(log) if line["message"].startswith("window job run skipped")
    ]
    assert len(warnings) == skipped >= 4
    assert all(w["window"] == "1h" and w["level"] == "warning" for w in warnings)
    assert all(w["every_s"] == EVERY_S for w in warnings)
    # By how much: each run due found the held one still going, a little longer each time.
    overruns = [w["overrun_s"] for w in warnings]
    assert overruns == sorted(overruns) and overruns[-1] >= 2 * EVERY_S
    assert "s past the window's every of 1 s" in warnings[-1]["message"]


def _waiting_on_locks(engine: Engine) -> int:
    """Statements of the daemon waiting on a lock (this test's own session holds it)."""
    with engine.connect() as connection:
        return int(
            connection.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            ).scalar_one()
        )


def _job_counters(port: int) -> tuple[float, float]:
    """(completed runs, skipped runs) of window 1h, from /metrics; (-1, -1) before the
    daemon answers."""
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
    except OSError:
        return -1.0, -1.0
    runs = skipped = 0.0
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            if sample.labels.get("window") != "1h":
                continue
            if sample.name == "calmon_window_job_duration_seconds_count":
                runs = sample.value
            elif sample.name == "calmon_window_job_skipped_total":
                skipped = sample.value
    return runs, skipped

"""A real `calmon run` and `calmon migrate` against a store that does not answer: one
line naming the store (never its password) and the driver's reason, exit code 2, and
no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.demo.broker import free_loopback_port

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("command", ["run", "migrate"])
def test_an_unreachable_postgresql_is_one_line_and_exit_code_2(
    command: str, tmp_path: Path
) -> None:
    port = free_loopback_port()  # nothing listens on it
    config = tmp_path / "calmon.yaml"
    config.write_text('kafka: {bootstrap_servers: ["127.0.0.1:9"]}\n')
    finished = subprocess.run(
        [sys.executable, "-m", "monitor", command, "--config", str(config)],
        env={
            **os.environ,
            "CALMON_STORE_URL": f"postgresql+psycopg://calmon:s3cret-pw@127.0.0.1:{port}/calmon",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert finished.returncode == 2
    (line,) = finished.stderr.strip().splitlines()
    assert line.startswith(
        f"calmon {command}: cannot reach the store at "
        f"postgresql+psycopg://***@127.0.0.1:{port}/calmon: connection failed:"
    ), line
    assert "refused" in line.lower()
    assert "s3cret-pw" not in finished.stderr + finished.stdout


def test_a_sqlite_file_that_cannot_be_opened_names_its_path(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-directory" / "calmon.db"
    finished = subprocess.run(
        [sys.executable, "-m", "monitor", "migrate"],
        env={**os.environ, "CALMON_STORE_URL": f"sqlite:///{missing}"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert finished.returncode == 2
    assert finished.stderr.strip() == (
        f"calmon migrate: cannot reach the store at sqlite:///{missing}: "
        "unable to open database file"
    )

"""/metrics from outside, two `calmon run` replicas on one PostgreSQL store: the same
series and values whichever replica is scraped, the default export choice, scrapes that
never touch the store, and the store read back at most once per tick."""

from __future__ import annotations

import collections
from pathlib import Path

import orjson
import pytest
from sqlalchemy import text

from monitor.demo.broker import free_loopback_port
from monitor.settings import HEADLINE_METRICS
from monitor.store.db import migrate
from monitor.store.db.engine import make_engine
from tests.integration.app.replicas import (
    answers,
    fill_store,
    start_replica,
    stop_replica,
    window_samples,
    write_config,
)
from tests.integration.app.test_readiness import log_lines
from tests.integration.ingest.helpers import wait_until

pytestmark = pytest.mark.integration

MODELS = 3
WINDOWS = [{"name": "1h", "length": "1h", "every": "2s"}]


def _series(samples: dict) -> set[tuple[str, str, str, str]]:  # type: ignore[type-arg]
    return {
        (labels["model"], labels["model_version"], labels["segment"], labels["window"])
        for labels in (dict(key[1]) for key in samples)
    }


def _reads(log: Path, *, complete: bool = False) -> list[int]:
    """The slots (epoch ms) of the done ticks a replica read back, from its log; a running
    replica's log may end in a line still being written (``complete``: it has stopped)."""
    lines = log_lines(log) if complete else _written_lines(log)
    return [
        line["slot_ms"]
        for line in lines
        if line["message"] == "window results read back" and line["slot_ms"] is not None
    ]


def _written_lines(log: Path) -> list[dict]:  # type: ignore[type-arg]
    text = log.read_text()
    return [orjson.loads(line) for line in text[: text.rfind("\n") + 1].splitlines() if line]


def test_replicas_export_the_same_series_from_memory(postgres_url: str, tmp_path: Path) -> None:
    engine = make_engine(postgres_url)
    migrate.upgrade(engine)
    fill_store(engine, MODELS)
    ports = [free_loopback_port(), free_loopback_port()]
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    replicas = [
        start_replica(
            write_config(tmp_path / f"{name}.yaml", port, windows=WINDOWS),
            postgres_url,
            log,
            "--log-level",
            "DEBUG",
        )
        for name, port, log in zip("ab", ports, logs, strict=True)
    ]
    expected = {
        (f"m{m:02d}", version, segment, "1h")
        for m in range(MODELS)
        for version in ("v1", "__all__")
        for segment in ("__all__", "region=eu", "region=us", "region=apac")
    }
    lock = engine.connect()
    try:
        for port in ports:
            wait_until(
                lambda port=port: (
                    answers(lambda: window_samples(port))
                    and _series(window_samples(port)) == expected
                ),
                timeout_s=90,
                what="every series exported",
            )
        # The same samples from either replica, once no tick is in flight between scrapes.
        wait_until(
            lambda: window_samples(ports[0]) == window_samples(ports[1]),
            timeout_s=30,
            what="identical exports",
        )
        samples = window_samples(ports[1])
        # The default choice: segment series carry the headline metrics, no bins.
        for key in samples:
            labels = dict(key[1])
            if labels["segment"] != "__all__":
                assert key[0].removeprefix("calmon_") in HEADLINE_METRICS, key
        names = {key[0] for key in samples if dict(key[1])["segment"] == "__all__"}
        assert {"calmon_reliability_bin_events", "calmon_drift_bin_fraction", "calmon_mce"} <= names

        # Scrapes never read the store: with the results table locked (window jobs wait
        # on it), both replicas keep answering with every series.
        lock.execute(text("LOCK TABLE window_results IN ACCESS EXCLUSIVE MODE"))
        for _ in range(8):
            for port in ports:
                assert _series(window_samples(port)) == expected
        lock.rollback()
        # Each replica reads a shared tick back once it is done, within a refresh beat of
        # the other: wait for both (on a loaded machine one may be a beat behind).
        for log in logs:
            wait_until(
                lambda log=log: bool(_reads(log)),
                timeout_s=30,
                what=f"a tick read back by {log.stem}",
            )
    finally:
        lock.rollback()
        lock.close()
        for replica, log in zip(replicas, logs, strict=True):
            stop_replica(replica, log)
        engine.dispose()
    # The two share the window's series: each read the window's results back once a
    # tick was done, at most once per tick (slot).
    reads = [_reads(log, complete=True) for log in logs]
    assert all(reads)
    for slots in reads:
        assert max(collections.Counter(slots).values()) == 1

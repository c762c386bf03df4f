"""Three `calmon run` replicas on one PostgreSQL store share each window's series: each
holds a third of the shards, every series is evaluated exactly once per tick (never
twice, never skipped) — also across a SIGKILL of one replica, whose shards the others
take over — and both survivors export the same series."""

from __future__ import annotations

import collections
import signal
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from monitor.demo.broker import free_loopback_port
from monitor.store.db import migrate
from monitor.store.db.engine import make_engine
from monitor.store.shards import SHARDS
from tests.integration.app.replicas import (
    SEGMENTS,
    answers,
    fill_store,
    start_replica,
    stop_replica,
    window_samples,
    write_config,
)
from tests.integration.ingest.helpers import wait_until

pytestmark = pytest.mark.integration

MODELS = 6
#: Ticks long enough for a loaded 2-core machine (a replica's share takes ~1 s warm, up
#: to ~10 s cold), and a lease plus a beat well within one.
EVERY_MS = 10_000
LEASE = "3s"
SERIES = {
    (f"m{m:02d}", version, segment)
    for m in range(MODELS)
    for version in ("v1", "__all__")
    for segment in ("__all__", *(f"region={s}" for s in SEGMENTS))
}


def _shares(engine: Engine) -> dict[str, int]:
    """Shards of window 1h per replica holding a live lease."""
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT owner, count(*) FROM window_shards WHERE \"window\" = '1h'"
                " AND owner IS NOT NULL GROUP BY owner"
            )
        ).all()
    return {owner: count for owner, count in rows}


def _complete_ticks(engine: Engine) -> int | None:
    """The newest tick every shard of window 1h is stored for."""
    with engine.connect() as connection:
        slots = (
            connection.execute(
                text("SELECT done_slot_ms FROM window_shards WHERE \"window\" = '1h'")
            )
            .scalars()
            .all()
        )
    if len(slots) < SHARDS or None in slots:
        return None
    return min(slots)


def _evaluations(engine: Engine) -> dict[tuple[str, str, str], list[int]]:
    """Every stored evaluation time of each series (one history point per evaluation)."""
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT model_id, model_version, segment, evaluated_ms FROM metric_points"
                " WHERE metric = 'window_predictions' AND \"window\" = '1h'"
            )
        ).all()
    evaluations = collections.defaultdict(list)
    for model, version, segment, evaluated in rows:
        evaluations[model, version, segment].append(evaluated)
    return evaluations


def test_replicas_share_the_series_and_survive_a_sigkill(postgres_url: str, tmp_path: Path) -> None:
    engine = make_engine(postgres_url)
    migrate.upgrade(engine)
    fill_store(engine, MODELS)
    ports = [free_loopback_port() for _ in range(3)]
    logs = [tmp_path / f"{name}.log" for name in "abc"]
    replicas = [
        start_replica(
            write_config(
                tmp_path / f"{name}.yaml",
                port,
                windows=[{"name": "1h", "length": "1h", "every": f"{EVERY_MS}ms"}],
                store={"segment_keys": ["region"], "replica_lease": LEASE},
                evaluation={"min_labelled": 20, "min_predictions": 20, "bootstrap_resamples": 0},
            ),
            postgres_url,
            log,
        )
        for name, port, log in zip("abc", ports, logs, strict=True)
    ]
    try:
        # A third of the shards each (16 = 6 + 5 + 5), then two ticks done by the three.
        wait_until(
            lambda: sorted(_shares(engine).values()) == [5, 5, 6], timeout_s=120, what="shares"
        )
        shared_at = time.time() * 1000
        # The check starts once the shares have settled and the cold first reads are over.
        wait_until(
            lambda: (_complete_ticks(engine) or 0) >= shared_at + 2 * EVERY_MS,
            timeout_s=90,
            what="two ticks done by three replicas",
        )
        first = _complete_ticks(engine)
        assert first is not None

        # SIGKILL the replica holding the most shards, in the middle of its tick's
        # work or between ticks: whichever, its shards are taken over.
        shares = _shares(engine)
        victim_owner = max(shares, key=lambda owner: shares[owner])
        victim = next(i for i, log in enumerate(logs) if victim_owner in log.read_text())
        replicas[victim].send_signal(signal.SIGKILL)
        replicas[victim].wait(timeout=30)
        killed_at = time.time() * 1000
        wait_until(
            lambda: (
                sorted(_shares(engine).values()) == [8, 8] and victim_owner not in _shares(engine)
            ),
            timeout_s=60,
            what="the survivors hold every shard",
        )
        wait_until(
            lambda: (_complete_ticks(engine) or 0) >= killed_at + 3 * EVERY_MS,
            timeout_s=90,
            what="three ticks after the kill",
        )
        last = _complete_ticks(engine)
        assert last is not None
        survivors = [port for i, port in enumerate(ports) if i != victim]
        wait_until(
            lambda: (
                all(answers(lambda p=p: window_samples(p)) for p in survivors)
                and window_samples(survivors[0]) == window_samples(survivors[1])
            ),
            timeout_s=30,
            what="identical exports from the survivors",
        )
        exported = {
            (labels["model"], labels["model_version"], labels["segment"])
            for labels in (dict(key[1]) for key in window_samples(survivors[0]))
        }
        assert exported == SERIES
    finally:
        for i, (replica, log) in enumerate(zip(replicas, logs, strict=True)):
            if replica.poll() is None:
                stop_replica(replica, log)
            else:
                assert i == victim, log.read_text()[-3000:]
    # Exactly one evaluation of every series in every tick from the first tick the
    # three did to the last one checked, the kill in between.
    evaluations = _evaluations(engine)
    engine.dispose()
    assert set(evaluations) == SERIES
    ticks = range(first, last + EVERY_MS, EVERY_MS)
    assert len(ticks) >= 4
    for series, times in evaluations.items():
        per_tick = collections.Counter(t - t % EVERY_MS for t in times)
        assert [per_tick[tick] for tick in ticks] == [1] * len(ticks), (series, sorted(times))

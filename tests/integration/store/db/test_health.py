"""The store's readiness check (/readyz): cheap, quiet, and generic in what it says."""

from __future__ import annotations

import logging
import threading

import pytest
from sqlalchemy import Engine, event

from monitor.demo.broker import free_loopback_port
from monitor.store.db import migrate
from monitor.store.db.engine import make_engine
from monitor.store.db.health import NOT_MIGRATED, UNREACHABLE, StoreHealth, store_problem

pytestmark = pytest.mark.integration


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def checkouts(engine: Engine) -> list[int]:
    seen: list[int] = []
    event.listen(engine, "checkout", lambda *_: seen.append(1))
    return seen


def test_a_migrated_store_is_ready_and_checked_once_per_interval(
    migrated_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    health = StoreHealth(migrated_engine, recheck_s=5, clock=clock)
    used = checkouts(migrated_engine)
    with caplog.at_level(logging.DEBUG):
        answers = [health.problem() for _ in range(50)]
        assert answers == [None] * 50
        assert len(used) == 1  # fifty probes, one pooled connection checkout
        clock.now += 5
        assert health.problem() is None
        assert len(used) == 2
    assert caplog.records == []  # no Alembic INFO lines, nothing at all


def test_a_store_behind_the_latest_migration_is_not_ready(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        assert StoreHealth(engine).problem() == NOT_MIGRATED  # empty: no version table
        migrate.upgrade(engine, "0001_events")
        assert StoreHealth(engine).problem() == NOT_MIGRATED
        assert store_problem(engine) == NOT_MIGRATED
        migrate.upgrade(engine)
        assert StoreHealth(engine).problem() is None
        assert store_problem(engine) is None
    finally:
        engine.dispose()


def test_an_unreachable_store_says_so_without_its_address_and_logs_once_a_minute(
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = free_loopback_port()  # nothing listens there
    engine = make_engine(f"postgresql://calmon_user:hunter2@127.0.0.1:{port}/calmon_db")
    clock = FakeClock()
    health = StoreHealth(engine, recheck_s=5, clock=clock)
    try:
        with caplog.at_level(logging.WARNING, logger="monitor.store.db.health"):
            for _ in range(6):  # 30 s of probes every 5 s
                problem = health.problem()
                assert problem == UNREACHABLE
                clock.now += 5
            assert len(caplog.records) == 1  # the details, once
            assert caplog.records[0].getMessage() == "store unreachable"
            assert str(port) in caplog.records[0].error  # type: ignore[attr-defined]
            clock.now += 60
            health.problem()
            assert len(caplog.records) == 2
    finally:
        engine.dispose()
    for secret in ("calmon_user", "hunter2", str(port), "127.0.0.1", "calmon_db"):
        assert secret not in UNREACHABLE


def test_the_unreachable_line_repeats_once_a_full_minute_has_passed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine = make_engine(f"postgresql://u@127.0.0.1:{free_loopback_port()}/db")
    clock = FakeClock()
    health = StoreHealth(engine, recheck_s=0, clock=clock)  # every probe checks
    try:
        with caplog.at_level(logging.WARNING, logger="monitor.store.db.health"):
            health.problem()
            clock.now += 59.999
            health.problem()
            assert len(caplog.records) == 1
            clock.now += 0.001  # exactly 60 s after the first line
            health.problem()
            assert len(caplog.records) == 2
    finally:
        engine.dispose()


def test_a_probe_during_another_probes_check_answers_at_once(migrated_engine: Engine) -> None:
    """Probes never queue behind a slow store: one checks, the others answer with the
    last answer, which before the first check is that the store is not checked yet."""
    health = StoreHealth(migrated_engine, recheck_s=5, clock=FakeClock())
    answers: list[str | None] = []
    health._lock.acquire()  # another probe is checking
    try:
        probe = threading.Thread(target=lambda: answers.append(health.problem()))
        probe.start()
        probe.join(timeout=5)
        assert not probe.is_alive(), "the probe waited for the other one's check"
    finally:
        health._lock.release()
    assert answers == ["store not checked yet"]
    assert health.problem() is None  # the lock free again: it checks

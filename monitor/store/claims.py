"""Run each scheduled job once across replicas: the first to claim a slot runs it.

Every replica schedules the same jobs (compaction, the Alertmanager resend); for each
(job, slot) they race to insert one row in ``job_runs`` and only the replica whose row
landed runs the job. A replica that dies mid-job leaves its slot claimed; the next slot
runs as usual. Window jobs share their series between replicas instead (``shards.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Engine, delete, select, update

from monitor.store.db.sql import insert_ignoring_existing
from monitor.store.db.tables import JobRun

KEEP_CLAIMS_MS = 86_400_000
T = TypeVar("T")
logger = logging.getLogger(__name__)


def run_once(
    engine: Engine,
    job: str,
    every_s: float,
    owner: str,
    clock_ms: Callable[[], int],
    work: Callable[[int], T],
) -> T | None:
    """Run ``work(now)`` if this replica claims the current slot of a job scheduled every
    ``every_s``; None if another replica has it."""
    now = clock_ms()
    every_ms = int(every_s * 1000)
    slot = now - now % every_ms
    if not claim(engine, job, slot, owner, now):
        logger.debug("slot claimed by another replica", extra={"job": job})
        return None
    result = work(now)
    finish(engine, job, slot, clock_ms())
    return result


def claim(engine: Engine, job: str, slot_ms: int, owner: str, now_ms: int) -> bool:
    with engine.begin() as connection:
        insert_ignoring_existing(
            connection,
            JobRun.__table__,  # type: ignore[arg-type]
            [{"job": job, "slot_ms": slot_ms, "owner": owner, "started_ms": now_ms}],
            ["job", "slot_ms"],
        )
        winner = connection.execute(
            select(JobRun.owner).where(JobRun.job == job, JobRun.slot_ms == slot_ms)
        ).scalar_one()
        connection.execute(
            delete(JobRun).where(JobRun.job == job, JobRun.slot_ms < slot_ms - KEEP_CLAIMS_MS)
        )
    return bool(winner == owner)


def finish(engine: Engine, job: str, slot_ms: int, now_ms: int) -> None:
    with engine.begin() as connection:
        connection.execute(
            update(JobRun)
            .where(JobRun.job == job, JobRun.slot_ms == slot_ms)
            .values(finished_ms=now_ms)
        )

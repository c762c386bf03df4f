"""Compaction of ingest's aggregate deltas, on real SQLite and PostgreSQL: windows read
the same before and after, every delta is merged exactly once, and a downgrade past
revision 0005 keeps the deltas' events."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from sqlalchemy import Connection, Engine, func, select

from monitor.core.records import Label, Prediction
from monitor.metrics import calibration as core
from monitor.metrics.summary import calibration_summary
from monitor.store.aggregates import WindowAggregate, load_window
from monitor.store.db import migrate
from monitor.store.db.engine import make_engine
from monitor.store.db.tables import Aggregate, AggregateDelta
from monitor.store.maintenance import compaction
from monitor.store.maintenance.compaction import (
    ConcurrentCompaction,
    compact_aggregates,
    compact_connection,
)
from monitor.store.write.event_store import EventStore

DAY_MS = 86_400_000

NOW = 1_790_000_000_000


def _stream(n: int, seed: int) -> tuple[list[Prediction | Label], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.01, 0.99, n)
    y = (rng.uniform(size=n) < p).astype(int)
    times = NOW - DAY_MS + rng.integers(0, 6 * 3_600_000, n)
    records: list[Prediction | Label] = []
    for i in range(n):
        segment = {"region": "eu" if i % 2 else "us"}
        records.append(Prediction("m", f"e{i}", "v1", int(times[i]), 0.0, float(p[i]), segment))
    records += [Label("m", f"e{i}", int(y[i]), int(times[i]) + 60_000) for i in range(n)]
    return records, p, y


def _write(engine: Engine, records: list[Prediction | Label], batch: int) -> None:
    store = EventStore(engine, segment_keys=["region"], clock_ms=lambda: NOW)
    for start in range(0, len(records), batch):
        store.write_batch(records[start : start + batch])


def _window(engine: Engine, segment: str = "__all__") -> WindowAggregate:
    return load_window(
        engine,
        model_id="m",
        model_version="v1",
        segment=segment,
        start_ms=NOW - 2 * DAY_MS,
        end_ms=NOW,
        now_ms=NOW,
    )


def _rows(engine: Engine, model: type[Aggregate] | type[AggregateDelta]) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(model)).scalar_one())


def test_windows_read_the_same_before_and_after_compaction(migrated_engine: Engine) -> None:
    records, p, y = _stream(1200, seed=1)
    _write(migrated_engine, records, batch=100)
    before = {segment: _window(migrated_engine, segment) for segment in ("__all__", "region=eu")}
    deltas = _rows(migrated_engine, AggregateDelta)
    assert deltas > 0 and _rows(migrated_engine, Aggregate) == 0

    # In transactions of 7 deltas: the result may not depend on how the work is cut.
    assert compact_aggregates(migrated_engine, NOW, per_transaction=7) == deltas
    assert _rows(migrated_engine, AggregateDelta) == 0
    assert compact_aggregates(migrated_engine, NOW) == 0
    for segment, window in before.items():
        after = _window(migrated_engine, segment)
        assert after.predictions == window.predictions
        assert after.aggregate.n_labelled == window.aggregate.n_labelled
        assert after.buckets < window.buckets  # one row per bucket now
        a = calibration_summary(after.aggregate, bootstrap_resamples=0).values
        b = calibration_summary(window.aggregate, bootstrap_resamples=0).values
        assert a["ece"] == pytest.approx(b["ece"], abs=1e-12)
    whole = calibration_summary(_window(migrated_engine).aggregate, bootstrap_resamples=0).values
    assert whole["brier_score"] == pytest.approx(core.brier_score_loss(p, y), abs=1e-9)

    # New deltas on top of compacted rows: both are read, and compacted again.
    more, p2, y2 = _stream(300, seed=2)
    more = [r._replace(event_id="f" + r.event_id[1:]) for r in more]
    _write(migrated_engine, more, batch=50)
    assert _window(migrated_engine).aggregate.n_labelled == 1500
    compact_aggregates(migrated_engine, NOW)
    window = _window(migrated_engine)
    assert window.aggregate.n_labelled == 1500 and window.predictions == 1500
    values = calibration_summary(window.aggregate, bootstrap_resamples=0).values
    all_p, all_y = np.r_[p, p2], np.r_[y, y2]
    assert values["log_loss"] == pytest.approx(core.log_loss(all_p, all_y), abs=1e-9)


def test_a_run_ends_while_ingest_keeps_appending(
    migrated_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ingest appends a batch of deltas after every compaction transaction, faster than
    # the run merges them. The run merges what was there when it started and ends, so
    # the backlog counted after it (calmon_aggregate_deltas) shows the growth.
    records, _, _ = _stream(200, seed=3)
    _write(migrated_engine, records, batch=20)
    present = _rows(migrated_engine, AggregateDelta)
    transactions = 0
    real = compaction.take_write_lock  # called as each transaction of the run begins

    def ingest_then_begin(connection: Connection) -> None:
        nonlocal transactions
        transactions += 1
        assert transactions <= present, "the run kept merging what ingest appended meanwhile"
        more, _, _ = _stream(40, seed=100 + transactions)
        renamed = [r._replace(event_id=f"t{transactions}-{r.event_id}") for r in more]
        EventStore(migrated_engine, clock_ms=lambda: NOW).write_batch(renamed)
        real(connection)

    monkeypatch.setattr(compaction, "take_write_lock", ingest_then_begin)
    assert compact_aggregates(migrated_engine, NOW, per_transaction=3) == present
    appended = _rows(migrated_engine, AggregateDelta)
    assert appended > present  # ingest outpaced this run: the next one has more to do
    monkeypatch.setattr(compaction, "take_write_lock", real)
    assert compact_aggregates(migrated_engine, NOW) == appended
    window = _window(migrated_engine)
    assert window.predictions == 200 + 40 * transactions
    assert window.aggregate.n_labelled == 200 + 40 * transactions


def test_two_compactors_merge_each_delta_exactly_once(migrated_engine: Engine) -> None:
    # Replica A is mid-compaction (merged, deleted, not committed) when replica B starts
    # on the same deltas. B waits (PostgreSQL: on the change log's counter row, which
    # every compaction locks first; SQLite: for the write lock), then finds nothing to
    # merge.
    records, _, _ = _stream(200, seed=3)
    _write(migrated_engine, records, batch=40)
    outcome: list[object] = []

    def replica_b() -> None:
        try:
            outcome.append(compact_aggregates(migrated_engine, NOW))
        except ConcurrentCompaction as exc:
            outcome.append(exc)

    with migrated_engine.begin() as connection:
        if connection.dialect.name == "sqlite":
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        merged = compact_connection(connection, NOW)
        other = threading.Thread(target=replica_b)
        other.start()
        other.join(timeout=1.0)
        assert other.is_alive()  # B waits for A's transaction
    other.join(timeout=30)
    assert merged > 0
    assert outcome == [0]
    window = _window(migrated_engine)
    assert (window.predictions, window.aggregate.n_labelled) == (200, 200)
    assert _rows(migrated_engine, AggregateDelta) == 0


def test_downgrading_past_deltas_folds_them_into_their_buckets(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    records, _, _ = _stream(100, seed=4)
    _write(engine, records, batch=30)
    expected = _window(engine)
    migrate.downgrade(engine, "0004_history_index")
    with engine.connect() as connection:
        days = connection.execute(
            select(Aggregate.predictions).where(
                Aggregate.segment == "__all__", Aggregate.resolution_s == 86400
            )
        ).scalars()
        assert sum(days) == expected.predictions
    migrate.upgrade(engine)
    assert _window(engine).aggregate.n_labelled == expected.aggregate.n_labelled == 100
    engine.dispose()

"""The write path against real SQLite and PostgreSQL: joins, idempotence, horizons,
and window aggregates equal to the metrics core run on the same events."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine, func, insert, select

from monitor.core.records import Label, Prediction
from monitor.metrics import calibration as core
from monitor.metrics.aggregates import EventAggregate
from monitor.metrics.summary import calibration_summary
from monitor.store.aggregates import FOLD_EVERY, active_model_versions, list_series, load_window
from monitor.store.db.tables import Aggregate, AggregateDelta, Event, MetricPoint
from monitor.store.maintenance.compaction import compact_aggregates
from monitor.store.maintenance.retention import RetentionPolicy, apply_retention
from monitor.store.write import common_cases
from monitor.store.write.event_store import EventStore

DAY_MS = 86_400_000

NOW = 1_790_000_000_000  # a fixed "now" (2026-09) so horizons are deterministic
HOUR_MS = 3_600_000


def _store(engine: Engine, **kwargs: object) -> EventStore:
    return EventStore(engine, clock_ms=lambda: NOW, **kwargs)  # type: ignore[arg-type]


def _stream(n: int, seed: int = 0) -> tuple[list[Prediction], list[Label], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.beta(2, 5, n)
    y = (rng.uniform(size=n) < np.clip(p * 1.3, 0, 1)).astype(int)
    times = NOW - DAY_MS + rng.integers(0, 20 * HOUR_MS, n)
    predictions = [
        Prediction(
            "fraud",
            f"e{i}",
            "v1",
            int(times[i]),
            raw_score=float(np.log(p[i] / (1 - p[i]))),
            probability=float(p[i]),
            segment={"region": "eu" if i % 3 else "us"},
        )
        for i in range(n)
    ]
    labels = [Label("fraud", f"e{i}", int(y[i]), int(times[i]) + HOUR_MS) for i in range(n)]
    return predictions, labels, p, y


def _window(engine: Engine, segment: str = "__all__", version: str | None = "v1"):  # type: ignore[no-untyped-def]
    return load_window(
        engine,
        model_id="fraud",
        model_version=version,
        segment=segment,
        start_ms=NOW - 2 * DAY_MS,
        end_ms=NOW,
        now_ms=NOW,
    )


def test_window_metrics_equal_the_core_on_the_same_events(migrated_engine: Engine) -> None:
    predictions, labels, p, y = _stream(3000)
    store = _store(migrated_engine, segment_keys=["region"])
    # Labels for the first third arrive before their predictions, in the same batches.
    for start in range(0, 3000, 500):
        early = [labels[i] for i in range(start, start + 500) if i % 3 == 0]
        batch = early + predictions[start : start + 500]
        store.write_batch(batch)
    late = [lab for i, lab in enumerate(labels) if i % 3]
    result = store.write_batch(late)
    assert result.labels_joined == len(late)

    window = _window(migrated_engine)
    assert window.predictions == 3000
    assert window.aggregate.n_labelled == 3000
    # More rows (buckets and their deltas) than load_window holds before folding them.
    assert window.buckets > FOLD_EVERY
    values = calibration_summary(window.aggregate, bootstrap_resamples=0).values
    assert values["ece"] == pytest.approx(core.expected_calibration_error(p, y), abs=1e-9)
    assert values["brier_score"] == pytest.approx(core.brier_score_loss(p, y), abs=1e-9)
    assert values["log_loss"] == pytest.approx(core.log_loss(p, y), abs=1e-9)
    # The segment series hold exactly their events.
    us = np.arange(3000) % 3 == 0
    us_values = calibration_summary(
        _window(migrated_engine, "region=us").aggregate, bootstrap_resamples=0
    ).values
    assert us_values["ece"] == pytest.approx(
        core.expected_calibration_error(p[us], y[us]), abs=1e-9
    )
    segments = {s.segment for s in list_series(migrated_engine)}
    assert segments == {"__all__", "region=eu", "region=us"}


def test_replaying_a_batch_changes_nothing(migrated_engine: Engine) -> None:
    predictions, labels, _, _ = _stream(400)
    store = _store(migrated_engine)
    store.write_batch(predictions + labels)
    assert compact_aggregates(migrated_engine, NOW) > 0
    before = _aggregate_blobs(migrated_engine)
    replay = store.write_batch(predictions + labels)
    assert replay.predictions_new == 0 and replay.labels_joined == 0
    assert replay.predictions_duplicate == 400 and replay.labels_duplicate == 400
    assert compact_aggregates(migrated_engine, NOW) == 0  # the replay added no delta
    assert _aggregate_blobs(migrated_engine) == before


def _aggregate_blobs(engine: Engine) -> dict[tuple[object, ...], tuple[int, bytes]]:
    with engine.connect() as connection:
        rows = connection.execute(select(Aggregate.__table__)).all()
        return {
            (r.model_version, r.segment, r.resolution_s, r.bucket_start_ms): (r.predictions, r.blob)
            for r in rows
        }


def test_score_and_probability_in_two_messages_and_label_first(migrated_engine: Engine) -> None:
    store = _store(migrated_engine)
    t = NOW - HOUR_MS
    first = store.write_batch([Label("m", "a", 1, t + 1000)])
    assert first.labels_pending == 1
    second = store.write_batch([Prediction("m", "a", "v2", t, raw_score=2.0)])
    assert second.predictions_new == 1 and second.labels_joined == 0  # no probability yet
    third = store.write_batch([Prediction("m", "a", "v2", t, probability=0.8)])
    assert third.predictions_updated == 1 and third.labels_joined == 1
    assert third.label_delays_s == [1.0]
    window = load_window(
        migrated_engine,
        model_id="m",
        model_version="v2",
        segment="__all__",
        start_ms=t - HOUR_MS,
        end_ms=NOW,
        now_ms=NOW,
    )
    aggregate = window.aggregate
    assert (window.predictions, aggregate.n_scores, aggregate.n_probabilities) == (1, 1, 1)
    assert aggregate.n_labelled == 1
    brier = calibration_summary(aggregate, bootstrap_resamples=0).values["brier_score"]
    assert brier == pytest.approx((0.8 - 1) ** 2)


def test_duplicate_labels_first_wins(migrated_engine: Engine) -> None:
    store = _store(migrated_engine)
    t = NOW - HOUR_MS
    store.write_batch([Prediction("m", "a", "v1", t, probability=0.3)])
    result = store.write_batch(
        [Label("m", "a", 1, t + 10), Label("m", "a", 1, t + 20), Label("m", "a", 0, t + 30)]
    )
    assert (result.labels_joined, result.labels_duplicate, result.labels_conflicting) == (1, 1, 1)
    with migrated_engine.connect() as connection:
        row = connection.execute(select(Event.label, Event.label_time_ms)).one()
    assert tuple(row) == (1, t + 10)


def test_labels_past_the_horizon_are_counted_and_dropped(migrated_engine: Engine) -> None:
    store = _store(migrated_engine, label_horizon_s=30 * 86_400)
    old = NOW - 40 * DAY_MS
    result = store.write_batch(
        [
            Prediction("m", "old", "v1", old, probability=0.5),
            Label("m", "old", 1, old + 35 * DAY_MS),  # arrived 35 days after its prediction
            Label("m", "stale", 0, NOW - 31 * DAY_MS),  # a replay of a month-old label
            Label("m", "early", 1, NOW),  # pending; its prediction is 31 days older
        ]
    )
    assert result.labels_dropped == {"label_delay_over_horizon": 1, "label_too_old": 1}
    late_prediction = store.write_batch(
        [Prediction("m", "early", "v1", NOW - 31 * DAY_MS, probability=0.5)]
    )
    assert late_prediction.labels_dropped == {"label_delay_over_horizon": 1}
    assert late_prediction.labels_joined == 0


def test_a_late_label_changes_a_past_window(migrated_engine: Engine) -> None:
    store = _store(migrated_engine)
    t = NOW - 5 * DAY_MS
    store.write_batch([Prediction("m", str(i), "v1", t + i, probability=0.9) for i in range(10)])

    def past_window_labelled() -> int:
        return load_window(
            migrated_engine,
            model_id="m",
            model_version=None,
            segment="__all__",
            start_ms=t - DAY_MS,
            end_ms=t + DAY_MS,
            now_ms=t + DAY_MS,
        ).aggregate.n_labelled

    assert past_window_labelled() == 0
    store.write_batch([Label("m", str(i), 1, NOW) for i in range(4)])
    assert past_window_labelled() == 4


def test_a_window_over_all_versions_merges_each_version_and_nothing_else(
    migrated_engine: Engine,
) -> None:
    store = _store(migrated_engine, segment_keys=["region"])
    t = NOW - 2 * HOUR_MS
    groups = [
        ("m", "v1", "eu", 5),
        ("m", "v2", "eu", 7),
        ("m", "v2", "us", 3),
        ("x", "v1", "eu", 4),
    ]
    store.write_batch(
        [
            Prediction(
                model,
                f"{version}-{region}-{i}",
                version,
                t + i,
                probability=0.5,
                segment={"region": region},
            )
            for model, version, region, count in groups
            for i in range(count)
        ]
        + [Label("m", f"v2-eu-{i}", 1, NOW) for i in range(2)]
    )

    def window(version: str | None, segment: str) -> tuple[int, int]:
        merged = load_window(
            migrated_engine,
            model_id="m",
            model_version=version,
            segment=segment,
            start_ms=t - HOUR_MS,
            end_ms=t + HOUR_MS,
            now_ms=t + HOUR_MS,
        )
        return merged.predictions, merged.aggregate.n_labelled

    assert window(None, "region=eu") == (5 + 7, 2)
    assert window("v2", "region=eu") == (7, 2)
    assert window(None, "__all__") == (5 + 7 + 3, 2)
    assert window(None, "region=other") == (0, 0)


@pytest.mark.parametrize("compacted", [True, False], ids=["compacted", "deltas"])
def test_retention_keeps_what_windows_need(migrated_engine: Engine, compacted: bool) -> None:
    store = _store(migrated_engine)
    store.write_batch(
        [
            Prediction("m", "recent", "v1", NOW - HOUR_MS, probability=0.2),
            Prediction("m", "ancient", "v1", NOW - 50 * DAY_MS, probability=0.2),
            Label("m", "orphan", 1, NOW - 1000),
        ]
    )
    # Buckets follow the same retention whether compacted into rows or still deltas.
    table = Aggregate if compacted else AggregateDelta
    if compacted:
        compact_aggregates(migrated_engine, NOW)
    later = NOW + 31 * DAY_MS
    result = apply_retention(migrated_engine, RetentionPolicy(), later)
    assert (result.events, result.orphan_labels) == (1, 1)
    with migrated_engine.connect() as connection:
        assert connection.execute(select(Event.event_id)).scalars().all() == ["recent"]
        # 81 days after the old event: its day bucket survives (400 days), its hour (62)
        # and minute (3) buckets are gone; the recent event keeps its hour and day.
        resolutions = connection.execute(
            select(table.resolution_s, func.count()).group_by(table.resolution_s)
        ).all()
    assert dict(resolutions) == {3600: 1, 86400: 2}


def test_a_week_reads_the_same_before_and_after_retention(migrated_engine: Engine) -> None:
    """Retention deletes minute buckets after 3 days, so a 7-day window (and the week
    before it, its trailing reference) starts on the hour (``buckets.window_edge``).
    Each must hold exactly its events, before retention runs and after."""
    minute = 60_000
    now = NOW + 23 * minute + 30_500  # evaluated mid-hour, as a window job would be
    times = np.arange(now - 15 * DAY_MS, now, 7 * minute + 13_000)
    rng = np.random.default_rng(7)
    p = rng.uniform(0.01, 0.99, times.size)
    y = (rng.uniform(size=times.size) < p).astype(int)
    store = EventStore(migrated_engine, clock_ms=lambda: now)
    records: list[Prediction | Label] = []
    for i, t in enumerate(times.tolist()):
        records.append(Prediction("m", f"e{i}", "v1", t, probability=float(p[i])))
        records.append(Label("m", f"e{i}", int(y[i]), t + 1000))
    for start in range(0, len(records), 1000):
        store.write_batch(records[start : start + 1000])
    compact_aggregates(migrated_engine, now)

    def read(start_ms: int, end_ms: int) -> EventAggregate:
        window = load_window(
            migrated_engine,
            model_id="m",
            model_version="v1",
            segment="__all__",
            start_ms=start_ms,
            end_ms=end_ms,
            now_ms=now,
        )
        assert window.predictions == window.aggregate.n_labelled
        return window.aggregate

    week_start = now - 7 * DAY_MS - (now - 7 * DAY_MS) % HOUR_MS  # its hour's start
    previous_start = now - 14 * DAY_MS - (now - 14 * DAY_MS) % HOUR_MS
    expected = {
        "week": (times >= week_start),
        "week before": (times >= previous_start) & (times < week_start),
    }
    spans = {"week": (now - 7 * DAY_MS, now), "week before": (now - 14 * DAY_MS, now - 7 * DAY_MS)}
    before = {name: read(*span) for name, span in spans.items()}
    result = apply_retention(migrated_engine, RetentionPolicy(), now)
    assert result.aggregates > 0  # the old minute buckets are gone
    after = {name: read(*span) for name, span in spans.items()}
    for name, inside in expected.items():
        for aggregate in (before[name], after[name]):
            assert aggregate.n_labelled == inside.sum()
            values = calibration_summary(aggregate, bootstrap_resamples=0).values
            assert values["ece"] == pytest.approx(
                core.expected_calibration_error(p[inside], y[inside]), abs=1e-12
            )
            assert values["brier_score"] == pytest.approx(
                core.brier_score_loss(p[inside], y[inside]), abs=1e-12
            )


def test_retention_drops_metric_history_past_its_horizon(migrated_engine: Engine) -> None:
    def point(metric: str, evaluated_ms: int) -> dict[str, object]:
        return {
            "model_id": "m",
            "model_version": "v1",
            "segment": "__all__",
            "window": "1h",
            "metric": metric,
            "evaluated_ms": evaluated_ms,
            "value": 0.1,
        }

    with migrated_engine.begin() as connection:
        connection.execute(
            insert(MetricPoint),
            [
                point("ece", NOW - 11 * DAY_MS),
                point("ece", NOW - 9 * DAY_MS),
                point("brier", NOW - 10 * DAY_MS - 1),
                point("brier", NOW - 10 * DAY_MS),  # exactly at the horizon: kept
            ],
        )
    result = apply_retention(migrated_engine, RetentionPolicy(metric_history_s=10 * 86_400), NOW)
    assert result.metric_points == 2
    with migrated_engine.connect() as connection:
        kept = connection.execute(
            select(MetricPoint.metric, MetricPoint.evaluated_ms).order_by(MetricPoint.evaluated_ms)
        ).all()
    assert [tuple(row) for row in kept] == [("brier", NOW - 10 * DAY_MS), ("ece", NOW - 9 * DAY_MS)]


def test_concurrent_label_and_prediction_writers_never_miss_a_join(migrated_engine: Engine) -> None:
    # Two writers (as two replicas would be): one writes labels, one predictions, for the
    # same events, in interleaved batches. Every event must end up labelled exactly once.
    predictions, labels, _, _ = _stream(600, seed=3)
    errors: list[BaseException] = []

    def write(records: list[Prediction] | list[Label]) -> None:
        store = _store(migrated_engine)
        try:
            for start in range(0, len(records), 50):
                store.write_batch(records[start : start + 50])
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=write, args=(predictions,)),
        threading.Thread(target=write, args=(labels,)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert _window(migrated_engine).aggregate.n_labelled == 600


def test_an_event_another_writer_creates_mid_batch_is_joined_not_lost(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Deterministic version of the race above: another replica commits the label of e0
    # just before this batch inserts its new events. The insert then skips e0, and the
    # transaction's next statement (it completes events whose label came first) finds
    # the waiting label and joins it. (PostgreSQL only: on SQLite the batch holds the
    # database's write lock throughout, so the other writer waits instead.) The hook
    # only times the other writer's commit; both writes are real.
    from monitor.store.db import migrate
    from monitor.store.db.engine import make_engine
    from monitor.store.write import common_cases

    engine = make_engine(postgres_url)
    migrate.upgrade(engine)
    predictions, labels, p, y = _stream(20, seed=5)
    real_insert = common_cases.insert_event_rows
    inserts: list[int] = []
    other_writer_done = False

    def insert_after_a_concurrent_writer(connection, rows):  # type: ignore[no-untyped-def]
        nonlocal other_writer_done
        if not other_writer_done:
            other_writer_done = True
            _store(engine).write_batch([labels[0]])  # its own connection and transaction
        inserts.append(len(rows))
        return real_insert(connection, rows)

    monkeypatch.setattr(common_cases, "insert_event_rows", insert_after_a_concurrent_writer)
    result = _store(engine).write_batch(predictions)
    # The other writer's 1 row, then this batch's 20 (e0 skipped), and nothing left
    # for the one-by-one path to insert.
    assert inserts == [1, 20]
    assert (result.predictions_new, result.labels_joined) == (20, 1)
    window = _window(engine).aggregate
    assert window.n_labelled == 1 and window.n_probabilities == 20
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(Event)).scalar_one() == 20
    assert core.brier_score_loss(p[:1], y[:1]) == pytest.approx(
        calibration_summary(window, n_bins=10, bootstrap_resamples=0).values["brier_score"]
    )
    engine.dispose()


def _wait_for_a_lock_wait(engine: Engine, timeout_s: float = 10) -> None:
    """Until another session of this database waits for a row lock (PostgreSQL)."""
    from sqlalchemy import text

    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
    )
    deadline = time.monotonic() + timeout_s
    with engine.connect() as connection:
        while connection.execute(query).scalar_one() == 0:
            assert time.monotonic() < deadline, "no session waited for a lock"
            connection.rollback()  # a fresh snapshot of pg_stat_activity
            time.sleep(0.01)


def test_a_deadlock_with_another_writer_is_redone_with_rows_locked_in_order(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another replica holds e1's row and then asks for e0's, while this batch's label
    # UPDATE holds e0's and waits for e1's. PostgreSQL breaks the cycle by rolling back
    # the transaction whose deadlock check runs first: this batch's (the server's 1 s
    # deadlock_timeout; the other side waits 5 s before checking). The batch is then
    # redone with every row locked in key order first, and both labels join once.
    from sqlalchemy import text

    from monitor.store.db import migrate
    from monitor.store.db.engine import make_engine
    from monitor.store.write import event_store

    engine = make_engine(postgres_url)
    migrate.upgrade(engine)
    store = _store(engine)
    store.write_batch([Prediction("fraud", f"e{i}", "v1", NOW - HOUR_MS, 0.0, 0.3) for i in (0, 1)])
    deadlocks: list[bool] = []
    real = event_store._is_deadlock
    monkeypatch.setattr(
        event_store, "_is_deadlock", lambda exc: deadlocks.append(real(exc)) or real(exc)
    )
    other_holds_e1 = threading.Event()
    other: list[str] = []

    def other_replica() -> None:
        with engine.connect() as connection:
            connection.execute(text("SET deadlock_timeout = '5s'"))
            lock = "SELECT 1 FROM events WHERE event_id = :e FOR UPDATE"
            connection.execute(text(lock), {"e": "e1"})
            other_holds_e1.set()
            _wait_for_a_lock_wait(engine)  # this batch's UPDATE holds e0 and waits for e1
            try:
                connection.execute(text(lock), {"e": "e0"})
                connection.commit()
                other.append("committed")
            except Exception as exc:  # the deadlock, if PostgreSQL chose this side
                connection.rollback()
                other.append(type(exc).__name__)

    thread = threading.Thread(target=other_replica)
    thread.start()
    other_holds_e1.wait(5)
    result = store.write_batch(
        [Label("fraud", "e0", 1, NOW - 1000), Label("fraud", "e1", 0, NOW - 1000)]
    )
    thread.join(10)
    assert result.labels_joined == 2
    assert deadlocks == [True] and other == ["committed"]
    window = _window(engine).aggregate
    assert window.n_labelled == 2
    engine.dispose()


def test_a_deadlock_in_the_locked_redo_is_redone_again(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Found in review. Replica L redoes the batch [a, x] with rows locked in key order:
    # it inserts the new a, then asks for x. Replica N's first attempt at [label x,
    # label a] holds x (its join UPDATE) and then inserts a, which waits for L's a: a
    # deadlock in the redo itself, and PostgreSQL rolls L back (it waited first). L
    # must redo again rather than fail the batch. Hooks only force L into its redo (as
    # another writer's insert would) and time N's statements; every statement is real.
    from monitor.store.db import migrate
    from monitor.store.db.engine import make_engine
    from monitor.store.write import common_cases, event_store, one_by_one

    engine = make_engine(postgres_url)
    migrate.upgrade(engine)
    _store(engine).write_batch([Prediction("fraud", "x", "v1", NOW - HOUR_MS, 0.1, 0.4)])
    n_holds_x = threading.Event()
    real_write, real_insert_waiting = common_cases.write, common_cases._insert_waiting_labels
    l_attempts: list[str] = []

    def write(connection, records, **kwargs):  # type: ignore[no-untyped-def]
        if threading.current_thread().name == "L":
            l_attempts.append("first")
            raise one_by_one.ConcurrentInsert  # L: straight to the locked redo
        return real_write(connection, records, **kwargs)

    def insert_waiting(connection, labels, now, result):  # type: ignore[no-untyped-def]
        if threading.current_thread().name == "N":
            n_holds_x.set()
            _wait_for_a_lock_wait(engine)  # L inserts a and waits for x meanwhile
        return real_insert_waiting(connection, labels, now, result)

    monkeypatch.setattr(common_cases, "write", write)
    monkeypatch.setattr(common_cases, "_insert_waiting_labels", insert_waiting)
    deadlocks: list[bool] = []
    real_is_deadlock = event_store._is_deadlock
    monkeypatch.setattr(
        event_store,
        "_is_deadlock",
        lambda exc: deadlocks.append(real_is_deadlock(exc)) or deadlocks[-1],
    )
    outcome: dict[str, Any] = {}

    def replica(name: str, batch: list[Prediction | Label]) -> None:
        try:
            outcome[name] = _store(engine).write_batch(batch)
        except Exception as exc:
            outcome[name] = exc

    n = threading.Thread(
        target=replica,
        name="N",
        args=("N", [Label("fraud", "x", 1, NOW - 1000), Label("fraud", "a", 0, NOW - 1000)]),
    )
    l_replica = threading.Thread(
        target=replica,
        name="L",
        args=(
            "L",
            [
                Prediction("fraud", "a", "v1", NOW - HOUR_MS, 0.2, 0.6),
                Prediction("fraud", "x", "v1", NOW - HOUR_MS, 0.1, 0.4),
            ],
        ),
    )
    n.start()
    assert n_holds_x.wait(5)
    l_replica.start()
    n.join(30)
    l_replica.join(30)
    assert deadlocks == [True]  # L's first redo, rolled back; its second went through
    assert l_attempts == ["first"]
    assert (outcome["N"].labels_joined, outcome["N"].labels_pending) == (1, 1)
    assert (outcome["L"].predictions_new, outcome["L"].labels_joined) == (1, 1)
    assert outcome["L"].predictions_duplicate == 1
    window = _window(engine).aggregate
    assert (window.n_probabilities, window.n_labelled) == (2, 2)
    engine.dispose()


@pytest.mark.parametrize("one_by_one", [False, True], ids=["set-at-a-time", "one by one"])
def test_only_the_configured_segment_keys_are_stored(
    migrated_engine: Engine, one_by_one: bool
) -> None:
    store = _store(migrated_engine, segment_keys=["region"])
    t = NOW - HOUR_MS
    segment = {"region": "eu", "user_agent": "x" * 128, "session": "s-81"}
    batch: list[Prediction | Label] = [Prediction("fraud", "a", "v1", t, 0.5, 0.6, segment)]
    if one_by_one:
        # The label waits first, then the prediction joins it with a raw score and a
        # probability in two messages of one batch: the one-by-one path.
        store.write_batch([Label("fraud", "a", 1, t + 1000)])
        batch = [
            Prediction("fraud", "a", "v1", t, raw_score=0.5, segment=segment),
            Prediction("fraud", "a", "v1", t, probability=0.6, segment=segment),
        ]
    store.write_batch(batch)
    store.write_batch([Prediction("fraud", "b", "v1", t, 0.5, 0.6, {"channel": "web"})])
    with migrated_engine.connect() as connection:
        stored = dict(connection.execute(select(Event.event_id, Event.segment_json)).all())
    assert stored == {"a": '{"region":"eu"}', "b": "{}"}
    assert _window(migrated_engine, "region=eu", version="v1").predictions == 1


def test_active_model_versions_are_those_with_a_prediction_since(migrated_engine: Engine) -> None:
    store = _store(migrated_engine, segment_keys=["region"])
    t = NOW - DAY_MS
    store.write_batch(
        [
            Prediction("a", "e1", "v1", t, probability=0.5, segment={"region": "eu"}),
            Prediction("a", "e2", "v1", t - 5, probability=0.5, segment={"region": "us"}),
            Prediction("a", "e3", "v0", t - 1, probability=0.5),
            Prediction("b", "e1", "v9", t + 7, probability=0.5),
        ]
    )
    store.write_batch([Label("c", "e1", 1, t)])  # a label alone: no model version
    # Each pair once, whatever its segments; the bound is inclusive, to the millisecond.
    assert active_model_versions(migrated_engine, since_ms=t) == [("a", "v1"), ("b", "v9")]
    assert active_model_versions(migrated_engine, since_ms=t - 1) == [
        ("a", "v0"), ("a", "v1"), ("b", "v9"),
    ]  # fmt: skip
    assert active_model_versions(migrated_engine, since_ms=t + 8) == []


HORIZON_MS = 30 * DAY_MS
#: Each write path: the set-at-a-time statements, or every record one by one (the
#: common cases' writer handing everything on, as it does for the records it does not
#: decide; the one-by-one path is the real one).
PATHS = ["set-at-a-time", "one by one"]


def _path_store(engine: Engine, path: str, monkeypatch: pytest.MonkeyPatch) -> EventStore:
    if path == "one by one":
        monkeypatch.setattr(common_cases, "write", lambda connection, records, **_: list(records))
    return _store(engine, label_horizon_s=HORIZON_MS // 1000)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("label_first", [False, True], ids=["prediction first", "label first"])
@pytest.mark.parametrize(("delay_ms", "joins"), [(HORIZON_MS, True), (HORIZON_MS + 1, False)])
def test_the_label_delay_horizon_to_the_millisecond(
    migrated_engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    path: str,
    label_first: bool,
    delay_ms: int,
    joins: bool,
) -> None:
    store = _path_store(migrated_engine, path, monkeypatch)
    event_ms = NOW - HORIZON_MS - 10  # so the label itself is never too old
    prediction = Prediction("m", "a", "v1", event_ms, probability=0.5)
    label = Label("m", "a", 1, event_ms + delay_ms)
    first, second = (label, prediction) if label_first else (prediction, label)
    store.write_batch([first])
    result = store.write_batch([second])
    assert result.labels_joined == int(joins)
    assert result.labels_dropped == ({} if joins else {"label_delay_over_horizon": 1})
    assert _labelled(migrated_engine, event_ms) == int(joins)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("label_first", [False, True], ids=["prediction first", "label first"])
@pytest.mark.parametrize(("age_ms", "kept"), [(HORIZON_MS, True), (HORIZON_MS + 1, False)])
def test_the_label_age_horizon_to_the_millisecond(
    migrated_engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    path: str,
    label_first: bool,
    age_ms: int,
    kept: bool,
) -> None:
    store = _path_store(migrated_engine, path, monkeypatch)
    label = Label("m", "a", 1, NOW - age_ms)
    prediction = Prediction("m", "a", "v1", NOW - age_ms - 1000, probability=0.5)
    if label_first:
        result = store.write_batch([label])
        assert result.labels_pending == int(kept)
        store.write_batch([prediction])
    else:
        store.write_batch([prediction])
        result = store.write_batch([label])
        assert result.labels_joined == int(kept)
    assert result.labels_dropped == ({} if kept else {"label_too_old": 1})
    assert _labelled(migrated_engine, NOW - age_ms - 1000) == int(kept)


def _labelled(engine: Engine, event_ms: int) -> int:
    return load_window(
        engine,
        model_id="m",
        model_version="v1",
        segment="__all__",
        start_ms=event_ms - HOUR_MS,
        end_ms=event_ms + HOUR_MS,
        now_ms=NOW,
    ).aggregate.n_labelled

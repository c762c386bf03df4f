"""The write path against an independent model of the delayed-label rules
(docs/messages.md), record by record.

Random streams mix every case the rules name: predictions in one message or two,
labels before and after their prediction, duplicate and conflicting labels, labels
past the horizon, several models, versions and segments, an event's records in one
batch or spread over several. The store decides most records set-at-a-time and the
rest one by one; whichever path a record takes, the stored events, the outcome counts
and the aggregates (compacted at random points) must be what applying the rules one
record at a time gives.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass

import numpy as np
import psycopg
import pytest
from sqlalchemy import Engine, event, select

from monitor.core.records import Label, Prediction
from monitor.metrics import calibration as core
from monitor.metrics.aggregates import EventAggregate
from monitor.metrics.summary import calibration_summary
from monitor.store.aggregates import load_window
from monitor.store.db.tables import Event
from monitor.store.maintenance.compaction import compact_aggregates
from monitor.store.write import one_by_one
from monitor.store.write.event_store import EventStore
from monitor.store.write.result import WriteResult

DAY_MS = 86_400_000

NOW = 1_790_000_000_000
HORIZON_MS = 30 * DAY_MS


@dataclass
class ModelEvent:
    """What the rules say one event's row holds."""

    version: str | None = None
    time_ms: int | None = None
    raw_score: float | None = None
    probability: float | None = None
    segment: str | None = None
    label: int | None = None
    label_time_ms: int | None = None


def apply_rules(records: list[Prediction | Label]) -> tuple[dict, Counter]:  # type: ignore[type-arg]
    """The "Delayed labels" rules of docs/messages.md, one record at a time (the reference)."""
    rows: dict[tuple[str, str], ModelEvent] = {}
    counts: Counter[str] = Counter()
    for record in records:
        row = rows.setdefault((record.model_id, record.event_id), ModelEvent())
        if isinstance(record, Prediction):
            first = row.version is None
            if first:
                row.version, row.time_ms = record.model_version, record.event_time_ms
                row.segment = json.dumps(
                    dict(record.segment), sort_keys=True, separators=(",", ":")
                )
                if row.label_time_ms is not None and row.label_time_ms - row.time_ms > HORIZON_MS:
                    counts["label_delay_over_horizon"] += 1
                    row.label = row.label_time_ms = None
            added = False
            if record.raw_score is not None and row.raw_score is None:
                row.raw_score, added = record.raw_score, True
            if record.probability is not None and row.probability is None:
                row.probability, added = record.probability, True
                if row.label is not None:
                    counts["joined"] += 1
            counts["new" if first else "updated" if added else "duplicate_prediction"] += 1
        elif row.label is not None:
            counts["duplicate" if row.label == record.label else "conflicting"] += 1
        elif NOW - record.label_time_ms > HORIZON_MS:
            counts["label_too_old"] += 1
        elif row.time_ms is not None and record.label_time_ms - row.time_ms > HORIZON_MS:
            counts["label_delay_over_horizon"] += 1
        else:
            row.label, row.label_time_ms = record.label, record.label_time_ms
            counts["joined" if row.probability is not None else "pending"] += 1
    return rows, counts


def random_stream(seed: int, n_events: int) -> list[Prediction | Label]:
    rng = random.Random(seed)
    records: list[Prediction | Label] = []
    for i in range(n_events):
        model = rng.choice(["fraud", "credit"])
        version = rng.choice(["v1", "v2"])
        time_ms = NOW - rng.randrange(40 * DAY_MS)  # some older than the horizon
        p = rng.random()
        segment = {"region": rng.choice(["eu", "us", "apac"])} if rng.random() < 0.8 else {}
        event = f"e{i}"
        shape = rng.random()
        raw_last: list[Prediction | Label] = []
        if shape < 0.2:  # raw score and probability in two messages
            messages: list[Prediction | Label] = [
                Prediction(model, event, version, time_ms, raw_score=p * 6 - 3, segment=segment),
                Prediction(model, event, version, time_ms, probability=p, segment=segment),
            ]
        elif shape < 0.3:  # the raw score last, after the probability and the label
            messages = [Prediction(model, event, version, time_ms, probability=p, segment=segment)]
            raw_last = [
                Prediction(model, event, version, time_ms, raw_score=p * 6 - 3, segment=segment)
            ]
        elif shape < 0.35:  # no raw score at all
            messages = [Prediction(model, event, version, time_ms, probability=p, segment=segment)]
        else:
            messages = [Prediction(model, event, version, time_ms, p * 6 - 3, p, segment)]
        label_time = time_ms + rng.choice([60_000, 3_600_000, 5 * DAY_MS, 31 * DAY_MS])
        label = int(rng.random() < p)
        if rng.random() < 0.85:
            labels = [Label(model, event, label, min(label_time, NOW))]
            if rng.random() < 0.1:  # a duplicate or a conflicting one
                labels.append(Label(model, event, rng.choice([label, 1 - label]), NOW - 1000))
            if rng.random() < 0.15:
                messages = labels + messages  # the label first
            else:
                messages += labels
        messages += raw_last
        if rng.random() < 0.05:
            messages.append(messages[0])  # a replayed message
        records.extend(messages)
    # Interleave events, keeping each event's own order: a stable sort on a random key
    # per record would break it, so merge by drawing the next record of a random event.
    by_event: dict[str, list[Prediction | Label]] = {}
    for record in records:
        by_event.setdefault(record.event_id, []).append(record)
    queues = list(by_event.values())
    mixed: list[Prediction | Label] = []
    while queues:
        queue = rng.choice(queues)
        mixed.append(queue.pop(0))
        if not queue:
            queues.remove(queue)
    return mixed


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_path_follows_the_rules(
    migrated_engine: Engine, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = random_stream(seed, 1500)
    taken_one_by_one: list[int] = []
    real = one_by_one.write

    def counting(connection, batch, **kwargs):  # type: ignore[no-untyped-def]
        taken_one_by_one.append(len(batch))
        return real(connection, batch, **kwargs)

    monkeypatch.setattr(one_by_one, "write", counting)
    store = EventStore(migrated_engine, segment_keys=["region"], clock_ms=lambda: NOW)
    rng = random.Random(seed)
    total = WriteResult()
    start = 0
    while start < len(records):
        size = rng.choice([1, 7, 60, 400])
        total = total + store.write_batch(records[start : start + size])
        start += size
        if rng.random() < 0.2:  # readers merge compacted rows and deltas alike
            compact_aggregates(migrated_engine, NOW, per_transaction=rng.choice([3, 2000]))
    # Both paths took records (else this test would not test the set-at-a-time one).
    assert 0 < sum(taken_one_by_one) < len(records) / 2

    expected_rows, counts = apply_rules(records)
    with migrated_engine.connect() as connection:
        stored = {
            (r.model_id, r.event_id): ModelEvent(
                r.model_version,
                r.event_time_ms,
                r.raw_score,
                r.probability,
                r.segment_json,
                r.label,
                r.label_time_ms,
            )
            for r in connection.execute(select(Event.__table__))
        }
    assert stored == expected_rows
    assert total.predictions_new == counts["new"]
    assert total.predictions_updated == counts["updated"]
    assert total.predictions_duplicate == counts["duplicate_prediction"]
    assert total.labels_joined == counts["joined"]
    assert total.labels_pending == counts["pending"]
    assert total.labels_duplicate == counts["duplicate"]
    assert total.labels_conflicting == counts["conflicting"]
    assert total.labels_dropped == Counter(
        {k: counts[k] for k in ("label_too_old", "label_delay_over_horizon") if counts[k]}
    )
    assert len(total.label_delays_s) == counts["joined"]

    # Aggregates: each series' window holds exactly its events, and its metrics are the
    # metrics core's on them.
    unscored = 0
    for model, version, region in [("fraud", "v1", "eu"), ("credit", "v2", None)]:
        segment = f"region={region}" if region else "__all__"
        members = [
            row
            for (m, _), row in expected_rows.items()
            if m == model
            and row.version == version
            and (region is None or json.loads(row.segment).get("region") == region)
        ]
        window = load_window(
            migrated_engine,
            model_id=model,
            model_version=version,
            segment=segment,
            start_ms=NOW - 41 * DAY_MS,
            end_ms=NOW + 60_000,
            now_ms=NOW + 60_000,
        )
        labelled = [r for r in members if r.label is not None and r.probability is not None]
        assert window.predictions == len(members)
        assert window.aggregate.n_scores == sum(r.raw_score is not None for r in members)
        assert window.aggregate.n_probabilities == sum(r.probability is not None for r in members)
        assert window.aggregate.n_labelled == len(labelled)
        p = np.array([r.probability for r in labelled])
        y = np.array([r.label for r in labelled])
        values = calibration_summary(window.aggregate, bootstrap_resamples=0).values
        assert values["brier_score"] == pytest.approx(core.brier_score_loss(p, y), abs=1e-9)
        assert values["ece"] == pytest.approx(core.expected_calibration_error(p, y), abs=1e-9)
        # The raw-score refit's cells: every labelled event whose raw score is known,
        # however late the raw score came.
        scored = [r for r in labelled if r.raw_score is not None]
        assert scored
        unscored += len(labelled) - len(scored)
        expected = EventAggregate.empty()
        expected.add_raw_labelled(
            np.array([r.raw_score for r in scored]),
            np.array([r.probability for r in scored]),
            np.array([r.label for r in scored]),
        )
        got = window.aggregate.raw_labelled
        assert np.array_equal(got.keys, expected.raw_labelled.keys)
        np.testing.assert_allclose(got.values, expected.raw_labelled.values, rtol=1e-12)
    assert unscored > 0  # and the others are not there


def test_the_set_at_a_time_path_takes_the_common_cases(
    migrated_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # New predictions, then labels for them; and labels first, then their predictions
    # (a consumer catching up reads both topics at once): no record needs the
    # one-by-one path.
    store = EventStore(migrated_engine, clock_ms=lambda: NOW)
    predictions = [Prediction("m", f"e{i}", "v1", NOW - 1000, 0.0, 0.5) for i in range(50)]
    labels = [Label("m", f"e{i}", i % 2, NOW) for i in range(50)]
    seen: list[int] = []
    real = one_by_one.write

    def counting(connection, batch, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(len(batch))
        return real(connection, batch, **kwargs)

    monkeypatch.setattr(one_by_one, "write", counting)
    assert store.write_batch(predictions).predictions_new == 50
    assert store.write_batch(labels).labels_joined == 50
    early = [Label("m", f"f{i}", i % 2, NOW) for i in range(50)]
    late = [Prediction("m", f"f{i}", "v1", NOW - 1000, 0.0, 0.5) for i in range(50)]
    assert store.write_batch(early).labels_pending == 50
    completed = store.write_batch(late)
    assert (completed.predictions_new, completed.labels_joined) == (50, 50)
    assert completed.label_delays_s == [1.0] * 50
    # Both records of a new event in one batch, in either order; one with a raw score
    # only, whose label waits for the probability.
    both = [
        Prediction("m", "g0", "v1", NOW - 1000, 0.0, 0.5),
        Label("m", "g0", 1, NOW),
        Label("m", "g1", 0, NOW),
        Prediction("m", "g1", "v1", NOW - 2000, 0.0, 0.5),
        Prediction("m", "g2", "v1", NOW - 1000, raw_score=0.3),
        Label("m", "g2", 1, NOW),
    ]
    together = store.write_batch(both)
    assert (together.predictions_new, together.labels_joined, together.labels_pending) == (3, 2, 2)
    assert sorted(together.label_delays_s) == [1.0, 2.0]
    assert seen == []
    window = load_window(
        migrated_engine,
        model_id="m",
        model_version="v1",
        segment="__all__",
        start_ms=NOW - DAY_MS,
        end_ms=NOW + 60_000,
        now_ms=NOW + 60_000,
    )
    assert (window.predictions, window.aggregate.n_labelled) == (103, 102)
    assert (window.aggregate.n_scores, window.aggregate.n_probabilities) == (103, 102)


def test_a_label_stamped_before_its_prediction_counts_a_zero_delay(
    migrated_engine: Engine,
) -> None:
    # Producers' clocks disagree: a label can carry an earlier time than its prediction.
    # In every arrival order its delay is 0 s, never negative; one at the same
    # millisecond is 0 s too.
    store = EventStore(migrated_engine, clock_ms=lambda: NOW)
    store.write_batch([Prediction("m", "a", "v1", NOW - 1000, 0.0, 0.5)])
    joined_later = store.write_batch([Label("m", "a", 1, NOW - 1500)])
    store.write_batch([Label("m", "b", 1, NOW - 1500)])
    label_first = store.write_batch([Prediction("m", "b", "v1", NOW - 1000, 0.0, 0.5)])
    same_batch = store.write_batch(
        [Prediction("m", "c", "v1", NOW - 1000, 0.0, 0.5), Label("m", "c", 0, NOW - 1000)]
    )
    # Raw score first, label, then the probability in a message of its own: that join
    # is made by the one-by-one path.
    store.write_batch([Prediction("m", "d", "v1", NOW - 1000, raw_score=0.3)])
    store.write_batch([Label("m", "d", 1, NOW - 1500)])
    one_by_one_join = store.write_batch([Prediction("m", "d", "v1", NOW - 1000, 0.3, 0.5)])
    results = (joined_later, label_first, same_batch, one_by_one_join)
    assert [r.label_delays_s for r in results] == [[0.0]] * 4


def _statements_sent(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A one-item list counting the statements sent to the database from now on: each
    DB-API call on SQLite (an executemany is one call, its rows run in-process); on
    PostgreSQL each statement and COPY psycopg sends, each row of an executemany one
    (it would send them one by one)."""
    sent = [0]
    if engine.dialect.name == "sqlite":

        def count(*_: object) -> None:
            sent[0] += 1

        event.listen(engine, "before_cursor_execute", count)
        return sent
    real_execute, real_executemany, real_copy = (
        psycopg.Cursor.execute,
        psycopg.Cursor.executemany,
        psycopg.Cursor.copy,
    )

    def execute(cursor, *args, **kwargs):  # type: ignore[no-untyped-def]
        sent[0] += 1
        return real_execute(cursor, *args, **kwargs)

    def executemany(cursor, query, rows, **kwargs):  # type: ignore[no-untyped-def]
        rows = list(rows)
        sent[0] += len(rows)
        return real_executemany(cursor, query, rows, **kwargs)

    def copy(cursor, *args, **kwargs):  # type: ignore[no-untyped-def]
        sent[0] += 1
        return real_copy(cursor, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "execute", execute)
    monkeypatch.setattr(psycopg.Cursor, "executemany", executemany)
    monkeypatch.setattr(psycopg.Cursor, "copy", copy)
    return sent


def _rare_batch(store: EventStore, prefix: str, n: int) -> tuple[list[Prediction | Label], int]:
    """Store what ``n`` events of each rare case need first, and return a batch of the
    records the common cases leave (and how many they are): a probability after its
    event's raw score, a second label (a duplicate and a conflicting one), and an
    event's prediction and two labels in one batch."""
    store.write_batch(
        [Prediction("m", f"{prefix}a{i}", "v1", NOW - 1000, raw_score=0.1) for i in range(n)]
        + [Prediction("m", f"{prefix}b{i}", "v1", NOW - 1000, 0.0, 0.5) for i in range(n)]
        + [Label("m", f"{prefix}b{i}", 1, NOW) for i in range(n)]
    )
    batch: list[Prediction | Label] = []
    for i in range(n):
        batch += [
            Prediction("m", f"{prefix}a{i}", "v1", NOW - 1000, probability=0.4),
            Label("m", f"{prefix}b{i}", i % 2, NOW),
            Prediction("m", f"{prefix}c{i}", "v1", NOW - 1000, 0.0, 0.5),
            Label("m", f"{prefix}c{i}", 1, NOW),
            Label("m", f"{prefix}c{i}", 0, NOW),
        ]
    return batch, len(batch)


def test_the_rare_cases_take_as_many_statements_for_many_records_as_for_few(
    migrated_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The one-by-one path applies the rules record by record in Python, but reads and
    # writes its rows set-at-a-time: its statements do not grow with the batch.
    store = EventStore(migrated_engine, clock_ms=lambda: NOW)
    taken: list[int] = []
    real = one_by_one.write

    def counting(connection, batch, **kwargs):  # type: ignore[no-untyped-def]
        taken.append(len(batch))
        return real(connection, batch, **kwargs)

    monkeypatch.setattr(one_by_one, "write", counting)
    few, few_records = _rare_batch(store, "f", 8)
    # 24 and 384 events: each split into two statements' VALUES lists on SQLite (sql.py's
    # _few_sizes), 8 and 128 keys into one.
    many, many_records = _rare_batch(store, "m", 128)
    sent = _statements_sent(migrated_engine, monkeypatch)
    taken.clear()
    store.write_batch(few)
    sent_for_few, sent[0] = sent[0], 0
    result = store.write_batch(many)
    assert taken == [few_records, many_records]  # all of them went one by one
    assert sent[0] == sent_for_few
    assert (result.predictions_new, result.predictions_updated) == (128, 128)
    assert (result.labels_joined, result.labels_duplicate, result.labels_conflicting) == (
        128,
        64,
        64 + 128,
    )

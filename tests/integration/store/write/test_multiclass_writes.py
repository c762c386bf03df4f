"""Multi-class events through the write path, against an independent model of the rules
(docs/messages.md, "Delayed labels" and "Multi-class predictions") and, for the
aggregates, against scikit-learn and event-level loops on the same events.

Streams mix multi-class and binary models, labels before and after their prediction,
duplicate and conflicting labels, labels past the horizon, labels of a class the
prediction does not name (``unknown_class``) and of the other kind
(``label_kind_mismatch``), events whose probabilities name different classes, and an
event's records in one batch or spread over several: whichever write path a record
takes, the stored events, the counts and the aggregates must be what the rules say.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pytest
from sklearn.metrics import brier_score_loss, log_loss
from sqlalchemy import Engine, select

from monitor.core.records import Label, Prediction
from monitor.metrics.multiclass_summary import multiclass_summary
from monitor.store.aggregates import known_model_classes, load_window
from monitor.store.db.tables import Event
from monitor.store.maintenance.compaction import compact_aggregates
from monitor.store.write import one_by_one
from monitor.store.write.event_store import EventStore
from monitor.store.write.result import WriteResult

DAY_MS = 86_400_000
NOW = 1_790_000_000_000
HORIZON_MS = 30 * DAY_MS
CLASSES = ("billing", "other", "sales", "tech")


@dataclass
class ModelEvent:
    """What the rules say one event's row holds."""

    version: str | None = None
    time_ms: int | None = None
    probability: float | None = None
    probabilities: dict[str, float] | None = None
    label: int | str | None = None
    label_time_ms: int | None = None


def _fits(row: ModelEvent, label: int | str) -> str | None:
    if row.probabilities is None:
        return "label_kind_mismatch" if isinstance(label, str) else None
    if not isinstance(label, str):
        return "label_kind_mismatch"
    return None if label in row.probabilities else "unknown_class"


def apply_rules(records: list[Prediction | Label]) -> tuple[dict, Counter]:  # type: ignore[type-arg]
    """The rules, one record at a time (the reference)."""
    rows: dict[tuple[str, str], ModelEvent] = {}
    counts: Counter[str] = Counter()
    for record in records:
        row = rows.setdefault((record.model_id, record.event_id), ModelEvent())
        if isinstance(record, Prediction):
            first = row.version is None
            if first:
                row.version, row.time_ms = record.model_version, record.event_time_ms
                if row.label is not None:
                    assert row.label_time_ms is not None
                    if row.label_time_ms - row.time_ms > HORIZON_MS:
                        problem: str | None = "label_delay_over_horizon"
                    else:
                        row.probabilities = (
                            None if record.probabilities is None else dict(record.probabilities)
                        )
                        problem = _fits(row, row.label)
                        row.probabilities = None
                    if problem:
                        counts[problem] += 1
                        row.label = row.label_time_ms = None
            added = False
            if record.probabilities is not None:
                if row.probabilities is None and row.probability is None:
                    row.probabilities, added = dict(record.probabilities), True
                    if row.label is not None:
                        counts["joined"] += 1
            elif record.probability is not None and row.probability is None:
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
        elif row.version is not None and _fits(row, record.label):
            counts[_fits(row, record.label)] += 1  # type: ignore[index]
        else:
            row.label, row.label_time_ms = record.label, record.label_time_ms
            has_p = row.probability is not None or row.probabilities is not None
            counts["joined" if has_p else "pending"] += 1
    return rows, counts


def _vector(rng: random.Random) -> dict[str, float]:
    named = sorted(rng.sample(CLASSES, rng.choice([2, 3, 4, 4, 4])))
    weights = [rng.random() ** 3 + 1e-3 for _ in named]
    return {name: w / sum(weights) for name, w in zip(named, weights, strict=True)}


def random_stream(seed: int, n_events: int) -> list[Prediction | Label]:
    rng = random.Random(seed)
    records: list[Prediction | Label] = []
    for i in range(n_events):
        multiclass = rng.random() < 0.8
        model = "intent" if multiclass else "fraud"
        version = rng.choice(["v1", "v2"])
        time_ms = NOW - rng.randrange(40 * DAY_MS)
        event = f"e{i}"
        if multiclass:
            vector = _vector(rng)
            messages: list[Prediction | Label] = [
                Prediction(model, event, version, time_ms, probabilities=vector)
            ]
            names, weights = zip(*vector.items(), strict=True)
            truth: int | str = rng.choices(names, weights)[0]
            if rng.random() < 0.05:
                truth = rng.choice(CLASSES)  # perhaps a class the vector does not name
            if rng.random() < 0.03:
                truth = 1  # a binary label of a multi-class event
        else:
            p = rng.random()
            messages = [Prediction(model, event, version, time_ms, probability=p)]
            truth = int(rng.random() < p) if rng.random() > 0.05 else "tech"
        label_time = time_ms + rng.choice([60_000, 3_600_000, 5 * DAY_MS, 31 * DAY_MS])
        if rng.random() < 0.85:
            labels = [Label(model, event, truth, min(label_time, NOW))]
            if rng.random() < 0.1:
                labels.append(Label(model, event, rng.choice([truth, "other"]), NOW - 1000))
            messages = labels + messages if rng.random() < 0.2 else messages + labels
        if rng.random() < 0.05:
            messages.append(messages[0])  # a replayed message
        records.extend(messages)
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


def _classwise_ece_loop(p: np.ndarray, y: np.ndarray, n_bins: int = 10) -> float:
    """Mean over classes of the one-vs-rest ECE, by a loop over events."""
    eces = []
    for k in range(p.shape[1]):
        totals = np.zeros((n_bins, 3))
        for pk, yk in zip(p[:, k], y == k, strict=True):
            totals[min(int(np.floor(pk * n_bins)), n_bins - 1)] += (1.0, pk, float(yk))
        eces.append(float(np.abs(totals[:, 1] - totals[:, 2]).sum() / len(y)))
    return float(np.mean(eces))


@pytest.mark.parametrize("seed", [1, 2])
def test_every_path_follows_the_rules(
    migrated_engine: Engine, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = random_stream(seed, 1200)
    taken_one_by_one: list[int] = []
    real = one_by_one.write

    def counting(connection, batch, **kwargs):  # type: ignore[no-untyped-def]
        taken_one_by_one.append(len(batch))
        return real(connection, batch, **kwargs)

    monkeypatch.setattr(one_by_one, "write", counting)
    store = EventStore(migrated_engine, clock_ms=lambda: NOW)
    rng = random.Random(seed)
    total = WriteResult()
    start = 0
    while start < len(records):
        size = rng.choice([1, 7, 60, 400])
        total = total + store.write_batch(records[start : start + size])
        start += size
        if rng.random() < 0.2:
            compact_aggregates(migrated_engine, NOW, per_transaction=rng.choice([3, 2000]))
    assert 0 < sum(taken_one_by_one) < len(records) / 2

    expected, counts = apply_rules(records)
    with migrated_engine.connect() as connection:
        stored = {
            (r.model_id, r.event_id): ModelEvent(
                r.model_version,
                r.event_time_ms,
                r.probability,
                None if r.probabilities_json is None else json.loads(r.probabilities_json),
                r.label if r.label_class is None else r.label_class,
                r.label_time_ms,
            )
            for r in connection.execute(select(Event.__table__))
        }
    assert stored == expected
    assert total.predictions_new == counts["new"]
    assert total.predictions_updated == counts["updated"]
    assert total.predictions_duplicate == counts["duplicate_prediction"]
    assert total.labels_joined == counts["joined"]
    assert total.labels_pending == counts["pending"]
    assert total.labels_duplicate == counts["duplicate"]
    assert total.labels_conflicting == counts["conflicting"]
    dropped = ("label_too_old", "label_delay_over_horizon", "label_kind_mismatch", "unknown_class")
    assert total.labels_dropped == Counter({k: counts[k] for k in dropped if counts[k]})
    assert counts["unknown_class"] > 0 and counts["label_kind_mismatch"] > 0
    # One label delay per join, whichever path joined it: label time - prediction time,
    # in seconds, 0 for a label stamped before its prediction.
    joined = [
        row
        for row in expected.values()
        if row.label is not None and (row.probability is not None or row.probabilities)
    ]
    delays = [max(row.label_time_ms - row.time_ms, 0) / 1000 for row in joined]  # type: ignore[operator]
    assert sorted(total.label_delays_s) == pytest.approx(sorted(delays), abs=1e-9)
    assert len(set(delays)) > 10  # varied delays: a scale or offset error shows

    named = {c for (m, _), row in expected.items() if row.probabilities for c in row.probabilities}
    assert known_model_classes(migrated_engine) == [("intent", c) for c in sorted(named)]
    for version in ("v1", "v2"):
        members = [
            row for (m, _), row in expected.items() if m == "intent" and row.version == version
        ]
        window = load_window(
            migrated_engine,
            model_id="intent",
            model_version=version,
            segment="__all__",
            start_ms=NOW - 41 * DAY_MS,
            end_ms=NOW + 60_000,
            now_ms=NOW + 60_000,
        )
        aggregate = window.multiclass
        assert aggregate is not None and aggregate.classes == CLASSES
        assert window.predictions == len(members) == aggregate.n_predictions
        labelled = [r for r in members if r.label is not None and r.probabilities is not None]
        p = np.array([[r.probabilities.get(c, 0.0) for c in CLASSES] for r in labelled])  # type: ignore[union-attr]
        y = np.array([CLASSES.index(r.label) for r in labelled])  # type: ignore[arg-type]
        assert aggregate.n_labelled == len(labelled)
        values = multiclass_summary(aggregate).values
        assert values["log_loss"] == pytest.approx(log_loss(y, p, labels=range(4)), abs=1e-9)
        assert values["accuracy_score"] == pytest.approx(np.mean(p.argmax(axis=1) == y))
        assert values["classwise_ece"] == pytest.approx(_classwise_ece_loop(p, y), abs=1e-9)
        per_class = multiclass_summary(aggregate).classes
        for k in range(4):
            assert per_class[k].values["brier_score"] == pytest.approx(
                brier_score_loss(y == k, p[:, k]), abs=1e-9
            )
        # label delays count for multi-class joins as for binary ones
        assert window.aggregate.n_label_delays == len(labelled)


def test_the_set_at_a_time_path_takes_the_multiclass_common_cases(
    migrated_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = EventStore(migrated_engine, clock_ms=lambda: NOW)
    vector = {"cat": 0.7, "dog": 0.2, "fox": 0.1}
    seen: list[int] = []
    real = one_by_one.write

    def counting(connection, batch, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(len(batch))
        return real(connection, batch, **kwargs)

    monkeypatch.setattr(one_by_one, "write", counting)
    predictions = [
        Prediction("m", f"e{i}", "v1", NOW - 1000, probabilities=vector) for i in range(30)
    ]
    assert store.write_batch(predictions).predictions_new == 30
    labels = [Label("m", f"e{i}", ["cat", "dog", "eel"][i % 3], NOW) for i in range(30)]
    joined = store.write_batch(labels)
    assert (joined.labels_joined, joined.labels_dropped["unknown_class"]) == (20, 10)
    assert joined.label_delays_s == [1.0] * 20
    early = [Label("m", f"f{i}", ["cat", "eel"][i % 2], NOW) for i in range(20)]
    assert store.write_batch(early).labels_pending == 20
    late = [Prediction("m", f"f{i}", "v1", NOW - 2000, probabilities=vector) for i in range(20)]
    completed = store.write_batch(late)
    assert (completed.predictions_new, completed.labels_joined) == (20, 10)
    assert completed.labels_dropped["unknown_class"] == 10
    assert completed.label_delays_s == [2.0] * 10
    # A label stamped before its prediction: a delay of 0, never negative.
    store.write_batch([Prediction("n", "h0", "v1", NOW - 1000, probabilities=vector)])
    assert store.write_batch([Label("n", "h0", "cat", NOW - 5000)]).label_delays_s == [0.0]
    both = [
        Prediction("m", "g0", "v1", NOW - 1000, probabilities=vector),
        Label("m", "g0", "fox", NOW),
        Label("m", "g1", "dog", NOW),
        Prediction("m", "g1", "v1", NOW - 3000, probabilities=vector),
    ]
    together = store.write_batch(both)
    assert (together.predictions_new, together.labels_joined, together.labels_pending) == (2, 2, 1)
    assert seen == []
    # A class label that was dropped is not kept: a later one of a named class joins.
    again = store.write_batch([Label("m", "e2", "fox", NOW)])
    assert again.labels_joined == 1
    window = load_window(
        migrated_engine,
        model_id="m",
        model_version="v1",
        segment="__all__",
        start_ms=NOW - DAY_MS,
        end_ms=NOW + 60_000,
        now_ms=NOW + 60_000,
    )
    assert window.multiclass is not None
    assert (window.multiclass.n_predictions, window.multiclass.n_labelled) == (52, 33)

"""Repeated rows merged by the store's rules, checked against a plain event-level loop
of those rules (``store/write/one_by_one.py`` says them), across pieces of a file."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from monitor.offline.accumulate import Accumulator
from monitor.offline.duplicates import KeyLog, key_hashes, merge_repeats, text_hashes
from monitor.offline.events import NO_LABEL, NO_TIME, Events
from monitor.offline.pipeline import Targets, add_merging_repeats

HORIZON = 10_000


def events(rows: list[tuple]) -> Events:
    """(event_id, version, time, raw, p, label, label_time) per row, model "m"."""
    n = len(rows)
    column = list(zip(*rows, strict=True))
    return Events(
        rows=np.arange(1, n + 1),
        event_id=pa.array(column[0]),
        model_id=pa.array(["m"] * n).dictionary_encode(),
        model_version=pa.array(column[1]),
        time_ms=np.array(column[2], dtype=np.int64),
        raw_score=np.array(column[3], dtype=float),
        probability=np.array(column[4], dtype=float),
        label=np.array(column[5], dtype=np.int8),
        label_time_ms=np.array(column[6], dtype=np.int64),
        segments={},
    )


def store_rules(rows: list[tuple]) -> dict[str, tuple]:
    """What the store keeps of each event, row by row in file order."""
    kept: dict[str, list] = {}
    for event_id, version, time, raw, p, label, label_time in rows:
        row = kept.setdefault(event_id, [version, time, np.nan, np.nan, NO_LABEL, NO_TIME])
        if np.isnan(row[2]):
            row[2] = raw
        if np.isnan(row[3]):
            row[3] = p
        stamp = time if label_time == NO_TIME else label_time
        if label != NO_LABEL and row[4] == NO_LABEL and stamp - row[1] <= HORIZON:
            row[4], row[5] = label, label_time
    return {k: tuple(v) for k, v in kept.items()}


def random_rows(seed: int, n: int = 400) -> list[tuple]:
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        event = f"e{rng.integers(0, n // 3)}"
        time = int(rng.integers(0, 50_000))
        labelled = rng.uniform() < 0.6
        rows.append(
            (
                event,
                str(rng.choice(["v1", "v2"])),
                time,
                float(rng.normal()) if rng.uniform() < 0.6 else np.nan,
                float(rng.uniform()) if rng.uniform() < 0.6 else np.nan,
                int(rng.integers(0, 2)) if labelled else NO_LABEL,
                time + int(rng.integers(-100, 2 * HORIZON)) if rng.uniform() < 0.7 else NO_TIME,
            )
        )
    return rows


@pytest.mark.parametrize("seed", range(5))
def test_merged_rows_are_what_the_store_keeps(seed: int) -> None:
    rows = random_rows(seed)
    merged = merge_repeats(events(rows), HORIZON)
    got = {
        event_id: (
            merged.model_version[i].as_py(),
            int(merged.time_ms[i]),
            merged.raw_score[i],
            merged.probability[i],
            int(merged.label[i]),
            int(merged.label_time_ms[i]),
        )
        for i, event_id in enumerate(merged.event_id.to_pylist())
    }
    expected = store_rules(rows)
    assert got.keys() == expected.keys()
    for event_id, values in expected.items():
        np.testing.assert_equal(got[event_id], values, err_msg=event_id)


def test_pieces_of_a_file_give_what_the_merged_rows_give() -> None:
    rows = random_rows(9, n=3000)
    whole = events(rows)

    def pieces(again: bool):
        for start in range(0, len(rows), 250):  # repeats in other pieces
            yield whole.take(np.arange(start, min(start + 250, len(rows))))

    streamed = Accumulator((), label_horizon_ms=HORIZON)
    repeats = add_merging_repeats(pieces, Targets(streamed))
    at_once = Accumulator((), label_horizon_ms=HORIZON)
    at_once.add(merge_repeats(whole, HORIZON))
    assert repeats == len(rows) - len(store_rules(rows))
    assert streamed.series.keys() == at_once.series.keys()
    for key, state in at_once.series.items():
        mine = streamed.series[key]
        assert mine.predictions == state.predictions
        assert mine.aggregate.n_labelled == state.aggregate.n_labelled
        np.testing.assert_allclose(
            mine.aggregate.labelled.values.sum(axis=0), state.aggregate.labelled.values.sum(axis=0)
        )


def test_hashes_depend_on_the_text_only() -> None:
    texts = ["abc", "", "x", "abc", "a much longer identifier", "x", "é"]
    plain = pa.array(texts)
    hashes = text_hashes(plain)
    assert hashes[0] == hashes[3] and hashes[2] == hashes[5]
    assert len(set(hashes.tolist())) == 5
    np.testing.assert_array_equal(text_hashes(plain.dictionary_encode()), hashes)
    np.testing.assert_array_equal(text_hashes(plain.slice(2)), hashes[2:])
    np.testing.assert_array_equal(
        text_hashes(pa.array(["abc", "abd"])),
        text_hashes(pa.array(["abc", "abd"], pa.large_string())),
    )
    # The same text gives the same hash whatever the other strings of the array.
    assert text_hashes(pa.array(["abc", "abd"]))[0] == hashes[0]


def test_no_repeats_is_one_reading() -> None:
    rows = [(f"e{i}", "v1", i, 0.1, 0.5, 1, NO_TIME) for i in range(100)]
    log = KeyLog()
    log.add(events(rows))
    assert log.repeated().size == 0
    calls = []

    def pieces(again: bool):
        calls.append(again)
        yield events(rows)

    assert add_merging_repeats(pieces, Targets(Accumulator(()))) == 0
    assert calls == [False]
    assert key_hashes(events(rows)).size == 100

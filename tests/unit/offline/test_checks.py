"""The column checks of a file accept exactly what the message validator accepts, row
for row, with the same values; what they flag gets the validator's reason."""

from __future__ import annotations

import math
from typing import Any

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.ingest.validation import InvalidMessage, label_from, prediction_from
from monitor.offline.checks import check_chunk
from monitor.offline.events import NO_LABEL
from monitor.offline.read import Chunk

T = 1_790_000_000_000
#: Per column: values the validator accepts, and values of every kind it refuses.
GOOD: dict[str, st.SearchStrategy[Any]] = {
    "event_id": st.one_of(st.text(alphabet="ab1", min_size=1, max_size=3), st.just("__all__")),
    "model_id": st.just("m"),
    "model_version": st.sampled_from(["v1", "v2"]),
    "timestamp": st.integers(T - 10, T + 10),
    "raw_score": st.one_of(st.none(), st.floats(-50, 50)),
    "probability": st.one_of(st.none(), st.floats(0, 1)),
    "label": st.sampled_from([None, 0.0, 1.0, math.nan]),
    "label_timestamp": st.one_of(st.none(), st.integers(T, T + 1000)),
    "region": st.sampled_from([None, "eu", "us"]),
    "calibrator_version": st.sampled_from([None, None, "2"]),
}
BAD: dict[str, st.SearchStrategy[Any]] = {
    "event_id": st.sampled_from([None, "", "x" * 257, "a\x00b"]),
    "model_id": st.sampled_from([None, "", "__all__"]),
    "model_version": st.sampled_from([None, "a\x00", "__other__"]),
    "timestamp": st.sampled_from([None, 1_790_000_000, 5_000_000_000_000]),
    "raw_score": st.sampled_from([math.nan, math.inf, -math.inf]),
    "probability": st.one_of(
        st.sampled_from([math.nan, math.inf, -0.1, 1.1]), st.floats(1.0, exclude_min=True)
    ),
    "label": st.sampled_from([2.0, 0.5, -1.0]),
    "label_timestamp": st.sampled_from([1_790_000_000, 5_000_000_000_000]),
    "region": st.sampled_from(["", "y" * 129, "a\x00", "__all__", "__other__"]),
    "calibrator_version": st.sampled_from(["", "c" * 65]),
}


@st.composite
def rows(draw: st.DrawFn) -> dict[str, Any]:
    """A row with up to two bad fields (mostly one or none: each then decides)."""
    bad = draw(st.sets(st.sampled_from(sorted(GOOD)), max_size=2))
    return {name: draw(BAD[name] if name in bad else GOOD[name]) for name in GOOD}


TYPES = pa.schema(
    [
        ("event_id", pa.string()),
        ("model_id", pa.string()),
        ("model_version", pa.string()),
        ("timestamp", pa.int64()),
        ("raw_score", pa.float64()),
        ("probability", pa.float64()),
        ("label", pa.float64()),
        ("label_timestamp", pa.int64()),
        ("region", pa.string()),
        ("calibrator_version", pa.string()),
    ]
)


def oracle(row: dict[str, Any]) -> tuple[str | None, tuple[Any, ...] | None]:
    """The validator on the row as two messages: (first reason, kept event)."""
    message = {k: row[k] for k in ("event_id", "model_id", "model_version", "timestamp")}
    message |= {"raw_score": row["raw_score"], "probability": row["probability"]}
    message["calibrator_version"] = row["calibrator_version"]
    message["segment"] = None if row["region"] is None else {"region": row["region"]}
    try:
        p = prediction_from(message)
    except InvalidMessage as problem:
        return problem.reason, None
    label = NO_LABEL
    reason = None
    if row["label"] is not None and not math.isnan(row["label"]):
        try:
            label = label_from(
                {
                    "event_id": row["event_id"],
                    "model_id": row["model_id"],
                    "label": row["label"],
                    "timestamp": row["label_timestamp"] or row["timestamp"],
                }
            ).label
        except InvalidMessage as problem:
            reason = problem.reason
    kept = (p.event_id, p.model_version, p.event_time_ms, p.raw_score, p.probability, label)
    return reason, (*kept, p.segment.get("region"))


@settings(max_examples=300, deadline=None)
@given(st.lists(rows(), min_size=1, max_size=30))
def test_column_checks_agree_with_the_message_validator(batch: list[dict[str, Any]]) -> None:
    table = pa.Table.from_pylist(batch, schema=TYPES)
    events, rejects = check_chunk(Chunk(1, table=table), ("region",), source="t")
    expected = [oracle(row) for row in batch]
    assert {r.row: r.reason for r in rejects} == {
        i + 1: reason for i, (reason, _) in enumerate(expected) if reason is not None
    }
    kept = [
        (
            events.event_id[i].as_py(),
            events.model_version[i].as_py(),
            int(events.time_ms[i]),
            None if math.isnan(events.raw_score[i]) else float(events.raw_score[i]),
            None if math.isnan(events.probability[i]) else float(events.probability[i]),
            int(events.label[i]),
            events.segments["region"][i].as_py(),
        )
        for i in range(len(events))
    ]
    assert kept == [event for _, event in expected if event is not None]
    assert list(events.rows) == [i + 1 for i, (_, e) in enumerate(expected) if e is not None]

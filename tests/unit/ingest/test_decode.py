"""The batch decoder against the validator: for every message, the same record or the
same reason and detail (the validator states the rules; the decoder only goes faster
on the common shape, and must not go there with anything else)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.ingest import decode
from monitor.ingest.decode import decode_batch, field_names
from monitor.ingest.validation import MAX_TIME_MS, MIN_TIME_MS, InvalidMessage, parse_message
from monitor.settings import MulticlassSettings
from tests.unit.ingest.test_validation import CONFIGURED, INTENT, INVALID, LABEL, PREDICTION, VALID

SCHEMA = json.loads(
    (Path(__file__).parents[3] / "config" / "message.schema.json").read_text(encoding="utf-8")
)
T = 1_790_000_000_000


NO_CLASSES = MulticlassSettings()


def validator(
    value: bytes | None, max_bytes: int = 64 * 1024, multiclass: MulticlassSettings = NO_CLASSES
) -> Any:
    """What ``parse_message`` returns, or (reason, detail) of what it raises."""
    try:
        return parse_message(value, max_bytes=max_bytes, multiclass=multiclass)
    except InvalidMessage as problem:
        return (problem.reason, problem.detail)


def decoded(
    values: list[bytes | None],
    max_bytes: int = 64 * 1024,
    multiclass: MulticlassSettings = NO_CLASSES,
) -> list[Any]:
    return [
        (r.reason, r.detail) if isinstance(r, InvalidMessage) else r
        for r in decode_batch(values, max_bytes=max_bytes, multiclass=multiclass)
    ]


def test_every_validation_case_decodes_as_the_validator_reads_it() -> None:
    values = [orjson.dumps(m) for m in VALID.values()]
    values += [orjson.dumps(m) for m, _ in INVALID.values()]
    values += [None, b"", b"[1]", b"{", b'{"a": NaN}', b"\xff", b"\xef\xbb\xbf{}", b"x" * 70_000]
    # Every field the fast path checks for NUL itself, one at a time.
    values += [
        orjson.dumps({**PREDICTION, field: "v\x00"}) for field in ("model_id", "model_version")
    ]
    values += [orjson.dumps({**LABEL, field: "v\x00"}) for field in ("model_id", "event_id")]
    assert decoded(values) == [validator(v) for v in values]


def test_a_model_with_configured_classes_decodes_as_the_validator_reads_it() -> None:
    # Its binary-shaped messages are kind mismatches: the fast path must not take them.
    messages = [INTENT, {**PREDICTION, "model_id": "intent"}, {**LABEL, "model_id": "intent"}]
    messages += [{**LABEL, "model_id": "intent", "label": "tech"}, PREDICTION, LABEL]
    values = [orjson.dumps(m) for m in messages]
    assert decoded(values, multiclass=CONFIGURED) == [
        validator(v, multiclass=CONFIGURED) for v in values
    ]
    assert decoded(values[1:2], multiclass=CONFIGURED)[0][0] == "kind_mismatch"


def test_the_common_shape_never_reaches_the_validator(monkeypatch: pytest.MonkeyPatch) -> None:
    # Else the test above would pass with every message sent the slow way.
    def refuse(*_: Any, **__: Any) -> None:
        raise AssertionError("the common shape went to the validator")

    monkeypatch.setattr(decode, "parse_message", refuse)
    common = [
        PREDICTION,
        {**PREDICTION, "raw_score": -1.5, "segment": {"region": "eu"}, "extra": [1, {"a": 2}]},
        {**PREDICTION, "probability": None, "raw_score": 2.0, "type": "prediction"},
        {**PREDICTION, "probability": 1, "calibrator_version": None},  # an integer score
        LABEL,
        {**LABEL, "label": 0, "type": "label"},
        {**PREDICTION, "type": "prediction", "label": 1},
        {**PREDICTION, "event_id": 12345, "segment": {"k" * 64: "v" * 128}},
        {**LABEL, "event_id": -(2**63)},
    ]
    records = decode_batch([orjson.dumps(m) for m in common], max_bytes=64 * 1024)
    assert records == [parse_message(orjson.dumps(m)) for m in common]


def test_a_message_over_the_size_limit_is_oversized() -> None:
    value = orjson.dumps(PREDICTION)
    assert decoded([value], max_bytes=len(value) - 1) == [validator(value, len(value) - 1)]
    assert decoded([value], max_bytes=len(value) - 1)[0][0] == "oversized"


def test_the_decoder_reads_every_field_the_schema_names() -> None:
    # A field the validator learns (and the schema documents) must be read by the
    # decoder, or make it decline the message: unknown to it, it would be ignored.
    named = set(SCHEMA["properties"])
    for kind in ("prediction", "label"):
        named |= set(SCHEMA["$defs"][kind]["properties"])
    assert field_names() == named


FIELDS = ["type", "model_id", "event_id", "model_version", "calibrator_version", "timestamp"]
FIELDS += ["raw_score", "probability", "segment", "label", "probabilities"]
TEXT = st.sampled_from(
    ["m", "e1", "v1", "", "__all__", "__other__", "a\x00", "😀" * 256, "x" * 257]
)
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    TEXT,
    st.text(max_size=5),
    st.sampled_from(["prediction", "label", "score", "2026-01-01T00:00:00Z", "1.5"]),
    st.integers(min_value=-2, max_value=2),
    st.integers(min_value=MIN_TIME_MS - 1, max_value=MAX_TIME_MS + 1),
    st.sampled_from([T, 2**63, 2**64 + 1, -(2**70), 10**400]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, -0.0, 1.0, 0.5, 1.0000001, float(T), T + 0.5, 1e308]),
    st.dictionaries(TEXT | st.sampled_from(["region", "a=b"]), TEXT | st.integers(), max_size=3),
    st.lists(st.integers(), max_size=2),
    st.sampled_from([{"tech": 0.5, "billing": 0.3, "other": 0.2}, [0.5, 0.3, 0.2], "tech"]),
)
BASES = st.sampled_from([PREDICTION, LABEL, INTENT, {}])


@st.composite
def messages(draw: st.DrawFn) -> bytes:
    """A common message with some fields replaced, dropped or repeated."""
    message = dict(draw(BASES))
    for field in draw(st.lists(st.sampled_from(FIELDS), max_size=4)):
        if draw(st.booleans()):
            message.pop(field, None)
        else:
            message[field] = draw(VALUES)
    text = json.dumps(message, ensure_ascii=draw(st.booleans())).encode()  # big ints too
    if draw(st.integers(0, 9)) == 0 and len(text) > 2:  # a key twice: the last one counts
        field = draw(st.sampled_from(FIELDS))
        text = (
            text[:-1] + b', "' + field.encode() + b'": ' + json.dumps(draw(VALUES)).encode() + b"}"
        )
    return text


@settings(max_examples=1000, deadline=None)
@given(st.lists(messages(), min_size=1, max_size=5), st.sampled_from([NO_CLASSES, CONFIGURED]))
def test_any_message_decodes_as_the_validator_reads_it(
    values: list[bytes], multiclass: MulticlassSettings
) -> None:
    expected = [validator(v, multiclass=multiclass) for v in values]
    assert decoded(list(values), multiclass=multiclass) == expected

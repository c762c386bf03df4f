"""Decode a poll batch: each message of the common shape by one typed msgspec call,
every other one by the validator, which states the rules (``validation.py``).

The common shape is what producers send nearly always: string ids, an epoch-ms integer
timestamp, float scores, a segment of strings, a 0/1 label. msgspec decodes such a
message straight into a struct (no dict, no per-field Python lookups), several times
faster than ``orjson.loads`` plus the dict checks (bench/bench_ingest.py, "decode").
The struct's typed fields then go through the same fast accept as ``parse_message``
(:func:`~monitor.ingest.validation.plain_prediction`, ``plain_label``). Whatever the
struct or the fast accept declines, valid or not (RFC 3339 times, integer ids, a
calibrator version, a bad value), is handed to ``parse_message``, so every accepted
message and every dead-letter reason and detail are exactly the validator's.

``MessageFields`` declares every field the message schema names, so that a field the
validator learns is either read here too or declines the fast path; a test keeps the
two lists equal (tests/unit/ingest/test_decode.py).
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec
from msgspec import UNSET, UnsetType

from monitor.core.records import Label, Prediction
from monitor.ingest.validation import (
    DEFAULT_MULTICLASS,
    InvalidMessage,
    parse_message,
    plain_label,
    plain_prediction,
)
from monitor.settings import MulticlassSettings


class MessageFields(msgspec.Struct):
    """Every field of either message, typed as the common shape has it; a value of
    another type fails the decode, and the validator takes the message."""

    type: str | None = None
    model_id: str | None = None
    event_id: str | None = None
    model_version: str | None = None
    #: Only null passes: a message with a calibrator version goes to the validator.
    calibrator_version: None = None
    #: Likewise: a multi-class prediction goes to the validator.
    probabilities: None = None
    timestamp: int | None = None
    raw_score: float | None = None
    probability: float | None = None
    segment: dict[str, str] | None = None
    #: UNSET when absent: a null ``label`` (a label missing its value) fails the decode.
    label: int | UnsetType = UNSET


_decode = msgspec.json.Decoder(MessageFields).decode
#: What a message may fail the typed decode with (bad UTF-8 is a ValueError).
_DECLINED = (msgspec.MsgspecError, ValueError)


def decode_batch(
    values: Iterable[bytes | None],
    *,
    max_bytes: int,
    multiclass: MulticlassSettings = DEFAULT_MULTICLASS,
) -> list[Prediction | Label | InvalidMessage]:
    """Each value's record, or the :class:`InvalidMessage` the validator raises for it,
    in order: what ``parse_message(value, max_bytes=..., multiclass=...)`` returns or
    raises."""
    decoded: list[Prediction | Label | InvalidMessage] = []
    add = decoded.append
    for value in values:
        if value is not None and len(value) <= max_bytes:
            try:
                m = _decode(value)
            except _DECLINED:
                pass
            else:
                kind = m.type
                if kind is None:
                    kind = "prediction" if m.label is UNSET else "label"
                record: Prediction | Label | None
                if kind == "prediction":
                    record = plain_prediction(
                        m.model_id,
                        m.event_id,
                        m.model_version,
                        m.timestamp,
                        m.raw_score,
                        m.probability,
                        m.segment,
                        m.calibrator_version,
                        m.probabilities,
                        multiclass,
                    )
                elif kind == "label":
                    record = plain_label(m.model_id, m.event_id, m.label, m.timestamp, multiclass)
                else:
                    record = None
                if record is not None:
                    add(record)
                    continue
        add(_validated(value, max_bytes, multiclass))
    return decoded


def _validated(
    value: bytes | None, max_bytes: int, multiclass: MulticlassSettings
) -> Prediction | Label | InvalidMessage:
    try:
        return parse_message(value, max_bytes=max_bytes, multiclass=multiclass)
    except InvalidMessage as problem:
        return problem


def field_names() -> frozenset[str]:
    """The fields the decoder reads (tests compare them with the schema's)."""
    return frozenset(MessageFields.__struct_fields__)

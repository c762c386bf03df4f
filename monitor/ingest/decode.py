"""Decode a poll batch: each message of the common shape by one typed msgspec call,
every other one by the validator, which states the rules (``validation.py``).

The common shape is what producers send nearly always: string (or integer) ids, an
epoch-ms integer timestamp, float scores, a segment of strings, a 0/1 label. msgspec
decodes such a message straight into a struct and checks its types, lengths and
ranges in C (no dict, no per-field Python lookups); what is left in Python is the
reserved values, NUL, '=' in a segment key and which fields a kind needs. The limits are
the validator's own constants. Whatever this declines, valid or not (RFC 3339 times,
fractional timestamps, a calibrator version, NUL, anything out of range or mistyped, a
multi-class model's message), is handed to ``parse_message``: every accepted message,
and every dead-letter reason and detail, is exactly the validator's.
tests/unit/ingest/test_decode.py holds the two equal on every validation case and on
generated messages, and keeps ``MessageFields`` equal to the fields the message schema
names, so that a field the validator learns is either read here too or makes the
decoder decline.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Annotated

import msgspec
from msgspec import UNSET, Meta, UnsetType

from monitor.core.records import NO_SEGMENT, Label, Prediction
from monitor.ingest.validation import (
    DEFAULT_MULTICLASS,
    MAX_ID_LENGTH,
    MAX_SEGMENT_KEY_LENGTH,
    MAX_SEGMENT_KEYS,
    MAX_SEGMENT_VALUE_LENGTH,
    MAX_TIME_MS,
    MIN_TIME_MS,
    RESERVED_VALUES,
    InvalidMessage,
    parse_message,
)
from monitor.settings import MulticlassSettings

Id = Annotated[str, Meta(min_length=1, max_length=MAX_ID_LENGTH)]
#: An integer id joins as its decimal text. Beyond 64 bits orjson (so the validator) reads
#: it as a float, a bad id; msgspec bounds only go to int64, the rest goes the slow way.
IntegerId = Annotated[int, Meta(ge=-(2**63), le=2**63 - 1)]
SegmentKey = Annotated[str, Meta(min_length=1, max_length=MAX_SEGMENT_KEY_LENGTH)]
SegmentValue = Annotated[str, Meta(min_length=1, max_length=MAX_SEGMENT_VALUE_LENGTH)]


class MessageFields(msgspec.Struct):
    """Every field of either message, typed and bounded as the common shape has it: a
    value of another type or out of bounds fails the decode, and the validator takes
    the message."""

    type: str | None = None
    model_id: Id | None = None
    event_id: Id | IntegerId | None = None
    model_version: Id | None = None
    #: Only null passes: a message with a calibrator version goes to the validator.
    calibrator_version: None = None
    #: Likewise: a multi-class prediction goes to the validator.
    probabilities: None = None
    timestamp: Annotated[int, Meta(ge=MIN_TIME_MS, le=MAX_TIME_MS)] | None = None
    raw_score: float | None = None  # JSON has no NaN, and msgspec refuses 1e400
    probability: Annotated[float, Meta(ge=0.0, le=1.0)] | None = None
    segment: Annotated[dict[SegmentKey, SegmentValue], Meta(max_length=MAX_SEGMENT_KEYS)] | None = (
        None
    )
    #: UNSET when absent: a null ``label`` (a label missing its value) fails the decode.
    label: Annotated[int, Meta(ge=0, le=1)] | UnsetType = UNSET


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
    raises. The fast path takes binary models only (not one of ``multiclass.classes``).

    One loop with the checks inline: it runs for every message ingested.
    """
    decoded: list[Prediction | Label | InvalidMessage] = []
    add = decoded.append
    reserved = RESERVED_VALUES
    multiclass_models = multiclass.classes
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
                event_id = str(m.event_id) if isinstance(m.event_id, int) else m.event_id
                model_id, time_ms = m.model_id, m.timestamp
                if (
                    model_id is not None
                    and event_id is not None
                    and time_ms is not None
                    and model_id not in reserved
                    and model_id not in multiclass_models
                    and "\x00" not in model_id
                    and "\x00" not in event_id
                ):
                    if kind == "prediction":
                        version, segment = m.model_version, m.segment
                        raw_score, probability = m.raw_score, m.probability
                        if (
                            version is not None
                            and version not in reserved
                            and "\x00" not in version
                            and (raw_score is not None or probability is not None)
                            and (segment is None or _plain_segment(segment))
                        ):
                            add(
                                Prediction(
                                    model_id,
                                    event_id,
                                    version,
                                    time_ms,
                                    raw_score,
                                    probability,
                                    segment or NO_SEGMENT,
                                )
                            )
                            continue
                    elif kind == "label" and m.label is not UNSET:
                        add(Label(model_id, event_id, m.label, time_ms))
                        continue
        add(_validated(value, max_bytes, multiclass))
    return decoded


def _plain_segment(segment: Mapping[str, str]) -> bool:
    """What the decode's types and bounds leave of the segment rules."""
    for key, item in segment.items():  # a loop: any() over a generator costs 3x more
        if "=" in key or "\x00" in key or "\x00" in item or item in RESERVED_VALUES:
            return False
    return True


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

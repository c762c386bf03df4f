"""Parse and validate one Kafka message into a prediction or a label.

Every problem raises :class:`InvalidMessage` with a reason code (the
``calmon_ingest_rejected_total{reason}`` label and the dead-letter header) and a
detail that names the field. The schema is documented in docs/messages.md
and shipped as ``config/message.schema.json``.

>>> parse_message(b'{"event_id": "e1", "model_id": "m", "label": 1, "timestamp": 1700000000000}')
Label(model_id='m', event_id='e1', label=1, label_time_ms=1700000000000)
>>> parse_message(b'{"event_id": "e1", "model_id": "m", "model_version": "v1",'
...               b' "timestamp": "2026-01-01T00:00:00Z", "probability": 1.5}')
Traceback (most recent call last):
...
monitor.ingest.validation.InvalidMessage: bad_probability: probability must be in [0, 1], got 1.5
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any, TypeGuard

import orjson

from monitor.core.records import NO_SEGMENT, Label, Prediction
from monitor.core.series import ALL, CALIBRATOR_SEPARATOR, OTHER, with_calibrator
from monitor.core.times import epoch_ms

MAX_ID_LENGTH = 256
MAX_CALIBRATOR_VERSION_LENGTH = 64
MAX_SEGMENT_KEYS = 16
MAX_SEGMENT_KEY_LENGTH = 64
MAX_SEGMENT_VALUE_LENGTH = 128
#: Values calmon gives a meaning of its own (every version, every event, the merged tail
#: of a segment key): a model id, version or segment value sent as one would land in, or
#: be overwritten by, the synthetic series of that name.
RESERVED_VALUES = frozenset({ALL, OTHER})
#: Timestamps outside 2000-01-01 .. 2100-01-01 are rejected as typos (seconds for ms...).
MIN_TIME_MS = 946_684_800_000
MAX_TIME_MS = 4_102_444_800_000

REASONS = (
    "oversized",
    "unparseable_json",
    "not_an_object",
    "unknown_type",
    "missing_field",
    "bad_id",
    "bad_timestamp",
    "bad_probability",
    "bad_raw_score",
    "no_score",
    "bad_label",
    "bad_segment",
    "reserved_value",
    # Not a validation outcome: valid, but the store refused it (worker.py).
    "store_rejected",
)


class InvalidMessage(ValueError):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def parse_message(payload: bytes | None, *, max_bytes: int = 64 * 1024) -> Prediction | Label:
    if payload is None:
        raise InvalidMessage("unparseable_json", "empty message (tombstone)")
    if len(payload) > max_bytes:
        raise InvalidMessage("oversized", f"{len(payload)} bytes > limit of {max_bytes}")
    try:
        message = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise InvalidMessage("unparseable_json", str(exc)) from None
    if not isinstance(message, dict):
        raise InvalidMessage(
            "not_an_object", f"expected a JSON object, got {type(message).__name__}"
        )
    kind = message.get("type")
    if kind is None:
        kind = "label" if "label" in message else "prediction"
    if kind == "prediction":
        return _prediction(message)
    if kind == "label":
        return _label(message)
    raise InvalidMessage("unknown_type", f"type must be 'prediction' or 'label', got {kind!r}")


def prediction_from(message: dict[str, Any]) -> Prediction:
    """A prediction from a decoded message (or a file's row), checked as ingest checks it."""
    return _prediction(message)


def label_from(message: dict[str, Any]) -> Label:
    """A label from a decoded message (or a file's row), checked as ingest checks it."""
    return _label(message)


def timestamp_from(value: Any) -> int:
    """Epoch milliseconds of a timestamp field's value, checked as ingest checks it."""
    return _timestamp({"timestamp": value})


def _prediction(message: dict[str, Any]) -> Prediction:
    """A valid prediction; the checks run in the documented order only when one fails.

    Ingest calls this for every message the batch decoder declines, so the common shape
    is accepted by one expression (:func:`plain_prediction`); anything else, valid or
    not, goes through :func:`_checked_prediction`, which names the first problem.
    """
    get = message.get
    plain = plain_prediction(
        get("model_id"),
        get("event_id"),
        get("model_version"),
        get("timestamp"),
        get("raw_score"),
        get("probability"),
        get("segment"),
        get("calibrator_version"),
    )
    return plain if plain is not None else _checked_prediction(message)


def plain_prediction(
    model_id: Any,
    event_id: Any,
    version: Any,
    time_ms: Any,
    raw_score: Any,
    probability: Any,
    segment: Any,
    calibrator_version: Any,
) -> Prediction | None:
    """The prediction these field values make if they have the common shape (string
    ids, epoch-ms timestamp, float scores, a small segment, no calibrator), else None:
    then the checked path decides. The fast accept of both ``parse_message`` and the
    batch decoder (``decode.py``), so the two cannot disagree on what it accepts."""
    if (
        _is_plain_name(model_id)
        and _is_plain_id(event_id)
        and _is_plain_name(version)
        and type(time_ms) is int
        and MIN_TIME_MS <= time_ms <= MAX_TIME_MS
        and (raw_score is None or (type(raw_score) is float and math.isfinite(raw_score)))
        and (probability is None or (type(probability) is float and 0.0 <= probability <= 1.0))
        and (raw_score is not None or probability is not None)
        and (segment is None or _is_plain_segment(segment))
        and calibrator_version is None
    ):
        return Prediction(
            model_id, event_id, version, time_ms, raw_score, probability, segment or NO_SEGMENT
        )
    return None


def _checked_prediction(message: dict[str, Any]) -> Prediction:
    raw_score = _optional_number(message, "raw_score", "bad_raw_score")
    probability = _optional_number(message, "probability", "bad_probability")
    if probability is not None and not 0.0 <= probability <= 1.0:
        raise InvalidMessage("bad_probability", f"probability must be in [0, 1], got {probability}")
    if raw_score is None and probability is None:
        raise InvalidMessage("no_score", "a prediction needs raw_score and/or probability")
    return Prediction(
        model_id=_name(message, "model_id"),
        event_id=_identifier(message, "event_id"),
        model_version=_series_version(message),
        event_time_ms=_timestamp(message),
        raw_score=raw_score,
        probability=probability,
        segment=_segment(message.get("segment")),
    )


def _label(message: dict[str, Any]) -> Label:
    """A valid label; like :func:`_prediction`, a fast accept and a checked path."""
    get = message.get
    plain = plain_label(get("model_id"), get("event_id"), get("label"), get("timestamp"))
    return plain if plain is not None else _checked_label(message)


def plain_label(model_id: Any, event_id: Any, value: Any, time_ms: Any) -> Label | None:
    """The label these field values make if they have the common shape, else None
    (like :func:`plain_prediction`)."""
    if (
        type(value) is int
        and (value == 0 or value == 1)
        and _is_plain_name(model_id)
        and _is_plain_id(event_id)
        and type(time_ms) is int
        and MIN_TIME_MS <= time_ms <= MAX_TIME_MS
    ):
        return Label(model_id, event_id, value, time_ms)
    return None


def _checked_label(message: dict[str, Any]) -> Label:
    value = message.get("label")
    if value is None:
        raise InvalidMessage("missing_field", "label is required")
    if isinstance(value, bool) or (isinstance(value, int | float) and value in (0, 1)):
        label = int(value)
    else:
        raise InvalidMessage("bad_label", f"label must be 0, 1, true or false, got {value!r}")
    return Label(
        model_id=_name(message, "model_id"),
        event_id=_identifier(message, "event_id"),
        label=label,
        label_time_ms=_timestamp(message),
    )


def _is_plain_id(value: Any) -> TypeGuard[str]:
    """A valid id as most producers send it (a string); ``_identifier`` has the rest."""
    return type(value) is str and 0 < len(value) <= MAX_ID_LENGTH and "\x00" not in value


def _is_plain_name(value: Any) -> TypeGuard[str]:
    """A plain id that is not reserved: what a model id or version must be."""
    return _is_plain_id(value) and value not in RESERVED_VALUES


def _is_plain_segment(value: Any) -> bool:
    """What ``_segment`` accepts, checked without building messages."""
    if type(value) is not dict or len(value) > MAX_SEGMENT_KEYS:
        return False
    for key, item in value.items():
        if (
            type(item) is not str
            or not 0 < len(item) <= MAX_SEGMENT_VALUE_LENGTH
            or "\x00" in item
            or item in RESERVED_VALUES
            or not 0 < len(key) <= MAX_SEGMENT_KEY_LENGTH
            or "=" in key
            or "\x00" in key
        ):
            return False
    return True


def _identifier(message: dict[str, Any], field: str) -> str:
    value = message.get(field)
    if value is None:
        raise InvalidMessage("missing_field", f"{field} is required")
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # numeric ids are common; they join as their decimal text
    if isinstance(value, float):
        # A float may have lost digits (beyond 2**53), and "1" or "1.0" would be a guess.
        raise InvalidMessage("bad_id", f"{field} must be a string or an integer, got {value!r}")
    if not isinstance(value, str) or not 0 < len(value) <= MAX_ID_LENGTH:
        raise InvalidMessage("bad_id", f"{field} must be a string of 1-{MAX_ID_LENGTH} characters")
    if "\x00" in value:
        # Valid JSON, but PostgreSQL text cannot hold NUL: a message the store refused
        # on every retry would block its partition. Segment text is checked likewise.
        raise InvalidMessage("bad_id", f"{field} must not contain NUL (U+0000)")
    return value


def _series_version(message: dict[str, Any]) -> str:
    """``model_version``, with ``calibrator_version`` folded in when there is one."""
    version = _name(message, "model_version")
    if message.get("calibrator_version") is None:
        return version
    calibrator = _identifier(message, "calibrator_version")
    if len(calibrator) > MAX_CALIBRATOR_VERSION_LENGTH:
        raise InvalidMessage(
            "bad_id", f"calibrator_version must be 1-{MAX_CALIBRATOR_VERSION_LENGTH} characters"
        )
    combined = with_calibrator(version, calibrator)
    if len(combined) > MAX_ID_LENGTH:
        raise InvalidMessage(
            "bad_id",
            f"model_version{CALIBRATOR_SEPARATOR}calibrator_version must be at most "
            f"{MAX_ID_LENGTH} characters, got {len(combined)}",
        )
    return combined


def _name(message: dict[str, Any], field: str) -> str:
    """An identifier that names a series (model id, version): not a reserved value."""
    value = _identifier(message, field)
    if value in RESERVED_VALUES:
        raise InvalidMessage("reserved_value", f"{field} {value!r} is reserved by calmon")
    return value


def _optional_number(message: dict[str, Any], field: str, reason: str) -> float | None:
    value = message.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidMessage(reason, f"{field} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise InvalidMessage(reason, f"{field} must be finite, got {value!r}")
    return number


def _timestamp(message: dict[str, Any]) -> int:
    value = message.get("timestamp")
    if value is None:
        raise InvalidMessage("missing_field", "timestamp is required")
    if isinstance(value, bool):
        raise InvalidMessage("bad_timestamp", "timestamp must be RFC 3339 text or epoch ms")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise InvalidMessage("bad_timestamp", f"timestamp must be finite, got {value!r}")
        # The bounds apply to the number as sent, as in the JSON Schema (so 4102444800000.5
        # is out); then a fraction (time.time() * 1000 is a float) is truncated, like the
        # digits of a text timestamp beyond the millisecond.
        if not MIN_TIME_MS <= value <= MAX_TIME_MS:
            raise _out_of_range(value)
        time_ms = int(value)
    elif isinstance(value, str):
        try:
            # RFC 3339 allows a lower-case "t" and "z"; fromisoformat reads upper case only.
            parsed = datetime.fromisoformat(value.upper())
        except ValueError:
            raise InvalidMessage("bad_timestamp", f"not RFC 3339: {value!r}") from None
        if parsed.tzinfo is None:
            raise InvalidMessage("bad_timestamp", f"timestamp needs a UTC offset: {value!r}")
        # Exact (no float): digits beyond the millisecond are truncated.
        time_ms = epoch_ms(parsed)
    else:
        raise InvalidMessage(
            "bad_timestamp", f"timestamp must be RFC 3339 text or epoch ms, got {value!r}"
        )
    if not MIN_TIME_MS <= time_ms <= MAX_TIME_MS:
        raise _out_of_range(value)
    return time_ms


def _out_of_range(value: Any) -> InvalidMessage:
    return InvalidMessage(
        "bad_timestamp", f"timestamp {value!r} is outside 2000-2100 (seconds instead of ms?)"
    )


def _segment(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidMessage("bad_segment", "segment must be an object of string values")
    if len(value) > MAX_SEGMENT_KEYS:
        raise InvalidMessage("bad_segment", f"segment has {len(value)} keys > {MAX_SEGMENT_KEYS}")
    for key, item in value.items():
        if not isinstance(item, str) or not 0 < len(item) <= MAX_SEGMENT_VALUE_LENGTH:
            raise InvalidMessage(
                "bad_segment",
                f"segment.{key} must be a string of 1-{MAX_SEGMENT_VALUE_LENGTH} characters",
            )
        if "=" in key or "\x00" in key or not 0 < len(key) <= MAX_SEGMENT_KEY_LENGTH:
            raise InvalidMessage(
                "bad_segment",
                f"segment key {key[:80]!r} must be 1-{MAX_SEGMENT_KEY_LENGTH} characters "
                "without '=' or NUL",
            )
        if "\x00" in item:
            raise InvalidMessage("bad_segment", f"segment.{key} must not contain NUL (U+0000)")
        if item in RESERVED_VALUES:
            raise InvalidMessage("reserved_value", f"segment.{key} {item!r} is reserved by calmon")
    return dict(value)

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
from monitor.settings import MAX_CLASS_NAME_LENGTH, MulticlassSettings

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
#: No classes configured, the default cap and sum tolerance.
DEFAULT_MULTICLASS = MulticlassSettings()

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
    "bad_probabilities",
    "probabilities_sum",
    "missing_class",
    "unknown_class",
    "too_many_classes",
    "kind_mismatch",
    # Not a validation outcome: valid, but the store refused it (worker.py).
    "store_rejected",
)


class InvalidMessage(ValueError):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def parse_message(
    payload: bytes | None,
    *,
    max_bytes: int = 64 * 1024,
    multiclass: MulticlassSettings = DEFAULT_MULTICLASS,
) -> Prediction | Label:
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
        return _prediction(message, multiclass)
    if kind == "label":
        return _label(message, multiclass)
    raise InvalidMessage("unknown_type", f"type must be 'prediction' or 'label', got {kind!r}")


def prediction_from(
    message: dict[str, Any], multiclass: MulticlassSettings = DEFAULT_MULTICLASS
) -> Prediction:
    """A prediction from a decoded message (or a file's row), checked as ingest checks it."""
    return _prediction(message, multiclass)


def label_from(
    message: dict[str, Any], multiclass: MulticlassSettings = DEFAULT_MULTICLASS
) -> Label:
    """A label from a decoded message (or a file's row), checked as ingest checks it."""
    return _label(message, multiclass)


def timestamp_from(value: Any) -> int:
    """Epoch milliseconds of a timestamp field's value, checked as ingest checks it."""
    return _timestamp({"timestamp": value})


def _prediction(message: dict[str, Any], multiclass: MulticlassSettings) -> Prediction:
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
        get("probabilities"),
        multiclass,
    )
    return plain if plain is not None else _checked_prediction(message, multiclass)


def plain_prediction(
    model_id: Any,
    event_id: Any,
    version: Any,
    time_ms: Any,
    raw_score: Any,
    probability: Any,
    segment: Any,
    calibrator_version: Any,
    probabilities: Any = None,
    multiclass: MulticlassSettings = DEFAULT_MULTICLASS,
) -> Prediction | None:
    """The prediction these field values make if they have the common shape (string
    ids, epoch-ms timestamp, float scores, a small segment, no calibrator, a binary
    model: no class probabilities, not a model of ``multiclass.classes``), else None:
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
        and probabilities is None
        and (not multiclass.classes or model_id not in multiclass.classes)
    ):
        return Prediction(
            model_id, event_id, version, time_ms, raw_score, probability, segment or NO_SEGMENT
        )
    return None


def _checked_prediction(message: dict[str, Any], multiclass: MulticlassSettings) -> Prediction:
    if message.get("probabilities") is not None:
        return _multiclass_prediction(message, multiclass)
    raw_score = _optional_number(message, "raw_score", "bad_raw_score")
    probability = _optional_number(message, "probability", "bad_probability")
    if probability is not None and not 0.0 <= probability <= 1.0:
        raise InvalidMessage("bad_probability", f"probability must be in [0, 1], got {probability}")
    if raw_score is None and probability is None:
        raise InvalidMessage("no_score", "a prediction needs raw_score and/or probability")
    prediction = Prediction(
        model_id=_name(message, "model_id"),
        event_id=_identifier(message, "event_id"),
        model_version=_series_version(message),
        event_time_ms=_timestamp(message),
        raw_score=raw_score,
        probability=probability,
        segment=_segment(message.get("segment")),
    )
    if prediction.model_id in multiclass.classes:
        raise InvalidMessage(
            "kind_mismatch",
            f"model {prediction.model_id[:80]!r} is multi-class (ingest.multiclass.classes): "
            "send probabilities, not probability or raw_score",
        )
    return prediction


def _multiclass_prediction(message: dict[str, Any], multiclass: MulticlassSettings) -> Prediction:
    """A prediction with ``probabilities``: ids and fields checked as a binary one's."""
    model_id = _name(message, "model_id")
    if message.get("probability") is not None or message.get("raw_score") is not None:
        raise InvalidMessage(
            "bad_probabilities",
            "a prediction carries probabilities (multi-class) or probability/raw_score "
            "(binary), not both",
        )
    return Prediction(
        model_id=model_id,
        event_id=_identifier(message, "event_id"),
        model_version=_series_version(message),
        event_time_ms=_timestamp(message),
        segment=_segment(message.get("segment")),
        probabilities=class_probabilities(
            message["probabilities"], multiclass.classes.get(model_id), multiclass
        ),
    )


def class_probabilities(
    value: Any, configured: list[str] | None, multiclass: MulticlassSettings
) -> dict[str, float]:
    """Class name -> probability, by class name, divided by their sum; raises
    :class:`InvalidMessage` naming the first problem (docs/messages.md, "Multi-class
    predictions")."""
    plain = _plain_class_probabilities(value, configured, multiclass)
    if plain is not None:
        return plain
    pairs = _class_pairs(value, configured, multiclass.max_classes)
    total = 0.0
    for name, p in pairs:
        if isinstance(p, bool) or not isinstance(p, int | float) or not math.isfinite(p):
            raise InvalidMessage(
                "bad_probabilities", f"probabilities.{name[:80]} must be a finite number, got {p!r}"
            )
        if not 0.0 <= p <= 1.0:
            raise InvalidMessage(
                "bad_probabilities", f"probabilities.{name[:80]} must be in [0, 1], got {p!r}"
            )
        total += p
    if abs(total - 1.0) > multiclass.sum_tolerance:
        raise InvalidMessage(
            "probabilities_sum",
            f"probabilities sum to {total:.6g}, more than {multiclass.sum_tolerance} from 1 "
            "(ingest.multiclass.sum_tolerance)",
        )
    return {name: float(p) / total for name, p in sorted(pairs)}


def _plain_class_probabilities(
    value: Any, configured: list[str] | None, multiclass: MulticlassSettings
) -> dict[str, float] | None:
    """The common shape (an object of float probabilities, names of plain text, no
    configured classes) accepted in a few passes; None: the checks below decide."""
    if type(value) is not dict or configured is not None:
        return None
    if not 2 <= len(value) <= multiclass.max_classes:
        return None
    if not all(type(p) is float and 0.0 <= p <= 1.0 for p in value.values()):
        return None
    if not all(
        type(name) is str and 0 < len(name) <= MAX_CLASS_NAME_LENGTH and "\x00" not in name
        for name in value
    ):
        return None
    total = sum(value.values())
    if abs(total - 1.0) > multiclass.sum_tolerance:
        return None
    return {name: value[name] / total for name in sorted(value)}


def _class_pairs(
    value: Any, configured: list[str] | None, max_classes: int
) -> list[tuple[str, Any]]:
    """(class, value) pairs of an object, or of an array in the configured class order."""
    if isinstance(value, list):
        if configured is None:
            raise InvalidMessage(
                "bad_probabilities",
                "an array of probabilities needs the model's classes in "
                "ingest.multiclass.classes; or send an object {class: probability}",
            )
        if len(value) < len(configured):
            raise InvalidMessage(
                "missing_class",
                f"{len(value)} probabilities for {len(configured)} classes: "
                f"{configured[len(value)][:80]!r} and later are missing",
            )
        if len(value) > len(configured):
            raise InvalidMessage(
                "unknown_class",
                f"{len(value)} probabilities for {len(configured)} configured classes",
            )
        return list(zip(configured, value, strict=True))
    if not isinstance(value, dict):
        raise InvalidMessage(
            "bad_probabilities", "probabilities must be an object {class: probability} or an array"
        )
    if configured is not None:
        _same_classes(value, configured)
    elif len(value) > max_classes:
        raise InvalidMessage(
            "too_many_classes",
            f"{len(value)} classes > ingest.multiclass.max_classes ({max_classes})",
        )
    if len(value) < 2:
        raise InvalidMessage("bad_probabilities", "probabilities need 2 or more classes")
    for name in value:
        _check_class_name(name, "bad_probabilities", "probabilities key")
    return list(value.items())


def _same_classes(value: dict[str, Any], configured: list[str]) -> None:
    missing = [name for name in configured if name not in value]
    if missing:
        raise InvalidMessage(
            "missing_class",
            f"class {missing[0][:80]!r} of ingest.multiclass.classes is missing"
            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""),
        )
    if len(value) > len(configured):
        unknown = next(name for name in value if name not in set(configured))
        raise InvalidMessage(
            "unknown_class", f"class {unknown[:80]!r} is not in ingest.multiclass.classes"
        )


def _check_class_name(name: Any, reason: str, what: str) -> None:
    if not isinstance(name, str) or not 0 < len(name) <= MAX_CLASS_NAME_LENGTH or "\x00" in name:
        raise InvalidMessage(
            reason, f"{what} must be text of 1-{MAX_CLASS_NAME_LENGTH} characters without NUL"
        )


def _label(message: dict[str, Any], multiclass: MulticlassSettings) -> Label:
    """A valid label; like :func:`_prediction`, a fast accept and a checked path."""
    get = message.get
    plain = plain_label(
        get("model_id"), get("event_id"), get("label"), get("timestamp"), multiclass
    )
    return plain if plain is not None else _checked_label(message, multiclass)


def plain_label(
    model_id: Any,
    event_id: Any,
    value: Any,
    time_ms: Any,
    multiclass: MulticlassSettings = DEFAULT_MULTICLASS,
) -> Label | None:
    """The label these field values make if they have the common shape (0 or 1, of a
    model not in ``multiclass.classes``), else None (like :func:`plain_prediction`)."""
    if (
        type(value) is int
        and (value == 0 or value == 1)
        and _is_plain_name(model_id)
        and _is_plain_id(event_id)
        and type(time_ms) is int
        and MIN_TIME_MS <= time_ms <= MAX_TIME_MS
        and (not multiclass.classes or model_id not in multiclass.classes)
    ):
        return Label(model_id, event_id, value, time_ms)
    return None


def _checked_label(message: dict[str, Any], multiclass: MulticlassSettings) -> Label:
    value = message.get("label")
    if value is None:
        raise InvalidMessage("missing_field", "label is required")
    label: int | str
    if isinstance(value, str):
        _check_class_name(value, "bad_label", "a class label")
        label = value
    elif isinstance(value, bool) or (isinstance(value, int | float) and value in (0, 1)):
        label = int(value)
    else:
        raise InvalidMessage(
            "bad_label", f"label must be 0, 1, true, false or a class name (text), got {value!r}"
        )
    model_id = _name(message, "model_id")
    _label_fits_model(model_id, label, multiclass.classes.get(model_id))
    return Label(
        model_id=model_id,
        event_id=_identifier(message, "event_id"),
        label=label,
        label_time_ms=_timestamp(message),
    )


def _label_fits_model(model_id: str, label: int | str, configured: list[str] | None) -> None:
    """A model with configured classes takes one of them, by name."""
    if configured is None:
        return
    if not isinstance(label, str):
        raise InvalidMessage(
            "kind_mismatch",
            f"model {model_id[:80]!r} is multi-class: its label is a class name, got {label!r}",
        )
    if label not in configured:
        raise InvalidMessage(
            "unknown_class",
            f"label {label[:80]!r} is not a class of model {model_id[:80]!r} "
            "(ingest.multiclass.classes)",
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

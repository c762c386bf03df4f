"""Message validation against hand-written cases, and the shipped JSON Schema
(config/message.schema.json) against the same cases: users validate producers with the
schema, so where both can express a rule they must agree."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest

from monitor.core.records import Label, Prediction
from monitor.ingest.validation import MAX_TIME_MS, MIN_TIME_MS, InvalidMessage, parse_message
from monitor.settings import MulticlassSettings

SCHEMA = json.loads(
    (Path(__file__).parents[3] / "config" / "message.schema.json").read_text(encoding="utf-8")
)
#: "format" only annotates unless a checker asserts it; producers' validators should.
FORMATS = jsonschema.Draft202012Validator.FORMAT_CHECKER
T = 1_790_000_000_000
PREDICTION: dict[str, Any] = {
    "event_id": "e1",
    "model_id": "fraud",
    "model_version": "v1",
    "timestamp": T,
    "probability": 0.25,
}
LABEL: dict[str, Any] = {"event_id": "e1", "model_id": "fraud", "label": 1, "timestamp": T}


_DROP = object()  # a field to leave out


def _with(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    message = {**base, **changes}
    return {key: value for key, value in message.items() if value is not _DROP}


CLASSES = _with(PREDICTION, probability=_DROP, probabilities={"cat": 0.75, "dog": 0.25})

VALID = {
    "prediction": PREDICTION,
    "raw score only": _with(PREDICTION, probability=_DROP, raw_score=-2.5),
    "both scores": _with(PREDICTION, raw_score=3.0),
    "integer event id": _with(PREDICTION, event_id=12345),
    "segment": _with(PREDICTION, segment={"region": "eu", "channel": "web"}),
    "segment key of 64 characters": _with(PREDICTION, segment={"k" * 64: "eu"}),
    "reserved text inside a value": _with(
        PREDICTION, model_id="__all__x", model_version="v__other__", segment={"r": "__all"}
    ),
    "reserved value as an event id": _with(PREDICTION, event_id="__all__"),
    "RFC 3339 time": _with(PREDICTION, timestamp="2026-09-21T10:00:00+02:00"),
    "RFC 3339 time, lower case": _with(PREDICTION, timestamp="2026-09-21t08:00:00.25z"),
    "fractional epoch ms": _with(PREDICTION, timestamp=T + 0.75),
    "first epoch ms": _with(PREDICTION, timestamp=MIN_TIME_MS),
    "last epoch ms, as a float": _with(PREDICTION, timestamp=float(MAX_TIME_MS)),
    "null raw score": _with(PREDICTION, raw_score=None),
    "null probability": _with(PREDICTION, probability=None, raw_score=1.5),
    "null segment": _with(PREDICTION, segment=None),
    "calibrator version": _with(PREDICTION, calibrator_version="2026-12-03"),
    "integer calibrator version": _with(PREDICTION, calibrator_version=7),
    "null calibrator version": _with(PREDICTION, calibrator_version=None),
    "null type, prediction": _with(PREDICTION, type=None),
    "label": LABEL,
    "null type, label": _with(LABEL, type=None),
    "label false": _with(LABEL, label=False),
    "explicit type": _with(LABEL, type="label"),
    "label key, no type: a label": _with(PREDICTION, label=1),
    "label key, prediction type": _with(PREDICTION, type="prediction", label="ignored"),
    "class probabilities": _with(CLASSES, probabilities={"cat": 0.7, "dog": 0.2, "fox": 0.1}),
    "class probabilities summing to 1 within the tolerance": _with(
        CLASSES, probabilities={"cat": 0.7, "dog": 0.295}
    ),
    "class probabilities, null probability": _with(CLASSES, probability=None, raw_score=None),
    "100 classes": _with(CLASSES, probabilities={f"c{i}": 0.01 for i in range(100)}),
    "class label": _with(LABEL, label="cat"),
    "class label written as digits": _with(LABEL, label="3"),
}

INVALID = {
    "probability above 1": (_with(PREDICTION, probability=1.5), "bad_probability"),
    "probability below 0": (_with(PREDICTION, probability=-0.1), "bad_probability"),
    "no score": (_with(PREDICTION, probability=_DROP), "no_score"),
    "null score only": (_with(PREDICTION, probability=None), "no_score"),
    "both scores null": (_with(PREDICTION, probability=None, raw_score=None), "no_score"),
    "null label": (_with(LABEL, label=None), "missing_field"),
    "null event id": (_with(LABEL, event_id=None), "missing_field"),
    "no model version": (_with(PREDICTION, model_version=_DROP), "missing_field"),
    "no timestamp": (_with(PREDICTION, timestamp=_DROP), "missing_field"),
    "empty event id": (_with(PREDICTION, event_id=""), "bad_id"),
    "event id too long": (_with(PREDICTION, event_id="x" * 257), "bad_id"),
    "NUL in event id": (_with(PREDICTION, event_id="a\x00b"), "bad_id"),
    "NUL in model id of a label": (_with(LABEL, model_id="m\x00"), "bad_id"),
    "NUL in segment value": (_with(PREDICTION, segment={"region": "e\x00u"}), "bad_segment"),
    "NUL in segment key": (_with(PREDICTION, segment={"re\x00gion": "eu"}), "bad_segment"),
    "= in segment key": (_with(PREDICTION, segment={"a=b": "eu"}), "bad_segment"),
    "empty segment value": (_with(PREDICTION, segment={"region": ""}), "bad_segment"),
    "number as segment value": (_with(PREDICTION, segment={"region": 7}), "bad_segment"),
    "17 segment keys": (
        _with(PREDICTION, segment={f"k{i}": "v" for i in range(17)}),
        "bad_segment",
    ),
    "empty calibrator version": (_with(PREDICTION, calibrator_version=""), "bad_id"),
    "calibrator version too long": (_with(PREDICTION, calibrator_version="c" * 65), "bad_id"),
    "calibrator version a float": (_with(PREDICTION, calibrator_version=1.5), "bad_id"),
    "NUL in calibrator version": (_with(PREDICTION, calibrator_version="a\x00"), "bad_id"),
    "segment key of 65 characters": (
        _with(PREDICTION, segment={"k" * 65: "eu"}),
        "bad_segment",
    ),
    # Reserved: these name calmon's own series (every version, every event, a key's
    # merged tail); sent as data they landed in, or were overwritten by, those series.
    "model version __all__": (_with(PREDICTION, model_version="__all__"), "reserved_value"),
    "model version __other__": (_with(PREDICTION, model_version="__other__"), "reserved_value"),
    "model id __all__": (_with(PREDICTION, model_id="__all__"), "reserved_value"),
    "model id __other__ of a label": (_with(LABEL, model_id="__other__"), "reserved_value"),
    "segment value __other__": (
        _with(PREDICTION, segment={"region": "__other__"}),
        "reserved_value",
    ),
    "segment value __all__": (_with(PREDICTION, segment={"region": "__all__"}), "reserved_value"),
    "label 2": (_with(LABEL, label=2), "bad_label"),
    "label key, no type, label 2": (_with(PREDICTION, label=2), "bad_label"),
    "label type without label": (_with(PREDICTION, type="label"), "missing_field"),
    "unknown type": (_with(PREDICTION, type="score"), "unknown_type"),
    "seconds, not ms": (_with(PREDICTION, timestamp=1_790_000_000), "bad_timestamp"),
    "year 2200": (_with(PREDICTION, timestamp=7_258_118_400_000), "bad_timestamp"),
    "fractional ms before 2000": (_with(PREDICTION, timestamp=MIN_TIME_MS - 0.5), "bad_timestamp"),
    "fractional ms after 2100": (_with(PREDICTION, timestamp=MAX_TIME_MS + 0.5), "bad_timestamp"),
    "time without offset": (_with(PREDICTION, timestamp="2026-09-21T10:00:00"), "bad_timestamp"),
    "not a time": (_with(PREDICTION, timestamp="yesterday"), "bad_timestamp"),
    # Multi-class (docs/messages.md, "Multi-class predictions").
    "class probabilities and a probability": (
        _with(CLASSES, probability=0.75),
        "bad_probabilities",
    ),
    "class probabilities and a raw score": (_with(CLASSES, raw_score=1.0), "bad_probabilities"),
    "one class": (_with(CLASSES, probabilities={"cat": 1.0}), "bad_probabilities"),
    "negative class probability": (
        _with(CLASSES, probabilities={"cat": 1.1, "dog": -0.1}),
        "bad_probabilities",
    ),
    "class probability above 1": (
        _with(CLASSES, probabilities={"cat": 1.5, "dog": 0.0}),
        "bad_probabilities",
    ),
    "class probability as text": (
        _with(CLASSES, probabilities={"cat": "0.5", "dog": 0.5}),
        "bad_probabilities",
    ),
    "class probabilities as text": (_with(CLASSES, probabilities="cat"), "bad_probabilities"),
    "NUL in a class name": (
        _with(CLASSES, probabilities={"c\x00t": 0.5, "dog": 0.5}),
        "bad_probabilities",
    ),
    "101 classes": (
        _with(CLASSES, probabilities={f"c{i}": 1 / 101 for i in range(101)}),
        "too_many_classes",
    ),
    "empty class label": (_with(LABEL, label=""), "bad_label"),
    "class label of 129 characters": (_with(LABEL, label="c" * 129), "bad_label"),
    "class label a list": (_with(LABEL, label=["cat"]), "bad_label"),
}


#: ISO 8601 forms that calmon reads but RFC 3339, so the schema, does not: the schema is
#: the strict contract for producers, the validator a lenient reader (docs/messages.md). Not
#: shared cases, as the two are not meant to agree on them.
LENIENT_TIMES = {
    "space for T": "2026-09-21 10:00:00+02:00",
    "no seconds": "2026-09-21T10:00+02:00",
    "offset without colon": "2026-09-21T10:00:00+0200",
    "basic format": "20260921T100000+0200",
}


@pytest.mark.parametrize("timestamp", LENIENT_TIMES.values(), ids=LENIENT_TIMES.keys())
def test_other_iso_8601_times_pass_the_validator_not_the_schema(timestamp: str) -> None:
    message = _with(PREDICTION, timestamp=timestamp)
    assert parse_message(orjson.dumps(message)).event_time_ms == 1_789_977_600_000
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(message, SCHEMA, format_checker=FORMATS)


def test_lower_case_t_and_z_read_as_upper_case() -> None:
    lower = parse_message(orjson.dumps(_with(PREDICTION, timestamp="2026-09-21t08:00:00z")))
    upper = parse_message(orjson.dumps(_with(PREDICTION, timestamp="2026-09-21T08:00:00Z")))
    assert lower.event_time_ms == upper.event_time_ms == 1_789_977_600_000


@pytest.mark.parametrize(
    ("timestamp", "time_ms"),
    [
        (T + 0.999, T),
        ("2026-09-21T08:00:00.0019999Z", 1_789_977_600_001),
        ("2026-09-21T10:00:00.999+02:00", 1_789_977_600_999),
    ],
)
def test_fractions_of_a_millisecond_are_truncated(timestamp: float | str, time_ms: int) -> None:
    assert parse_message(orjson.dumps(_with(PREDICTION, timestamp=timestamp))).event_time_ms == (
        time_ms
    )


def test_an_id_written_as_a_float_is_rejected_though_the_schema_allows_it() -> None:
    # Not a shared case: JSON Schema's "integer" is any number without a fraction, and
    # draft 2020-12 cannot tell 1.0 from 1. calmon rejects it: a float id may have lost
    # digits on the way (beyond 2**53), and whether it should join as "1" or "1.0" is a
    # guess. docs/messages.md and the schema's description say so.
    message = _with(PREDICTION, event_id=1.0)
    with pytest.raises(InvalidMessage) as raised:
        parse_message(orjson.dumps(message))
    assert raised.value.reason == "bad_id"
    assert raised.value.detail == "event_id must be a string or an integer, got 1.0"
    jsonschema.validate(message, SCHEMA, format_checker=FORMATS)


def test_the_schema_checks_date_time_formats() -> None:
    # jsonschema checks "date-time" only with rfc3339-validator installed; without it
    # the timestamp cases here would pass the schema side unchecked.
    assert "date-time" in FORMATS.checkers


def _schema_kind(message: dict[str, Any]) -> str:
    """The branch the schema checks a message against (its top-level if/then/else)."""
    is_label = jsonschema.Draft202012Validator(SCHEMA["if"]).is_valid(message)
    return "label" if is_label else "prediction"


@pytest.mark.parametrize("message", VALID.values(), ids=VALID.keys())
def test_valid_messages_pass_the_validator_and_the_schema(message: dict[str, Any]) -> None:
    parsed = parse_message(orjson.dumps(message))
    assert parsed.event_id == str(message["event_id"])
    jsonschema.validate(message, SCHEMA, format_checker=FORMATS)
    assert _schema_kind(message) == ("label" if isinstance(parsed, Label) else "prediction")


@pytest.mark.parametrize(("message", "reason"), INVALID.values(), ids=INVALID.keys())
def test_invalid_messages_fail_the_validator_with_their_reason_and_the_schema(
    message: dict[str, Any], reason: str
) -> None:
    with pytest.raises(InvalidMessage) as raised:
        parse_message(orjson.dumps(message))
    assert raised.value.reason == reason
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(message, SCHEMA, format_checker=FORMATS)


def test_a_calibrator_version_is_part_of_the_series_version() -> None:
    plain = parse_message(orjson.dumps(PREDICTION))
    served = parse_message(orjson.dumps(_with(PREDICTION, calibrator_version=7)))
    assert isinstance(plain, Prediction) and isinstance(served, Prediction)
    assert (plain.model_version, served.model_version) == ("v1", "v1+cal=7")


def test_a_series_version_too_long_with_its_calibrator_is_refused_by_name() -> None:
    message = _with(PREDICTION, model_version="v" * 250, calibrator_version="c2")
    with pytest.raises(InvalidMessage, match="at most 256 characters, got 257"):
        parse_message(orjson.dumps(message))


@pytest.mark.parametrize(
    ("probabilities", "reason"),
    [
        ({"cat": 0.7, "dog": 0.2}, "probabilities_sum"),
        ({"cat": 0.7, "dog": 0.7}, "probabilities_sum"),
        ([0.5, 0.5], "bad_probabilities"),  # an array needs the model's classes configured
    ],
)
def test_what_the_schema_cannot_say_of_class_probabilities(
    probabilities: object, reason: str
) -> None:
    message = _with(CLASSES, probabilities=probabilities)
    jsonschema.validate(message, SCHEMA, format_checker=FORMATS)
    with pytest.raises(InvalidMessage) as raised:
        parse_message(orjson.dumps(message))
    assert raised.value.reason == reason


def test_class_probabilities_are_divided_by_their_sum_and_sorted() -> None:
    message = _with(CLASSES, probabilities={"fox": 0.2, "cat": 0.5, "dog": 0.295})
    parsed = parse_message(orjson.dumps(message))
    assert isinstance(parsed, Prediction) and parsed.probability is None
    assert list(parsed.probabilities or {}) == ["cat", "dog", "fox"]
    assert parsed.probabilities == pytest.approx(
        {"cat": 0.5 / 0.995, "dog": 0.295 / 0.995, "fox": 0.2 / 0.995}
    )
    assert parsed.probabilities_json == json.dumps(
        dict(parsed.probabilities or {}), separators=(",", ":")
    )


CONFIGURED = MulticlassSettings(classes={"intent": ["tech", "billing", "other"]}, max_classes=3)
INTENT = _with(CLASSES, model_id="intent", probabilities=[0.5, 0.3, 0.2])


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (_with(INTENT, probabilities=[0.5, 0.5]), "missing_class"),
        (_with(INTENT, probabilities=[0.5, 0.3, 0.1, 0.1]), "unknown_class"),
        (_with(INTENT, probabilities={"tech": 0.5, "billing": 0.5}), "missing_class"),
        (
            _with(INTENT, probabilities={"tech": 0.5, "billing": 0.3, "other": 0.1, "x": 0.1}),
            "unknown_class",
        ),
        (_with(INTENT, probabilities=_DROP, probability=0.5), "kind_mismatch"),
        (_with(LABEL, model_id="intent", label=1), "kind_mismatch"),
        (_with(LABEL, model_id="intent", label="sales"), "unknown_class"),
    ],
)
def test_a_model_with_configured_classes_takes_exactly_them(
    message: dict[str, Any], reason: str
) -> None:
    with pytest.raises(InvalidMessage) as raised:
        parse_message(orjson.dumps(message), multiclass=CONFIGURED)
    assert raised.value.reason == reason


def test_an_array_reads_in_the_configured_class_order() -> None:
    parsed = parse_message(orjson.dumps(INTENT), multiclass=CONFIGURED)
    assert isinstance(parsed, Prediction)
    assert parsed.probabilities == {"billing": 0.3, "other": 0.2, "tech": 0.5}
    same = _with(INTENT, probabilities={"other": 0.2, "tech": 0.5, "billing": 0.3})
    assert parse_message(orjson.dumps(same), multiclass=CONFIGURED) == parsed
    label = parse_message(
        orjson.dumps(_with(LABEL, model_id="intent", label="tech")), multiclass=CONFIGURED
    )
    assert label == Label("intent", "e1", "tech", T)
    # Other models are not affected: binary messages pass as before.
    assert parse_message(orjson.dumps(PREDICTION), multiclass=CONFIGURED).probability == 0.25


def test_configured_classes_are_checked_at_load() -> None:
    for classes, problem in [
        (["a"], "2 or more"),
        (["a", "b", "c", "d"], "max_classes"),
        (["a", "a"], "twice"),
        (["a", ""], "1-128 characters"),
    ]:
        with pytest.raises(ValueError, match=problem):
            MulticlassSettings(classes={"m": classes}, max_classes=3)

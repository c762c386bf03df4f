"""The JSON API's parameters: every form of `since` the CLI accepts, against hand-computed
epoch milliseconds, and a 400 that names the parameter for everything else."""

from __future__ import annotations

import pytest

from monitor.export.params import BadParameter, parse

NOW = 1_790_000_000_000  # 2026-09-21T14:13:20Z
DAY = 86_400_000


def _since(text: str) -> int:
    return int(
        parse("/api/v1/history", {"model": "m", "metric": "ece", "since": text}, now_ms=NOW)[
            "since"
        ]
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7d", NOW - 7 * DAY),
        ("24h", NOW - DAY),
        ("90s", NOW - 90_000),
        ("1.5h", NOW - 5_400_000),
        ("500ms", NOW - 500),
        ("1w", NOW - 7 * DAY),
        ("2026-09-21T14:13:20Z", NOW),
        ("2026-09-21T16:13:20.5+02:00", NOW + 500),
        ("1790000000000", NOW),  # epoch milliseconds, digits only
        ("0", 0),
        ("100000d", 0),  # before the epoch: everything
        ("9" * 400 + "d", 0),  # a float overflow is still "everything"
    ],
)
def test_since_takes_a_duration_an_rfc3339_time_or_epoch_ms(text: str, expected: int) -> None:
    assert _since(text) == expected


@pytest.mark.parametrize(
    ("query", "named", "says"),
    [
        ({"model": "m", "metric": "ece", "since": "7x"}, "since", "is not a duration"),
        ({"model": "m", "metric": "ece", "since": "2026-01-01T00:00:00"}, "since", "UTC offset"),
        ({"model": "m", "metric": "ece", "since": "2026-13-01T00:00:00Z"}, "since", "RFC 3339"),
        ({"model": "m", "metric": "ece", "since": "-7d"}, "since", "is not a duration"),
        ({"model": "m", "metric": "ece", "since": "99999999999999999"}, "since", "year 9999"),
        ({"model": "m", "metric": "ecee"}, "metric", "did you mean 'ece'?"),
        ({"model": "m", "metric": "nonsense"}, "metric", "is not a metric"),
        ({"model": "m"}, "metric", "is required"),
        ({"metric": "ece"}, "model", "is required"),
        ({"model": "m", "metric": "ece", "modle": "m"}, "modle", "unknown; /api/v1/history takes"),
        ({"model": "m\x00", "metric": "ece"}, "model", "NUL"),
        ({"model": "m" * 1025, "metric": "ece"}, "model", "longer than 1024"),
    ],
)
def test_a_bad_parameter_is_named(query: dict[str, str], named: str, says: str) -> None:
    with pytest.raises(BadParameter) as raised:
        parse("/api/v1/history", query, now_ms=NOW)
    assert raised.value.name == named
    assert str(raised.value).startswith(f"parameter {named!r}: ")
    assert says in str(raised.value)


def test_reliability_defaults_to_the_whole_model() -> None:
    assert parse("/api/v1/reliability", {"model": "m"}, now_ms=NOW) == {
        "model": "m",
        "model_version": "__all__",
        "segment": "__all__",
    }


def test_an_endpoint_without_parameters_rejects_any() -> None:
    with pytest.raises(BadParameter, match="'x': unknown; /api/v1/series takes no parameters"):
        parse("/api/v1/series", {"x": "1"}, now_ms=NOW)


@pytest.mark.parametrize("text", ["0d", "0.0s", "00ms"])
def test_a_zero_duration_is_now(text: str) -> None:
    assert _since(text) == NOW


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0001-01-01T00:00:00+05:00", -62_135_614_800_000),
        ("9999-12-31T23:59:59-05:00", 253_402_318_799_000),
    ],
)
def test_the_ends_of_rfc3339_with_an_offset_are_exact(text: str, expected: int) -> None:
    assert _since(text) == expected


def test_an_empty_value_is_named() -> None:
    with pytest.raises(BadParameter, match="'window': is empty"):
        parse("/api/v1/history", {"model": "m", "metric": "ece", "window": ""}, now_ms=NOW)

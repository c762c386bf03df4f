"""Webhook signatures: the Standard Webhooks scheme, checked against the reference
implementation (the ``standardwebhooks`` package), and a ``verify`` that returns False,
never raises, on any header."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from standardwebhooks import Webhook, WebhookVerificationError

from monitor.alerts import signing

KEY = b"\x00\x17 a binary key \xff\xfe of 32 bytes.."
SECRET = "whsec_" + base64.b64encode(KEY).decode()
BODY = b'{"type":"calmon.alert.firing","model":"fraud","ece":0.083}'
MSG_ID = "a950df5fa5af289ea7dc5f70:recalibrate"


def now_s() -> int:
    # Per call, not at import: a module-level "now" goes stale in a long test run.
    return int(time.time())


def delivery(at_s: int | None = None, key: bytes = KEY) -> dict[str, str]:
    return signing.signed_headers(key, BODY, MSG_ID, now_s() if at_s is None else at_s)


def test_the_headers_are_the_standard_webhooks_ones() -> None:
    at = now_s()
    headers = delivery(at)
    assert headers["webhook-id"] == MSG_ID
    assert headers["webhook-timestamp"] == str(at)
    # The definition, recomputed here: base64 HMAC-SHA256 of "<id>.<timestamp>.<body>".
    mac = hmac.new(KEY, f"{MSG_ID}.{at}.".encode() + BODY, hashlib.sha256).digest()
    assert headers["webhook-signature"] == "v1," + base64.b64encode(mac).decode()


def test_the_reference_library_verifies_a_delivery_and_signs_what_calmon_verifies() -> None:
    headers = delivery()
    Webhook(SECRET).verify(BODY, headers)  # raises if it does not verify
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(BODY + b" ", headers)
    # The other way round: the reference library's signature, calmon's verify.
    at = now_s()
    reference = Webhook(SECRET).sign(MSG_ID, _datetime(at), BODY.decode())
    theirs = {"webhook-id": MSG_ID, "webhook-timestamp": str(at), "webhook-signature": reference}
    assert signing.verify(KEY, BODY, theirs)


def _datetime(at_s: int):  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    return datetime.fromtimestamp(at_s, tz=UTC)


def test_a_secret_is_whsec_base64_or_raw() -> None:
    assert signing.signing_key(SECRET) == KEY
    unpadded = "whsec_" + base64.b64encode(b"k" * 10).decode().rstrip("=")
    assert signing.signing_key(unpadded) == b"k" * 10
    assert signing.signing_key("plain secret") == b"plain secret"
    # A raw secret is what the reference library takes as bytes.
    Webhook(b"plain secret").verify(BODY, delivery(key=b"plain secret"))
    with pytest.raises(ValueError, match="base64"):
        signing.signing_key("whsec_not*base64")
    with pytest.raises(ValueError, match="empty"):
        signing.signing_key("whsec_")


def test_calmon_verifies_its_own_delivery_and_nothing_else() -> None:
    headers = delivery()
    assert signing.verify(KEY, BODY, headers)
    assert not signing.verify(b"another key", BODY, headers)
    assert not signing.verify(KEY, BODY + b" ", headers)
    assert not signing.verify(KEY, BODY[:-1], headers)


def test_the_id_is_signed_a_captured_delivery_does_not_verify_under_another_id() -> None:
    headers = delivery()
    for forged in ("a950df5fa5af289ea7dc5f70:other", "x" + MSG_ID, MSG_ID[:-1]):
        tampered = {**headers, "webhook-id": forged}
        assert not signing.verify(KEY, BODY, tampered), forged
        with pytest.raises(WebhookVerificationError):
            Webhook(SECRET).verify(BODY, tampered)


def test_header_names_are_case_insensitive_but_not_repeated() -> None:
    headers = delivery()
    assert signing.verify(KEY, BODY, {name.title(): value for name, value in headers.items()})
    # The same header twice under two cases: which one was signed, which one will the
    # receiver's framework hand to its de-duplication? Neither is trusted, in any order.
    forged = "a950df5fa5af289ea7dc5f70:other"
    assert not signing.verify(KEY, BODY, {**headers, "Webhook-Id": forged})
    assert not signing.verify(KEY, BODY, {"Webhook-Id": forged, **headers})


def test_the_timestamp_must_be_within_the_tolerance_both_ways() -> None:
    at = now_s()
    headers = delivery(at)
    assert signing.verify(KEY, BODY, headers, now_s=at + 300)
    assert signing.verify(KEY, BODY, headers, now_s=at - 300)
    assert not signing.verify(KEY, BODY, headers, now_s=at + 301)
    assert not signing.verify(KEY, BODY, headers, now_s=at - 301)
    assert signing.verify(KEY, BODY, headers, now_s=at + 3600, tolerance_s=3600)
    assert not signing.verify(KEY, BODY, delivery(at - 301))  # now, the real clock


RESPELLINGS = {  # int() or float() of each is the same number
    "leading zero": lambda t: "0" + t,
    "plus sign": lambda t: "+" + t,
    "underscore": lambda t: t[0] + "_" + t[1:],
    "leading space": lambda t: " " + t,
    "trailing space": lambda t: t + " ",
    "decimal point": lambda t: t + ".0",
    "newline": lambda t: t + "\n",
    "fullwidth digit": lambda t: "\uff11" + t[1:],
}


@pytest.mark.parametrize("respell", RESPELLINGS.values(), ids=RESPELLINGS.keys())
def test_a_timestamp_that_is_not_the_canonical_signed_text_fails(respell) -> None:  # type: ignore[no-untyped-def]
    at = now_s()
    text = respell(str(at))
    # A captured delivery with its timestamp respelled: the same number, other text.
    captured = {**delivery(at), "webhook-timestamp": text}
    assert not signing.verify(KEY, BODY, captured)
    # Even MACed over that very text (by a holder of the key): not what the scheme
    # signs, so a stock library and calmon would disagree on it; calmon refuses it.
    macked = {**captured, "webhook-signature": signing.signature(KEY, MSG_ID, text, BODY)}
    assert not signing.verify(KEY, BODY, macked)


def test_one_of_several_signatures_matching_is_enough() -> None:
    headers = delivery()
    ours = headers["webhook-signature"]
    other = signing.signature(b"old key", MSG_ID, headers["webhook-timestamp"], BODY)
    for both in (f"{other} {ours}", f"{ours} {other}", f"v2,abc {ours}"):
        assert signing.verify(KEY, BODY, {**headers, "webhook-signature": both}), both
    assert not signing.verify(KEY, BODY, {**headers, "webhook-signature": other})
    # Only version v1 is known.
    v2 = ours.replace("v1,", "v2,")
    assert not signing.verify(KEY, BODY, {**headers, "webhook-signature": v2})


@pytest.mark.parametrize(
    "hostile",
    [
        {"webhook-signature": "v1"},
        {"webhook-signature": "v1,"},
        {"webhook-signature": "v1,not base64!"},
        {"webhook-signature": "v1,é" + "a" * 42 + "="},
        {"webhook-signature": ",,, v1,,v1 "},
        {"webhook-signature": "v1," + "A" * 10_000},
        {"webhook-timestamp": "9" * 5000},  # int() of it alone would raise ValueError
        {"webhook-timestamp": "-1"},
        {"webhook-timestamp": ""},
        {"webhook-id": ""},
        {"webhook-id": "ünïcode"},
        {"webhook-id": "with space"},
        {"webhook-id": "\udc80"},  # a lone surrogate: cannot even be encoded
    ],
)
def test_hostile_headers_are_false_not_an_exception(hostile: dict[str, str]) -> None:
    headers = {**delivery(), **hostile}
    assert signing.verify(KEY, BODY, headers) is False


def test_no_headers_at_all_are_false() -> None:
    assert signing.verify(KEY, BODY, {}) is False
    assert signing.verify(KEY, BODY, {"Content-Type": "application/json"}) is False


_ANY_TEXT = st.text(st.characters(blacklist_categories=()), max_size=60)
_HEADER_NAMES = st.sampled_from(
    ["webhook-id", "Webhook-Id", "webhook-timestamp", "WEBHOOK-TIMESTAMP", "webhook-signature"]
)


@settings(max_examples=300, deadline=None)
@given(
    replaced=st.dictionaries(_HEADER_NAMES | _ANY_TEXT, _ANY_TEXT, max_size=5),
    dropped=st.sets(st.sampled_from(["webhook-id", "webhook-timestamp", "webhook-signature"])),
)
def test_any_headers_give_a_bool_never_an_exception(
    replaced: dict[str, str], dropped: set[str]
) -> None:
    signed = delivery()
    headers = {k: v for k, v in signed.items() if k not in dropped}
    headers.update(replaced)
    result = signing.verify(KEY, BODY, headers)
    assert isinstance(result, bool)
    if result:  # only if each signed header is there once, as signed
        present = {name.lower(): value for name, value in headers.items()}
        for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
            assert present[name] == signed[name]


def test_an_id_calmon_cannot_sign_faithfully_is_refused_at_signing() -> None:
    with pytest.raises(ValueError, match="printable ASCII"):
        signing.signed_headers(KEY, BODY, "alert:a webhook", now_s())


def test_a_whsec_secret_is_strict_base64_padded_as_needed() -> None:
    # Every unpadded length: 2 and 3 characters past a multiple of 4 need "==" and "=".
    for key in (b"s", b"se", b"sec", b"secr"):
        encoded = base64.b64encode(key).decode().rstrip("=")
        assert signing.signing_key("whsec_" + encoded) == key, encoded
    # A character outside base64 is an error, not silently dropped (the key would be
    # another one than the operator wrote).
    with pytest.raises(ValueError, match="must be base64 after the prefix"):
        signing.signing_key("whsec_c2Vj*cmV0")
    with pytest.raises(ValueError, match=r"^the signing key is empty$"):
        signing.signing_key("whsec_")


def test_signatures_are_separated_by_one_space_exactly() -> None:
    headers = delivery()
    other = "v1," + base64.b64encode(b"x" * 32).decode()
    spaced = {**headers, "webhook-signature": f"{other} {headers['webhook-signature']}"}
    assert signing.verify(KEY, BODY, spaced)
    # A tab or newline is not the scheme's separator: the header is not what was meant.
    for separator in ("\t", "\n"):
        odd = {**headers, "webhook-signature": f"{other}{separator}{headers['webhook-signature']}"}
        assert not signing.verify(KEY, BODY, odd), repr(separator)


def test_headers_that_are_not_text_are_ignored_or_false_never_an_exception() -> None:
    headers: dict = delivery()  # type: ignore[type-arg]
    # Names that are not text (a framework's raw bytes, a number) name no signed header.
    assert signing.verify(KEY, BODY, {**headers, b"webhook-id": "x", 7: "y"}) is True
    for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        for value in (7, None, b"bytes"):
            assert signing.verify(KEY, BODY, {**headers, name: value}) is False, (name, value)


def test_a_delivery_says_its_body_is_json() -> None:
    assert delivery()["Content-Type"] == "application/json"

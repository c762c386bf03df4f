"""Signatures of webhook deliveries (the Standard Webhooks scheme), and how a receiver
checks them.

Headers of every delivery (https://www.standardwebhooks.com)::

    webhook-id: <alert id>:<webhook>            (the same on every retry: de-duplicate on it)
    webhook-timestamp: 1732262400               (Unix seconds, at this attempt)
    webhook-signature: v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>

The id and the timestamp are signed with the body, so neither can be swapped on a
captured delivery. Any Standard Webhooks library verifies them (``standardwebhooks`` on
PyPI: ``Webhook(secret).verify(body, headers)``); so does :func:`verify`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time
from collections.abc import Mapping

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
VERSION = "v1"
#: A secret of this form is base64 of the key (what Standard Webhooks libraries take).
SECRET_PREFIX = "whsec_"
#: The only timestamp text that is signed: Unix seconds, no sign, no leading zero, no
#: underscores or spaces (what int() would also accept). 12 digits last until year 33658.
_CANONICAL_SECONDS = re.compile(r"0|[1-9][0-9]{0,11}")
#: An id is printable ASCII without spaces, so the signed text "<id>.<ts>.<body>" is
#: the bytes a receiver sees in the header.
_ID = re.compile(r"[\x21-\x7e]{1,256}")
_SIGNATURE = re.compile(r"v1,([A-Za-z0-9+/]{43}=)")


def signing_key(secret: str) -> bytes:
    """The HMAC key of a secret: ``whsec_<base64>`` is decoded, anything else is used as
    its UTF-8 bytes.

    >>> signing_key("whsec_c2VjcmV0")
    b'secret'
    >>> signing_key("secret")
    b'secret'
    """
    if not secret.startswith(SECRET_PREFIX):
        key = secret.encode()
    else:
        encoded = secret[len(SECRET_PREFIX) :]
        try:  # unpadded base64 is common in whsec_ secrets; pad it as the libraries do
            key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except binascii.Error:
            raise ValueError(f"a {SECRET_PREFIX} secret must be base64 after the prefix") from None
    if not key:
        raise ValueError("the signing key is empty")
    return key


def signature(key: bytes, msg_id: str, timestamp: str, body: bytes) -> str:
    """``v1,<base64 MAC>`` of ``"<msg_id>.<timestamp>.<body>"``, the header's exact text."""
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return f"{VERSION},{base64.b64encode(mac.digest()).decode()}"


def signed_headers(key: bytes, body: bytes, msg_id: str, now_s: int) -> dict[str, str]:
    if not _ID.fullmatch(msg_id):
        raise ValueError(f"webhook id {msg_id!r}: printable ASCII without spaces only")
    timestamp = str(now_s)
    return {
        "Content-Type": "application/json",
        ID_HEADER: msg_id,
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: signature(key, msg_id, timestamp, body),
    }


def verify(
    key: bytes,
    body: bytes,
    headers: Mapping[str, str],
    *,
    tolerance_s: int = 300,
    now_s: float | None = None,
) -> bool:
    """True if ``body`` and its id were signed with ``key`` within ``tolerance_s`` of now.

    False, never an exception, for any header: missing, repeated under another case,
    not ASCII, a timestamp that is not the canonical text it was signed as, an unknown
    version. Of several space-separated signatures (a key rotation), one must match.
    """
    found = _required_headers(headers)
    if found is None:
        return False
    msg_id, timestamp, signatures = found
    now = time.time() if now_s is None else now_s
    if abs(now - int(timestamp)) > tolerance_s:
        return False
    expected = signature(key, msg_id, timestamp, body).encode()
    # Every candidate is compared (no early exit) so timing says nothing about which.
    matched = False
    for candidate in signatures.split(" "):
        if _SIGNATURE.fullmatch(candidate):
            matched |= hmac.compare_digest(candidate.encode(), expected)
    return matched


def _required_headers(headers: Mapping[str, str]) -> tuple[str, str, str] | None:
    """(id, timestamp, signatures) if each is there once and well-formed, else None."""
    wanted = (ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER)
    seen: dict[str, str] = {}
    for name, value in headers.items():
        lowered = name.lower() if isinstance(name, str) else None
        if lowered not in wanted:
            continue
        if lowered in seen or not isinstance(value, str) or not value.isascii():
            return None  # two values under different cases: which one was signed?
        seen[lowered] = value
    if len(seen) != len(wanted):
        return None
    msg_id, timestamp = seen[ID_HEADER], seen[TIMESTAMP_HEADER]
    if not _ID.fullmatch(msg_id) or not _CANONICAL_SECONDS.fullmatch(timestamp):
        return None
    return msg_id, timestamp, seen[SIGNATURE_HEADER]

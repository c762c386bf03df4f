"""HMAC-SHA256 signatures of webhook deliveries, and how a receiver checks them.

Headers of every delivery::

    Calmon-Timestamp: 1732262400                 (Unix seconds, at this attempt)
    Calmon-Signature: v1=<hex HMAC-SHA256(key, "<timestamp>." + body)>
    Calmon-Idempotency-Key: <alert id>:<webhook>  (the same on every retry)

A receiver recomputes the MAC over the raw body, compares in constant time, rejects
timestamps outside its tolerance (replays), and de-duplicates on the idempotency key.
"""

from __future__ import annotations

import hashlib
import hmac
import time

TIMESTAMP_HEADER = "Calmon-Timestamp"
SIGNATURE_HEADER = "Calmon-Signature"
IDEMPOTENCY_HEADER = "Calmon-Idempotency-Key"
VERSION = "v1"


def signature(key: bytes, timestamp: int, body: bytes) -> str:
    mac = hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"{VERSION}={mac.hexdigest()}"


def signed_headers(key: bytes, body: bytes, idempotency_key: str, now_s: int) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: str(now_s),
        SIGNATURE_HEADER: signature(key, now_s, body),
        IDEMPOTENCY_HEADER: idempotency_key,
    }


def verify(
    key: bytes,
    body: bytes,
    headers: dict[str, str],
    *,
    tolerance_s: int = 300,
    now_s: float | None = None,
) -> bool:
    """True if the body was signed with ``key`` within ``tolerance_s`` of now."""
    lowered = {name.lower(): value for name, value in headers.items()}
    try:
        timestamp = int(lowered[TIMESTAMP_HEADER.lower()])
        given = lowered[SIGNATURE_HEADER.lower()]
    except (KeyError, ValueError):
        return False
    now = time.time() if now_s is None else now_s
    if abs(now - timestamp) > tolerance_s:
        return False
    return hmac.compare_digest(given, signature(key, timestamp, body))

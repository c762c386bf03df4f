"""Exact conversions between RFC 3339 times and epoch milliseconds.

One place for them: message timestamps (ingest), the config's reference period and the
command line all truncate to the millisecond the same way, without a float in between
(seconds * 1000 as a float rounds some microseconds).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)


def epoch_ms(moment: datetime) -> int:
    """Whole milliseconds since the epoch of an aware datetime, truncated."""
    return (moment - _EPOCH) // _MILLISECOND


def parse_time_ms(text: str) -> int:
    """Epoch milliseconds of an RFC 3339 time with a UTC offset (command-line times)."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an RFC 3339 time") from None
    if parsed.tzinfo is None:
        raise ValueError(f"{text!r} needs a UTC offset (e.g. 2026-01-01T00:00:00Z)")
    return epoch_ms(parsed)

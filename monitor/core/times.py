"""Time, in one place: the wall clock and exact conversions between formats.

Times travel as epoch milliseconds (UTC) everywhere inside calmon: message timestamps,
bucket edges, stored rows. Conversions truncate to the millisecond the same way, without
a float in between (seconds * 1000 as a float rounds some microseconds).

>>> to_datetime(1_795_428_000_123).isoformat()
'2026-11-23T10:00:00.123000+00:00'
>>> epoch_ms(to_datetime(1_795_428_000_123))
1795428000123
>>> iso_z(1_795_428_000_000)
'2026-11-23T10:00:00Z'
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)


def wall_clock_ms() -> int:
    """Now, in epoch milliseconds: the production default of every injected clock."""
    return time.time_ns() // 1_000_000


def epoch_ms(moment: datetime) -> int:
    """Whole milliseconds since the epoch of an aware datetime, truncated."""
    return (moment - _EPOCH) // _MILLISECOND


def to_datetime(ms: int) -> datetime:
    """The aware UTC datetime of an epoch-milliseconds time, exactly."""
    return _EPOCH + timedelta(milliseconds=ms)


def iso_z(ms: int) -> str:
    """RFC 3339 with a ``Z`` (Alertmanager's and most receivers' preferred form)."""
    return to_datetime(ms).isoformat().replace("+00:00", "Z")


def parse_time_ms(text: str) -> int:
    """Epoch milliseconds of an RFC 3339 time with a UTC offset (command-line times)."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an RFC 3339 time") from None
    if parsed.tzinfo is None:
        raise ValueError(f"{text!r} needs a UTC offset (e.g. 2026-01-01T00:00:00Z)")
    return epoch_ms(parsed)

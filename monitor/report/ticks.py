"""Axis ticks a reader can use: values at round steps (1, 2 or 5 times a power of ten)
and times at round durations (a minute, 15 minutes, 6 hours, a day...), each time label
saying only what changed since the one before it, so no two labels of an axis read alike.

>>> nice_ticks(0.0, 0.093)
[0.0, 0.02, 0.04, 0.06, 0.08, 0.1]
>>> [label for _, label in time_ticks(1_790_000_000_000, 1_790_007_200_000)]
['Sep 21 14:30', '15:00', '15:30', '16:00']
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

#: Tick steps, as multiples of a power of ten.
_MULTIPLES = (1.0, 2.0, 5.0, 10.0)

SECOND, MINUTE, HOUR, DAY = 1_000, 60_000, 3_600_000, 86_400_000
#: Round durations a time axis steps by, smallest first.
TIME_STEPS_MS = (
    *(s * SECOND for s in (1, 2, 5, 10, 15, 30)),
    *(m * MINUTE for m in (1, 2, 5, 10, 15, 30)),
    *(h * HOUR for h in (1, 2, 3, 6, 12)),
    *(d * DAY for d in (1, 2, 7, 14, 28)),
)


def nice_step(span: float, count: int = 5) -> float:
    """The smallest round step (1, 2 or 5 x 10^k) that covers ``span`` in ``count`` steps."""
    raw = span / max(count, 1)
    power = 10.0 ** math.floor(math.log10(raw))
    return next(m * power for m in _MULTIPLES if m * power >= raw * (1 - 1e-9))


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round ticks from at or below ``low`` to at or above ``high``: an axis drawn from
    the first to the last tick holds the data and starts and ends on a labelled value."""
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"axis range must be finite, got {low}, {high}")
    if high - low <= max(1e-12 * max(abs(low), abs(high)), 1e-290):  # one value
        high = low + (abs(low) if abs(low) > 1e-100 else 1.0)
    step = nice_step(high - low, count)
    first, last = math.floor(low / step + 1e-9), math.ceil(high / step - 1e-9)
    decimals = max(0, -math.floor(math.log10(step)) + 1)
    return [round(i * step, decimals) + 0.0 for i in range(first, last + 1)]


def tick_format(ticks: list[float]) -> str:
    """The format showing every tick with the decimals its step needs, no more."""
    if len(ticks) < 2:
        return "{:g}"
    step = abs(ticks[1] - ticks[0])
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    return f"{{:,.{decimals}f}}"


@dataclass(frozen=True)
class TimeAxis:
    """Ticks of a time axis, in epoch ms, with their labels."""

    step_ms: int
    ticks: list[tuple[int, str]]


def time_ticks(start_ms: int, end_ms: int, count: int = 6) -> list[tuple[int, str]]:
    return time_axis(start_ms, end_ms, count).ticks


def time_axis(start_ms: int, end_ms: int, count: int = 6) -> TimeAxis:
    """At most ``count`` ticks inside [start, end], at multiples of a round step (UTC)."""
    span = max(end_ms - start_ms, SECOND)
    step = next((s for s in TIME_STEPS_MS if span / s <= count), None)
    if step is None:  # longer than count x 28 days: whole multiples of 28 days
        step = 28 * DAY * math.ceil(span / (count * 28 * DAY))
    first = -(-start_ms // step) * step
    times = list(range(first, end_ms + 1, step)) or [start_ms]
    return TimeAxis(step, _labelled(times, step))


def _labelled(times: list[int], step_ms: int) -> list[tuple[int, str]]:
    """Each label shows the time at the step's resolution, and the date on the first
    tick and where the day changes; the year on the first tick and where it changes,
    for whole days. An axis longer than a day, where a time of day would come back,
    shows the date on every tick: no two labels of an axis read alike."""
    clock = "%H:%M:%S" if step_ms < MINUTE else "%H:%M"
    moments = [datetime.fromtimestamp(at / 1000, tz=UTC) for at in times]
    every_date = step_ms < DAY and len({m.strftime(clock) for m in moments}) < len(moments)
    labelled: list[tuple[int, str]] = []
    previous: datetime | None = None
    for at, moment in zip(times, moments, strict=True):
        parts = []
        if every_date or previous is None or moment.date() != previous.date():
            parts.append(moment.strftime("%b %d"))
        if step_ms >= DAY and (previous is None or moment.year != previous.year):
            parts[-1] += moment.strftime(" %Y")
        if step_ms < DAY:
            parts.append(moment.strftime(clock))
        labelled.append((at, " ".join(parts)))
        previous = moment
    return labelled

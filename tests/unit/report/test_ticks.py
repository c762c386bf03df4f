"""Axis ticks fall on round values: value steps of 1, 2 or 5 times a power of ten, time
steps of round durations, and time labels that never repeat on one axis."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.report.model import Line, TimeChart
from monitor.report.ticks import TIME_STEPS_MS, nice_ticks, tick_format, time_axis

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


def _is_round_step(step: float) -> bool:
    mantissa = step / 10 ** math.floor(math.log10(step) + 1e-12)
    return any(math.isclose(mantissa, m, rel_tol=1e-9) for m in (1, 2, 5, 10))


@given(finite, finite)
def test_value_ticks_are_multiples_of_a_round_step_and_cover_the_range(a: float, b: float) -> None:
    low, high = min(a, b), max(a, b)
    ticks = nice_ticks(low, high)
    step = ticks[1] - ticks[0]
    assert _is_round_step(step), (low, high, ticks)
    for tick in ticks:
        assert math.isclose(tick / step, round(tick / step), abs_tol=1e-6), (tick, step)
    # Covered up to a millionth of a step (a tick is not added for rounding noise).
    assert ticks[0] <= low + 1e-6 * step
    if high > low:
        assert ticks[-1] >= high - 1e-6 * step
    assert 2 <= len(ticks) <= 12


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (0.0, 1.0, [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]),
        (0.0, 0.093, [0.0, 0.02, 0.04, 0.06, 0.08, 0.1]),
        (0.61, 0.87, [0.6, 0.7, 0.8, 0.9]),
        (0.0, 12_345.0, [0.0, 5_000.0, 10_000.0, 15_000.0]),
        (-0.3, 0.2, [-0.3, -0.2, -0.1, 0.0, 0.1, 0.2]),
    ],
)
def test_value_ticks_by_hand(low: float, high: float, expected: list[float]) -> None:
    assert nice_ticks(low, high) == expected  # exact: no 0.30000000000000004


def test_tick_labels_carry_the_decimals_of_the_step() -> None:
    assert [tick_format([0.0, 0.02]).format(t) for t in (0.0, 0.02)] == ["0.00", "0.02"]
    assert tick_format([0.0, 5_000.0]).format(15_000.0) == "15,000"


@given(
    st.integers(min_value=946_684_800_000, max_value=4_102_444_800_000),
    st.integers(min_value=1_000, max_value=400 * 86_400_000),
)
def test_time_ticks_are_round_and_their_labels_unique(start: int, span: int) -> None:
    axis = time_axis(start, start + span)
    times = [t for t, _ in axis.ticks]
    labels = [label for _, label in axis.ticks]
    assert axis.step_ms in TIME_STEPS_MS or axis.step_ms % (28 * 86_400_000) == 0
    assert all(t % axis.step_ms == 0 for t in times)  # multiples of the step (UTC)
    assert all(start <= t <= start + span for t in times)
    assert len(labels) == len(set(labels)), labels
    assert 1 <= len(times) <= 7


def test_time_labels_show_the_date_only_where_it_changes() -> None:
    start = int(datetime(2026, 9, 21, 20, 0, tzinfo=UTC).timestamp() * 1000)
    labels = [label for _, label in time_axis(start, start + 8 * 3_600_000).ticks]
    assert labels == ["Sep 21 20:00", "22:00", "Sep 22 00:00", "02:00", "04:00"]
    seconds = [label for _, label in time_axis(start, start + 90_000).ticks]
    assert seconds[0] == "Sep 21 20:00:00" and seconds[1] == "20:00:15"
    days = [label for _, label in time_axis(start, start + 10 * 86_400_000).ticks]
    assert days[0] == "Sep 22 2026" and days[1] == "Sep 24"


def test_a_chart_starts_at_zero_but_a_dip_below_zero_gets_no_empty_step() -> None:
    def chart(*values: float) -> TimeChart:
        points = tuple((i * 60_000, v) for i, v in enumerate(values))
        return TimeChart("c", "t", "y", (Line("ece", points, "#000"),))

    assert chart(0.012, 0.147).y_limits() == (0.0, 0.15)
    assert chart(0.012, 0.147).y_ticks() == [0.0, 0.05, 0.1, 0.15]
    low, high = chart(-0.005, 0.147).y_limits()
    assert -0.011 < low < -0.005 and high == 0.15  # not -0.05: a whole empty step
    assert chart(-0.005, 0.147).y_ticks() == [0.0, 0.05, 0.1, 0.15]

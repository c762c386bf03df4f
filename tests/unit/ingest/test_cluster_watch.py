"""One log line per change of the Kafka cluster's state, whatever the outage's length."""

from __future__ import annotations

import logging

import pytest

from monitor.ingest.cluster import ClusterWatch


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def run(watch: ClusterWatch, clock: FakeClock, seconds: float, problem: str | None) -> None:
    """The ingest loop observing every 200 ms for ``seconds``."""
    end = clock.now + seconds
    while clock.now < end:
        watch.observe(problem)
        clock.now += 0.2


def messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "monitor.ingest.cluster"]


def test_outages_long_and_short_are_one_line_each_way(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    watch = ClusterWatch(timeout_s=15, clock=clock)
    with caplog.at_level(logging.INFO, logger="monitor.ingest.cluster"):
        run(watch, clock, 5, "not a member of the consumer group yet")  # joining
        run(watch, clock, 60, None)
        run(watch, clock, 600, "no heartbeat answered by the Kafka cluster for 16 s")
        run(watch, clock, 30, None)
        run(watch, clock, 20, "no heartbeat answered by the Kafka cluster for 16 s")
        run(watch, clock, 1, None)
    assert messages(caplog) == [
        "connected to the Kafka cluster",
        "Kafka cluster unreachable; ingest resumes when it is back",
        "Kafka cluster reachable again",
        "Kafka cluster unreachable; ingest resumes when it is back",
        "Kafka cluster reachable again",
    ]
    back = [r for r in caplog.records if r.getMessage() == "Kafka cluster reachable again"]
    # Counted from the last answer, not from when the outage was noticed.
    assert back[0].unreachable_for_s == pytest.approx(600, abs=0.5)  # type: ignore[attr-defined]


def test_a_start_up_that_never_joins_is_an_outage_after_the_timeout(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    watch = ClusterWatch(timeout_s=15, clock=clock)
    with caplog.at_level(logging.INFO, logger="monitor.ingest.cluster"):
        run(watch, clock, 14.5, "not a member of the consumer group yet")
        assert messages(caplog) == []
        run(watch, clock, 60, "not a member of the consumer group yet")
    assert messages(caplog) == ["Kafka cluster unreachable; ingest resumes when it is back"]

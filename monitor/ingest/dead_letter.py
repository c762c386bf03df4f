"""Forward invalid messages, unchanged, to the dead-letter topic with their reason.

The original key and value are kept; the reason, the detail and where the message came
from travel in headers (``calmon-reason``, ``calmon-detail``, ``calmon-source-topic``,
``calmon-source-partition``, ``calmon-source-offset``), so a fixed message can be
replayed to its source topic as is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kafka.consumer.fetcher import ConsumerRecord


@dataclass(frozen=True)
class Rejected:
    record: ConsumerRecord
    reason: str
    detail: str


class DeadLetterError(RuntimeError):
    """The dead-letter topic did not acknowledge every message."""


def forward(producer: Any, topic: str, rejected: list[Rejected], timeout_s: float) -> None:
    """Send and wait for every acknowledgement; raise if any failed."""
    futures = [
        producer.send(
            topic,
            key=item.record.key,
            value=item.record.value,
            headers=[
                ("calmon-reason", item.reason.encode()),
                ("calmon-detail", item.detail.encode()[:1000]),
                ("calmon-source-topic", item.record.topic.encode()),
                ("calmon-source-partition", str(item.record.partition).encode()),
                ("calmon-source-offset", str(item.record.offset).encode()),
            ],
        )
        for item in rejected
    ]
    producer.flush(timeout=timeout_s)
    for future in futures:
        try:
            future.get(timeout=timeout_s)
        except Exception as exc:
            raise DeadLetterError(f"dead-letter topic {topic!r}: {exc}") from exc

"""An alert's state: what the rules engine computes, the store keeps and the alerts
package sends.

An alert is one rule on one series. Its fingerprint names it across restarts and
replicas; its ``alert_id`` names one firing episode (a new one each time it fires).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from monitor.core.series import SeriesWindow

State = Literal["pending", "firing", "resolved"]


@dataclass(frozen=True)
class AlertState:
    rule: str
    series: SeriesWindow
    state: State
    active_since_ms: int
    fired_ms: int | None = None
    resolved_ms: int | None = None
    #: The metric values of the last evaluation that had evidence.
    values: Mapping[str, float] = field(default_factory=dict)
    #: The class of a multi-class series a rule on per-class metrics watches (one alert
    #: per class); None for every other alert.
    class_name: str | None = None

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.rule, self.series, self.class_name)

    @property
    def alert_id(self) -> str:
        """Identifies one firing episode: stable across restarts and replicas."""
        digest = hashlib.sha256(f"{self.fingerprint}:{self.fired_ms}".encode())
        return digest.hexdigest()[:24]


def fingerprint(rule: str, series: SeriesWindow, class_name: str | None = None) -> str:
    parts = (rule, series.model, series.model_version, series.segment, series.window)
    key = "\x1f".join(parts if class_name is None else (*parts, class_name))
    return hashlib.sha256(key.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class StoredAlert:
    """An alert as stored: its state, and the labels and annotations rendered when it
    last changed (as Alertmanager is sent them)."""

    state: AlertState
    labels: dict[str, str]
    annotations: dict[str, str]
    last_sent_ms: int | None

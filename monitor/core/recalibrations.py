"""A recommended calibrator, from the webhook that handed it over to its verdict."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from monitor.core.series import SeriesWindow

RecalibrationState = Literal["awaiting", "verified", "failed", "expired"]
STATES: tuple[RecalibrationState, ...] = ("awaiting", "verified", "failed", "expired")


@dataclass(frozen=True)
class Recalibration:
    alert_id: str
    #: The series whose alert fired (its version is the one the calibrator corrects).
    series: SeriesWindow
    fired_ms: int
    webhooks: tuple[str, ...]
    #: The triggering window: ``ece`` ({value, lower, upper}), ``log_loss``, ``labelled``.
    before: Mapping[str, Any]
    #: The webhook's ``recalibration`` object (artifact and candidates' scores).
    recommendation: Mapping[str, Any]
    state: RecalibrationState = "awaiting"
    outcome: Mapping[str, Any] | None = None
    decided_ms: int | None = None

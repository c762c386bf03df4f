"""Recalibrate, retrain or neither, for an evaluated window: the window's labelled
events against those of its drift reference period (``metrics/action.py`` decides).

The reference period is the one the result's drift was measured against (a snapshot's,
the fixed period, or the trailing window before), read from the stored aggregates as
a window is; so the comparison is with the period the user already calls "normal".
"""

from __future__ import annotations

import zlib
from typing import Any

from monitor.core.results import WindowResult
from monitor.core.series import ALL
from monitor.core.times import epoch_ms
from monitor.metrics.action import NONE, recommend_action
from monitor.metrics.aggregates import EventAggregate
from monitor.settings import EvaluationSettings
from monitor.store.aggregates import load_window
from monitor.store.db.engine import Engine


def recommended_action(
    engine: Engine, result: WindowResult, settings: EvaluationSettings
) -> dict[str, Any]:
    """``{"recommendation": "recalibrate" | "retrain" | "none", "evidence": {...}}``."""
    reference = result.reference
    if reference is None:
        return _not_compared("this series has no reference period (a merged __other__ segment)")
    series = result.series
    now = epoch_ms(result.evaluated_at)

    def labelled(start_ms: int, end_ms: int) -> EventAggregate:
        return load_window(
            engine,
            model_id=series.model,
            model_version=None if series.model_version == ALL else series.model_version,
            segment=series.segment,
            start_ms=start_ms,
            end_ms=end_ms,
            now_ms=now,
        ).aggregate

    current = labelled(epoch_ms(result.window_start), epoch_ms(result.window_end))
    before = labelled(epoch_ms(reference.start), epoch_ms(reference.end))
    period = {
        "source": reference.source,
        "start": reference.start.isoformat(),
        "end": reference.end.isoformat(),
        "labelled": before.n_labelled,
    }
    if before.n_labelled < settings.min_labelled or current.n_labelled < settings.min_labelled:
        return _not_compared(
            f"the reference period has {before.n_labelled} labelled events and the window "
            f"{current.n_labelled}; each needs evaluation.min_labelled ({settings.min_labelled})",
            period,
        )
    found = recommend_action(
        current,
        before,
        n_bins=settings.n_bins,
        resamples=max(settings.bootstrap_resamples, 200),
        seed=zlib.crc32(repr(series).encode()),
    )
    return {
        "recommendation": found.action,
        "evidence": {"status": "compared", "reference": period, **found.to_json()},
    }


def _not_compared(reason: str, period: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "recommendation": NONE,
        "evidence": {"status": "unavailable", "reasons": [reason], "reference": period},
    }

"""Reference versus current distributions of raw scores and probabilities, from the
stored reference profile and the window's aggregate, and the caption naming the
reference the drift values were measured against."""

from __future__ import annotations

import numpy as np

from monitor.core.results import ReferenceUsed, WindowResult
from monitor.core.series import ALL
from monitor.metrics.drift import DISTRIBUTIONS, cell_values
from monitor.report.model import Distribution
from monitor.settings import Settings
from monitor.store.aggregates import load_window
from monitor.store.db.engine import Engine
from monitor.windows.references import ReferenceResolver

REFERENCE_SOURCES = {
    "snapshot": "the snapshot stored with calmon baseline",
    "file": "the reference file given to calmon evaluate",
    "period": "the reference period of the file given to calmon evaluate",
    "fixed": "the reference period fixed in the config",
    "trailing": "the window of the same length just before this one",
}
#: Bins of the step charts.
STEPS = 40


def reference_caption(used: ReferenceUsed) -> str:
    """Which reference the drift values and charts compare against, and its period."""
    # Seconds only when the period has them: the demo's 45 s baseline read "21:17 to 21:17".
    seconds = used.start.second or used.end.second
    shown = "%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M"
    return (
        f"Drift is measured against {REFERENCE_SOURCES[used.source]}: "
        f"{used.start:{shown}} to {used.end:{shown}} UTC."
    )


def distributions(
    engine: Engine, settings: Settings, result: WindowResult
) -> tuple[tuple[Distribution, ...], str]:
    """The two distribution charts of ``result``'s window, and the reference caption."""
    series = result.series
    start_ms = int(result.window_start.timestamp() * 1000)
    end_ms = int(result.window_end.timestamp() * 1000)
    # Evaluated as the window job did, at the result's time, so the edges fall alike.
    now_ms = int(result.evaluated_at.timestamp() * 1000)
    resolved = ReferenceResolver(engine, settings.reference, now_ms=now_ms).resolve(
        series.model, series.model_version, series.segment, start_ms, end_ms
    )
    current = load_window(
        engine,
        model_id=series.model,
        model_version=None if series.model_version == ALL else series.model_version,
        segment=series.segment,
        start_ms=start_ms,
        end_ms=end_ms,
        now_ms=now_ms,
    ).aggregate
    charts = []
    for kind in DISTRIBUTIONS:
        reference = resolved.references.get(kind)
        histogram = current.scores if kind == "raw_score" else current.probabilities
        chart = Distribution(
            f"distribution-{kind.replace('_', '-')}",
            f"{kind.replace('_', ' ')}: reference vs current",
            kind.replace("_", " "),
        )
        if reference is not None and histogram.keys.size:
            chart = _steps(
                chart,
                (cell_values(kind, reference.cell_keys), reference.cell_counts),
                (cell_values(kind, histogram.keys), histogram.values[:, 0]),
            )
        charts.append(chart)
    # The caption names what the drift values were measured against; a baseline taken
    # since then would show in the charts, which are drawn from the store as it is now.
    used = result.reference if result.reference is not None else resolved.used()
    return tuple(charts), reference_caption(used)


def _steps(
    chart: Distribution,
    reference: tuple[np.ndarray, np.ndarray],
    current: tuple[np.ndarray, np.ndarray],
) -> Distribution:
    (ref_values, ref_weights), (cur_values, cur_weights) = reference, current
    low, high = _weighted_range(
        np.concatenate([ref_values, cur_values]),
        np.concatenate([ref_weights / ref_weights.sum(), cur_weights / cur_weights.sum()]),
    )
    edges = np.linspace(low, high, STEPS + 1)

    def shares(values: np.ndarray, weights: np.ndarray) -> tuple[float, ...]:
        counts = np.histogram(np.clip(values, low, high), edges, weights=weights)[0]
        return tuple((counts / weights.sum()).tolist())

    return Distribution(
        chart.chart_id,
        chart.title,
        chart.x_label,
        tuple(edges.tolist()),
        shares(ref_values, ref_weights),
        shares(cur_values, cur_weights),
        f"reference ({int(ref_weights.sum()):,})",
        f"current ({int(cur_weights.sum()):,})",
    )


def _weighted_range(values: np.ndarray, weights: np.ndarray) -> tuple[float, float]:
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order]) / weights.sum()
    low = values[order][np.searchsorted(cumulative, 0.005)]
    high = values[order][min(int(np.searchsorted(cumulative, 0.995)), values.size - 1)]
    return (float(low), float(high)) if high > low else (float(low), float(low) + 1.0)

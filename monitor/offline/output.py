"""Results as a table for people, JSON or CSV for programs."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from monitor.core.results import WindowResult
from monitor.core.series import ALL
from monitor.windows.metric_names import ALL_KEYS, DRIFT, DRIFT_VOLUME, LABELLED, VOLUME

#: The columns of the table on stdout; JSON and CSV have every metric.
TABLE_COLUMNS = (
    "ece",
    "ece_ci_upper",
    "brier_score",
    "log_loss",
    "calibration_slope",
    "psi_raw_score",
    "psi_probability",
    "ks_pvalue_raw_score",
)
SHOWN_NAMES = {ALL: "(all)"}


def metric_order() -> list[str]:
    """Every metric key, in the order of docs/operations.md's table."""
    ordered = [*VOLUME, *LABELLED]
    ordered += [f"{m}_{d}" for m in (*DRIFT, *DRIFT_VOLUME) for d in ("raw_score", "probability")]
    return ordered + sorted(ALL_KEYS - set(ordered))


def _window(result: WindowResult) -> str:
    return f"{result.window_start:%Y-%m-%d %H:%M}..{result.window_end:%Y-%m-%d %H:%M}"


def format_table(results: Sequence[WindowResult]) -> str:
    header = ["model", "version", "segment", "window", "predictions", "labelled", *TABLE_COLUMNS]
    rows = [header]
    for r in results:
        cells = [
            r.series.model,
            SHOWN_NAMES.get(r.series.model_version, r.series.model_version),
            SHOWN_NAMES.get(r.series.segment, r.series.segment),
            _window(r),
            f"{r.predictions:,}",
            f"{r.labelled:,}",
        ]
        cells += [f"{r.values[c]:.4f}" if c in r.values else "-" for c in TABLE_COLUMNS]
        rows.append(cells)
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(
            cell.rjust(w) if i >= 4 else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]
    return "\n".join(lines)


def result_json(result: WindowResult) -> dict[str, Any]:
    return {
        "model_id": result.series.model,
        "model_version": result.series.model_version,
        "segment": result.series.segment,
        "window": result.series.window,
        "window_start": result.window_start.isoformat(),
        "window_end": result.window_end.isoformat(),
        "predictions": result.predictions,
        "labelled": result.labelled,
        "values": {k: result.values[k] for k in metric_order() if k in result.values},
        "reliability_bins": [asdict(b) for b in result.reliability_bins],
        "drift_bins": [asdict(b) for b in result.drift_bins],
        "reference": None if result.reference is None else result.reference.to_json(),
    }


def format_json(results: Sequence[WindowResult], extra: dict[str, Any]) -> str:
    return json.dumps({**extra, "results": [result_json(r) for r in results]}, indent=2)


def format_csv(results: Sequence[WindowResult]) -> str:
    """One row per series and window, one column per metric (empty: not computed)."""
    keys = metric_order()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        [
            "model_id",
            "model_version",
            "segment",
            "window_start",
            "window_end",
            "predictions",
            "labelled",
            *keys,
        ]
    )
    for r in results:
        writer.writerow(
            [
                r.series.model,
                r.series.model_version,
                r.series.segment,
                r.window_start.isoformat(),
                r.window_end.isoformat(),
                r.predictions,
                r.labelled,
                *(repr(r.values[k]) if k in r.values else "" for k in keys),
            ]
        )
    return out.getvalue()

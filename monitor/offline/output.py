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
from monitor.windows.metric_names import (
    ALL_KEYS,
    CLASS_LABELLED,
    CLASS_METRICS,
    DRIFT,
    DRIFT_VOLUME,
    LABELLED,
    MULTICLASS_ONLY_KEYS,
    VOLUME,
)

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
#: The table's columns for a multi-class series (its own metrics, ``log_loss`` and
#: ``accuracy_score`` over its classes), and its table of classes, one-vs-rest.
MULTICLASS_TABLE_COLUMNS = (
    "top_label_ece",
    "classwise_ece",
    "multiclass_brier_score",
    "log_loss",
    "accuracy_score",
    "psi_confidence",
)
CLASS_TABLE_COLUMNS = (
    "class_ece",
    "class_brier_score",
    "class_roc_auc_score",
    "class_observed_ratio",
    "class_mean_predicted",
    "class_psi",
)
SHOWN_NAMES = {ALL: "(all)"}


def metric_order() -> list[str]:
    """Every metric key, in the order of docs/operations.md's table."""
    ordered = [*VOLUME, *LABELLED]
    ordered += [f"{m}_{d}" for m in (*DRIFT, *DRIFT_VOLUME) for d in ("raw_score", "probability")]
    return ordered + sorted(ALL_KEYS - set(ordered))


def class_metric_order() -> list[str]:
    """Every per-class key: the labelled ones, then drift (``CLASS_METRICS``' order)."""
    return [*CLASS_LABELLED, *(k for k in CLASS_METRICS if k not in CLASS_LABELLED)]


def has_classes(results: Sequence[WindowResult]) -> bool:
    """Whether a result is of a multi-class series (outputs then have a ``class`` column)."""
    return any(r.classes for r in results)


def _is_multiclass(result: WindowResult) -> bool:
    return bool(result.classes) or any(k in MULTICLASS_ONLY_KEYS for k in result.values)


def _window(result: WindowResult) -> str:
    return f"{result.window_start:%Y-%m-%d %H:%M}..{result.window_end:%Y-%m-%d %H:%M}"


def format_table(results: Sequence[WindowResult]) -> str:
    """The main metrics, one row per series and window; with multi-class series, their
    metrics as columns too and a second table of their classes."""
    multiclass = [_is_multiclass(r) for r in results]
    binary = TABLE_COLUMNS if not all(multiclass) or not results else ()
    columns = [
        *binary,
        *(c for c in MULTICLASS_TABLE_COLUMNS if any(multiclass) and c not in binary),
    ]
    header = ["model", "version", "segment", "window", "predictions", "labelled", *columns]
    rows = [header]
    for r in results:
        cells = [*_keys(r), f"{r.predictions:,}", f"{r.labelled:,}"]
        cells += [_number(r.values.get(c)) for c in columns]
        rows.append(cells)
    table = _aligned(rows, first_number=4)
    if not has_classes(results):
        return table
    class_rows = [["model", "version", "segment", "window", "class", *CLASS_TABLE_COLUMNS]]
    for r in results:
        for name, found in sorted(r.classes.items()):
            cells = [*_keys(r), name, *(_number(found.values.get(c)) for c in CLASS_TABLE_COLUMNS)]
            class_rows.append(cells)
    return table + "\n\nPer class (one-vs-rest):\n" + _aligned(class_rows, first_number=5)


def _keys(r: WindowResult) -> list[str]:
    return [
        r.series.model,
        SHOWN_NAMES.get(r.series.model_version, r.series.model_version),
        SHOWN_NAMES.get(r.series.segment, r.series.segment),
        _window(r),
    ]


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _aligned(rows: list[list[str]], *, first_number: int) -> str:
    """Text columns left-aligned, numbers (from ``first_number`` on) right-aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            cell.rjust(w) if i >= first_number else cell.ljust(w)
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
        # A multi-class series' classes, one-vs-rest (empty for a binary series).
        "classes": {
            name: {
                "values": {k: found.values[k] for k in class_metric_order() if k in found.values},
                "reliability_bins": [asdict(b) for b in found.reliability_bins],
            }
            for name, found in sorted(result.classes.items())
        },
    }


def format_json(results: Sequence[WindowResult], extra: dict[str, Any]) -> str:
    return json.dumps({**extra, "results": [result_json(r) for r in results]}, indent=2)


def format_csv(results: Sequence[WindowResult]) -> str:
    """One row per series and window, one column per metric (empty: not computed). With
    multi-class series, a ``class`` column: each such series' row (``class`` empty) is
    followed by one row per class with its per-class values (``class_*`` columns)."""
    keys = metric_order()
    classes = has_classes(results)
    class_keys = class_metric_order() if classes else []
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        [
            "model_id",
            "model_version",
            "segment",
            *(["class"] if classes else []),
            "window_start",
            "window_end",
            "predictions",
            "labelled",
            *keys,
            *class_keys,
        ]
    )
    for r in results:
        series = [r.series.model, r.series.model_version, r.series.segment]
        times = [r.window_start.isoformat(), r.window_end.isoformat(), r.predictions, r.labelled]
        writer.writerow(
            [
                *series,
                *([""] if classes else []),
                *times,
                *(repr(r.values[k]) if k in r.values else "" for k in keys),
                *("" for _ in class_keys),
            ]
        )
        for name, found in sorted(r.classes.items()):
            writer.writerow(
                [
                    *series,
                    name,
                    *times,
                    *("" for _ in keys),
                    *(repr(found.values[k]) if k in found.values else "" for k in class_keys),
                ]
            )
    return out.getvalue()

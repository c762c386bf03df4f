"""`calmon compute --once`: evaluate every window now and print a table."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from monitor.commands.common import add_config_argument, settings_from

if TYPE_CHECKING:
    from monitor.core.results import WindowResult

COLUMNS = (
    "ece",
    "brier_score",
    "log_loss",
    "psi_raw_score",
    "psi_probability",
    "ks_pvalue_raw_score",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument(
        "--once", action="store_true", required=True, help="evaluate once and exit (required)"
    )
    parser.add_argument("--model", help="only print this model's series")


def format_table(results: list[WindowResult], model: str | None = None) -> str:
    header = ["model", "version", "segment", "window", "predictions", "labelled", *COLUMNS]
    rows = [header]
    for r in sorted(results, key=lambda r: r.series):
        if model and r.series.model != model:
            continue
        cells = [r.series.model, r.series.model_version, r.series.segment, r.series.window]
        cells += [str(r.predictions), str(r.labelled)]
        cells += [f"{r.values[c]:.4f}" if c in r.values else "-" for c in COLUMNS]
        rows.append(cells)
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows
    )


def run(args: argparse.Namespace) -> int:
    # Imported here, not at the top, so that `--help` does not wait for it (monitor/cli.py).
    from prometheus_client import CollectorRegistry

    from monitor.app import App, SchemaNotReady

    try:
        app = App(settings_from(args), registry=CollectorRegistry())
    except SchemaNotReady as problem:
        print(f"calmon compute: {problem}")
        return 2
    results: list[WindowResult] = []
    for job in app.jobs:
        results += job.evaluate_now(app.clock_ms())
    print(format_table(results, args.model))
    print("('-': insufficient samples or no reference; see evaluation.min_labelled)")
    return 0

"""`calmon recalibrate`: fit, validate and compare the candidate calibrators of a series'
window ending now; print the comparison and write the recommended artifact."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from monitor.commands.common import add_config_argument, settings_from
from monitor.core.errors import UserError


class UnknownWindow(UserError, ValueError):
    """--window names no configured window."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument("--model", required=True, help="model_id")
    parser.add_argument("--version", help="model_version (default: all versions, __all__)")
    parser.add_argument("--segment", help="key=value, e.g. region=eu (default: whole model)")
    parser.add_argument("--window", default="24h", help="configured window name (default 24h)")
    parser.add_argument(
        "--out", type=Path, help="write the recommended artifact (calmon.calibrator/v2) here"
    )


def run(args: argparse.Namespace) -> int:
    # Imported here, not at the top, so that `--help` does not wait for it (monitor/cli.py).
    from monitor.core.series import ALL, SeriesWindow
    from monitor.core.times import to_datetime
    from monitor.store.db.engine import make_engine
    from monitor.windows.recalibration import recalibration

    settings = settings_from(args)
    windows = {w.name: w for w in settings.windows}
    if args.window not in windows:
        raise UnknownWindow(
            f"--window {args.window!r} is not configured; windows: {sorted(windows)}"
        )
    if args.segment is not None and "=" not in args.segment:
        raise UserError(f"--segment must be key=value, got {args.segment!r}")
    now = int(time.time() * 1000)
    series = SeriesWindow(args.model, args.version or ALL, args.segment or ALL, args.window)
    engine = make_engine(settings.store.url.get_secret_value())
    try:
        result = recalibration(
            engine,
            series,
            window_start=to_datetime(now - int(windows[args.window].length * 1000)),
            window_end=to_datetime(now),
            evaluated_at=to_datetime(now),
            settings=settings.evaluation,
        )
    finally:
        engine.dispose()
    if result["status"] != "recommended":
        print(f"no recalibration for {_name(series)}: {result['reason']}")
        return 1
    print(comparison_table(result))
    if args.out is not None:
        args.out.write_text(json.dumps(result["recommended"], indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0


def comparison_table(result: dict[str, Any]) -> str:
    """One line per candidate: held-out scores (95% intervals), the recommended starred."""
    chosen = result["recommended"]["method"]
    fitted_on = result["recommended"]["fitted_on"]
    lines = [
        f"fitted on {fitted_on['fit_labelled']} labelled events "
        f"({fitted_on['fit']['start']} .. {fitted_on['fit']['end']}), "
        f"validated on {fitted_on['validation_labelled']} "
        f"({fitted_on['validation']['start']} .. {fitted_on['validation']['end']})",
        f"  {'method':<14} {'log loss':>26} {'above best':>10} {'Brier':>8} {'ECE':>24}",
    ]
    for candidate in result["candidates"]:
        scores = candidate["held_out"]
        mark = "*" if candidate["method"] == chosen else " "
        lines.append(
            f"{mark} {candidate['method']:<14} {_interval(scores['log_loss'])} "
            f"{scores['log_loss_above_best']['value']:>10.4f} "
            f"{scores['brier_score']['value']:>8.4f} {_interval(scores['ece'])}"
        )
    for method, reason in result["skipped"].items():
        lines.append(f"  {method:<14} skipped: {reason}")
    lines.append(
        f"* recommended: {chosen} (lowest held-out log loss, simplest within the interval)"
    )
    lines.append(f"  {_INPUT[result['recommended']['input']]}")
    return "\n".join(lines)


#: What the recommended artifact maps, in the table's last line.
_INPUT = {
    "probability": "input: probability (a correction of the probability the model serves now)",
    "raw_score": (
        "input: raw_score (a new calibrator of the raw score, in place of the current one)"
    ),
}


def _interval(estimate: dict[str, float]) -> str:
    return f"{estimate['value']:.4f} [{estimate['lower']:.4f}, {estimate['upper']:.4f}]".rjust(24)


def _name(series: Any) -> str:
    return f"{series.model} {series.model_version} {series.segment} ({series.window})"

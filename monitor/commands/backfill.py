"""`calmon backfill FILE`: load a file of past predictions and labels into the store."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from monitor.commands.common import (
    add_config_argument,
    add_source_arguments,
    describe_read,
    settings_from,
    source_from,
)
from monitor.core.errors import UserError

if TYPE_CHECKING:
    from monitor.offline.backfill import Span
    from monitor.settings import Settings
    from monitor.store.db.engine import Engine
    from monitor.store.write.result import WriteResult


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument(
        "file", type=Path, help="predictions and labels, one event a row: .parquet, .csv, .jsonl"
    )
    add_source_arguments(parser)
    history = parser.add_argument_group(
        "history", "the window results of the backfilled period (docs/evaluate.md)"
    )
    history.add_argument(
        "--history",
        action="store_true",
        help="then evaluate the configured windows over the backfilled period, at each "
        "window's `every`, into the metric history (API, report)",
    )
    history.add_argument(
        "--history-step",
        type=_duration,
        metavar="DURATION",
        help="with --history: evaluate every DURATION (1h...) where a window's `every` is "
        "shorter (fewer evaluations; each one costs what a daemon's does)",
    )
    history.add_argument(
        "--openmetrics",
        type=Path,
        metavar="FILE",
        help="with --history: also write the results as OpenMetrics with timestamps, for "
        "`promtool tsdb create-blocks-from openmetrics FILE DIR` (Grafana's past)",
    )
    parser.add_argument(
        "--max-rejects",
        type=int,
        default=0,
        metavar="N",
        help="write nothing when more than N rows are rejected (default 0)",
    )


def _duration(text: str) -> float:
    from monitor.settings import parse_duration

    try:
        return parse_duration(text)
    except ValueError as problem:
        raise argparse.ArgumentTypeError(str(problem)) from None


def run(args: argparse.Namespace) -> int:
    # Imported here, not at the top, so that `--help` does not wait for it (monitor/cli.py).
    from tqdm import tqdm

    from monitor.offline.backfill import Span, backfill, check_file
    from monitor.store.db import migrate
    from monitor.store.db.engine import make_engine
    from monitor.store.write.event_store import EventStore

    if (args.history_step is not None or args.openmetrics is not None) and not args.history:
        raise UserError("--history-step and --openmetrics go with --history")
    settings = settings_from(args)
    source = source_from(args, args.file, settings.store.segment_keys, settings)
    # The store keeps only store.segment_keys with an event (what the daemon aggregates
    # by): another key given here would be read from the file, then silently dropped.
    unknown = [key for key in source.segment_keys if key not in settings.store.segment_keys]
    if unknown:
        raise UserError(
            f"--segment-keys {','.join(unknown)}: not in store.segment_keys "
            f"({', '.join(settings.store.segment_keys) or 'none'}), so the store would not "
            "keep them; add them to store.segment_keys in the config the daemon runs with"
        )
    span = Span()
    engine = make_engine(settings.store.url.get_secret_value())
    try:
        if not migrate.is_at_head(engine):
            raise UserError(
                f"the store is at revision {migrate.current_revision(engine) or 'empty'}, "
                f"not {migrate.head_revision()}: run `calmon migrate` first"
            )
        checked = check_file(source)
        for line in describe_read(args.file, checked):
            print(line, file=sys.stderr)
        if checked.n_rejected > args.max_rejects:
            print(
                f"calmon backfill: {checked.n_rejected:,} rows rejected, more than "
                f"--max-rejects {args.max_rejects}: nothing written",
                file=sys.stderr,
            )
            return 2
        store = EventStore(
            engine,
            segment_keys=settings.store.segment_keys,
            label_horizon_s=int(settings.ingest.label_horizon),
        )
        # rows/s and the time left; only on a terminal (a CI log gets the summary).
        with tqdm(total=checked.valid, unit=" rows", file=sys.stderr, disable=None) as bar:
            _, written = backfill(
                source,
                store,
                batch_records=settings.ingest.max_batch_records,
                on_progress=bar.update,
                span=span,
            )
        print_written(written)
        if args.history:
            history(args, settings, engine, span)
    finally:
        engine.dispose()
    return 0


def print_written(written: WriteResult) -> None:
    print(
        f"predictions: {written.predictions_new:,} new, {written.predictions_updated:,} "
        f"completed, {written.predictions_duplicate:,} already stored"
    )
    dropped = ", ".join(f"{r} {n:,}" for r, n in sorted(written.labels_dropped.items()))
    print(
        f"labels: {written.labels_joined:,} joined, {written.labels_duplicate:,} already "
        f"stored, {written.labels_conflicting:,} conflicting, {written.labels_pending:,} "
        f"waiting for a prediction, dropped: {dropped or 'none'}"
    )


def history(args: argparse.Namespace, settings: Settings, engine: Engine, span: Span) -> None:
    """Evaluate the windows over the backfilled period (``offline/history.py``)."""
    from tqdm import tqdm

    from monitor.core.times import wall_clock_ms
    from monitor.export.choice import ExportChoice
    from monitor.export.openmetrics import OpenMetricsHistory
    from monitor.offline.history import plans, write_history

    if span.first_ms is None or span.last_ms is None:
        print("history: no events, nothing to evaluate", file=sys.stderr)
        return
    now = wall_clock_ms()
    schedule = plans(settings, span.first_ms, span.last_ms, now_ms=now, step_s=args.history_step)
    for plan in schedule:
        print(
            f"history of window {plan.window.name}: {plan.evaluations:,} evaluations, "
            f"every {plan.step_ms / 1000:g} s",
            file=sys.stderr,
        )
    openmetrics = (
        None if args.openmetrics is None else OpenMetricsHistory(ExportChoice(settings.export))
    )
    total = sum(plan.evaluations for plan in schedule)
    try:
        with tqdm(total=total, unit=" evaluations", file=sys.stderr, disable=None) as bar:
            done = write_history(
                engine, settings, schedule, models=span.models, now_ms=now,
                openmetrics=openmetrics, on_progress=bar.update,
            )  # fmt: skip
        if openmetrics is not None:
            openmetrics.write(args.openmetrics)
    finally:
        if openmetrics is not None:
            openmetrics.close()
    print(f"history: {done.evaluations:,} evaluations, {done.points:,} points stored")
    if args.openmetrics is not None:
        print(
            f"wrote {args.openmetrics} ({done.samples:,} samples): "
            f"promtool tsdb create-blocks-from openmetrics {args.openmetrics} DATA_DIR"
        )

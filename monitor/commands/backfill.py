"""`calmon backfill FILE`: load a file of past predictions and labels into the store."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from monitor.commands.common import (
    add_config_argument,
    add_source_arguments,
    describe_read,
    settings_from,
    source_from,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument(
        "file", type=Path, help="predictions and labels, one event a row: .parquet, .csv, .jsonl"
    )
    add_source_arguments(parser)
    parser.add_argument(
        "--max-rejects",
        type=int,
        default=0,
        metavar="N",
        help="write nothing when more than N rows are rejected (default 0)",
    )


def run(args: argparse.Namespace) -> int:
    # Imported here, not at the top, so that `--help` does not wait for it (monitor/cli.py).
    from tqdm import tqdm

    from monitor.core.errors import UserError
    from monitor.offline.backfill import backfill, check_file
    from monitor.store.db import migrate
    from monitor.store.db.engine import make_engine
    from monitor.store.write.event_store import EventStore

    settings = settings_from(args)
    source = source_from(args, args.file, settings.store.segment_keys)
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
            )
    finally:
        engine.dispose()
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
    return 0

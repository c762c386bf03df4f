"""Arguments and helpers shared by the sub-commands."""

from __future__ import annotations

import argparse
import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from monitor.settings import Settings, load_settings

if TYPE_CHECKING:
    from monitor.offline.pipeline import ReadSummary, Source


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-c",
        "--config",
        default=os.environ.get("CALMON_CONFIG") or None,  # empty: no file
        help="YAML config file (default: $CALMON_CONFIG; without one, built-in defaults "
        "plus CALMON__SECTION__KEY environment overrides)",
    )


def settings_from(args: argparse.Namespace) -> Settings:
    return load_settings(args.config)


# -- reading a file of predictions (calmon evaluate, calmon backfill) ---------------
def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that say how to read a file (shared with ``calmon backfill``)."""
    parser.add_argument(
        "--segment-keys",
        metavar="KEY,KEY",
        help="columns that are segment attributes (default: store.segment_keys)",
    )
    parser.add_argument(
        "--column",
        action="append",
        default=[],
        metavar="NAME=COLUMN",
        help="read calmon's NAME from the file's COLUMN, e.g. probability=pred, or a "
        "class's probability: probability.tech=p_tech (repeatable)",
    )
    parser.add_argument(
        "--input-format",
        choices=("parquet", "csv", "jsonl"),
        help="the file's format (default: from its name)",
    )


def source_from(
    args: argparse.Namespace, path: Path, default_keys: list[str], settings: Settings | None = None
) -> Source:
    """``settings``: its ``ingest.multiclass`` checks class probabilities (default: the
    built-in one)."""
    from monitor.offline.columns import file_columns, parse_renames, parse_segment_keys
    from monitor.offline.pipeline import Source

    keys = (
        parse_segment_keys(args.segment_keys)
        if args.segment_keys is not None
        else parse_segment_keys(",".join(default_keys))
    )
    renames = parse_renames(args.column)
    source = Source(path, file_columns(renames, keys), keys, args.input_format)
    if settings is not None:
        source = replace(source, multiclass=settings.ingest.multiclass)
    return source


def describe_read(path: Path, read: ReadSummary) -> list[str]:
    """What was read and rejected, for stderr."""
    lines = [f"{path}: {read.rows:,} rows, {read.valid:,} kept, {read.n_rejected:,} rejected"]
    if read.repeats:
        lines.append(
            f"  {read.repeats:,} rows repeat the model_id and event_id of an earlier row: "
            "merged into it as the store merges them (docs/evaluate.md)"
        )
    if read.rejected:
        lines.append(
            "  rejected by reason: "
            + ", ".join(f"{reason} {count:,}" for reason, count in read.rejected.items())
        )
        for reject in read.first_rejects:
            kept = " (its prediction was kept)" if reject.part == "label" else ""
            lines.append(f"  row {reject.row}: {reject.reason}: {reject.detail}{kept}")
        if read.n_rejected > len(read.first_rejects):
            lines.append(f"  ... {read.n_rejected - len(read.first_rejects):,} more")
    return lines

"""`calmon baseline`: snapshot a drift reference for a model version from stored data."""

from __future__ import annotations

import argparse

from monitor.commands.common import add_config_argument, settings_from
from monitor.store.engine import make_engine
from monitor.store.events import wall_clock_ms
from monitor.store.reading import list_series
from monitor.windows.references import fit_references, parse_time_ms, save_snapshot

NAME = "baseline"
HELP = (
    "store the raw-score and probability distributions of a period as a model version's reference"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument("--model", required=True, help="model_id")
    parser.add_argument("--version", required=True, help="model_version")
    parser.add_argument("--from", dest="start", required=True, help="start, RFC 3339 (UTC offset)")
    parser.add_argument("--to", dest="end", required=True, help="end (exclusive), RFC 3339")


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    engine = make_engine(settings.store.url.get_secret_value())
    start_ms, end_ms = parse_time_ms(args.start), parse_time_ms(args.end)
    segments = sorted(
        {
            s.segment
            for s in list_series(engine)
            if (s.model_id, s.model_version) == (args.model, args.version)
        }
    )
    if not segments:
        print(f"no data for model {args.model!r} version {args.version!r}")
        return 1
    stored = 0
    for segment in segments:
        references = fit_references(
            engine,
            model_id=args.model,
            model_version=args.version,
            segment=segment,
            start_ms=start_ms,
            end_ms=end_ms,
            psi_bins=settings.reference.psi_bins,
        )
        stored += save_snapshot(
            engine,
            model_id=args.model,
            model_version=args.version,
            segment=segment,
            references=references,
            start_ms=start_ms,
            end_ms=end_ms,
            now_ms=wall_clock_ms(),
        )
        counts = {d: (p.count if p else 0) for d, p in references.items()}
        print(f"{args.model} {args.version} {segment}: {counts}")
    print(f"stored {stored} reference(s)")
    engine.dispose()
    return 0

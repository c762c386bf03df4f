"""`calmon baseline`: snapshot a drift reference for a model version from stored data."""

from __future__ import annotations

import argparse

from monitor.commands.common import add_config_argument, settings_from
from monitor.core.times import parse_time_ms


def _time_ms(text: str) -> int:
    try:
        return parse_time_ms(text)
    except ValueError as problem:
        # argparse prints this message after the option's name, and exits 2.
        raise argparse.ArgumentTypeError(str(problem)) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument("--model", required=True, help="model_id")
    parser.add_argument("--version", required=True, help="model_version")
    parser.add_argument(
        "--from",
        dest="start_ms",
        type=_time_ms,
        required=True,
        help="start, RFC 3339 with a UTC offset (e.g. 2026-11-01T00:00:00Z)",
    )
    parser.add_argument(
        "--to", dest="end_ms", type=_time_ms, required=True, help="end (exclusive), RFC 3339"
    )


def run(args: argparse.Namespace) -> int:
    # Imported here, not at the top, so that `--help` does not wait for it (monitor/cli.py).
    from monitor.core.times import wall_clock_ms
    from monitor.store.db.engine import make_engine
    from monitor.windows.references import snapshot_period

    if args.start_ms >= args.end_ms:
        print("calmon baseline: --from must be before --to")
        return 2
    settings = settings_from(args)
    engine = make_engine(settings.store.url.get_secret_value())
    stored = snapshot_period(
        engine,
        model_id=args.model,
        model_version=args.version,
        start_ms=args.start_ms,
        end_ms=args.end_ms,
        psi_bins=settings.reference.psi_bins,
        now_ms=wall_clock_ms(),
    )
    engine.dispose()
    if not stored:
        print(f"no data for model {args.model!r} version {args.version!r}")
        return 1
    for segment, counts in stored.items():
        print(f"{args.model} {args.version} {segment}: {counts}")
    print(f"stored references for {len(stored)} segment(s)")
    return 0

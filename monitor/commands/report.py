"""`calmon report`: a self-contained HTML report (and optionally a PNG) for one model."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from monitor.commands.common import add_config_argument, settings_from
from monitor.settings import parse_duration


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument("--model", required=True, help="model_id")
    parser.add_argument("--window", default="24h", help="configured window name (default 24h)")
    parser.add_argument("--version", help="model_version (default: all versions)")
    parser.add_argument("--segment", help="e.g. region=eu (default: whole model)")
    parser.add_argument(
        "--since", type=parse_duration, default=7 * 86400.0, help="history to show (default 7d)"
    )
    parser.add_argument("--out", type=Path, default=Path("calmon-report.html"), help="HTML file")
    parser.add_argument(
        "--png", type=Path, help="also draw the report as one PNG image (matplotlib, no browser)"
    )


def run(args: argparse.Namespace) -> int:
    # Imported here, not at the top, so that `--help` does not wait for it (monitor/cli.py).
    from monitor.core.series import ALL
    from monitor.report import html
    from monitor.report.build import ReportError, ReportRequest, report_from_store
    from monitor.store.db.engine import make_engine

    settings = settings_from(args)
    engine = make_engine(settings.store.url.get_secret_value())
    request = ReportRequest(
        model=args.model,
        window=args.window,
        model_version=ALL if args.version is None else args.version,
        segment=ALL if args.segment is None else args.segment,
        since_ms=int((time.time() - args.since) * 1000),
    )
    try:
        report = report_from_store(engine, settings, request)
    except ReportError as problem:
        print(f"calmon report: {problem}")
        return 1
    finally:
        engine.dispose()
    args.out.write_text(html.render(report), encoding="utf-8")
    print(f"wrote {args.out}")
    if args.png:
        from monitor.report.png import write_png

        write_png(report, args.png)
        print(f"wrote {args.png}")
    return 0

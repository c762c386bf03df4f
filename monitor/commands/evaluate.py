"""`calmon evaluate FILE`: every window metric of a file of predictions, no Kafka needed."""

from __future__ import annotations

import argparse
import csv
import sys
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from monitor.commands.common import (
    add_config_argument,
    add_source_arguments,
    describe_read,
    settings_from,
    source_from,
)
from monitor.core.errors import UserError
from monitor.settings import parse_duration

if TYPE_CHECKING:
    from monitor.core.results import WindowResult
    from monitor.offline.checks import Reject
    from monitor.offline.gate import Verdict
    from monitor.offline.pipeline import Source
    from monitor.rules.model import Condition
    from monitor.settings import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument(
        "file",
        type=Path,
        help="predictions, one event a row: .parquet, .csv or .jsonl (multi-class models: "
        "a probability.<class> column per class, a label naming a class; docs/evaluate.md)",
    )
    add_source_arguments(parser)
    parser.add_argument(
        "--every",
        type=_duration,
        help="one window per period (1d, 6h...; aligned on UTC midnight) instead of the "
        "whole file; drift is then against the period before, unless a reference is given",
    )
    reference = parser.add_mutually_exclusive_group()
    reference.add_argument(
        "--reference", type=Path, metavar="FILE", help="drift reference: a file like FILE"
    )
    reference.add_argument(
        "--reference-period",
        metavar="START/END",
        help="drift reference: the events of FILE in [START, END), RFC 3339 times",
    )
    parser.add_argument(
        "--format",
        choices=("table", "json", "csv"),
        default="table",
        help="stdout: a table (default), JSON or CSV with every metric",
    )
    parser.add_argument(
        "--report",
        type=Path,
        metavar="HTML",
        help="also write an HTML report (the gate's verdict at the top; docs/report.md)",
    )
    parser.add_argument(
        "--png", type=Path, metavar="PNG", help="also draw the report as one PNG image"
    )
    parser.add_argument(
        "--rejects", type=Path, metavar="CSV", help="write every rejected row: row, reason, detail"
    )
    gate = parser.add_argument_group(
        "CI gate", "exit 1, with one line per failure, when a condition fails (docs/evaluate.md)"
    )
    gate.add_argument(
        "--fail-if",
        action="append",
        default=[],
        metavar="CONDITION",
        help="fail when METRIC OP NUMBER holds on any series, e.g. 'ece > 0.03' or "
        "'psi_raw_score > 0.2' (the rule metric names; repeatable)",
    )
    baseline = gate.add_mutually_exclusive_group()
    baseline.add_argument(
        "--baseline",
        type=Path,
        metavar="FILE",
        help="fail when ECE got worse than in FILE (read like FILE) by more than its "
        "bootstrap interval",
    )
    baseline.add_argument(
        "--baseline-version",
        metavar="VERSION",
        help="the same, against this model version of FILE (each other version is checked)",
    )
    parser.add_argument(
        "--max-rejects",
        type=int,
        default=0,
        metavar="N",
        help="exit 2 when more than N rows are rejected (default 0); results are printed",
    )


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as problem:
        raise argparse.ArgumentTypeError(str(problem)) from None


def period_ms(text: str) -> tuple[int, int]:
    from monitor.core.times import epoch_ms

    start, sep, end = text.partition("/")
    try:
        if not sep:
            raise ValueError("expected START/END")
        bounds = [datetime.fromisoformat(t.strip().upper()) for t in (start, end)]
    except ValueError as problem:
        raise UserError(f"--reference-period {text!r}: {problem}") from None
    if any(b.tzinfo is None for b in bounds):
        raise UserError(f"--reference-period {text!r}: times need a UTC offset (Z)")
    first, last = (epoch_ms(b) for b in bounds)
    if first >= last:
        raise UserError(f"--reference-period {text!r}: START is not before END")
    return first, last


class RejectsFile:
    """Every rejected row, written as it is found (memory stays flat)."""

    def __init__(self, path: Path | None) -> None:
        self._file: IO[str] | None = None
        if path is not None:
            self._file = path.open("w", newline="")
            self._writer = csv.writer(self._file)
            self._writer.writerow(["row", "part", "reason", "detail"])

    def __call__(self, reject: Reject) -> None:
        if self._file is not None:
            self._writer.writerow([reject.row, reject.part, reject.reason, reject.detail])

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def run(args: argparse.Namespace) -> int:
    # Imported here, not at the top, so that `--help` does not wait for it (monitor/cli.py).
    from monitor.offline import output
    from monitor.offline.gate import parse_condition
    from monitor.offline.run import WHOLE_FILE, evaluate_file

    conditions = [parse_condition(text) for text in args.fail_if]
    settings = settings_from(args)
    source = source_from(args, args.file, settings.store.segment_keys, settings)
    reference = (
        None
        if args.reference is None
        else source_from(args, args.reference, settings.store.segment_keys, settings)
    )
    period = None if args.reference_period is None else period_ms(args.reference_period)
    rejects = RejectsFile(args.rejects)
    try:
        evaluation = evaluate_file(
            source,
            settings,
            every_s=args.every,
            window=WHOLE_FILE if args.every is None else _every_name(args.every),
            reference_file=reference,
            reference_period=period,
            on_reject=rejects,
            recalibrate=args.report is not None or args.png is not None,
        )
    finally:
        rejects.close()
    for line in describe_read(args.file, evaluation.read):
        print(line, file=sys.stderr)
    if evaluation.labels_over_horizon:
        print(
            f"  {evaluation.labels_over_horizon:,} labels came more than ingest.label_horizon "
            "after their prediction and were dropped, as ingest drops them",
            file=sys.stderr,
        )
    results = evaluation.results
    if args.format == "json":
        print(
            output.format_json(
                results, {"rows": evaluation.read.rows, "rejected": evaluation.read.rejected}
            )
        )
    elif args.format == "csv":
        sys.stdout.write(output.format_csv(results))
    else:
        print(output.format_table(results))
        print("('-': too few labelled events or predictions, or no drift reference)")
    verdicts = gate(args, settings, source, results, conditions)
    for verdict in verdicts:
        print(verdict.line, file=sys.stderr)
    if args.report is not None or args.png is not None:
        write_report(args, results, verdicts, conditions, evaluation.recalibration)
    failed = not all(v.passed for v in verdicts)
    if evaluation.read.n_rejected > args.max_rejects:
        print(
            f"calmon evaluate: {evaluation.read.n_rejected:,} rows rejected, more than "
            f"--max-rejects {args.max_rejects}",
            file=sys.stderr,
        )
        return 2
    return 1 if failed else 0


def write_report(
    args: argparse.Namespace,
    results: list[WindowResult],
    verdicts: list[Verdict],
    conditions: list[Condition],
    recalibration: dict[str, Any] | None = None,
) -> None:
    from monitor.report import html
    from monitor.report.build import ReportError, report_from_results

    try:
        report = report_from_results(
            args.file.name,
            results,
            verdicts=verdicts,
            conditions=conditions,
            recalibration=recalibration,
        )
    except ReportError as problem:
        raise UserError(f"--report: {problem}") from None
    if args.report is not None:
        args.report.write_text(html.render(report), encoding="utf-8")
        print(f"wrote {args.report}", file=sys.stderr)
    if args.png is not None:
        from monitor.report.png import write_png

        write_png(report, args.png)
        print(f"wrote {args.png}", file=sys.stderr)


def gate(
    args: argparse.Namespace,
    settings: Settings,
    source: Source,
    results: list[WindowResult],
    conditions: list[Condition],
) -> list[Verdict]:
    """The gate's verdicts: the conditions', then the baseline comparison's."""
    from dataclasses import replace

    from monitor.offline.gate import check_baseline, check_conditions
    from monitor.offline.run import WHOLE_FILE, evaluate_file

    verdicts = check_conditions(conditions, results)
    if args.baseline is not None:
        baseline = evaluate_file(replace(source, path=args.baseline), settings, window=WHOLE_FILE)
        for line in describe_read(args.baseline, baseline.read):
            print(line, file=sys.stderr)
        verdicts += check_baseline(results, baseline.results, what=f"baseline {args.baseline}")
    elif args.baseline_version is not None:
        verdicts += check_baseline(
            results,
            results,
            what=f"version {args.baseline_version}",
            version=args.baseline_version,
        )
    return verdicts


def _every_name(seconds: float) -> str:
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"

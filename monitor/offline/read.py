"""Read a file of predictions a piece at a time: Parquet row groups, CSV blocks, JSON
Lines chunks, so memory stays flat whatever the file's size.

Each piece comes out with calmon's column names (after ``--column`` renames) and the
file row number of its first row, so a reject can name its row. Whatever makes the
whole file unreadable (not its format, a missing column, a CSV line with too many
cells, a column of the wrong type) is a :class:`BadFile` that names the file and the
column or line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from monitor.offline.class_columns import class_columns
from monitor.offline.columns import CLASS_PREFIX, KNOWN, BadFile, check_present

#: Rows per piece: the arrays of a piece and their copies while it is checked and
#: grouped take about 100 bytes a row; fewer rows cost more calls, more rows memory.
ROWS_PER_CHUNK = 1 << 18
FORMATS = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
_NUMBERS = ("raw_score", "probability", "label")
#: Columns of few distinct values (segment columns too): read as dictionary arrays.
CATEGORICAL = ("model_id", "model_version", "calibrator_version")


@dataclass
class Chunk:
    """A piece of the file: a table (Parquet, CSV) or decoded rows (JSON Lines)."""

    first_row: int  # file row number of the first row, 1 = the first data row
    table: pa.Table | None = None
    rows: list[Any] = field(default_factory=list)  # JSON Lines: dicts, or the bad line
    unparseable: list[tuple[int, str, str]] = field(default_factory=list)  # row, reason, detail

    @property
    def n_rows(self) -> int:
        return (
            self.table.num_rows
            if self.table is not None
            else len(self.rows) + len(self.unparseable)
        )


def file_format(path: Path, override: str | None = None) -> str:
    if override:
        return override
    suffixes = [s.lower() for s in path.suffixes]
    for suffix in reversed(suffixes):
        if suffix in FORMATS:
            return FORMATS[suffix]
    raise BadFile(
        f"{path}: cannot tell the format from the name; use .parquet, .csv or .jsonl "
        "(or --format-in parquet|csv|jsonl)"
    )


def read_chunks(
    path: Path,
    wanted: Mapping[str, str],
    *,
    format_: str | None = None,
    rows_per_chunk: int = ROWS_PER_CHUNK,
) -> Iterator[Chunk]:
    """The file's pieces; ``wanted`` maps calmon names to the file's column names."""
    if not path.is_file():
        raise BadFile(f"{path}: no such file")
    kind = file_format(path, format_)
    if kind == "parquet":
        yield from _parquet(path, wanted, rows_per_chunk)
    elif kind == "csv":
        yield from _csv(path, wanted, rows_per_chunk)
    else:
        yield from _jsonl(path, wanted, rows_per_chunk)


def with_classes(present: Mapping[str, str], names: list[str]) -> dict[str, str]:
    """The columns to read, and the class probability columns (``probability.<class>``:
    a file of multi-class models, ``class_columns.py``), read under their own names
    (``--column probability.<class>=COLUMN`` ones are in ``present`` already)."""
    return {**present, **{name: name for name in class_columns(names)}}


def _renamed(table: pa.Table, present: Mapping[str, str]) -> pa.Table:
    by_column = {column: name for name, column in present.items()}
    return table.select(list(present.values())).rename_columns(
        [by_column[c] for c in present.values()]
    )


def _parquet(path: Path, wanted: Mapping[str, str], rows: int) -> Iterator[Chunk]:
    try:
        names = pq.ParquetFile(path).schema_arrow.names
        present = with_classes(check_present(names, wanted, source=str(path)), names)
        # Few distinct values: decoded straight to codes, checked once per value.
        parquet = pq.ParquetFile(
            path,
            read_dictionary=[
                c
                for n, c in present.items()
                if n in CATEGORICAL or (n not in KNOWN and not n.startswith(CLASS_PREFIX))
            ],
        )
    except (pa.ArrowException, OSError) as problem:
        raise BadFile(f"{path}: not a Parquet file ({problem})") from None
    first = 1
    try:
        for batch in parquet.iter_batches(batch_size=rows, columns=list(present.values())):
            table = _renamed(pa.Table.from_batches([batch]), present)
            yield Chunk(first, table=table)
            first += table.num_rows
    except pa.ArrowException as problem:
        raise BadFile(f"{path}: cannot read rows {first} on ({problem})") from None


def _csv(path: Path, wanted: Mapping[str, str], rows: int) -> Iterator[Chunk]:
    try:
        header = path.open(encoding="utf-8", errors="replace").readline()
    except OSError as problem:
        raise BadFile(f"{path}: {problem}") from None
    names = _csv_header(path, header)
    present = with_classes(check_present(names, wanted, source=str(path)), names)
    # A multi-class file's labels are class names: text.
    multiclass = any(name.startswith(CLASS_PREFIX) for name in present)
    numbers = ("raw_score", "probability") if multiclass else _NUMBERS
    types = {
        column: (
            pa.float64()
            if name in numbers or name.startswith(CLASS_PREFIX)
            else pa.dictionary(pa.int32(), pa.string())
            if name in CATEGORICAL or name not in KNOWN
            else pa.string()
        )
        for name, column in present.items()
    }
    broken: list[Any] = []

    def skip_and_remember(row: Any) -> str:
        broken.append(row)
        return "skip"

    try:
        reader = pa_csv.open_csv(
            path,
            # One thread: the handler then knows each broken line's number.
            read_options=pa_csv.ReadOptions(use_threads=False, block_size=64 << 20),
            parse_options=pa_csv.ParseOptions(invalid_row_handler=skip_and_remember),
            convert_options=pa_csv.ConvertOptions(
                include_columns=list(present.values()),
                column_types=types,
                strings_can_be_null=True,
            ),
        )
        first = 1
        for batch in reader:
            if broken:
                raise _broken_line(path, broken[0])
            table = _renamed(pa.Table.from_batches([batch]), present)
            for offset in range(0, table.num_rows, rows):
                piece = table.slice(offset, rows)
                yield Chunk(first, table=piece)
                first += piece.num_rows
        if broken:
            raise _broken_line(path, broken[0])
    except pa.ArrowInvalid as problem:
        raise BadFile(f"{path}: {_csv_problem(str(problem), names)}") from None


def _csv_header(path: Path, header: str) -> list[str]:
    if not header.strip():
        raise BadFile(f"{path}: empty file (no header line)")
    table = pa_csv.read_csv(pa.py_buffer(header.encode()))
    return list(table.schema.names)


def _broken_line(path: Path, row: Any) -> BadFile:
    number = row.number if row.number is not None else _line_number(path, row.text)
    where = f"line {number}" if number is not None else "a line"
    return BadFile(
        f"{path}: {where} has {row.actual_columns} cells, the header "
        f"{row.expected_columns}: {row.text[:120]!r}"
    )


def _line_number(path: Path, text: str) -> int | None:
    """The number of the first line reading ``text``: pyarrow does not always know the
    number of a broken line (it read the block ahead, say), and the user needs it."""
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            if line.rstrip(b"\r\n").decode(errors="replace") == text:
                return number
    return None


def _csv_problem(message: str, names: list[str]) -> str:
    """pyarrow's conversion error with the column's name instead of its number."""
    found = re.search(r"CSV column #(\d+)", message)
    if found and int(found.group(1)) < len(names):
        column = names[int(found.group(1))]
        detail = message.split(": ", 1)[-1]
        return f"column {column}: {detail} (raw_score, probability and label must be numbers)"
    return message


def _jsonl(path: Path, wanted: Mapping[str, str], rows: int) -> Iterator[Chunk]:
    """Each line a JSON object with the columns as keys (a message, plus label fields)."""
    by_column = {column: name for name, column in wanted.items()}
    chunk = Chunk(1)
    seen_any = False
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            seen_any = True
            try:
                row = orjson.loads(line)
            except orjson.JSONDecodeError as problem:
                chunk.unparseable.append((number, "unparseable_json", str(problem)))
                continue
            if not isinstance(row, dict):
                chunk.unparseable.append(
                    (number, "not_an_object", f"expected a JSON object, got {type(row).__name__}")
                )
                continue
            renamed = {by_column.get(k, k): v for k, v in row.items()}
            renamed["__row__"] = number
            chunk.rows.append(renamed)
            if len(chunk.rows) >= rows:
                yield chunk
                chunk = Chunk(number + 1)
    if not seen_any:
        raise BadFile(f"{path}: empty file (no rows)")
    if chunk.rows or chunk.unparseable:
        yield chunk

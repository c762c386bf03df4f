"""Class probabilities of a file of multi-class models: one column per class.

A file whose columns include ``probability.<class>`` holds multi-class models: each row
is one prediction whose probability vector is those columns (a null: the row does not
name that class, as a message's ``probabilities`` object may leave a class out), and
whose ``label``, when given, names a class (text; integers are read as their decimal
text, so classes ``probability.0``, ``probability.1``... take labels 0, 1...). Such a
file holds multi-class models only (docs/evaluate.md).

The rows are checked with array operations that accept only what the message validator
accepts without configured classes (``ingest.multiclass``): 2 to ``max_classes``
probabilities in [0, 1] summing to 1 within ``sum_tolerance``. Every other row goes to
the validator (``checks.py``), which names the reason. Probabilities are divided by
their sum, added in class order, as the validator divides them, so the aggregates get
the numbers the daemon gets. The end of the module turns a row the validator checks
into a message's fields, and names why a valid label cannot join its prediction.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from monitor.metrics.grouped import NO_LABEL
from monitor.offline.columns import CLASS_PREFIX, BadFile, is_class_column
from monitor.settings import MulticlassSettings


def class_columns(names: Iterable[str]) -> list[str]:
    """The file's class probability columns, sorted by class name; none unless there
    are two or more (a model has 2 classes at least: a lone ``probability.x`` column
    of a binary file is ignored, as other columns are)."""
    found = sorted(n for n in names if is_class_column(n))
    return found if len(found) >= 2 else []


def class_of(column: str) -> str:
    return column[len(CLASS_PREFIX) :]


@dataclass
class ClassColumns:
    """Events' probability vectors: ``probabilities[i, k]`` of class ``names[k]`` (sorted),
    NaN where event i does not name the class. Labels are in ``Events.label`` as the
    index of their class in ``names``."""

    names: tuple[str, ...]
    probabilities: np.ndarray  # (events, classes) float64

    def take(self, indices: np.ndarray) -> ClassColumns:
        return ClassColumns(self.names, self.probabilities[indices])

    def aligned(self, names: tuple[str, ...]) -> ClassColumns:
        """The same vectors over ``names`` (sorted, a superset): NaN for the others."""
        if names == self.names:
            return self
        matrix = np.full((self.probabilities.shape[0], len(names)), np.nan)
        matrix[:, np.searchsorted(np.array(names), np.array(self.names))] = self.probabilities
        return ClassColumns(names, matrix)

    def named(self, rows: np.ndarray) -> tuple[tuple[str, ...], np.ndarray]:
        """The classes the ``rows`` name (sorted) and their (rows, classes) matrix, 0
        where a row does not name a class: what the store aggregates a bucket over
        (``store/write/deltas.py::_class_matrix``)."""
        part = self.probabilities[rows]
        used = ~np.isnan(part).all(axis=0)
        names = tuple(name for name, keep in zip(self.names, used.tolist(), strict=True) if keep)
        return names, np.nan_to_num(part[:, used], nan=0.0)

    @staticmethod
    def concat(parts: Sequence[ClassColumns | None], sizes: Sequence[int]) -> ClassColumns:
        """One of many (``None`` parts, of events of ``sizes``, name no class)."""
        names = tuple(sorted(set().union(*(p.names for p in parts if p is not None))))
        matrices = [
            np.full((size, len(names)), np.nan) if p is None else p.aligned(names).probabilities
            for p, size in zip(parts, sizes, strict=True)
        ]
        return ClassColumns(names, np.concatenate(matrices) if matrices else np.empty((0, 0)))


def class_matrix(table: pa.Table, columns: list[str], source: str) -> np.ndarray:
    """The class columns as an (events, classes) float array, NaN where null. A NaN in
    the file stays NaN too: the row then fails the checks below, and the validator,
    sent ``NaN``, names it."""
    matrix = np.empty((table.num_rows, len(columns)))
    for k, name in enumerate(columns):
        column = table.column(name)
        kind = column.type
        if not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_null(kind)):
            raise BadFile(f"{source}: column {name} has type {kind}; it must be numbers")
        values = column.combine_chunks().cast(pa.float64())
        matrix[:, k] = np.asarray(values.fill_null(np.nan) if values.null_count else values)
    return matrix


def nan_in_file(table: pa.Table, columns: list[str]) -> np.ndarray:
    """Rows with a NaN (not a null) in a class column: invalid, not absent."""
    found = np.zeros(table.num_rows, dtype=bool)
    for name in columns:
        column = table.column(name)
        if pa.types.is_floating(column.type):
            nan = pc.fill_null(pc.is_nan(column.combine_chunks()), False)
            found |= np.asarray(nan.to_numpy(zero_copy_only=False), dtype=bool)
    return found


def plain_rows(matrix: np.ndarray, multiclass: MulticlassSettings) -> np.ndarray:
    """Rows the validator accepts as they are, for a model without configured classes:
    2..max_classes probabilities, each in [0, 1], summing to 1 within the tolerance."""
    named = ~np.isnan(matrix)
    count = named.sum(axis=1)
    with np.errstate(invalid="ignore"):
        in_range = np.where(named, (matrix >= 0.0) & (matrix <= 1.0), True).all(axis=1)
    return (
        (count >= 2)
        & (count <= multiclass.max_classes)
        & in_range
        & (np.abs(row_sums(matrix) - 1.0) <= multiclass.sum_tolerance)
    )


def row_sums(matrix: np.ndarray) -> np.ndarray:
    """Each row's sum of its named probabilities, added one class after the other (the
    order the validator adds a message's sorted classes in: the same float sum)."""
    total = np.zeros(matrix.shape[0])
    for k in range(matrix.shape[1]):
        column = matrix[:, k]
        total += np.where(np.isnan(column), 0.0, column)
    return total


def normalised(matrix: np.ndarray) -> np.ndarray:
    """Each row divided by its sum, as the validator divides a message's probabilities."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return matrix / row_sums(matrix)[:, None]


def label_codes(
    table: pa.Table, names: tuple[str, ...], matrix: np.ndarray, source: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each row's label as a class index (``NO_LABEL``: none), whether it is given, and
    whether it is a class the row names (given and not: the validator's or the join's
    reason, ``checks.py``)."""
    n = table.num_rows
    if "label" not in table.column_names:
        none = np.zeros(n, dtype=bool)
        return np.full(n, NO_LABEL, dtype=np.int16), none, none
    text = label_text(table.column("label"))
    if text is None:
        kind = table.column("label").type
        raise BadFile(
            f"{source}: column label has type {kind}; a multi-class file's labels must be "
            "class names (text) or integers"
        )
    given = np.asarray(text.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    index = pc.index_in(text, value_set=pa.array(names, pa.string()))
    codes = np.asarray(index.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)
    known = codes >= 0
    rows = np.flatnonzero(known)
    named = np.zeros(n, dtype=bool)
    named[rows] = ~np.isnan(matrix[rows, codes[rows]])
    label = np.where(named, codes, NO_LABEL).astype(np.int16)
    return label, given, named


def label_text(column: pa.ChunkedArray) -> pa.Array | None:
    """A label column as text: integers (and floats that are whole numbers, as pandas
    stores integers with missing values) as their decimal text, NaN as null; None when
    its type cannot name a class."""
    array = column.combine_chunks()
    kind = array.type
    if pa.types.is_dictionary(kind):
        array = array.dictionary_decode()
        kind = array.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_null(kind):
        return array.cast(pa.string())
    if pa.types.is_integer(kind):
        return array.cast(pa.string())
    if pa.types.is_floating(kind):
        values = np.asarray(array.cast(pa.float64()).fill_null(np.nan))
        with np.errstate(invalid="ignore"):
            whole = np.isfinite(values) & (values == np.round(values))
        texts = [
            str(int(v)) if w else (None if np.isnan(v) else repr(float(v)))
            for v, w in zip(values.tolist(), whole.tolist(), strict=True)
        ]
        return pa.array(texts, pa.string())
    return None


# -- a row the message validator checks (checks.py) -----------------------------------
def row_probabilities(row: dict[str, Any]) -> Any:
    """A row's class probabilities: a JSON line's ``probabilities`` object (the
    message's field), or its ``probability.<class>`` values that are not null."""
    if row.get("probabilities") is not None:
        return row["probabilities"]
    found = {
        class_of(name): value
        for name, value in row.items()
        if name.startswith(CLASS_PREFIX) and value is not None
    }
    return found or None


def class_label(value: Any) -> Any:
    """A multi-class row's label as a class name: an integer (or a float that is a
    whole number, as pandas stores integers next to missing values) as its decimal
    text; anything else as it is, for the validator to judge."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        return str(int(value))
    return value


def label_kind_problem(
    probabilities: Mapping[str, float] | None, label: int | str
) -> tuple[str, str] | None:
    """Why a valid label cannot join its valid prediction, as the store's join would
    drop it (``store/write/join.py``: a label of the other kind, a class the prediction
    does not name), as a reject reason and detail; None: it joins."""
    if probabilities is None:
        if isinstance(label, str):
            return "bad_label", f"a class label ({label[:80]!r}) for a binary prediction"
        return None
    if not isinstance(label, str):
        return "bad_label", f"a multi-class prediction's label names a class, got {label!r}"
    if label not in probabilities:
        return "unknown_class", f"label {label[:80]!r} is not a class of the row's probabilities"
    return None

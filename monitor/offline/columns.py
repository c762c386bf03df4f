"""The columns a file of predictions has: the message schema's fields, one row an event.

A row carries an event's prediction and, when it is known, its label: ``event_id``,
``model_id``, ``model_version``, ``timestamp`` (when the prediction was made),
``raw_score`` and/or ``probability``, and optionally ``label`` and ``label_timestamp``
(when the outcome was observed). Segment attributes are columns of their own, named
with ``--segment-keys``. docs/evaluate.md has the whole description.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from monitor.core.errors import UserError

#: The message validator's limit (``monitor/ingest/validation.py``), kept here so that
#: reading the command line does not import it.
MAX_SEGMENT_KEY_LENGTH = 64

#: ``probability.<class>``: a class's probability, in a file of multi-class models.
CLASS_PREFIX = "probability."
IDS = ("event_id", "model_id", "model_version")
REQUIRED = (*IDS, "timestamp")
SCORES = ("raw_score", "probability")
OPTIONAL = ("raw_score", "probability", "label", "label_timestamp", "calibrator_version")
KNOWN = (*REQUIRED, *OPTIONAL)


class BadFile(UserError):
    """The file as a whole cannot be read: not its format, a missing column, a column
    of a type no value of which could be valid. Row problems are rejects instead."""


def parse_renames(pairs: Iterable[str]) -> dict[str, str]:
    """``--column probability=pred`` -> ``{"probability": "pred"}`` (calmon name -> file's)."""
    renames: dict[str, str] = {}
    for pair in pairs:
        name, sep, column = pair.partition("=")
        if not sep or not name or not column:
            raise UserError(f"--column {pair!r}: expected NAME=COLUMN, e.g. probability=pred")
        if name not in KNOWN and not is_class_column(name):
            raise UserError(
                f"--column {pair!r}: {name!r} is not one of {', '.join(KNOWN)}, "
                f"nor {CLASS_PREFIX}<class>"
            )
        renames[name] = column
    return renames


def parse_segment_keys(text: str | None) -> tuple[str, ...]:
    """``--segment-keys region,country`` -> ``("region", "country")``."""
    if not text:
        return ()
    keys = tuple(k.strip() for k in text.split(",") if k.strip())
    for key in keys:
        if "=" in key or "\x00" in key or len(key) > MAX_SEGMENT_KEY_LENGTH:
            raise UserError(
                f"--segment-keys: {key!r} must be 1-{MAX_SEGMENT_KEY_LENGTH} characters "
                "without '=' or NUL"
            )
        if key in KNOWN:
            raise UserError(f"--segment-keys: {key!r} is a field of the message, not a segment")
    return keys


def is_class_column(name: str) -> bool:
    """``probability.<class>``: a class's probability (a multi-class model)."""
    return name.startswith(CLASS_PREFIX) and len(name) > len(CLASS_PREFIX)


def file_columns(renames: Mapping[str, str], segment_keys: Iterable[str]) -> dict[str, str]:
    """The file's column for each calmon field and segment key that could be read, and
    for each class renamed with ``--column probability.<class>=COLUMN``."""
    classes = {name: column for name, column in renames.items() if is_class_column(name)}
    return {**{name: renames.get(name, name) for name in (*KNOWN, *segment_keys)}, **classes}


def check_present(
    available: Iterable[str], wanted: Mapping[str, str], *, source: str
) -> dict[str, str]:
    """The wanted columns the file has; a missing required one is a :class:`BadFile`."""
    have = set(available)
    missing = [column for name, column in wanted.items() if name in REQUIRED and column not in have]
    if missing:
        raise BadFile(
            f"{source}: missing column {', '.join(missing)} (the file has: "
            f"{', '.join(sorted(have)) or 'no columns'}); rename with --column NAME=COLUMN"
        )
    classes = {c for c in have if is_class_column(c)} | {
        name for name, column in wanted.items() if is_class_column(name) and column in have
    }
    has_classes = len(classes) >= 2  # as class_columns.class_columns decides
    if not any(wanted[name] in have for name in SCORES) and not has_classes:
        raise BadFile(
            f"{source}: no raw_score or probability column, nor probability.<class> "
            f"columns (the file has: {', '.join(sorted(have))}); rename with "
            "--column probability=COLUMN"
        )
    return {name: column for name, column in wanted.items() if column in have}

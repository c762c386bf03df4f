"""What a series is: a model, a version, a segment and a window.

``ALL`` stands for every version (``model_version``) or every event (``segment``): the
whole-model series. ``OTHER`` is the segment value of a key's merged tail, past its
``max_segment_values`` top values (``monitor/windows/segments.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

ALL = "__all__"
OTHER = "__other__"
#: A prediction's ``calibrator_version`` is part of its series' version:
#: ``v1`` served through calibrator ``2`` is the series version ``v1+cal=2``.
CALIBRATOR_SEPARATOR = "+cal="


def with_calibrator(model_version: str, calibrator_version: str | None) -> str:
    """The series version of a model version served through a calibrator version."""
    if calibrator_version is None:
        return model_version
    return f"{model_version}{CALIBRATOR_SEPARATOR}{calibrator_version}"


def without_calibrator(series_version: str) -> str:
    """The model version of a series version (``v1+cal=2`` -> ``v1``).

    >>> without_calibrator("v1+cal=2"), without_calibrator("v1")
    ('v1', 'v1')
    """
    return series_version.split(CALIBRATOR_SEPARATOR, 1)[0]


@dataclass(frozen=True, slots=True, order=True)
class SeriesWindow:
    """One exported series: a model, a version (or ``__all__``), a segment, a window."""

    model: str
    model_version: str
    segment: str
    window: str

"""What a series is: a model, a version, a segment and a window.

``ALL`` stands for every version (``model_version``) or every event (``segment``): the
whole-model series. ``OTHER`` is the segment value of a key's merged tail, past its
``max_segment_values`` top values (``monitor/windows/segments.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

ALL = "__all__"
OTHER = "__other__"


@dataclass(frozen=True, slots=True, order=True)
class SeriesWindow:
    """One exported series: a model, a version (or ``__all__``), a segment, a window."""

    model: str
    model_version: str
    segment: str
    window: str

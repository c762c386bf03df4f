"""What one batch did: the counts ingest turns into its metrics."""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class WriteResult:
    """What one batch did; ``labels_dropped`` is keyed by reason."""

    predictions_new: int = 0
    predictions_updated: int = 0
    predictions_duplicate: int = 0
    labels_joined: int = 0
    labels_pending: int = 0
    labels_duplicate: int = 0
    labels_conflicting: int = 0
    labels_dropped: Counter[str] = field(default_factory=Counter)
    label_delays_s: list[float] = field(default_factory=list)

    def __add__(self, other: WriteResult) -> WriteResult:
        """Both batches' outcomes (a batch written in parts)."""
        counts = {
            f.name: getattr(self, f.name) + getattr(other, f.name) for f in dataclasses.fields(self)
        }
        return WriteResult(**counts)

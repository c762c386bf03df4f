"""Drift references of a multi-class model: one for its confidence (max_k p_k) and one
per class for p_k, fitted once from a reference period's aggregate and stored with the
series (``calmon baseline``, a settled fixed period), like a binary model's references.

>>> import numpy as np
>>> from monitor.metrics.multiclass import MulticlassAggregate
>>> a = MulticlassAggregate.empty(["cat", "dog"])
>>> a.add_predictions(np.random.default_rng(0).dirichlet([1, 1], 500))
>>> fitted = ClassReferences.fit(a, psi_bins=10)
>>> sorted(fitted.classes), fitted.confidence.count
(['cat', 'dog'], 500)
>>> ClassReferences.from_dict(fitted.to_dict()).classes["cat"].count
500
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from monitor.metrics.drift import ReferenceProfile
from monitor.metrics.errors import DegenerateReferenceError
from monitor.metrics.histogram import SparseHistogram
from monitor.metrics.multiclass import MulticlassAggregate


def _fitted(histogram: SparseHistogram, psi_bins: int) -> ReferenceProfile | None:
    try:
        return ReferenceProfile.from_histogram(histogram, kind="probability", n_bins=psi_bins)
    except DegenerateReferenceError:
        return None  # too few events, or one distinct value: no reference


@dataclass(frozen=True)
class ClassReferences:
    confidence: ReferenceProfile | None
    #: Per class name; a class with too few events, or one value, in the period has none.
    classes: Mapping[str, ReferenceProfile] = field(default_factory=dict)

    @classmethod
    def fit(cls, aggregate: MulticlassAggregate, *, psi_bins: int) -> ClassReferences:
        classes = {}
        for k, name in enumerate(aggregate.classes):
            profile = _fitted(aggregate.class_probability_histogram(k), psi_bins)
            if profile is not None:
                classes[name] = profile
        return cls(_fitted(aggregate.top.probabilities, psi_bins), classes)

    @property
    def count(self) -> int:
        """Events the references were fitted on (0: none)."""
        return 0 if self.confidence is None else self.confidence.count

    def to_dict(self) -> dict[str, Any]:
        return {
            "confidence": None if self.confidence is None else self.confidence.to_dict(),
            "classes": {name: p.to_dict() for name, p in self.classes.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClassReferences:
        confidence = data.get("confidence")
        return cls(
            None if confidence is None else ReferenceProfile.from_dict(confidence),
            {name: ReferenceProfile.from_dict(p) for name, p in data["classes"].items()},
        )

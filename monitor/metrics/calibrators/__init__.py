"""Recalibration from aggregates: candidate calibrators fitted from a window's cells,
validated on its later part, and handed over as a portable artifact
(``docs/recalibration.md``). ``apply(artifact, p)`` (or ``apply(artifact,
raw_score=s)``, as the artifact's ``input`` says) recalibrates with an artifact from a
webhook, the API or ``calmon recalibrate``."""

from monitor.metrics.calibrators.artifact import (
    FORMAT,
    InvalidArtifactError,
    InvalidInputError,
    apply,
    load_map,
)

__all__ = ["FORMAT", "InvalidArtifactError", "InvalidInputError", "apply", "load_map"]

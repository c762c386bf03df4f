"""Recalibration from aggregates: candidate calibrators fitted from a window's cells,
validated on its later part, and handed over as a portable artifact
(``docs/recalibration.md``)."""

"""Every candidate calibrator, in the order the selection prefers them: the corrections
of the served probability (``fit.py``), then the refits from the raw score
(``raw_fit.py``).

A refit comes after every correction: it replaces the calibrator in production instead
of adding a step after it, so it is recommended only when no correction comes within
the selection's interval of it (``validate.py``).
"""

from __future__ import annotations

from collections.abc import Callable

from monitor.metrics.calibrators.cells import LabelledCells
from monitor.metrics.calibrators.fit import (
    CORRECTIONS,
    Calibrator,
    fit_beta,
    fit_histogram,
    fit_identity,
    fit_isotonic,
    fit_platt,
    fit_temperature,
)
from monitor.metrics.calibrators.raw_fit import (
    RAW_METHODS,
    fit_raw_histogram,
    fit_raw_isotonic,
    fit_raw_platt,
)
from monitor.metrics.errors import UndefinedMetricError

#: Every candidate, simplest first.
METHODS = CORRECTIONS + RAW_METHODS

FITTERS: dict[str, Callable[[LabelledCells], Calibrator]] = {
    "identity": fit_identity,
    "temperature": fit_temperature,
    "platt": fit_platt,
    "beta": fit_beta,
    "histogram": fit_histogram,
    "isotonic": fit_isotonic,
    "raw_platt": fit_raw_platt,
    "raw_histogram": fit_raw_histogram,
    "raw_isotonic": fit_raw_isotonic,
}


def fit_candidates(cells: LabelledCells) -> tuple[dict[str, Calibrator], dict[str, str]]:
    """Every candidate that can be fitted, and why the others could not."""
    fitted: dict[str, Calibrator] = {}
    skipped: dict[str, str] = {}
    for method in METHODS:
        try:
            fitted[method] = FITTERS[method](cells)
        except UndefinedMetricError as error:
            skipped[method] = str(error)
    return fitted, skipped

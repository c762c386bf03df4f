"""Past window results as an OpenMetrics file, for Prometheus to import as blocks.

``calmon backfill --openmetrics FILE`` writes every evaluation of the history with its
timestamp; ``promtool tsdb create-blocks-from openmetrics FILE DIR`` turns it into TSDB
blocks, which Prometheus loads from its data directory. The metric families, names and
labels are the exporter's (``exposition.py``), so the dashboards' queries find the past
as they find the present.

OpenMetrics keeps a family's samples together: each family is written to its own part
file as evaluations come, in time order, and the parts are joined at the end (memory
does not grow with the history).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import IO

from monitor.core.results import WindowResult
from monitor.export.choice import ExportChoice
from monitor.export.exposition import FAMILIES, render


class OpenMetricsHistory:
    """Collects evaluations (``add``), then writes the file (``write``). The series and
    metrics are those ``export.series`` puts on /metrics (``choice.py``)."""

    def __init__(self, choice: ExportChoice) -> None:
        self._choice = choice
        self._directory = Path(tempfile.mkdtemp(prefix="calmon-openmetrics-"))
        self._parts: dict[int, IO[str]] = {}  # family index -> its part file
        self.samples = 0

    def add(self, results: list[WindowResult], at_ms: int) -> None:
        """The samples /metrics would show for ``results``, stamped ``at_ms``."""
        stamp = f" {at_ms // 1000}.{at_ms % 1000:03d}\n"
        lines: list[list[str]] = [[] for _ in FAMILIES]
        for result in sorted(results, key=lambda r: r.series):
            series = result.series
            export = self._choice.of(series.model, series.segment, series.window)
            if export is not None:
                render(result, export, lines)
        for index, family_lines in enumerate(lines):
            if family_lines:
                self._part(index).writelines(line[:-1] + stamp for line in family_lines)
                self.samples += len(family_lines)

    def _part(self, index: int) -> IO[str]:
        if index not in self._parts:
            self._parts[index] = (self._directory / f"{index}.om").open("w", encoding="utf-8")
        return self._parts[index]

    def write(self, path: Path) -> None:
        """The OpenMetrics file: every family that has samples, then ``# EOF``."""
        with path.open("w", encoding="utf-8") as out:
            for index in sorted(self._parts):
                self._parts[index].close()
                out.write(FAMILIES[index].header().decode())
                with open(self._parts[index].name, encoding="utf-8") as lines:
                    shutil.copyfileobj(lines, out)
            out.write("# EOF\n")
        self.close()

    def close(self) -> None:
        for part in self._parts.values():
            part.close()
        shutil.rmtree(self._directory, ignore_errors=True)

"""Every file calmon generates from its own code, written or checked in one go.

``make generated`` (``.venv/bin/python scripts/generated.py``) rewrites them all; run it
after changing a metric, a setting, an API parameter or a dashboard panel, and commit
what it changed. ``tests/unit/test_docs.py`` fails, naming the stale files, when a
committed copy differs from what this writes. ``--check`` only reports (exit 1 when
something is stale), for a pre-commit hook.

Each generator stays in its own script (it documents its own file); this one only lists
them, so that nobody has to remember which of them a change touched.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import build_dashboards
import build_metric_docs
import build_openapi
import build_values_schema

ROOT = Path(__file__).resolve().parent.parent


def _metric_table() -> str:
    return build_metric_docs.rendered(
        build_metric_docs.DOC.read_text(encoding="utf-8"), build_metric_docs.catalogue()
    )


def _dashboard(name: str) -> Callable[[], str]:
    return lambda: build_dashboards.render()[name]


#: Generated file -> the text it should hold now.
GENERATED: dict[Path, Callable[[], str]] = {
    build_openapi.DOC: build_openapi.rendered,
    build_metric_docs.DOC: _metric_table,
    build_values_schema.SCHEMA: build_values_schema.rendered,
    **{build_dashboards.OUT / name: _dashboard(name) for name in build_dashboards.DASHBOARDS},
}


def stale() -> dict[Path, str]:
    """The generated files whose committed text differs, with the text they should hold."""
    expected = {path: render() for path, render in GENERATED.items()}
    return {
        path: text
        for path, text in expected.items()
        if not path.exists() or path.read_text(encoding="utf-8") != text
    }


def main(argv: list[str]) -> int:
    outdated = stale()
    for path, text in outdated.items():
        if "--check" not in argv:
            path.write_text(text, encoding="utf-8")
        print(f"{'stale' if '--check' in argv else 'wrote'} {path.relative_to(ROOT)}")
    if not outdated:
        print(f"all {len(GENERATED)} generated files are current")
    return 1 if outdated and "--check" in argv else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The manual names exactly the metrics the daemon exports, and every generated file is current.

The metric table in docs/operations.md is generated from the daemon's registry
(scripts/build_metric_docs.py), like docs/openapi.json, the chart's values.schema.json
and the dashboards (scripts/generated.py lists them all); these tests fail when one was
not regenerated (``make generated``) after a metric, setting, parameter or panel changed,
and when any page names a ``calmon_*`` metric that does not exist.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import build_metric_docs  # noqa: E402
import generated  # noqa: E402

#: A metric name as written in prose: calmon_ and lower-case words. Prefixes written
#: with a trailing `*` (calmon_reliability_bin_*) are matched as prefixes.
NAME = re.compile(r"\bcalmon_[a-z0-9_]+\*?")
#: Words that look like metric names but are not: the Python package and its options.
NOT_METRICS = {"calmon_"}


def _pages() -> dict[Path, str]:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    pages += [ROOT / "helm" / "calmon" / "README.md"]
    return {page: page.read_text(encoding="utf-8") for page in pages}


def _exported() -> set[str]:
    names = set()
    for metric in build_metric_docs.catalogue():
        names.add(metric.name)
        if metric.type == "counter":
            names.add(metric.name.removesuffix("_total"))
        if metric.type == "histogram":
            names.update(metric.name + suffix for suffix in ("_bucket", "_sum", "_count"))
    return names


def test_every_generated_file_is_what_make_generated_writes() -> None:
    stale = [str(path.relative_to(ROOT)) for path in generated.stale()]
    assert not stale, f"stale generated files {stale}: run `make generated` and commit"


def test_every_metric_named_in_the_docs_exists() -> None:
    exported = _exported()
    unknown = {}
    for page, text in _pages().items():
        for name in set(NAME.findall(text)) - NOT_METRICS:
            if name.endswith("*"):
                known = any(e.startswith(name[:-1]) for e in exported)
            else:
                known = name in exported
            if not known:
                unknown.setdefault(str(page.relative_to(ROOT)), []).append(name)
    assert not unknown, f"metrics named in docs that calmon does not export: {unknown}"


def test_every_exported_metric_is_in_the_manual() -> None:
    manual = build_metric_docs.DOC.read_text(encoding="utf-8")
    missing = [m.name for m in build_metric_docs.catalogue() if f"`{m.name}`" not in manual]
    assert not missing, f"not in docs/operations.md: {missing}"

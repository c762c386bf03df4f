"""Render the Helm chart with the real helm CLI (installed by scripts/install-helm.sh)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "helm" / "calmon"
FULL_VALUES = CHART / "ci" / "full-values.yaml"
SQLITE_VALUES = CHART / "ci" / "sqlite-persistent-values.yaml"
#: name -> values files: the chart's defaults, every option on, SQLite on a volume.
VALUE_SETS = {"default": [], "full": [FULL_VALUES], "sqlite-persistent": [SQLITE_VALUES]}


def helm_binary() -> str:
    beside_python = Path(sys.executable).parent / "helm"
    found = str(beside_python) if beside_python.exists() else shutil.which("helm")
    if not found:
        # Required, never skipped: `make test` installs it (`make tools`).
        raise RuntimeError("helm is not installed: run `make tools` (scripts/install-helm.sh)")
    return found


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm_binary(), *args], capture_output=True, text=True, timeout=120)


def render(values: list[Path], *set_values: str) -> list[dict[str, Any]]:
    """Every manifest of ``helm template`` (hooks included), as dicts."""
    args = ["template", "ci", str(CHART), "--namespace", "ml"]
    for path in values:
        args += ["-f", str(path)]
    for item in set_values:
        args += ["--set", item]
    done = helm(*args)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def by_kind(manifests: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [m for m in manifests if m["kind"] == kind]


def one(manifests: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [m for m in by_kind(manifests, kind) if name is None or m["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]

"""What calmon declares, what it locks, and what it uses.

- requirements/dev.txt (CI's environment, `make`) and requirements/runtime.txt (the image,
  Dockerfile) pin every declared dependency, with hashes, at a version the declaration
  allows, and agree with each other: `make lock` after a change to pyproject.toml.
- Every declared dependency is used: imported by the package (runtime), or by the tests,
  scripts or benchmarks (dev), or named below as a tool or plugin that is not imported.
- Floors stay above the releases with known vulnerabilities.
"""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
RUNTIME = [Requirement(r) for r in PROJECT["dependencies"]]
EXTRAS = [Requirement(r) for group in PROJECT["optional-dependencies"].values() for r in group]
#: Declared, used, but never imported: how each is used.
NOT_IMPORTED = {
    "pytest-timeout": "pytest plugin (timeout in [tool.pytest.ini_options])",
    "ruff": "make lint",
    "mypy": "make lint",
    "import-linter": "make lint (lint-imports)",
    "types-pyyaml": "stubs read by mypy",
    "moto": "moto_server, the S3 stand-in of the broker-restart tests",
    "rfc3339-validator": "jsonschema's date-time format checker, loaded by jsonschema",
    "mutmut": "make mutants",
}
#: Lowest release without a known vulnerability reachable by calmon's inputs.
SAFE_FLOORS = {
    "orjson": "3.9.15",  # CVE-2024-27454: unbounded recursion on deeply nested JSON
    "h11": "0.16",  # CVE-2025-43859: request smuggling (the HTTP server parses with it)
}


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(lock: str) -> dict[str, tuple[str, int]]:
    """name -> (version, number of hashes) of a uv/pip-compile lock file."""
    text = (ROOT / "requirements" / lock).read_text()
    found = {}
    for block in re.split(r"\n(?=\S)", text):
        match = re.match(r"([A-Za-z0-9_.-]+)==(\S+)", block)
        if match:
            found[normalized(match.group(1))] = (match.group(2), block.count("--hash=sha256:"))
    return found


@pytest.mark.parametrize(
    ("lock", "requirements"),
    [("runtime.txt", RUNTIME), ("dev.txt", RUNTIME + EXTRAS)],
)
def test_each_lock_pins_every_declared_dependency_with_hashes(
    lock: str, requirements: list[Requirement]
) -> None:
    pinned = pins(lock)
    for requirement in requirements:
        name = normalized(requirement.name)
        assert name in pinned, f"{name} is not in requirements/{lock}: run `make lock`"
        version, _ = pinned[name]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"requirements/{lock} pins {name}=={version}, pyproject.toml wants "
            f"{requirement.specifier}: run `make lock`"
        )
    assert all(hashes for _, hashes in pinned.values())


def test_the_image_installs_the_versions_ci_tests() -> None:
    runtime, dev = pins("runtime.txt"), pins("dev.txt")
    assert {name: runtime[name][0] for name in runtime} == {name: dev[name][0] for name in runtime}


def test_every_declared_dependency_is_used() -> None:
    modules = importlib.metadata.packages_distributions()
    provides: dict[str, set[str]] = {}
    for module, distributions in modules.items():
        for distribution in distributions:
            provides.setdefault(normalized(distribution), set()).add(module)

    def imported_in(*folders: str) -> set[str]:
        pattern = re.compile(r"(?m)^\s*(?:import|from)\s+([A-Za-z_]\w*)")
        return {
            name
            for folder in folders
            for path in (ROOT / folder).rglob("*.py")
            for name in pattern.findall(path.read_text())
        }

    unused = []
    for requirement, folders in [(r, ("monitor",)) for r in RUNTIME] + [
        (r, ("monitor", "tests", "scripts", "bench")) for r in EXTRAS
    ]:
        name = normalized(requirement.name)
        if name in NOT_IMPORTED:
            continue
        # A distribution not installed here maps to its usual module name.
        modules = provides.get(name) or {name.replace("-", "_")}
        if not modules & imported_in(*folders):
            unused.append(name)
    assert not unused, f"declared but never imported: {unused}"


def test_floors_exclude_known_vulnerable_releases() -> None:
    declared = {normalized(r.name): r.specifier for r in RUNTIME}
    for name, safe in SAFE_FLOORS.items():
        floors = [Version(s.version) for s in declared[name] if s.operator in (">=", ">")]
        assert floors and max(floors) >= Version(safe), f"{name} floor below {safe}"
    kafka = declared["kafka-python"]
    assert not kafka.contains("2.0.2") and kafka.contains("3.0.12") and not kafka.contains("4.0")

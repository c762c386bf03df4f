"""The container image, checked without a Docker engine (there is none here).

Statically: multi-stage, a non-root numeric user, no compilers in the runtime stage,
calmon as entrypoint, a HEALTHCHECK on /healthz, OCI labels, the base image from one
ARG. Dynamically: the image's install steps — build the wheel, install the hashed lock
requirements/runtime.txt and then the wheel with no extras into a fresh environment,
run `calmon --help`, `calmon migrate` and a report with its PNG (the image has no
browser) — run here exactly as the Dockerfile runs them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def stages() -> list[str]:
    return re.split(r"(?m)^FROM ", DOCKERFILE)[1:]


def test_dockerfile_is_multi_stage_non_root_and_compiler_free() -> None:
    build, runtime = stages()
    assert " AS build" in build.splitlines()[0] and " AS runtime" in runtime.splitlines()[0]
    assert "COPY --from=build /dist/*.whl" in runtime
    user = re.search(r"(?m)^USER (\S+)", runtime)
    assert user and user.group(1).split(":")[0] not in ("0", "root")
    assert not re.search(r"gcc|g\+\+|build-essential|apt-get install", runtime)
    assert "--only-binary=:all:" in runtime  # nothing may need compiling
    assert re.search(r'(?m)^ENTRYPOINT \["calmon"\]', runtime)
    assert re.search(r"(?m)^HEALTHCHECK .*?/healthz", runtime, re.S)
    assert "org.opencontainers.image.source" in runtime
    assert "org.opencontainers.image.version" in runtime
    # Dependencies only from the hashed lock; calmon's wheel resolves nothing.
    assert "--require-hashes" in runtime and "-r /tmp/requirements.txt" in runtime
    assert "--no-deps --no-index /tmp/*.whl" in runtime


def test_both_stages_use_the_base_image_argument() -> None:
    """One ARG names the base image, so a build pins it by digest in one place."""
    default = re.search(r"(?m)^ARG PYTHON_IMAGE=(\S+)$", DOCKERFILE)
    assert default, "ARG PYTHON_IMAGE=<image> before the first FROM"
    assert DOCKERFILE.index("ARG PYTHON_IMAGE") < DOCKERFILE.index("\nFROM ")
    assert [stage.split()[0] for stage in stages()] == ["${PYTHON_IMAGE}", "${PYTHON_IMAGE}"]
    image, _, digest = default.group(1).partition("@")
    assert image.startswith("python:3.11-slim")
    # A committed digest must be a digest, never a placeholder.
    assert not digest or re.fullmatch(r"sha256:[0-9a-f]{64}", digest)


@pytest.mark.slow
def test_the_image_install_steps_work(tmp_path: Path) -> None:
    # The build stage copies exactly these into an empty directory (and building there
    # leaves no build/ directory behind in the checkout).
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "monitor", source / "monitor", ignore=shutil.ignore_patterns("__pycache__")
    )
    assert "COPY pyproject.toml README.md ./\nCOPY monitor ./monitor" in DOCKERFILE
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(dist), str(source)],
        check=True,
        capture_output=True,
    )
    (wheel,) = dist.glob("calmon-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = str(venv / "bin" / "pip")
    lock = ROOT / "requirements" / "runtime.txt"
    assert "COPY requirements/runtime.txt /tmp/requirements.txt" in DOCKERFILE
    for step in (
        ["install", "--quiet", "--require-hashes", "--only-binary=:all:", "-r", str(lock)],
        ["install", "--quiet", "--no-deps", "--no-index", str(wheel)],
        ["check"],  # what the wheel requires, the lock satisfies
    ):
        done = subprocess.run([pip, *step], capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
    calmon = str(venv / "bin" / "calmon")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALMON")}
    env["CALMON_STORE_URL"] = f"sqlite:///{tmp_path / 'image.db'}"
    help_text = subprocess.run([calmon, "--help"], check=True, capture_output=True, text=True)
    assert "run" in help_text.stdout and "migrate" in help_text.stdout
    # Run from another directory: migrations must ship inside the wheel.
    subprocess.run([calmon, "migrate"], check=True, capture_output=True, env=env, cwd=tmp_path)
    tables = set(inspect(create_engine(env["CALMON_STORE_URL"])).get_table_names())
    assert {"events", "aggregates", "alerts", "webhook_deliveries"} <= tables
    _report_and_png_work(venv, tmp_path)


def _report_and_png_work(venv: Path, tmp_path: Path) -> None:
    """`calmon evaluate --report --png` with only the image's environment: the venv on
    the PATH (no browser), no home, matplotlib's cache where the Dockerfile puts it."""
    config_dir = re.search(r"MPLCONFIGDIR=(\S+)", DOCKERFILE)
    assert config_dir and config_dir.group(1).startswith("/tmp/")
    rows = ["event_id,model_id,model_version,timestamp,probability,label"]
    rows += [f"e{i},fraud,v1,2026-10-01T00:{i // 60:02d}:{i % 60:02d}Z,{(i % 97 + 1) / 99},"
             f"{i % 3 % 2}" for i in range(3000)]  # fmt: skip
    (tmp_path / "predictions.csv").write_text("\n".join(rows) + "\n")
    done = subprocess.run(
        [str(venv / "bin" / "calmon"), "evaluate", "predictions.csv", "--report", "r.html",
         "--png", "r.png"],
        capture_output=True, text=True, cwd=tmp_path,
        env={"PATH": str(venv / "bin"), "HOME": "/nonexistent",
             "MPLCONFIGDIR": str(tmp_path / "matplotlib")},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Matplotlib" not in done.stderr  # no cache-directory warning
    assert (tmp_path / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "No conditions" in (tmp_path / "r.html").read_text()  # the verdict, on top

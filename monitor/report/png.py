"""PNG export of a report through headless Chromium (Debian package ``chromium``)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

BINARIES = ("chromium", "chromium-browser", "google-chrome")


class ChromiumMissing(RuntimeError):
    pass


def chromium() -> str:
    for name in BINARIES:
        found = shutil.which(name)
        if found:
            return found
    raise ChromiumMissing("PNG export needs Chromium (Debian: apt-get install chromium)")


def html_to_png(html: Path, png: Path, *, width: int = 1220, height: int = 1500) -> None:
    """Screenshot ``html`` at ``width`` x ``height`` CSS pixels."""
    subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",  # containers and CI run as root, where the sandbox cannot start
            "--disable-gpu",
            "--hide-scrollbars",
            f"--window-size={width},{height}",
            f"--screenshot={png.resolve()}",
            html.resolve().as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )

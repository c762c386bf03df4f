"""`calmon report` on a store the daemon's own code filled: every chart is present with
real content, the PNG is drawn without a browser, and hostile ids stay text."""

from __future__ import annotations

import os
import re
import struct
import subprocess
import sys
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine

from monitor.core.records import Label, Prediction
from monitor.core.results import ReferenceUsed
from monitor.report.build import reference_caption
from monitor.store.write.event_store import EventStore
from monitor.windows.references import snapshot_period
from tests.integration.alerts.test_alertmanager import (
    MINUTE,
    RULES,
    Clock,
    make_app,
    write_traffic,
)

pytestmark = pytest.mark.integration


def fill_store(engine: Engine, rules: Path) -> None:
    """A healthy period, a drift on eu (alert fires), for 12 evaluations of 5m."""
    clock = Clock(1_790_000_000_000)
    app = make_app(engine, rules, [], clock)
    store = EventStore(engine, segment_keys=["region"], clock_ms=clock)
    start = clock.ms - 3 * MINUTE
    for step in range(12):
        clock.ms += 5 * MINUTE
        write_traffic(store, clock.ms, step * 100_000, eu_overconfident=step >= 6, seed=step)
        if step == 1:
            snapshot_period(
                engine, model_id="fraud", model_version="v1", start_ms=start,
                end_ms=clock.ms, psi_bins=10, now_ms=clock.ms,
            )  # fmt: skip
        app.jobs[0].evaluate_now(clock.ms)


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", header[16:24])
    return width, height


def test_report_has_every_chart_and_renders(
    sqlite_url: str, sqlite_engine: Engine, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    fill_store(sqlite_engine, rules)
    config = tmp_path / "calmon.yaml"
    config.write_text("store: {segment_keys: [region]}\nwindows: [{name: 5m, length: 5m}]\n")
    html, png = tmp_path / "report.html", tmp_path / "report.png"
    # No browser on the PATH (the container image has none): the PNG is matplotlib's.
    no_browser = tmp_path / "bin"
    no_browser.mkdir()
    env = {**os.environ, "CALMON_STORE_URL": sqlite_url, "PATH": str(no_browser)}
    run = subprocess.run(
        [
            sys.executable, "-m", "monitor", "report", "-c", str(config), "--model", "fraud",
            "--window", "5m", "--version", "v1", "--segment", "region=eu", "--since", "3650d",
            "--out", str(html), "--png", str(png),
        ],
        capture_output=True, text=True, env=env, timeout=180,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    text = html.read_text()
    for chart in (
        "reliability-diagram",
        "confidence-histogram",
        "calibration-over-time",
        "discrimination-over-time",
        "drift-over-time",
        "distribution-raw-score",
        "distribution-probability",
    ):
        match = re.search(rf'<svg id="{chart}".*?</svg>', text, re.S)
        assert match, chart
        assert 'class="empty"' not in match.group(0), chart  # real content, not a placeholder
    reliability = re.search(r'<svg id="reliability-diagram".*?</svg>', text, re.S).group(0)  # type: ignore[union-attr]
    assert 5 <= reliability.count('class="bin"') <= 10
    assert reliability.count('class="ci"') == reliability.count('class="bin"')
    over_time = re.search(r'<svg id="calibration-over-time".*?</svg>', text, re.S).group(0)  # type: ignore[union-attr]
    assert 'class="fired annotation"' in over_time  # the alert on eu is marked
    assert "fired: CalibrationErrorHigh" in over_time  # and labelled
    assert all(f"<td>region={r}</td>" in text for r in ("eu", "us"))
    # The snapshot taken at step 1: from 3 minutes before the first step to the second.
    assert (
        "Drift is measured against the snapshot stored with calmon baseline: "
        "2026-09-21 14:10:20 to 2026-09-21 14:23:20 UTC." in text
    )
    assert "<script" not in text and "http://" not in text.replace("http://www.w3.org", "")
    width, height = png_size(png)
    assert width == 1600 and height > 2500  # every section, one under the other
    assert png.stat().st_size > 100_000  # a blank page compresses to a few KB


def test_the_reference_caption_shows_seconds_only_when_the_period_has_them() -> None:
    def caption(start: str, end: str) -> str:
        used = ReferenceUsed(
            "fixed", datetime.fromisoformat(start), datetime.fromisoformat(end), {}
        )
        return reference_caption(used)

    assert "2026-11-01 00:00 to 2026-11-08 00:00 UTC." in caption(
        "2026-11-01T00:00:00+00:00", "2026-11-08T00:00:00+00:00"
    )
    assert "2026-11-28 21:17:05 to 2026-11-28 21:17:50 UTC." in caption(
        "2026-11-28T21:17:05+00:00", "2026-11-28T21:17:50+00:00"
    )


#: Ids and segment values as an attacker (or an unlucky producer) could send them: each
#: would break out of its text, attribute or title if the report did not escape it.
HOSTILE_MODEL = "fraud<script>alert('m')</script>\"&amp;é☃"
#: The dollar signs would be mathtext to matplotlib (and this one does not parse).
HOSTILE_VERSION = "v1</title><script>x()</script>$\\notacommand{$"
HOSTILE_REGIONS = ('eu" onmouseover="alert(1)', "us'><img src=x onerror=alert(2)>", "ü<!--")


class _Page(HTMLParser):
    """Every tag, attribute and piece of text of a page, as a browser would parse it."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: set[str] = set()
        self.attributes: set[str] = set()
        self.text: list[str] = []
        self.comments: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attributes |= {name for name, _ in attrs}

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def handle_comment(self, data: str) -> None:
        self.comments.append(data)


def test_hostile_ids_and_segments_are_text_in_the_report(
    sqlite_url: str, sqlite_engine: Engine, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    clock = Clock(1_790_000_000_000)
    app = make_app(sqlite_engine, rules, [], clock)
    store = EventStore(sqlite_engine, segment_keys=["region"], clock_ms=clock)
    rng = np.random.default_rng(3)
    for step in range(2):
        clock.ms += 5 * MINUTE
        records: list[Prediction | Label] = []
        for r, region in enumerate(HOSTILE_REGIONS):
            p = rng.uniform(0.05, 0.95, 400)
            y = (rng.uniform(size=p.size) < p**3).astype(int)  # over-confident: fires
            for i in range(p.size):
                event = f"{step}-{r}-{i}"
                t = clock.ms - 2 * MINUTE + i * 100
                records.append(
                    Prediction(HOSTILE_MODEL, event, HOSTILE_VERSION, t, float(p[i] * 4 - 2),
                               float(p[i]), {"region": region})
                )  # fmt: skip
                records.append(Label(HOSTILE_MODEL, event, int(y[i]), t + 1000))
        store.write_batch(records)
        app.jobs[0].evaluate_now(clock.ms)
    config = tmp_path / "calmon.yaml"
    config.write_text("store: {segment_keys: [region]}\nwindows: [{name: 5m, length: 5m}]\n")
    html = tmp_path / "report.html"
    run = subprocess.run(
        [
            sys.executable, "-m", "monitor", "report", "-c", str(config),
            "--model", HOSTILE_MODEL, "--window", "5m", "--version", HOSTILE_VERSION,
            "--segment", f"region={HOSTILE_REGIONS[0]}", "--since", "3650d", "--out", str(html),
            "--png", str(tmp_path / "report.png"),
        ],
        capture_output=True, text=True, env={**os.environ, "CALMON_STORE_URL": sqlite_url},
        timeout=180,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    page = _Page()
    page.feed(html.read_text(encoding="utf-8"))
    page.close()
    # Only the report's own markup: nothing the data could have opened.
    assert not page.tags & {"script", "img", "iframe", "object", "embed"}, page.tags
    assert not {a for a in page.attributes if a.startswith("on")}, page.attributes
    assert page.comments == []
    # And the data is all there, as text, exactly as sent.
    text = "".join(page.text)
    assert f"calmon report: {HOSTILE_MODEL}" in text
    assert f"{HOSTILE_VERSION}, region={HOSTILE_REGIONS[0]}, window 5m" in text
    assert all(f"region={region}" in text for region in HOSTILE_REGIONS)
    assert png_size(tmp_path / "report.png")[0] == 1600  # drawn, the $ not parsed

"""`calmon baseline` end to end on a SQLite store: the snapshot it stores is the core's
fit on the period's raw values, per segment."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sqlalchemy import Engine

from monitor.core.records import Prediction
from monitor.core.series import ALL
from monitor.metrics.drift import ReferenceProfile
from monitor.store.references import SNAPSHOT, load_stored
from monitor.store.write.event_store import EventStore

DAY = 86_400_000
START = 20_600 * DAY  # 2026-05-27T00:00Z


def test_baseline_snapshots_every_segment_of_the_period(
    sqlite_url: str, sqlite_engine: Engine, tmp_path: Path
) -> None:
    rng = np.random.default_rng(8)
    inside, outside = rng.normal(0, 1, 1200), rng.normal(2, 1, 300)
    regions = ["eu" if i % 3 == 0 else "us" for i in range(1200)]
    store = EventStore(sqlite_engine, segment_keys=["region"], clock_ms=lambda: START + 3 * DAY)
    store.write_batch(
        [
            Prediction("m", f"a{i}", "v1", START + i * 60_000, float(s), segment={"region": r})
            for i, (s, r) in enumerate(zip(inside, regions, strict=True))
        ]
        # The next day, outside the period: not in the snapshot.
        + [
            Prediction("m", f"b{i}", "v1", START + DAY + i, float(s), segment={"region": "eu"})
            for i, s in enumerate(outside)
        ]
    )
    config = tmp_path / "calmon.yaml"
    config.write_text("store: {segment_keys: [region]}\n")
    run = subprocess.run(
        [
            sys.executable, "-m", "monitor", "baseline", "-c", str(config), "--model", "m",
            "--version", "v1", "--from", datetime.fromtimestamp(START / 1000, UTC).isoformat(),
            "--to", "2026-05-28T00:00:00Z",
        ],
        capture_output=True, text=True, env={**os.environ, "CALMON_STORE_URL": sqlite_url},
        timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.splitlines()[-1] == "stored references for 3 segment(s)"
    eu = np.array(regions) == "eu"
    for segment, values in ((ALL, inside), ("region=eu", inside[eu]), ("region=us", inside[~eu])):
        stored = load_stored(sqlite_engine, "m", "v1", segment)
        assert stored is not None and stored.source == SNAPSHOT
        assert (stored.start_ms, stored.end_ms, stored.psi_bins) == (START, START + DAY, 10)
        profile = stored.references["raw_score"]
        expected = ReferenceProfile.fit(values, kind="raw_score")
        assert profile is not None and profile.count == len(values)
        assert np.array_equal(profile.psi_edges, expected.psi_edges)

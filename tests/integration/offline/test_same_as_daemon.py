"""`calmon evaluate` against the daemon: the same events, sent as JSON messages through
ingest's validator into a real SQLite store and evaluated by the window job, and
written to a Parquet file and evaluated from it, give the same metrics.

Kafka itself is left out (the transport adds nothing to the numbers): the messages go
through ``parse_message`` and ``EventStore.write_batch`` in batches as the ingest worker
hands them on.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from monitor.core.results import WindowResult
from monitor.ingest.validation import parse_message
from monitor.offline.columns import file_columns
from monitor.offline.pipeline import Source
from monitor.offline.run import evaluate_file
from monitor.settings import EvaluationSettings, Settings, StoreSettings, WindowSettings
from monitor.store.write.event_store import EventStore
from monitor.windows.jobs import JobMetrics, WindowJob
from monitor.windows.metric_names import DRIFT_KEYS, SEQUENTIAL
from monitor.windows.references import snapshot_period

DAY = 86_400_000
NOW = 1_790_006_400_000  # a UTC midnight
#: Depend on the evaluation time, which differs (the job's now, the file's last event);
#: and the sequential detector, which evaluate does not run yet (docs/evaluate.md).
AS_OF = {"seconds_since_last_prediction", "seconds_since_last_label", *SEQUENTIAL}


def _events(
    rng: np.random.Generator, n: int, start_ms: int, prefix: str, shift: float
) -> pd.DataFrame:
    score = rng.normal(shift, 1.2, n)
    p = 1 / (1 + np.exp(-score * 0.9))
    labelled = rng.uniform(size=n) < 0.8
    y = np.where(labelled, (rng.uniform(size=n) < p).astype(float), np.nan)
    times = start_ms + np.sort(rng.integers(0, 18 * 3_600_000, n))
    return pd.DataFrame(
        {
            "event_id": [f"{prefix}{i}" for i in range(n)],
            "model_id": "fraud",
            "model_version": rng.choice(["v1", "v2"], n, p=[0.6, 0.4]),
            "timestamp": times,
            "raw_score": score,
            "probability": p,
            "label": y,
            "label_timestamp": times + rng.integers(1_000, 6 * 3_600_000, n),
            # 14 shops: more than max_segment_values, so shop=__other__ is compared too.
            "shop": [f"s{k}" for k in rng.zipf(1.6, n) % 14],
            "region": rng.choice(["eu", "us"], n),
        }
    )


def _messages(frame: pd.DataFrame) -> list[bytes]:
    out = []
    for row in frame.itertuples(index=False):
        out.append(
            orjson.dumps(
                {
                    "event_id": row.event_id,
                    "model_id": row.model_id,
                    "model_version": row.model_version,
                    "timestamp": int(row.timestamp),
                    "raw_score": float(row.raw_score),
                    "probability": float(row.probability),
                    "segment": {"shop": row.shop, "region": row.region},
                }
            )
        )
        if not math.isnan(row.label):
            out.append(
                orjson.dumps(
                    {
                        "event_id": row.event_id,
                        "model_id": row.model_id,
                        "label": int(row.label),
                        "timestamp": int(row.label_timestamp),
                    }
                )
            )
    return out


def _by_series(results: list[WindowResult]) -> dict[tuple[str, str], WindowResult]:
    return {(r.series.model_version, r.series.segment): r for r in results}


@pytest.fixture
def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(21)
    reference = _events(rng, 6000, NOW - 3 * DAY, "r", 0.0)
    current = _events(rng, 9000, NOW - DAY + 3_600_000, "c", 0.35)
    return reference, current


def test_evaluate_gives_the_daemons_numbers(
    sqlite_engine: Engine, frames: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    reference, current = frames
    keys = ("shop", "region")
    settings = Settings(
        store=StoreSettings(segment_keys=list(keys)),
        evaluation=EvaluationSettings(min_labelled=50, min_predictions=50, max_segment_values=5),
        windows=[WindowSettings(name="1d", length=86400, every=60)],
    )
    # The daemon: messages -> validator -> store, in batches; a snapshot of the
    # reference period per version; the window job at NOW.
    store = EventStore(sqlite_engine, segment_keys=keys, clock_ms=lambda: NOW)
    messages = [parse_message(m) for m in _messages(reference) + _messages(current)]
    for start in range(0, len(messages), 2000):
        store.write_batch(messages[start : start + 2000])
    for version in ("v1", "v2"):
        snapshot_period(
            sqlite_engine,
            model_id="fraud",
            model_version=version,
            start_ms=NOW - 3 * DAY,
            end_ms=NOW - 2 * DAY,
            psi_bins=10,
            now_ms=NOW,
        )
    job = WindowJob(
        sqlite_engine,
        settings,
        settings.windows[0],
        owner="test",
        metrics=JobMetrics(CollectorRegistry()),
        clock_ms=lambda: NOW,
    )
    daemon = _by_series(job.evaluate_all(NOW))

    # evaluate: the same events in two Parquet files, the reference and the current.
    for name, frame in (("reference", reference), ("current", current)):
        frame.assign(timestamp=pd.to_datetime(frame.timestamp, unit="ms", utc=True)).to_parquet(
            tmp_path / f"{name}.parquet"
        )

    def source(name: str) -> Source:
        return Source(tmp_path / f"{name}.parquet", file_columns({}, keys), keys)

    offline = _by_series(
        evaluate_file(
            source("current"), settings, window="1d", reference_file=source("reference")
        ).results
    )
    # The snapshot is per version; the daemon's all-versions series has the trailing
    # reference (the day before the window: empty), the file's the reference file's.
    assert set(offline) == set(daemon)
    assert ("v1", "shop=__other__") in daemon and ("v2", "region=eu") in daemon
    compared = 0
    for series, result in daemon.items():
        mine = offline[series]
        assert (mine.predictions, mine.labelled) == (result.predictions, result.labelled)
        expected = {k: v for k, v in result.values.items() if k not in AS_OF}
        got = {k: v for k, v in mine.values.items() if k not in AS_OF}
        if series[0] == "__all__":
            expected = {k: v for k, v in expected.items() if k not in DRIFT_KEYS}
            got = {k: v for k, v in got.items() if k not in DRIFT_KEYS}
        elif not series[1].endswith("__other__"):  # a merged tail has no reference
            assert "psi_raw_score" in got, series
        assert got.keys() == expected.keys(), series
        for key, value in expected.items():
            # Sums over the same events added in another order: most values are equal to
            # the last digit, the others within a few 1e-15 (ECE, ACE, RMSCE, the interval).
            assert got[key] == pytest.approx(value, rel=1e-12, abs=1e-15), (series, key)
            compared += 1
        assert [(b.index, b.count) for b in mine.reliability_bins] == [
            (b.index, b.count) for b in result.reliability_bins
        ]
        assert [b.observed_ratio for b in mine.reliability_bins] == pytest.approx(
            [b.observed_ratio for b in result.reliability_bins], rel=1e-12
        )
    assert compared > 500

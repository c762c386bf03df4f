"""`calmon evaluate` of a multi-class file against the daemon: the same events, sent as
JSON messages (class probabilities, class-name labels) through ingest's validator into a
real SQLite store and evaluated by the window job, and written to a Parquet file with one
``probability.<class>`` column per class and evaluated from it, give the same values,
overall and per class, and the same reliability bins.

Mirrors ``test_same_as_daemon.py`` (binary); Kafka is left out for the same reason.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from monitor.core.results import WindowResult
from monitor.ingest.validation import parse_message
from monitor.offline.backfill import backfill
from monitor.offline.columns import file_columns
from monitor.offline.pipeline import Source
from monitor.offline.run import evaluate_file
from monitor.settings import EvaluationSettings, Settings, StoreSettings, WindowSettings
from monitor.store.write.event_store import EventStore
from monitor.windows.jobs import JobMetrics, WindowJob
from monitor.windows.metric_names import CLASS_DRIFT, DRIFT_KEYS, SEQUENTIAL
from monitor.windows.references import snapshot_period

DAY = 86_400_000
NOW = 1_790_006_400_000  # a UTC midnight
CLASSES = ("billing", "other", "sales", "tech")
#: Depend on the evaluation time (the job's now, the file's last event).
AS_OF = {"seconds_since_last_prediction", "seconds_since_last_label", *SEQUENTIAL}


def _events(
    rng: np.random.Generator, n: int, start_ms: int, prefix: str, shift: float
) -> pd.DataFrame:
    logits = rng.normal(0.0, 1.4, (n, len(CLASSES))) + 0.3 * np.arange(len(CLASSES))
    logits[:, 3] += shift
    truth = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = np.minimum((truth.cumsum(axis=1) < rng.uniform(size=(n, 1))).sum(axis=1), 3)
    p = np.exp(logits / 0.8)
    p /= p.sum(axis=1, keepdims=True)
    labelled = rng.uniform(size=n) < 0.8
    times = start_ms + np.sort(rng.integers(0, 18 * 3_600_000, n))
    frame = pd.DataFrame(
        {
            "event_id": [f"{prefix}{i}" for i in range(n)],
            "model_id": "triage",
            "model_version": rng.choice(["v1", "v2"], n, p=[0.6, 0.4]),
            "timestamp": times,
            "label": np.where(labelled, np.array(CLASSES)[y], None),
            "label_timestamp": times + rng.integers(1_000, 6 * 3_600_000, n),
            # 14 shops: more than max_segment_values, so shop=__other__ is compared too.
            "shop": [f"s{k}" for k in rng.zipf(1.6, n) % 14],
            "region": rng.choice(["eu", "us"], n),
        }
    )
    for k, name in enumerate(CLASSES):
        frame[f"probability.{name}"] = p[:, k]
    return frame


def _messages(frame: pd.DataFrame) -> list[bytes]:
    out = []
    for row in frame.to_dict("records"):
        vector = {name: float(row[f"probability.{name}"]) for name in CLASSES}
        out.append(
            orjson.dumps(
                {
                    "event_id": row["event_id"],
                    "model_id": row["model_id"],
                    "model_version": row["model_version"],
                    "timestamp": int(row["timestamp"]),
                    "probabilities": vector,
                    "segment": {"shop": row["shop"], "region": row["region"]},
                }
            )
        )
        if isinstance(row["label"], str):
            out.append(
                orjson.dumps(
                    {
                        "event_id": row["event_id"],
                        "model_id": row["model_id"],
                        "label": row["label"],
                        "timestamp": int(row["label_timestamp"]),
                    }
                )
            )
    return out


def _by_series(results: list[WindowResult]) -> dict[tuple[str, str], WindowResult]:
    return {(r.series.model_version, r.series.segment): r for r in results}


def _close(got: dict[str, float], expected: dict[str, float], where: object) -> int:
    assert got.keys() == expected.keys(), where
    for key, value in expected.items():
        # The same sums, added in another order: equal to the last digits.
        assert got[key] == pytest.approx(value, rel=1e-12, abs=1e-15), (where, key)
    return len(expected)


@pytest.mark.parametrize("route", ["messages", "backfill"])
def test_evaluate_gives_the_daemons_multiclass_numbers(
    sqlite_engine: Engine, tmp_path: Path, route: str
) -> None:
    """``route``: the events reach the store as messages, or by ``calmon backfill``'s
    write path from the same Parquet files."""
    rng = np.random.default_rng(8)
    reference = _events(rng, 4000, NOW - 3 * DAY, "r", 0.0)
    current = _events(rng, 6000, NOW - DAY + 3_600_000, "c", 1.0)
    keys = ("shop", "region")
    settings = Settings(
        store=StoreSettings(segment_keys=list(keys)),
        evaluation=EvaluationSettings(min_labelled=50, min_predictions=50, max_segment_values=5),
        windows=[WindowSettings(name="1d", length=86400, every=60)],
    )
    for name, frame in (("reference", reference), ("current", current)):
        frame.assign(timestamp=pd.to_datetime(frame.timestamp, unit="ms", utc=True)).to_parquet(
            tmp_path / f"{name}.parquet"
        )

    def source(name: str) -> Source:
        return Source(tmp_path / f"{name}.parquet", file_columns({}, keys), keys)

    store = EventStore(sqlite_engine, segment_keys=keys, clock_ms=lambda: NOW)
    if route == "messages":
        messages = [parse_message(m) for m in _messages(reference) + _messages(current)]
        for start in range(0, len(messages), 2000):
            store.write_batch(messages[start : start + 2000])
    else:
        for name in ("reference", "current"):
            read, written = backfill(source(name), store, batch_records=2000)
            assert read.n_rejected == 0 and written.labels_joined > 0
    for version in ("v1", "v2"):
        snapshot_period(
            sqlite_engine,
            model_id="triage",
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

    evaluation = evaluate_file(
        source("current"), settings, window="1d", reference_file=source("reference")
    )
    assert evaluation.read.n_rejected == 0
    offline = _by_series(evaluation.results)
    assert set(offline) == set(daemon)
    assert ("v1", "shop=__other__") in daemon and ("v2", "region=eu") in daemon
    compared = 0
    for series, result in daemon.items():
        mine = offline[series]
        assert (mine.predictions, mine.labelled) == (result.predictions, result.labelled)
        expected = {k: v for k, v in result.values.items() if k not in AS_OF}
        got = {k: v for k, v in mine.values.items() if k not in AS_OF}
        class_drift = set()
        if series[0] == "__all__":
            # The snapshot is per version; the daemon's all-versions series has the
            # trailing reference (empty), the file's the reference file's.
            expected = {k: v for k, v in expected.items() if k not in DRIFT_KEYS}
            got = {k: v for k, v in got.items() if k not in DRIFT_KEYS}
            class_drift = set(CLASS_DRIFT)
        elif not series[1].endswith("__other__"):
            assert "psi_confidence" in got, series
        compared += _close(got, expected, series)
        assert mine.classes.keys() == result.classes.keys(), series
        if series[1].endswith("__other__"):
            assert mine.classes == {} and "top_label_ece" not in mine.values
        for name, found in result.classes.items():
            want = {k: v for k, v in found.values.items() if k not in class_drift}
            have = {k: v for k, v in mine.classes[name].values.items() if k not in class_drift}
            compared += _close(have, want, (series, name))
            assert [(b.index, b.count) for b in mine.classes[name].reliability_bins] == [
                (b.index, b.count) for b in found.reliability_bins
            ]
        assert [(b.index, b.count) for b in mine.reliability_bins] == [
            (b.index, b.count) for b in result.reliability_bins
        ]
        assert [b.observed_ratio for b in mine.reliability_bins] == pytest.approx(
            [b.observed_ratio for b in result.reliability_bins], rel=1e-12
        )
    assert compared > 500

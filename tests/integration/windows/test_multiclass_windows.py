"""The window job on a multi-class model, on SQLite and PostgreSQL: every series
(versions, all versions, segment values, the merged tail) against scikit-learn and event
loops on its own events, next to a binary model that stays as it was, before and after
compaction and across two ticks of one job (the window cache holds binary sums only)."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import CollectorRegistry
from sklearn.metrics import brier_score_loss, log_loss
from sqlalchemy import Engine

from monitor.core.records import Label, Prediction
from monitor.core.series import ALL
from monitor.metrics import calibration as core
from monitor.settings import EvaluationSettings, Settings, WindowSettings
from monitor.store.maintenance.compaction import compact_aggregates
from monitor.store.write.event_store import EventStore
from monitor.windows.jobs import JobMetrics, WindowJob

NOW = 1_790_000_000_000
MINUTE = 60_000
CLASSES = ("a", "b", "c")


def _job(engine: Engine) -> WindowJob:
    settings = Settings(
        evaluation=EvaluationSettings(min_labelled=30, min_predictions=30, max_segment_values=2),
        windows=[WindowSettings(name="1h", length=3600, every=60)],
        store={"segment_keys": ["shop"]},  # type: ignore[arg-type]
    )
    return WindowJob(
        engine,
        settings,
        settings.windows[0],
        owner="a",
        metrics=JobMetrics(CollectorRegistry()),
        clock_ms=lambda: NOW,
    )


def _ece_loop(confidence: np.ndarray, hit: np.ndarray, n_bins: int = 10) -> float:
    totals = np.zeros((n_bins, 3))
    for c, h in zip(confidence, hit, strict=True):
        totals[min(int(np.floor(c * n_bins)), n_bins - 1)] += (1.0, c, h)
    return float(np.abs(totals[:, 1] - totals[:, 2]).sum() / len(confidence))


def test_every_multiclass_series_is_its_own_events(migrated_engine: Engine) -> None:
    rng = np.random.default_rng(3)
    n = 900
    logits = rng.normal(0, 1.5, (n, 3))
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = (p.cumsum(axis=1) < rng.uniform(size=(n, 1))).sum(axis=1).clip(0, 2)
    version = np.where(np.arange(n) % 3 == 0, "v2", "v1")
    shop = rng.choice(["s1", "s2", "s3", "s4"], n, p=[0.4, 0.3, 0.2, 0.1])
    times = NOW - 55 * MINUTE + (np.arange(n) * 50 * MINUTE) // n
    labelled = np.arange(n) % 4 != 0  # a quarter still waits for its label
    records: list[Prediction | Label] = [
        Prediction(
            "intent",
            f"e{i}",
            str(version[i]),
            int(times[i]),
            segment={"shop": str(shop[i])},
            probabilities=dict(zip(CLASSES, p[i].tolist(), strict=True)),
        )
        for i in range(n)
    ]
    records += [
        Label("intent", f"e{i}", CLASSES[y[i]], NOW - 1000) for i in np.flatnonzero(labelled)
    ]
    q = rng.uniform(0.05, 0.95, 300)
    yq = (rng.uniform(size=300) < q).astype(int)
    records += [
        Prediction("fraud", f"f{i}", "v1", NOW - 30 * MINUTE, probability=float(q[i]))
        for i in range(300)
    ]
    records += [Label("fraud", f"f{i}", int(yq[i]), NOW - 1000) for i in range(300)]
    store = EventStore(migrated_engine, segment_keys=["shop"], clock_ms=lambda: NOW)
    for start in range(0, len(records), 250):
        store.write_batch(records[start : start + 250])
    job = _job(migrated_engine)

    def check(results) -> None:  # type: ignore[no-untyped-def]
        by = {(r.series.model, r.series.model_version, r.series.segment): r for r in results}
        cases = {
            ("intent", "v1", ALL): version == "v1",
            ("intent", "v2", ALL): version == "v2",
            ("intent", ALL, ALL): np.ones(n, dtype=bool),
            ("intent", "v1", "shop=s1"): (version == "v1") & (shop == "s1"),
            ("intent", ALL, "shop=s2"): shop == "s2",
        }
        for key, members in cases.items():
            result = by[key]
            chosen = members & labelled
            pl, yl = p[chosen], y[chosen]
            hit = (pl.argmax(axis=1) == yl).astype(float)
            assert result.predictions == members.sum(), key
            assert result.labelled == chosen.sum(), key
            values = result.values
            assert values["top_label_ece"] == pytest.approx(
                _ece_loop(pl.max(axis=1), hit), abs=1e-9
            )
            assert values["log_loss"] == pytest.approx(log_loss(yl, pl, labels=range(3)), abs=1e-9)
            assert values["estimated_accuracy_score"] == pytest.approx(
                p[members].max(axis=1).mean()
            )
            for k, name in enumerate(CLASSES):
                assert result.classes[name].values["class_brier_score"] == pytest.approx(
                    brier_score_loss(yl == k, pl[:, k]), abs=1e-9
                )
        # The merged tail of shops has volume, no class values; the binary model is as ever.
        tail = by[("intent", "v1", "shop=__other__")]
        assert tail.classes == {} and "top_label_ece" not in tail.values
        fraud = by[("fraud", "v1", ALL)]
        assert fraud.classes == {} and "top_label_ece" not in fraud.values
        assert fraud.values["ece"] == pytest.approx(
            core.expected_calibration_error(q, yq), abs=1e-9
        )

    check(job.evaluate_all(NOW))
    compact_aggregates(migrated_engine, NOW)
    check(job.evaluate_all(NOW))  # the second tick of the same job, after compaction

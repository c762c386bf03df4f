"""The window job on a multi-class model, on SQLite and PostgreSQL: every series
(versions, all versions, segment values, the merged tail) against scikit-learn and event
loops on its own events, next to a binary model that stays as it was, before and after
compaction and across two ticks of one job (the window cache holds binary sums only)."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import CollectorRegistry
from sklearn.metrics import brier_score_loss, log_loss
from sqlalchemy import Engine, text

from monitor.core.records import Label, Prediction
from monitor.core.series import ALL
from monitor.metrics import calibration as core
from monitor.metrics.drift import ReferenceProfile, population_stability_index
from monitor.settings import EvaluationSettings, Settings, WindowSettings
from monitor.store.maintenance.compaction import compact_aggregates
from monitor.store.write.event_store import EventStore
from monitor.windows.jobs import JobMetrics, WindowJob
from monitor.windows.references import snapshot_period

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


def test_a_baseline_snapshot_keeps_the_class_references(migrated_engine: Engine) -> None:
    # `calmon baseline` stores each class's reference and the confidence's: drift is then
    # measured against them even once the period's buckets are gone.
    rng = np.random.default_rng(4)
    n = 1200
    logits = rng.normal(0, 1.5, (2 * n, 3))
    logits[n:, 2] += 1.0  # class "c" grows after the baseline period
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    times = np.r_[
        NOW - 170 * MINUTE + (np.arange(n) * 100 * MINUTE) // n,
        NOW - 55 * MINUTE + (np.arange(n) * 50 * MINUTE) // n,
    ]
    store = EventStore(migrated_engine, clock_ms=lambda: NOW)
    store.write_batch(
        [
            Prediction(
                "intent",
                f"e{i}",
                "v1",
                int(times[i]),
                probabilities=dict(zip(CLASSES, p[i].tolist(), strict=True)),
            )
            for i in range(2 * n)
        ]
    )
    stored = snapshot_period(
        migrated_engine,
        model_id="intent",
        model_version="v1",
        start_ms=NOW - 180 * MINUTE,
        end_ms=NOW - 60 * MINUTE,
        psi_bins=10,
        now_ms=NOW,
    )
    assert stored == {ALL: {"raw_score": 0, "probability": 0, "confidence": n}}
    with migrated_engine.begin() as connection:
        for table in ("aggregates", "aggregate_deltas"):
            connection.execute(
                text(f"DELETE FROM {table} WHERE bucket_start_ms < :t"), {"t": NOW - 60 * MINUTE}
            )
    results = {
        (r.series.model_version, r.series.segment): r
        for r in _job(migrated_engine).evaluate_all(NOW)
    }
    result = results[("v1", ALL)]
    assert result.reference is not None and result.reference.source == "snapshot"
    assert result.values["drift_reference_events_confidence"] == n
    for k, name in enumerate(CLASSES):
        psi = population_stability_index(
            ReferenceProfile.fit(p[:n, k], kind="probability"), p[n:, k]
        )
        assert result.classes[name].values["class_psi"] == pytest.approx(psi, rel=0.05, abs=0.005)
    assert result.classes["c"].values["class_psi"] > 0.25
    assert result.values["psi_confidence"] == pytest.approx(
        population_stability_index(
            ReferenceProfile.fit(p[:n].max(axis=1), kind="probability"), p[n:].max(axis=1)
        ),
        rel=1e-9,
    )

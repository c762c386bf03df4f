"""``bench/bench_fleet.py`` at small scale: its store, its traffic and its window jobs,
with the caches kept (as the daemon runs them) against the same jobs reading every
series afresh at every tick. Same results: every value within 1e-9 of the cold one
(the rounding bound of ``windows/incremental.py`` is far below), counts equal, the same
series and the same reliability and drift bins."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType

from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from monitor.core.results import WindowResult
from monitor.store.maintenance.compaction import compact_aggregates
from monitor.windows.jobs import JobMetrics, WindowJob

BENCH = Path(__file__).resolve().parents[3] / "bench" / "bench_fleet.py"


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_fleet", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_fleet"] = module
    spec.loader.exec_module(module)
    return module


def _jobs(bench: ModuleType, engine: Engine) -> list[WindowJob]:
    config = bench.settings()
    return [
        WindowJob(
            engine,
            config,
            window,
            owner="test",
            metrics=JobMetrics(CollectorRegistry()),
            clock_ms=lambda: bench.NOW,
        )
        for window in config.windows
    ]


def _assert_same(warm: list[WindowResult], cold: list[WindowResult]) -> None:
    assert [r.series for r in warm] == [r.series for r in cold]
    for a, b in zip(warm, cold, strict=True):
        assert (a.predictions, a.labelled) == (b.predictions, b.labelled)
        assert a.values.keys() == b.values.keys(), a.series
        for name, value in a.values.items():
            assert math.isclose(value, b.values[name], rel_tol=1e-9, abs_tol=1e-12), (
                a.series,
                name,
                value,
                b.values[name],
            )
        assert [bin.count for bin in a.reliability_bins] == [b.count for b in b.reliability_bins]
        assert a.drift_bins == b.drift_bins  # from counts only: exact


def test_the_fleet_bench_windows_warm_equal_cold(sqlite_engine: Engine) -> None:
    migrated_engine = sqlite_engine  # both backends: test_incremental.py
    bench = _bench()
    fleet = bench.make_fleet(1)
    bench.build_store(migrated_engine, fleet, 6)
    warm, cold = _jobs(bench, migrated_engine), _jobs(bench, migrated_engine)
    traffic = bench.Traffic(fleet, migrated_engine)
    applied = 0
    # Six minutes; the 24h and 7d windows tick every two (their caches do not care how
    # often they tick, and minutes of traffic cost test time).
    for second in range(0, 6 * 60 + 1, bench.BATCH_S):
        now = bench.NOW + second * 1000
        if second:
            traffic.write_until(now, now)
        if second % bench.COMPACTION_S == 0:
            compact_aggregates(migrated_engine, now)
        for kept, fresh in zip(warm, cold, strict=True):
            if second % min(int(kept.every_s), 120) == 0:
                fresh.drop_caches()
                _assert_same(kept.evaluate_all(now), fresh.evaluate_all(now))
                applied += kept.cache_stats()[1]
    assert applied > 20  # the warm jobs did catch up from the change log and the rows

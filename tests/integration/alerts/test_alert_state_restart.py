"""Alert state across restarts, through the real store (SQLite and PostgreSQL): each
"daemon" is a new AlertPipeline on a new engine of the same database, so all it knows
of the alerts is what the previous one stored."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine, func, select

from monitor.alerts.pipeline import AlertPipeline
from monitor.core.results import WindowResult
from monitor.core.series import SeriesWindow
from monitor.rules.model import Rule
from monitor.settings import Settings, WebhookSettings
from monitor.store.alerts import alerts_to_send, load_alerts, mark_sent
from monitor.store.db.engine import make_engine
from monitor.store.db.tables import WebhookDelivery

pytestmark = pytest.mark.integration

SERIES = SeriesWindow("fraud", "v2", "region=eu", "24h")
T0 = 1_795_000_000_000
MINUTE_MS = 60_000
WEBHOOKS = {"recalibrate": WebhookSettings(url="http://127.0.0.1:9/recalibrate")}


def _rule(**extra: object) -> Rule:
    return Rule.model_validate(
        {
            "name": "CalibrationErrorHigh",
            "metric": "ece",
            "op": ">",
            "threshold": 0.05,
            "actions": ["recalibrate"],
            **extra,
        }
    )


def _result(ece: float) -> WindowResult:
    at = datetime(2026, 11, 22, 12, tzinfo=UTC)
    return WindowResult(SERIES, at, at, at, predictions=5000, labelled=4000, values={"ece": ece})


@pytest.fixture
def daemon(
    migrated_engine: Engine, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., AlertPipeline]]:
    """Starts a "daemon": a fresh engine and pipeline on the test's database."""
    monkeypatch.setenv("CALMON_WEBHOOK_SECRET", "k")
    engines: list[Engine] = []

    def start(rule: Rule, now_ms: int) -> AlertPipeline:
        engine = make_engine(database_url)
        engines.append(engine)
        settings = Settings(webhooks=WEBHOOKS)
        registry = CollectorRegistry()
        return AlertPipeline(
            engine, settings, [rule], registry, notifier=None, clock_ms=lambda: now_ms
        )

    yield start
    for engine in engines:
        engine.dispose()


def _deliveries(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(WebhookDelivery)).scalar())


def test_a_restart_does_not_fire_again_and_a_new_episode_after_resolving_does(
    daemon: Callable[..., AlertPipeline], migrated_engine: Engine
) -> None:
    rule = _rule()
    (fired,) = daemon(rule, T0).on_results("24h", [_result(0.08)])
    assert fired.kind == "firing"
    stored = load_alerts(migrated_engine)
    assert [a.state.state for a in stored.values()] == ["firing"]

    # Restarted, still drifted: no transition, no second webhook, the same episode.
    assert daemon(rule, T0 + MINUTE_MS).on_results("24h", [_result(0.09)]) == []
    assert _deliveries(migrated_engine) == 1
    (after,) = load_alerts(migrated_engine).values()
    assert after.state.alert_id == fired.alert.alert_id
    assert after.state.fired_ms == T0

    # Resolved, restarted, resolved still: nothing; then it drifts again: a new episode.
    (resolved,) = daemon(rule, T0 + 2 * MINUTE_MS).on_results("24h", [_result(0.01)])
    assert resolved.kind == "resolved"
    assert daemon(rule, T0 + 3 * MINUTE_MS).on_results("24h", [_result(0.01)]) == []
    (again,) = daemon(rule, T0 + 4 * MINUTE_MS).on_results("24h", [_result(0.09)])
    assert again.kind == "firing" and again.alert.alert_id != fired.alert.alert_id
    assert _deliveries(migrated_engine) == 2


def test_a_pending_alert_keeps_its_clock_across_a_restart(
    daemon: Callable[..., AlertPipeline], migrated_engine: Engine
) -> None:
    rule = _rule(**{"for": "10m"})
    (pending,) = daemon(rule, T0).on_results("24h", [_result(0.08)])
    assert pending.kind == "pending"
    # A restart 9 minutes in: still pending (the hold counts from T0, as stored)...
    assert daemon(rule, T0 + 9 * MINUTE_MS).on_results("24h", [_result(0.08)]) == []
    # ...and another at 10 minutes fires it: had the restart reset the clock, it would
    # wait another 10 minutes.
    (fired,) = daemon(rule, T0 + 10 * MINUTE_MS).on_results("24h", [_result(0.08)])
    assert fired.kind == "firing" and fired.alert.active_since_ms == T0
    assert _deliveries(migrated_engine) == 1


def test_what_a_restarted_daemon_reads_back_is_what_was_stored(
    daemon: Callable[..., AlertPipeline], migrated_engine: Engine
) -> None:
    rule = _rule(labels={"team": "risk"}, annotations={"summary": "ECE {ece:.3f} on {model}"})
    daemon(rule, T0).on_results("24h", [_result(0.08)])
    (stored,) = load_alerts(migrated_engine).values()  # another engine than the daemon's
    assert stored.state.values == {"ece": 0.08}
    assert (stored.state.fired_ms, stored.state.resolved_ms) == (T0, None)
    assert stored.labels == {
        "team": "risk",
        "alertname": "CalibrationErrorHigh",
        "model": "fraud",
        "model_version": "v2",
        "segment": "region=eu",
        "window": "24h",
        "severity": "warning",
    }
    assert stored.annotations == {"summary": "ECE 0.080 on fraud"}
    assert stored.last_sent_ms is None  # no Alertmanager configured: never sent
    daemon(rule, T0 + MINUTE_MS).on_results("24h", [_result(0.01)])
    (resolved,) = load_alerts(migrated_engine).values()
    assert (resolved.state.state, resolved.state.resolved_ms) == ("resolved", T0 + MINUTE_MS)
    assert resolved.state.values == {"ece": 0.01}


def test_a_cancelled_pending_alert_is_gone_after_a_restart(
    daemon: Callable[..., AlertPipeline], migrated_engine: Engine
) -> None:
    rule = _rule(**{"for": "10m"})
    daemon(rule, T0).on_results("24h", [_result(0.08)])
    (cancelled,) = daemon(rule, T0 + MINUTE_MS).on_results("24h", [_result(0.01)])
    assert cancelled.kind == "cancelled"
    assert load_alerts(migrated_engine) == {}
    # So a new drift after the restart starts its hold from now, not from T0.
    (pending,) = daemon(rule, T0 + 20 * MINUTE_MS).on_results("24h", [_result(0.08)])
    assert pending.kind == "pending" and pending.alert.active_since_ms == T0 + 20 * MINUTE_MS


def test_each_window_reads_and_changes_only_its_own_alerts(
    daemon: Callable[..., AlertPipeline], migrated_engine: Engine
) -> None:
    rule = _rule()
    hourly = SeriesWindow("fraud", "v2", "region=eu", "1h")
    at = datetime(2026, 11, 22, 12, tzinfo=UTC)
    hour_result = WindowResult(hourly, at, at, at, predictions=50, labelled=40, values={"ece": 0.2})
    daemon(rule, T0).on_results("1h", [hour_result])
    daemon(rule, T0).on_results("24h", [_result(0.08)])
    # The 24h job, restarted, sees its own alert only: the 1h one is neither resolved
    # nor dropped for missing from the 24h results.
    assert daemon(rule, T0 + MINUTE_MS).on_results("24h", [_result(0.09)]) == []
    assert {a.state.series.window for a in load_alerts(migrated_engine).values()} == {"1h", "24h"}
    (only,) = load_alerts(migrated_engine, window="1h").values()
    assert only.state.series == hourly and only.state.state == "firing"


def test_resolved_alerts_are_resent_until_their_period_ends_and_sends_are_marked(
    daemon: Callable[..., AlertPipeline], migrated_engine: Engine
) -> None:
    rule = _rule()
    us = SeriesWindow("fraud", "v2", "region=us", "24h")
    at = datetime(2026, 11, 22, 12, tzinfo=UTC)

    def both(eu: float, us_ece: float) -> list[WindowResult]:
        other = WindowResult(
            us, at, at, at, predictions=5000, labelled=4000, values={"ece": us_ece}
        )
        return [_result(eu), other]

    daemon(rule, T0).on_results("24h", both(0.08, 0.08))
    resolved_at = T0 + MINUTE_MS
    daemon(rule, resolved_at).on_results("24h", both(0.08, 0.01))

    def segments(before_ms: int) -> dict[str, str]:
        found = alerts_to_send(migrated_engine, resolved_before_ms=before_ms).values()
        return {a.state.series.segment: a.state.state for a in found}

    # Kept while resolved at or after the bound, forgotten (deleted) once before it.
    assert segments(resolved_at) == {"region=eu": "firing", "region=us": "resolved"}
    assert segments(resolved_at + 1) == {"region=eu": "firing"}
    assert segments(T0) == {"region=eu": "firing"}  # gone for good

    (eu,) = load_alerts(migrated_engine).keys()
    mark_sent(migrated_engine, [eu], T0 + 5 * MINUTE_MS)
    (sent,) = load_alerts(migrated_engine).values()
    assert sent.last_sent_ms == T0 + 5 * MINUTE_MS
    mark_sent(migrated_engine, [], T0 + 9 * MINUTE_MS)  # nobody: nothing changes
    assert load_alerts(migrated_engine)[eu].last_sent_ms == T0 + 5 * MINUTE_MS

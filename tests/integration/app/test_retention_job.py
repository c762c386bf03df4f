"""The daemon's retention job counts the labels it drops for want of a prediction."""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from sqlalchemy import Engine, select

from monitor.app import App
from monitor.core.records import Label, Prediction
from monitor.settings import Settings
from monitor.store.db.tables import Event

DAY = 86_400_000
START = 1_790_000_000_000


def test_a_label_whose_prediction_is_gone_is_counted_as_no_prediction(
    sqlite_engine: Engine,
) -> None:
    # Defaults: predictions kept 35 days, label horizon 30 days.
    now = [START]
    registry = CollectorRegistry()
    app = App(Settings(), engine=sqlite_engine, registry=registry, clock_ms=lambda: now[0])

    def dropped() -> float | None:
        return registry.get_sample_value("calmon_labels_dropped_total", {"reason": "no_prediction"})

    assert dropped() == 0.0  # exported from the start, before any retention run
    app.store.write_batch(
        [
            Prediction("m", "late", "v1", START, probability=0.7),
            Label("m", "never", 1, START),  # its prediction never comes
        ]
    )
    now[0] = START + 36 * DAY
    app.maintenance.retention()  # the prediction is past the 35 days; "never" waited 36 > 30 days
    assert dropped() == 1.0
    # The label of the deleted prediction arrives now: 36 days late, it can only wait.
    result = app.store.write_batch([Label("m", "late", 1, now[0])])
    assert result.labels_pending == 1
    now[0] += 30 * DAY - 1
    app.maintenance.retention()
    assert dropped() == 1.0  # not a full horizon yet
    now[0] += 1
    app.maintenance.retention()
    assert dropped() == 1.0  # exactly one horizon: still kept
    now[0] += 1
    app.maintenance.retention()
    assert dropped() == 2.0
    with sqlite_engine.connect() as connection:
        assert connection.execute(select(Event.event_id)).scalars().all() == []

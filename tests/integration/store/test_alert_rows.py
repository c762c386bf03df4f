"""Alert state as the store keeps it, on both stores: a per-class alert comes back with
its class (so its fingerprint, the key the engine looks it up by, is the same after a
restart), and a window's transaction sees that window's alerts only. Written for the
mutants of store/alerts.py that survived `make mutants` (docs/testing.md)."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from monitor.alerts.render import alert_labels, rendered_annotations
from monitor.core.alerts import AlertState, StoredAlert
from monitor.core.series import SeriesWindow
from monitor.rules.model import Rule
from monitor.store.alerts import alert_transaction, load_alerts

pytestmark = pytest.mark.integration
DRIFT = Rule.model_validate(
    {"name": "ClassDrift", "metric": "class_psi", "op": ">", "threshold": 0.25}
)


def stored(window: str, class_name: str | None) -> StoredAlert:
    series = SeriesWindow("intent", "v1", "__all__", window)
    state = AlertState(
        DRIFT.name, series, "firing", 1_000, 1_000, values={"class_psi": 0.4}, class_name=class_name
    )
    return StoredAlert(state, alert_labels(state, DRIFT), rendered_annotations(state, DRIFT), None)


def test_a_class_alert_comes_back_with_its_class_and_fingerprint(migrated_engine: Engine) -> None:
    alerts = [stored("1h", "tech"), stored("1h", "sales"), stored("1h", None)]
    with alert_transaction(migrated_engine) as transaction:
        transaction.save({a.state.fingerprint: a for a in alerts}, ())
    loaded = load_alerts(migrated_engine)
    assert {key: a.state.class_name for key, a in loaded.items()} == {
        a.state.fingerprint: a.state.class_name for a in alerts
    }
    for key, alert in loaded.items():
        assert alert.state.fingerprint == key
        assert alert.state == next(a.state for a in alerts if a.state.fingerprint == key)


def test_a_window_transaction_loads_that_window_only(migrated_engine: Engine) -> None:
    hour, day = stored("1h", "tech"), stored("24h", "tech")
    with alert_transaction(migrated_engine) as transaction:
        transaction.save({hour.state.fingerprint: hour, day.state.fingerprint: day}, ())
    with alert_transaction(migrated_engine) as transaction:
        assert list(transaction.load("1h")) == [hour.state.fingerprint]
        assert list(transaction.load("24h")) == [day.state.fingerprint]
    assert len(load_alerts(migrated_engine)) == 2

"""Alertmanager behind TLS (mutual) and basic auth — a real Alertmanager with a web config
— and credentials that never show: not in the ``url`` label of /metrics, not in the log
lines of a failed send (httpx's error text repeats the URL), not in check-config's
output."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy import Engine

from monitor.alerts.alertmanager import AlertmanagerNotifier, AlertmanagerTLSError
from monitor.alerts.pipeline import AlertPipeline
from monitor.logs import JsonFormatter
from monitor.settings import AlertmanagerSettings, ConfigError, Settings, load_settings
from tests.fixtures.alertmanager import SecuredAlertmanager
from tests.fixtures.http_receiver import Receiver
from tests.integration.alerts.test_webhooks import RULE, drifted_result

pytestmark = pytest.mark.integration


def notifier(
    engine: Engine, settings: AlertmanagerSettings, registry: CollectorRegistry
) -> AlertmanagerNotifier:
    return AlertmanagerNotifier(engine, settings, registry, base_url="http://calmon:8080")


def fire(engine: Engine, am: AlertmanagerNotifier) -> None:
    rule = RULE.model_copy(update={"actions": []})
    pipeline = AlertPipeline(engine, Settings(), [rule], CollectorRegistry(), notifier=am)
    (transition,) = pipeline.on_results("24h", [drifted_result()])
    assert transition.kind == "firing"


def secured(
    am: SecuredAlertmanager, password: str | None = "", **overrides: object
) -> AlertmanagerSettings:
    """Settings as calmon reads them: the password from the environment (the right one
    unless given, none if None)."""
    options: dict[str, object] = {
        "urls": [am.url],
        "username": am.username,
        "ca_file": str(am.ca_file),
        "cert_file": str(am.cert_file),
        "key_file": str(am.key_file),
    }
    options.update(overrides)
    environ = {f"CALMON__ALERTMANAGER__{k.upper()}": json.dumps(v) for k, v in options.items()}
    if password is not None:
        environ["CALMON_ALERTMANAGER_PASSWORD"] = password or am.password
    return load_settings(None, environ).alertmanager


@pytest.fixture
def log_lines() -> logging.Handler:
    """Every log line as calmon's JSON formatter writes it, httpx's own included."""
    handler = logging.StreamHandler(io.StringIO())
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.INFO)
    yield handler
    root.removeHandler(handler)
    root.setLevel(old_level)


def logged(handler: logging.Handler) -> str:
    return handler.stream.getvalue()  # type: ignore[attr-defined]


def test_basic_auth_and_mutual_tls_deliver_the_alert(
    secured_alertmanager: SecuredAlertmanager, sqlite_engine: Engine
) -> None:
    registry = CollectorRegistry()
    am = notifier(sqlite_engine, secured(secured_alertmanager), registry)
    fire(sqlite_engine, am)
    (alert,) = secured_alertmanager.alerts()
    assert alert["labels"]["alertname"] == "CalibrationErrorHigh"
    assert alert["labels"]["segment"] == "region=eu"
    assert am.sends.labels(secured_alertmanager.url, "success")._value.get() == 1


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"password": "wrong"}, "401"),  # Alertmanager refuses the password
        ({"cert_file": None, "key_file": None}, "certificate"),  # no client certificate
        ({"ca_file": None}, "CERTIFICATE_VERIFY_FAILED"),  # the system CAs do not know it
    ],
)
def test_without_each_credential_the_send_fails(
    secured_alertmanager: SecuredAlertmanager,
    sqlite_engine: Engine,
    log_lines: logging.Handler,
    change: dict[str, object],
    why: str,
) -> None:
    settings = secured(secured_alertmanager, **change)  # type: ignore[arg-type]
    am = notifier(sqlite_engine, settings, CollectorRegistry())
    fire(sqlite_engine, am)
    assert am.sends.labels(secured_alertmanager.url, "failure")._value.get() == 1
    assert secured_alertmanager.alerts() == []
    assert why.lower() in logged(log_lines).lower()


def test_insecure_skip_verify_is_off_unless_asked_for(
    secured_alertmanager: SecuredAlertmanager, sqlite_engine: Engine
) -> None:
    assert AlertmanagerSettings().insecure_skip_verify is False
    settings = secured(secured_alertmanager, ca_file=None, insecure_skip_verify=True)
    am = notifier(sqlite_engine, settings, CollectorRegistry())
    fire(sqlite_engine, am)
    assert len(secured_alertmanager.alerts()) == 1


def test_credentials_in_the_url_never_show(
    secured_alertmanager: SecuredAlertmanager,
    sqlite_engine: Engine,
    log_lines: logging.Handler,
    tmp_path: Path,
) -> None:
    """The old way (no auth settings): basic auth in the URL, plus a token in its query."""
    am_url = secured_alertmanager.url.replace("https://", "")
    password = secured_alertmanager.password
    good = f"https://calmon:{password}@{am_url}"
    wrong = f"https://calmon:wrong-{password}@{am_url}"
    down = f"http://calmon:{password}@127.0.0.1:9/?token=query-secret-1"
    settings = secured(secured_alertmanager, None, urls=[good, wrong, down], username=None)
    registry = CollectorRegistry()
    am = notifier(sqlite_engine, settings, registry)
    fire(sqlite_engine, am)
    assert len(secured_alertmanager.alerts()) == 1  # the URL's userinfo did log in
    metrics = generate_latest(registry).decode()
    shown = f"https://***@{am_url}"

    def sends(url: str, outcome: str) -> float | None:
        labels = {"url": url, "outcome": outcome}
        return registry.get_sample_value("calmon_alertmanager_sends_total", labels)

    assert sends(shown, "success") == 1
    assert sends(shown, "failure") == 1  # the wrong password
    assert sends("http://***@127.0.0.1:9/?token=***", "failure") == 1
    lines = logged(log_lines)
    assert "alertmanager send failed" in lines and "HTTP Request: POST" in lines
    for output in (metrics, lines):
        assert password not in output and "query-secret-1" not in output

    config = tmp_path / "calmon.yaml"
    config.write_text(yaml.safe_dump({"alertmanager": {"urls": [good, down]}}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALMON")}
    done = subprocess.run(
        [sys.executable, "-m", "monitor", "check-config", "-c", str(config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    expected = f"  alertmanager: {shown}, http://***@127.0.0.1:9/?token=*** (no auth)\n"
    assert expected in done.stdout
    assert password not in done.stdout + done.stderr


def test_a_bearer_token_is_sent_as_authorization(
    http_receiver: Receiver, sqlite_engine: Engine
) -> None:
    # Alertmanager's own web config checks basic auth only; a proxy in front of it checks
    # bearer tokens. The receiver here stands for that proxy, and records the header.
    settings = load_settings(
        None,
        {
            "CALMON__ALERTMANAGER__URLS": f"[{http_receiver.url}]",
            "CALMON_ALERTMANAGER_BEARER_TOKEN": "tok-123456",
        },
    ).alertmanager
    fire(sqlite_engine, notifier(sqlite_engine, settings, CollectorRegistry()))
    (request,) = http_receiver.received
    assert request.path == "/api/v2/alerts"
    assert request.headers["Authorization"] == "Bearer tok-123456"


@pytest.mark.parametrize(
    ("config", "environ", "message"),
    [
        ({}, {"CALMON_ALERTMANAGER_PASSWORD": "p"}, "alertmanager.username is not"),
        ({"username": "u"}, {}, "needs its password in CALMON_ALERTMANAGER_PASSWORD"),
        (
            {"username": "u"},
            {"CALMON_ALERTMANAGER_PASSWORD": "p", "CALMON_ALERTMANAGER_BEARER_TOKEN": "t"},
            "choose one",
        ),
        ({"key_file": "/k.pem"}, {}, "key_file is set but alertmanager.cert_file is not"),
        ({"password": "p"}, {}, "alertmanager.password is a secret"),
        ({"bearer_token": "t"}, {}, "CALMON_ALERTMANAGER_BEARER_TOKEN"),
    ],
)
def test_auth_settings_are_checked(
    tmp_path: Path, config: dict[str, str], environ: dict[str, str], message: str
) -> None:
    path = tmp_path / "calmon.yaml"
    path.write_text(yaml.safe_dump({"alertmanager": config}))
    with pytest.raises(ConfigError, match=message):
        load_settings(path, environ)


def test_an_unreadable_ca_file_is_a_clear_error(sqlite_engine: Engine, tmp_path: Path) -> None:
    settings = AlertmanagerSettings(urls=["https://am:9093"], ca_file=str(tmp_path / "no.pem"))
    with pytest.raises(AlertmanagerTLSError, match=r"cannot load ca_file .*no\.pem"):
        notifier(sqlite_engine, settings, CollectorRegistry())

"""The config tree: validation errors name the key, environment overrides, secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.settings import ConfigError, Settings, load_settings, parse_duration

ROOT = Path(__file__).resolve().parents[2]


def test_the_example_config_is_valid_and_documents_the_defaults() -> None:
    assert load_settings(ROOT / "config" / "calmon.example.yaml", environ={}) == Settings()


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "calmon.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "kafka:\n  topics:\n    labelz: x\n",
            r"kafka\.topics\.labelz: Extra inputs are not permitted",
        ),
        (
            "ingest:\n  max_batch_records: -1\n",
            r"ingest\.max_batch_records: Input should be greater than 0",
        ),
        (
            "windows:\n  - {name: 1h, length: soon}\n",
            r"windows\.0\.length: Value error, 'soon' is not a duration",
        ),
        ("evaluation:\n  n_bins: 7\n", r"evaluation\.n_bins: Input should be 5, 10, 20, 40 or 80"),
        ("webhooks:\n  r: {url: 'ftp://x'}\n", r"webhooks\.r\.url: String should match pattern"),
        (
            "store:\n  url: sqlite:///x.db\n",
            r"store\.url is a secret: set it in the environment variable CALMON_STORE_URL",
        ),
        ("- a\n- b\n", r"the top level must be a mapping"),
        # Once, mode fixed without a period silently measured drift against trailing.
        ("reference:\n  mode: fixed\n", r"reference: Value error, mode fixed needs both"),
        (
            "reference: {mode: fixed, start: 2026-01-01T00:00:00, end: 2026-01-08T00:00:00Z}\n",
            r"reference\.start: Input should have timezone info",
        ),
        (
            "reference: {mode: fixed, start: last week, end: 2026-01-08T00:00:00Z}\n",
            r"reference\.start: Input should be a valid datetime",
        ),
        (
            "reference: {mode: fixed, start: 2026-01-08T00:00:00Z, end: 2026-01-08T01:00:00+01}\n",
            r"reference: Value error, start 2026-01-08T00:00:00\+00:00 is not before end",
        ),
    ],
)
def test_bad_config_names_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(write(tmp_path, text), environ={})


def test_every_problem_is_listed(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(write(tmp_path, "kafka: {group_idd: x}\nhttp: {port: 99999}\n"), environ={})
    assert "2 problem(s)" in str(error.value)


def test_environment_overrides_and_secrets(tmp_path: Path) -> None:
    path = write(tmp_path, "kafka:\n  group_id: from-file\n")
    settings = load_settings(
        path,
        environ={
            "CALMON__KAFKA__GROUP_ID": "from-env",
            "CALMON__STORE__SEGMENT_KEYS": "[region, channel]",
            "CALMON__WINDOWS": "[{name: 2h, length: 2h}]",
            "CALMON_STORE_URL": "postgresql+psycopg://calmon@db/calmon",
            "CALMON_KAFKA_SASL_PASSWORD": "pw",
        },
    )
    assert settings.kafka.group_id == "from-env"
    assert settings.store.segment_keys == ["region", "channel"]
    assert settings.windows[0].length == 7200
    assert settings.store.url.get_secret_value() == "postgresql+psycopg://calmon@db/calmon"
    assert settings.kafka.sasl_password is not None
    assert "pw" not in repr(settings)  # secrets never printed


@pytest.mark.parametrize(
    ("text", "seconds"),
    [(90, 90.0), ("90s", 90.0), ("5m", 300.0), ("24h", 86400.0), ("1w", 604800.0), ("250ms", 0.25)],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["0s", -5, "5 parsecs", True])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_check_config_reports_bad_rules_and_missing_webhook_keys(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n- {name: A, metric: ecee, op: '>', threshold: 0.1}\n")
    config = write(tmp_path, f"rules: [{rules}]\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALMON")}

    def check() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "monitor", "check-config", "-c", str(config)],
            capture_output=True,
            text=True,
            env=env,
        )

    run = check()
    assert run.returncode == 1 and "unknown metric 'ecee'" in run.stdout
    rules.write_text("rules:\n- {name: A, metric: ece, op: '>', threshold: 0.1, actions: [r]}\n")
    config.write_text(f"rules: [{rules}]\nwebhooks:\n  r: {{url: 'http://127.0.0.1:9/hook'}}\n")
    run = check()
    assert run.returncode == 1
    assert "signing key not set (environment variable CALMON_WEBHOOK_SECRET)" in run.stdout
    env["CALMON_WEBHOOK_SECRET"] = "k"
    run = check()
    assert run.returncode == 0 and "rules: 1 from" in run.stdout
    assert "  windows: 1h, 24h, 7d\n" in run.stdout
    assert "  drift reference: trailing window, 10 PSI bins\n" in run.stdout
    env["CALMON__REFERENCE__MODE"] = "fixed"
    env["CALMON__REFERENCE__START"] = "2026-11-01T00:00:00Z"
    env["CALMON__REFERENCE__END"] = "2026-11-08T02:00:00+02:00"
    run = check()
    assert run.returncode == 0, run.stdout
    assert (
        "  drift reference: fixed period 2026-11-01T00:00:00+00:00 to "
        "2026-11-08T02:00:00+02:00, 10 PSI bins\n" in run.stdout
    )


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("kafka: {group_idd: x}\n", "kafka.group_idd: Extra inputs are not permitted"),
        (
            "webhooks:\n  r: {url: 'http://127.0.0.1:9/hook'}\n",
            "webhook r: signing key not set (environment variable CALMON_WEBHOOK_SECRET)",
        ),
    ],
)
def test_run_reports_config_mistakes_without_a_traceback(
    tmp_path: Path, config: str, message: str
) -> None:
    import os
    import subprocess
    import sys

    path = write(tmp_path, config)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALMON")}
    env["CALMON_STORE_URL"] = f"sqlite:///{tmp_path / 'x.db'}"
    subprocess.run([sys.executable, "-m", "monitor", "migrate"], env=env, check=True)
    run = subprocess.run(
        [sys.executable, "-m", "monitor", "run", "-c", str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert run.returncode == 2
    assert message in run.stderr and "Traceback" not in run.stderr, run.stderr


def test_a_fixed_reference_period_reads_as_yaml_writes_it(tmp_path: Path) -> None:
    # Unquoted, YAML reads a timestamp as a datetime; quoted, as text. Both are the same.
    unquoted = "reference: {mode: fixed, start: 2026-01-01T00:00:00.0019Z, end: 2026-01-08}\n"
    with pytest.raises(ConfigError, match=r"reference\.end: Input should have timezone info"):
        load_settings(write(tmp_path, unquoted), environ={})
    for text in (
        "reference: {mode: fixed, start: 2026-01-01T00:00:00.0019Z,"
        " end: 2026-01-08T02:00:00+02:00}\n",
        "reference: {mode: fixed, start: '2026-01-01T00:00:00.0019Z', end: '2026-01-08T00:00Z'}\n",
    ):
        period = load_settings(write(tmp_path, text), environ={}).reference.period_ms()
        # Whole milliseconds, truncated: 1.9 ms is 1 ms.
        assert period == (1_767_225_600_001, 1_767_830_400_000)


def test_check_config_reports_a_template_that_would_fail_when_the_alert_fires(
    tmp_path: Path,
) -> None:
    import os
    import subprocess
    import sys

    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "rules:\n- {name: A, metric: ece, op: '>', threshold: 0.1,"
        " annotations: {summary: 'ECE of {model:.3f}'}}\n"
    )
    config = write(tmp_path, f"rules: [{rules}]\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALMON")}
    run = subprocess.run(
        [sys.executable, "-m", "monitor", "check-config", "-c", str(config)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert run.returncode == 1, run.stdout
    assert "rules[0] (A)" in run.stdout
    assert "annotation summary: {model:.3f}: Unknown format code 'f'" in run.stdout
    assert "Traceback" not in run.stderr

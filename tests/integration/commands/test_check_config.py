"""`calmon check-config` as a user runs it: a subprocess, a config file, rule files and
the environment; every problem in one run, each naming where it is."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def check_config(config: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CALMON")}
    return subprocess.run(
        [sys.executable, "-m", "monitor", "check-config", "-c", str(config)],
        capture_output=True,
        text=True,
        env={**environ, **env},
        timeout=60,
    )


def test_five_mistakes_across_config_rules_and_a_webhook_in_one_run(tmp_path: Path) -> None:
    first = tmp_path / "team.yaml"
    first.write_text(
        "rules:\n"
        "  - name: DailyEce\n"
        "    select: {window: 24hh}\n"  # mistake 3: no such window
        "    metric: ece\n"
        "    op: '>'\n"
        "    threshold: 0.05\n"
        "    actions: [recalibrate]\n"
    )
    second = tmp_path / "drift.yaml"
    second.write_text(
        "rules:\n"
        "  - name: Drift\n"
        "    metric: psi_raw_score\n"
        "    op: '>'\n"
        "    threshold: [0.2\n"  # mistake 4: a YAML syntax error, line 5
    )
    config = tmp_path / "calmon.yaml"
    config.write_text(
        "store:\n"
        "  url: postgresql://calmon:hunter2@db/calmon\n"  # mistake 1: a secret in the file
        "evaluation:\n"
        "  n_binz: 20\n"  # mistake 2: an unknown key
        f"rules: [{first}, {second}]\n"
        "webhooks:\n"
        "  recalibrate: {url: 'http://127.0.0.1:9/hook', secret_env: RECAL_KEY}\n"
        # mistake 5: RECAL_KEY is not set
    )
    done = check_config(config)
    assert done.returncode == 1, done.stdout + done.stderr
    out = done.stdout
    assert "invalid configuration (5 problem(s)):" in out, out
    assert "store.url is a secret: set it in the environment variable CALMON_STORE_URL" in out
    assert "hunter2" not in out
    assert "evaluation.n_binz: Extra inputs are not permitted (did you mean 'n_bins'?)" in out
    assert (
        "rule DailyEce: select.window '24hh' matches no configured window (1h, 24h, 7d) "
        "(did you mean '24h'?)" in out
    )
    yaml_error = (
        f"{second}:6:1: expected ',' or ']', but got '<stream end>' "
        "(while parsing a flow sequence that starts at 5:16)"
    )
    assert yaml_error in out, out
    assert "<unicode string>" not in out
    assert "webhook recalibrate: signing key not set (environment variable RECAL_KEY)" in out
    assert "Traceback" not in done.stderr

    # Each fixed, the same run passes: nothing else was hiding behind them.
    config.write_text(
        config.read_text()
        .replace("  url: postgresql://calmon:hunter2@db/calmon\n", "  segment_keys: []\n")
        .replace("n_binz", "n_bins")
    )
    first.write_text(first.read_text().replace("24hh", "24h"))
    second.write_text(second.read_text().replace("[0.2", "0.2"))
    done = check_config(config, RECAL_KEY="k")
    assert done.returncode == 0, done.stdout
    assert "rules: 2 from" in done.stdout


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"CALMON__HTTP__PORT": "eighty"},
            "http.port: Input should be a valid integer, unable to parse string as an integer"
            " (set by environment variable CALMON__HTTP__PORT)",
        ),
        (
            {"CALMON__KAFKA__GROUPID": "x"},
            "kafka.groupid: Extra inputs are not permitted (did you mean 'group_id'?)"
            " (set by environment variable CALMON__KAFKA__GROUPID)",
        ),
        (
            {"CALMON__WINDOWS": "[{name: 2h, length: 2hours}]"},
            "windows.0.length: Value error, '2hours' is not a duration (examples: 90s, 5m, 24h,"
            " 30d) (set by environment variable CALMON__WINDOWS)",
        ),
        (
            {"CALMON__STORE__SEGMENT_KEYS": "[region"},
            "environment variable CALMON__STORE__SEGMENT_KEYS: value:1:8: expected ',' or ']'",
        ),
        (
            {"CALMON__KAFKA__GROUP_ID__X": "y"},
            "environment variable CALMON__KAFKA__GROUP_ID__X: kafka.group_id is not a section",
        ),
    ],
)
def test_environment_override_problems_name_the_variable(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    config = tmp_path / "calmon.yaml"
    config.write_text("kafka: {group_id: calmon}\n")
    done = check_config(config, **env)
    assert done.returncode == 1
    assert message in done.stdout, done.stdout


def test_rules_that_can_never_fire_and_every_bad_rule_of_a_file(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "rules:\n"
        "  - {name: A, metric: ecee, op: '>', threshold: 0.1}\n"
        "  - {name: B, metric: ece, op: '>', treshold: 0.1}\n"
        "  - {name: C, metric: ece, op: '>', threshold: 1.5, relative_to: {window: 30d}}\n"
        "  - {name: D, select: {segment: country=fr}, metric: ece, op: '>', threshold: 0.1}\n"
        "  - {name: E, select: {window: 'w*'}, metric: ece, op: '>', threshold: 0.1}\n"
        "  - {name: F, metric: ece, op: '>', threshold: 0.1, actions: [nope]}\n"
    )
    config = tmp_path / "calmon.yaml"
    config.write_text(f"rules: [{rules}]\nstore: {{segment_keys: [region]}}\n")
    out = check_config(config).stdout
    assert "invalid configuration (7 problem(s)):" in out, out
    assert (
        "rules[0] (A).conditions[0].metric: Value error, unknown metric 'ecee' "
        "(did you mean 'ece'?)" in out
    )
    assert (
        "rules[1] (B).treshold: Extra inputs are not permitted (did you mean 'threshold'?)" in out
    )
    assert "rule C: relative_to.window '30d' is not a configured window (1h, 24h, 7d)" in out
    assert "rule D: select.segment 'country=fr' matches no series" in out
    assert "rule E: select.window 'w*' matches no configured window" in out
    assert "rule F: action 'nope' is not a configured webhook" in out


def test_exit_codes_are_documented_in_help() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "monitor", "check-config", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0
    assert "exit codes:" in done.stdout and "1  problems found" in done.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "monitor", "check-config", "--nope"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2


def test_a_threshold_from_a_reference_too_short_is_reported(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "rules:\n"
        "  - {name: R, select: {window: 24h}, metric: ece, op: '>',"
        " threshold: {from_reference: 3 sigma}}\n"
    )
    config = tmp_path / "calmon.yaml"
    config.write_text(f"rules: [{rules}]\n")
    done = check_config(config)
    assert done.returncode == 1
    assert (
        "rule R: a from_reference threshold on window 24h needs a reference of at least "
        "5 x 24h; reference.mode trailing gives one window" in done.stdout
    ), done.stdout
    # A fixed period of 10 days holds 10 day-long chunks: fine.
    config.write_text(
        f"rules: [{rules}]\n"
        "reference: {mode: fixed, start: '2026-11-01T00:00:00Z', end: '2026-11-11T00:00:00Z'}\n"
    )
    assert check_config(config).returncode == 0


def test_an_export_choice_naming_nothing_that_exists_is_reported(tmp_path: Path) -> None:
    """export.series entries that would silently export nothing, or less than meant."""
    config = tmp_path / "calmon.yaml"
    config.write_text(
        "store: {segment_keys: [region]}\n"
        "export:\n"
        "  series:\n"
        "    - {segments: [__all__], windows: [12h], bins: [reliability]}\n"
        "    - {segments: [regoin], metrics: [ece, ece_debaised, psi]}\n"
        "    - {metrics: all, bins: [histogram]}\n"
    )
    done = check_config(config)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "invalid configuration (4 problem(s)):" in done.stdout, done.stdout
    for line in (
        "export.series.2.bins.0: Input should be 'reliability' or 'drift'",
        "export.series.0.windows: '12h' is no configured window",
        "export.series.1.segments: 'regoin' is neither __all__ (the whole-model series) "
        "nor one of store.segment_keys",
        "export.series.1.metrics: no metric 'ece_debaised' (did you mean 'ece_debiased'?)",
    ):
        assert line in done.stdout, done.stdout

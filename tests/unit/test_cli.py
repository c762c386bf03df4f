"""The command line: every command is listed, help loads nothing heavy, user errors are short."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.cli import COMMANDS, Command, chosen_command, main

ROOT = Path(__file__).resolve().parents[2]

# Libraries that take seconds to import on a small machine; help must not wait for them.
HEAVY = ("scipy", "numpy", "sqlalchemy", "alembic", "kafka", "monitor.app", "monitor.store")

PROBE = """
import json, sys
from monitor.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)))
"""


def modules_loaded_by(*argv: str) -> set[str]:
    """The modules a fresh interpreter has imported after `calmon ARGV` returns."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, check=True
    )
    return set(json.loads(done.stdout.splitlines()[-1]))


def heavy_among(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))


def test_every_command_module_is_listed() -> None:
    modules = {p.stem for p in (ROOT / "monitor" / "commands").glob("*.py")}
    listed = {c.module.rsplit(".", 1)[1] for c in COMMANDS}
    assert listed == modules - {"__init__", "common"}


@pytest.mark.parametrize(
    ("argv", "command"),
    [([], None), (["--help"], None), (["run", "-c", "x.yaml"], "run"), (["-h", "demo"], "demo")],
)
def test_the_chosen_command_is_the_first_word_that_is_not_a_flag(
    argv: list[str], command: str | None
) -> None:
    assert chosen_command(argv) == command


def test_top_level_help_lists_every_command_and_imports_none_of_them() -> None:
    modules = modules_loaded_by("--help")
    assert not [m for m in modules if m.startswith("monitor.commands.")]
    assert heavy_among(modules) == []
    help_text = subprocess.run(
        [sys.executable, "-m", "monitor", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for command in COMMANDS:
        assert command.name in help_text


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.name)
def test_a_commands_help_imports_only_that_command(command: Command) -> None:
    modules = modules_loaded_by(command.name, "--help")
    commands = {m for m in modules if m.startswith("monitor.commands.")} - {
        "monitor.commands.common"
    }
    assert commands == {command.module}
    assert heavy_among(modules) == []


def test_a_user_error_prints_one_line_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "calmon.yaml"
    config.write_text("ingest:\n  max_batch_records: -1\n")
    assert main(["migrate", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("calmon migrate: ")
    assert "ingest.max_batch_records: Input should be greater than 0" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("times", "message"),
    [
        (["--from", "2026-11-01", "--to", "2026-11-02T00:00:00Z"], "needs a UTC offset"),
        (["--from", "last week", "--to", "2026-11-02T00:00:00Z"], "is not an RFC 3339 time"),
    ],
)
def test_a_bad_baseline_time_is_named_without_a_traceback(
    times: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["baseline", "--model", "m", "--version", "v1", *times])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"calmon baseline: error: argument --from: {times[1]!r} {message}" in err
    assert "Traceback" not in err


def test_a_baseline_period_must_not_be_empty(capsys: pytest.CaptureFixture[str]) -> None:
    period = ["--from", "2026-11-02T00:00:00Z", "--to", "2026-11-02T01:00:00+01:00"]
    assert main(["baseline", "--model", "m", "--version", "v1", *period]) == 2
    assert capsys.readouterr().out == "calmon baseline: --from must be before --to\n"

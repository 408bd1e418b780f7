"""What the CLI shows about itself: -h/-V, metavars that name what they take, examples at the end
of every command's help, shell completion for bash, zsh and fish; and `lock --dry-run`."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import env_for, lock, run_lockenv, write_project

COMMANDS = ["lock", "sync", "verify", "init", "add", "remove", "run", "fetch"]
SCRIPT = Path(sys.executable).parent / "lockenv"
"""The console script (the completion scripts call the program by its name)."""


def test_short_help_and_version() -> None:
    assert run_lockenv("-h").stdout == run_lockenv("--help").stdout
    assert "Commands:" in run_lockenv("-h").stdout
    version = run_lockenv("-V")
    assert version.code == 0 and version.stdout == run_lockenv("--version").stdout
    assert re.fullmatch(r"lockenv \d+\.\d+\.\d+\S*\n", version.stdout)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_help_ends_with_examples_and_names_its_metavars(command: str) -> None:
    result = run_lockenv(command, "-h")
    assert result.code == 0, result.output
    text = result.stdout
    assert text == run_lockenv(command, "--help").stdout
    examples = text.rstrip().split("Examples:")[-1].strip().splitlines()
    assert "Examples:" in text and 2 <= len(examples) <= 3, text
    assert examples[0].strip().startswith(f"lockenv {command}"), examples
    for generic in ("TEXT", "<str>", "<path>", "<text>", "INTEGER"):
        assert generic not in text, (command, generic)


def test_metavars_say_what_they_take() -> None:
    sync = run_lockenv("sync", "-h").stdout
    assert "--python VERSION|PATH" in sync and "--extra NAME" in sync and "--lockfile PATH" in sync
    assert "-C, --project DIR" in sync
    lock_help = run_lockenv("lock", "-h").stdout
    assert "--upgrade-package NAME[==VERSION]" in lock_help and "--exclude-newer TIME" in lock_help
    init = run_lockenv("init", "-h").stdout
    assert "--python VERSION" in init and "--name NAME" in init and "[DIR]" in init
    add = run_lockenv("add", "-h").stdout
    assert "REQ..." in add and "--group NAME" in add and "--optional EXTRA" in add
    assert "NAME..." in run_lockenv("remove", "-h").stdout
    assert "CMD [ARGS]..." in run_lockenv("run", "-h").stdout


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_shell_completion_scripts_and_answers(shell: str, hermetic_env: Path) -> None:
    env = {**os.environ, "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}
    shown = subprocess.run([str(SCRIPT), "--show-completion", shell], env=env,
                           capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    assert f"_LOCKENV_COMPLETE=complete_{shell}" in shown.stdout
    # What the script asks the program at a TAB, and what the program answers.
    ask = {"_LOCKENV_COMPLETE": f"complete_{shell}"}
    if shell == "bash":
        ask.update(COMP_WORDS="lockenv ve", COMP_CWORD="1")
    else:
        ask.update(_TYPER_COMPLETE_ARGS="lockenv ve", _TYPER_COMPLETE_FISH_ACTION="get-args")
    answer = subprocess.run([str(SCRIPT)], env={**env, **ask}, capture_output=True, text=True)
    assert answer.returncode == 0, answer.stderr
    assert "verify" in answer.stdout and "remove" not in answer.stdout and "sync" not in answer.stdout
    installed = subprocess.run([str(SCRIPT), "--install-completion", shell], env=env,
                               capture_output=True, text=True)
    assert installed.returncode == 0, installed.stderr
    assert f"{shell} completion installed in" in installed.stdout


def test_lock_dry_run_shows_the_changes_and_writes_nothing(project: Path, index_server: Any) -> None:
    write_project(project, ["alpha==1.0"])
    lock(project, index_server)
    before = (project / "pylock.toml").read_bytes()
    write_project(project, ["alpha>=1.1", "feat"])
    result = run_lockenv("lock", "--dry-run", cwd=project, env=env_for(index_server))
    assert result.code == 0, result.output
    assert "~ alpha 1.0 -> 2.0" in result.stdout
    assert "+ feat==1.0" in result.stdout
    assert "would change; nothing was written" in result.stderr
    assert (project / "pylock.toml").read_bytes() == before
    check = run_lockenv("lock", "--dry-run", "--check", cwd=project, env=env_for(index_server))
    assert check.code == 2 and "--check and --dry-run" in check.stderr

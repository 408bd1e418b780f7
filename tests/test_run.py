"""`lockenv run` end to end: syncs when needed, runs in the venv, becomes the command (exit
status and signals are the command's), says when VIRTUAL_ENV names another environment."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import env_for, installed, lock, run_lockenv, snapshot, sync, write_project


def _ready(project: Path, srv: Any) -> None:
    write_project(project, ["alpha"])
    lock(project, srv)
    assert sync(project, srv).code == 0


def test_run_locks_and_syncs_first_then_runs_the_venvs_python(project: Path, index_server: Any) -> None:
    write_project(project, ["alpha"])  # no lock yet: run locks, as uv run does
    code = ("import os, sys, alpha; print(sys.prefix); print(os.environ['VIRTUAL_ENV']); "
            "print(os.environ['PATH'].split(os.pathsep)[0]); sys.exit(7)")
    result = run_lockenv("run", "python", "-c", code, cwd=project, env=env_for(index_server))
    assert result.code == 7, result.output
    venv = str(project / ".venv")
    assert result.stdout.splitlines() == [venv, venv, os.path.join(venv, "bin")]
    assert installed(project / ".venv") == {"alpha": "2.0", "beta": "2.0", "gamma": "1.2"}
    # Up to date now: no request, no sync output, the script from the venv found on PATH.
    index_server.clear_log()
    result = run_lockenv("run", "alpha-cli", cwd=project, env=env_for(index_server))
    assert result.code == 0, result.output
    assert result.stderr == ""
    assert index_server.requests == []
    assert (project / "pylock.toml").exists()


def test_quiet_run_says_nothing_of_its_own(project: Path, index_server: Any) -> None:
    write_project(project, ["alpha"])
    lock(project, index_server)
    for args in (("run", "-q"), ("-q", "run")):  # the first syncs, the second is a no-op
        result = run_lockenv(*args, "python", "-c", "print('hi')", cwd=project,
                             env=env_for(index_server))
        assert result.code == 0, result.output
        assert (result.stdout, result.stderr) == ("hi\n", ""), args


def test_options_after_the_command_are_the_commands(project: Path, index_server: Any) -> None:
    _ready(project, index_server)
    result = run_lockenv("run", "python", "-q", "--version", "-c", "print(1)",
                         cwd=project, env=env_for(index_server))
    assert result.code == 0, result.output
    assert result.stdout.startswith("Python 3.")
    result = run_lockenv("run", "--", "python", "-c", "import sys; print(sys.argv[1:])", "--no-sync",
                         cwd=project, env=env_for(index_server))
    assert result.stdout.strip() == "['--no-sync']"


def test_run_relocks_a_stale_lock_unless_locked(project: Path, index_server: Any) -> None:
    _ready(project, index_server)
    write_project(project, ["alpha", "feat"])
    result = run_lockenv("run", "--locked", "python", "-c", "import feat",
                         cwd=project, env=env_for(index_server))
    assert result.code == 1 and "out of date" in result.stderr
    result = run_lockenv("run", "--no-sync", "python", "-c", "import feat",
                         cwd=project, env=env_for(index_server))
    assert result.code == 1 and "ModuleNotFoundError" in result.stderr  # python's own failure
    result = run_lockenv("run", "python", "-c", "import feat; print('ok')",
                         cwd=project, env=env_for(index_server))
    assert result.code == 0, result.output
    assert result.stdout == "ok\n"


def test_a_missing_command_is_exit_2_with_a_clear_message(project: Path, index_server: Any) -> None:
    _ready(project, index_server)
    before = snapshot(project / ".venv")
    result = run_lockenv("run", "no-such-command", "--flag", cwd=project, env=env_for(index_server))
    assert result.code == 2
    assert "command `no-such-command` not found" in result.stderr
    assert "Traceback" not in result.output
    assert snapshot(project / ".venv") == before
    result = run_lockenv("run", cwd=project, env=env_for(index_server))
    assert result.code == 2 and "CMD" in result.stderr


def test_no_sync_without_a_venv_says_so(project: Path, index_server: Any) -> None:
    write_project(project, ["alpha"])
    result = run_lockenv("run", "--no-sync", "python", "-c", "pass", cwd=project,
                         env=env_for(index_server))
    assert result.code == 2
    assert "no virtual environment" in result.stderr and "lockenv sync" in result.stderr
    assert not (project / ".venv").exists()


WAITER = """
import signal, sys, time
def stop(signum, frame):
    print("got", signal.Signals(signum).name, flush=True)
    sys.exit(40 + signum)
signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)
print("ready", flush=True)
for _ in range(1200):  # short sleeps: a signal that lands between the print and a long
    time.sleep(0.1)    # sleep's system call would wait for the whole sleep to be handled
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
@pytest.mark.parametrize("state", ["up to date", "needs a sync"])
def test_signals_reach_the_command_and_its_status_is_lockenvs(
        project: Path, index_server: Any, sig: signal.Signals, state: str) -> None:
    if state == "up to date":
        _ready(project, index_server)
    else:
        write_project(project, ["alpha"])
        lock(project, index_server)
    proc = subprocess.Popen([sys.executable, "-m", "lockenv", "run", "python", "-c", WAITER],
                            cwd=project, env={**os.environ, **env_for(index_server)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n"
        proc.send_signal(sig)  # to lockenv's process id: the command is that process now
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert out == f"got {sig.name}\n", err
    assert proc.returncode == 40 + sig


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("state", ["up to date", "needs a sync"])
def test_the_command_gets_default_signal_dispositions(project: Path, index_server: Any, state: str) -> None:
    """Python ignores SIGPIPE (and SIGXFSZ); the command must not inherit that: a pipeline
    through `head` would print "Broken pipe" errors instead of ending quietly."""
    if state == "up to date":
        _ready(project, index_server)
    else:
        write_project(project, ["alpha"])
        lock(project, index_server)
    result = run_lockenv("run", "sh", "-c", "grep SigIgn /proc/$$/status; yes | head -1",
                         cwd=project, env=env_for(index_server))
    assert result.code == 0, result.output
    ignored = int(result.stdout.split("SigIgn:")[1].split()[0], 16)
    assert not ignored & (1 << (signal.SIGPIPE - 1)) and not ignored & (1 << (signal.SIGXFSZ - 1)), hex(ignored)
    assert "Broken pipe" not in result.stderr


def test_virtual_env_of_another_environment_is_named_not_silently_ignored(
        project: Path, index_server: Any, tmp_path: Path) -> None:
    _ready(project, index_server)
    other = tmp_path / "other-venv"
    env = env_for(index_server, VIRTUAL_ENV=str(other))
    result = run_lockenv("sync", cwd=project, env=env)
    assert result.code == 0, result.output
    assert f"VIRTUAL_ENV={other} is not this project's environment" in result.stderr
    assert f"syncing {project / '.venv'}" in result.stderr
    result = run_lockenv("run", "python", "-c", "import sys; print(sys.prefix)", cwd=project, env=env)
    assert result.code == 0, result.output
    assert result.stdout.strip() == str(project / ".venv")
    assert f"running in {project / '.venv'}" in result.stderr
    same = env_for(index_server, VIRTUAL_ENV=str(project / ".venv"))
    for args in (("sync",), ("run", "true")):
        result = run_lockenv(*args, cwd=project, env=same)
        assert "VIRTUAL_ENV" not in result.stderr, args


def test_noop_run_loads_neither_the_cli_framework_nor_httpx(project: Path, index_server: Any) -> None:
    _ready(project, index_server)
    index_server.clear_log()
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "lockenv", "run", "true"],
                          cwd=project, env={**os.environ, **env_for(index_server)},
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    assert "lockenv.ops.run" in imported
    assert not imported & {"typer", "httpx", "resolvelib", "installer", "rich", "click"}
    assert "lockenv.ops.sync" not in imported  # the no-op asked as `lockenv sync` asks it
    assert index_server.requests == []

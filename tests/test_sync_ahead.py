"""A sync of a lock with no selection cached parses and selects from it in a forked child
while it readies its HTTP client (`ops.sync._select_ahead`): the child only leaves the sealed
selection entry in the cache, so the venv is the one the sync makes alone, and a lock the child
cannot read, or a child that dies or hangs, ends as it did before: the sync's own error, or the
sync selecting by itself."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from helpers import env_for, installed, lock, run_lockenv, snapshot, write_project

LINE = "selected from the lock in a child process"


def _fresh_venv(project: Path) -> None:
    shutil.rmtree(project / ".venv", ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(project / ".venv")], check=True)


def _sync(project: Path, srv: Any, cache: Path, *args: str, **env: str) -> tuple[int, str, dict[str, Any]]:
    """A sync into a new empty venv with its own cache; its exit code, stderr and the venv."""
    _fresh_venv(project)
    result = run_lockenv("sync", "--verbose", *args, cwd=project, timeout=120,
                         env=env_for(srv, LOCKENV_CACHE_DIR=str(cache), **env))
    files = snapshot(project / ".venv")
    files.pop(".lockenv-state.json", None)
    return result.code, result.stderr, files


def _selections(cache: Path) -> list[Path]:
    return sorted((cache / "selections-v1").glob("*.json"))


def test_the_child_selects_and_the_sync_installs_what_it_installs_alone(
        project: Path, tmp_path: Path, index_server: Any) -> None:
    write_project(project, ["alpha", "feat[fast]"])
    lock(project, index_server)
    code, err, ahead = _sync(project, index_server, tmp_path / "c1")
    assert code == 0, err
    assert LINE in err and "Traceback" not in err
    assert len(_selections(tmp_path / "c1")) == 1
    code, err, alone = _sync(project, index_server, tmp_path / "c2", LOCKENV_SELECT_AHEAD="0")
    assert code == 0, err
    assert LINE not in err
    assert ahead == alone and installed(project / ".venv")["alpha"]
    assert [p.name for p in _selections(tmp_path / "c1")] == [p.name for p in _selections(tmp_path / "c2")]
    # with the selection cached, no child: the sync reads the entry
    code, err, again = _sync(project, index_server, tmp_path / "c1")
    assert code == 0 and LINE not in err and again == alone


def test_with_no_venv_yet_the_child_selects_for_the_interpreter_it_will_be_made_with(
        project: Path, tmp_path: Path, index_server: Any) -> None:
    """A fresh clone (no .venv): the interpreter the venv is made with is probed ahead, so the
    child selects for it (a venv has its interpreter's markers and tags); the venv made is the
    one a sync makes with the child off."""
    write_project(project, ["alpha", "feat[fast]"])
    lock(project, index_server)
    made = {}
    for cache, ahead in (("c1", ""), ("c2", "0")):
        shutil.rmtree(project / ".venv", ignore_errors=True)
        result = run_lockenv("sync", "--verbose", cwd=project, timeout=120,
                             env=env_for(index_server, LOCKENV_CACHE_DIR=str(tmp_path / cache),
                                         LOCKENV_PYTHON=sys.executable, LOCKENV_SELECT_AHEAD=ahead))
        assert result.code == 0, result.stderr
        assert (LINE in result.stderr) == (ahead == ""), result.stderr
        made[ahead] = snapshot(project / ".venv")
        made[ahead].pop(".lockenv-state.json", None)
    assert made[""] == made["0"] and installed(project / ".venv")["alpha"]
    assert [p.name for p in _selections(tmp_path / "c1")] == [p.name for p in _selections(tmp_path / "c2")]


def test_a_child_that_dies_leaves_the_sync_to_select_by_itself(
        project: Path, tmp_path: Path, index_server: Any) -> None:
    write_project(project, ["alpha"])
    lock(project, index_server)
    code, err, files = _sync(project, index_server, tmp_path / "c1", LOCKENV_TEST_KILL_AHEAD="1")
    assert code == 0, err
    assert "the child process selecting from the lock left no selection" in err and LINE not in err
    assert "alpha" in installed(project / ".venv")
    assert len(_selections(tmp_path / "c1")) == 1  # the sync's own
    assert files == _sync(project, index_server, tmp_path / "c2", LOCKENV_SELECT_AHEAD="0")[2]


def test_a_lock_the_child_cannot_read_is_the_syncs_own_error(
        project: Path, tmp_path: Path, index_server: Any) -> None:
    write_project(project, ["alpha"])
    lock(project, index_server)
    path = project / "pylock.toml"
    path.write_text(path.read_text().replace('\nversion = "', '\nversion = "not a version ', 1))
    errors = {}
    for ahead in ("", "0"):
        _fresh_venv(project)
        before = snapshot(project / ".venv")
        result = run_lockenv("sync", "--frozen", cwd=project, timeout=120,
                             env=env_for(index_server, LOCKENV_CACHE_DIR=str(tmp_path / f"c{ahead}"),
                                         LOCKENV_SELECT_AHEAD=ahead))
        assert result.code == 2, result.output
        assert "Traceback" not in result.stderr and "pylock.toml" in result.stderr
        assert snapshot(project / ".venv") == before
        assert not _selections(tmp_path / f"c{ahead}")
        errors[ahead] = result.stderr
    assert errors[""] == errors["0"]
    assert "Invalid version: 'not a version" in errors[""]


def test_a_child_that_takes_too_long_is_stopped() -> None:
    # In a process of its own: a child is forked only from a process running no other thread.
    script = (
        "import os, time\n"
        "from lockenv.sync.install.forks import Ahead\n"
        "ahead = Ahead.start(lambda: time.sleep(60))\n"
        "assert ahead is not None\n"
        "pid = ahead._pid\n"
        "print(ahead.wait(0.3))\n"
        "try:\n"
        "    os.kill(pid, 0)\n"
        "    print('alive')\n"
        "except ProcessLookupError:\n"
        "    print('gone')\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          env={**os.environ})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["False", "gone"]

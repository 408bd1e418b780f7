"""Sync fails before it changes anything when it can: a bad interpreter request, a venv path that
is a file, a lock that cannot serve this machine; and its messages say what to do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import env_for, lock, pyenv_pythons, run_lockenv, snapshot, sync, write_project

PYENV_PYTHONS = pyenv_pythons()


@pytest.mark.parametrize("request_args, env", [
    (("--python", "3.99"), {}),
    (("--python", "3.9"), {}),  # outside requires-python (>=3.10), whether or not it is installed
    (("--python", "banana"), {}),
    ((), {"LOCKENV_PYTHON": "banana"}),
], ids=["unknown-version", "outside-requires-python", "junk", "junk-env-var"])
def test_a_bad_interpreter_request_leaves_venv_and_lock_untouched(
        project: Path, index_server: Any, request_args: tuple[str, ...], env: dict[str, str]) -> None:
    write_project(project, ["gamma"])
    lock(project, index_server)
    assert sync(project, index_server).code == 0
    venv_before = snapshot(project / ".venv")
    # A stale lock: the failing sync must not relock either.
    write_project(project, ["gamma", "alpha"])
    lock_before = (project / "pylock.toml").read_bytes()

    result = sync(project, index_server, *request_args, **env)

    assert result.code == 2, result.output
    assert "Recreating" not in result.output and "locking again" not in result.output
    assert result.stderr.startswith("error: "), result.stderr
    assert snapshot(project / ".venv") == venv_before
    assert (project / "pylock.toml").read_bytes() == lock_before
    source = "LOCKENV_PYTHON" if env else "--python"
    assert source in result.stderr.split("hint:")[1], result.stderr
    assert "found: " in result.stderr
    for python in PYENV_PYTHONS:  # pyenv's versions are listed, not only PATH's
        version = Path(python).parent.parent.name
        assert f"(Python {version})" in result.stderr, result.stderr


def test_a_venv_path_that_is_a_file_is_a_clean_error(project: Path, index_server: Any) -> None:
    write_project(project, ["gamma"])
    lock(project, index_server)
    (project / "not-a-dir").write_text("keep me\n")
    result = sync(project, index_server, LOCKENV_VENV="not-a-dir")
    assert result.code == 2, result.output
    assert result.stderr.startswith(f"error: the virtual environment path {project / 'not-a-dir'} is a file"), result.stderr
    assert "internal error" not in result.stderr and "LOCKENV_VENV" in result.stderr
    assert (project / "not-a-dir").read_text() == "keep me\n"


@pytest.mark.parametrize("command", ["sync", "tree", "export"])
def test_a_lockfile_path_that_does_not_exist_is_not_one_lock_would_create(project: Path, index_server: Any,
                                                                          command: str) -> None:
    """`--lockfile pylock.uv.toml` (a lock another tool was to export) that is not there: `lockenv
    lock` would not create it, so the hint says to check the path (it said to run `lockenv lock`)."""
    write_project(project, ["gamma"])
    result = run_lockenv(*command.split(), "--lockfile", "pylock.uv.toml", cwd=project, env=env_for(index_server))
    assert result.code == 2, result.output
    assert f"no lock file at {project / 'pylock.uv.toml'}" in result.stderr, result.stderr
    assert "hint: check the path" in result.stderr and "run `lockenv lock`" not in result.stderr, result.stderr
    assert not (project / "pylock.toml").exists() and not (project / ".venv").exists()


@pytest.mark.parametrize("command", ["sync", "lock --refresh", "verify"])
def test_a_cache_dir_that_is_a_file_is_a_clean_error(project: Path, index_server: Any, tmp_path: Path,
                                                     command: str) -> None:
    write_project(project, ["gamma"])
    lock(project, index_server)
    assert sync(project, index_server).code == 0
    (project / "pyproject.toml").write_text((project / "pyproject.toml").read_text().replace('"gamma"', '"alpha"'))
    blocker = tmp_path / "cachefile"
    blocker.write_text("")
    for cache in (blocker, blocker / "sub"):
        result = run_lockenv(*command.split(), cwd=project, env=env_for(index_server, LOCKENV_CACHE_DIR=str(cache)))
        assert result.code == 2, result.output
        assert (f"error: the cache directory {cache} cannot be used: {blocker} is a file, not a "
                "directory") in result.stderr, result.stderr
        assert "internal error" not in result.stderr
        assert "LOCKENV_CACHE_DIR" in result.stderr.split("hint:")[1]


def test_a_lock_that_cannot_serve_this_machine_fails_before_the_venv_is_created(
        project: Path, index_server: Any) -> None:
    write_project(project, ["gamma"])
    with (project / "pyproject.toml").open("a") as fh:
        fh.write("[tool.lockenv]\nenvironments = [\"sys_platform == 'win32'\"]\n")
    lock(project, index_server)
    for args in ((), ("--dry-run",)):
        result = sync(project, index_server, *args)
        assert result.code == 2, result.output
        assert "error: the lock cannot serve this environment" in result.stderr, result.stderr
        assert "Creating virtual environment" not in result.stderr
        assert not (project / ".venv").exists()


def test_locked_and_frozen_together_are_an_error_even_on_a_synced_venv(project: Path, index_server: Any) -> None:
    write_project(project, ["gamma"])
    lock(project, index_server)
    assert sync(project, index_server).code == 0  # the no-op fast path must not answer it either
    result = sync(project, index_server, "--locked", "--frozen")
    assert result.code == 2, result.output
    assert result.stderr.startswith("error: --locked and --frozen contradict each other"), result.stderr


def test_sync_errors_start_lower_case(project: Path, index_server: Any) -> None:
    write_project(project, ["gamma"])
    assert sync(project, index_server, "--frozen").stderr.startswith("error: no pylock.toml in ")
    lock(project, index_server)
    result = sync(project, index_server, "--extra", "nope")
    assert result.code == 2
    assert result.stderr.startswith("error: unknown extra `nope`: the lock has no extras"), result.stderr


@pytest.mark.skipif(not any("/3.10." in p for p in PYENV_PYTHONS), reason="needs pyenv 3.10")
def test_a_request_the_relocked_lock_allows_is_checked_against_pyproject_not_the_old_lock(
        project: Path, index_server: Any) -> None:
    write_project(project, ["gamma"], requires_python=">=3.11")
    lock(project, index_server)
    write_project(project, ["gamma"], requires_python=">=3.10")  # the lock still says >=3.11
    result = sync(project, index_server, "--python", "3.10")
    assert result.code == 0, result.output
    assert "locking again" in result.stderr
    assert 'requires-python = ">=3.10"' in (project / "pylock.toml").read_text()
    assert "version = 3.10." in (project / ".venv" / "pyvenv.cfg").read_text()

"""Sync fails before it changes anything when it can: a bad interpreter request, a venv path that
is a file, a lock that cannot serve this machine; and its messages say what to do."""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Any

import pytest
from test_sync import lock, snapshot, sync, write_project

PYENV_PYTHONS = sorted(glob.glob(f"{os.environ.get('PYENV_ROOT') or '/root/.pyenv'}/versions/3.*/bin/python3"))


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

    assert result.code == 1, result.output
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

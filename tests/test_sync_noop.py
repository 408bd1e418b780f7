"""What a sync records for the next no-op, and what the no-op trusts: end to end through the
CLI against the fixture index and real venvs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from helpers import installed, lock, run_fastpath_main, site_packages, sync, write_project


def test_f5_a_lock_changed_mid_sync_is_not_recorded_as_synced(tmp_path: Path, index_server: Any) -> None:
    """F5: the fingerprint a sync stores is of the lock it installed. A checkout that lands
    while the venv is being created (the interpreter wrapper copies another branch's
    pyproject.toml and pylock.toml in then) must not make the next sync say "up to date"."""
    branch = write_project(tmp_path / "branch", ["alpha==1.0"])
    lock(branch, index_server)
    project = write_project(tmp_path / "proj", ["alpha==2.0"])
    lock(project, index_server)
    wrapper = tmp_path / "python-checkout-mid-sync"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'case "$*" in *"-m venv"*) cp "{branch}/pyproject.toml" "{branch}/pylock.toml" "{project}/";; esac\n'
        f'exec "{os.path.realpath(sys.executable)}" "$@"\n')
    wrapper.chmod(0o755)
    first = sync(project, index_server, LOCKENV_PYTHON=str(wrapper))
    assert first.code == 0, first.output
    assert installed(project / ".venv")["alpha"] == "2.0"  # the lock as read when the sync began
    assert (project / "pylock.toml").read_bytes() == (branch / "pylock.toml").read_bytes()
    second = sync(project, index_server, LOCKENV_PYTHON=str(wrapper))
    assert second.code == 0, second.output
    assert "up to date" not in second.stderr
    assert second.stdout.splitlines()[0] == "~ alpha 2.0 -> 1.0"
    assert installed(project / ".venv")["alpha"] == "1.0"
    third = sync(project, index_server, LOCKENV_PYTHON=str(wrapper))
    assert "Environment is up to date" in third.stderr, third.output


def test_the_noop_survives_bytecode_and_notices_a_deleted_file(project: Path, index_server: Any) -> None:
    """The no-op compares directories (mtime, then entries by name and inode), not files: the
    `__pycache__` a first import writes leaves it a no-op; a file deleted deep inside a package
    does not."""
    write_project(project, ["alpha"])
    lock(project, index_server)
    assert sync(project, index_server).code == 0
    venv = project / ".venv"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([str(venv / "bin" / "python"), "-c", "import alpha, beta, gamma"], check=True, env=env)
    assert list(site_packages(venv).glob("alpha/__pycache__/*.pyc"))
    for _ in range(2):  # the second no-op lists nothing (the first kept the new mtimes)
        again = sync(project, index_server)
        assert again.code == 0 and "Environment is up to date" in again.stderr, again.output
    (site_packages(venv) / "beta" / "__init__.py").unlink()
    repaired = sync(project, index_server)
    assert repaired.code == 0, repaired.output
    assert repaired.stdout.splitlines() == ["~ beta 2.0 -> 2.0 (missing: beta/__init__.py)"]


def test_f8_cached_files_are_read_only_and_a_changed_one_never_reaches_a_new_venv(
        tmp_path: Path, index_server: Any) -> None:
    """F8: a venv's files are hard links to the cache's: the cached files carry no write bit,
    so an in-place edit through a venv is refused (EACCES) for their owner; and a cached file
    changed anyway (root ignores modes) is found before it is linked into another venv, which
    gets the file as the wheel has it, the sync saying what it found."""
    first = write_project(tmp_path / "a", ["alpha"])
    lock(first, index_server)
    assert sync(first, index_server).code == 0
    edited = site_packages(first / ".venv") / "alpha" / "__init__.py"
    assert edited.stat().st_nlink >= 2  # the cache's inode
    cache = Path(os.environ["LOCKENV_CACHE_DIR"]) / "unpacked-v1"
    tree_files = [p for p in cache.rglob("*") if p.is_file() and "files" in p.relative_to(cache).parts]
    assert tree_files and all(p.stat().st_mode & 0o222 == 0 for p in tree_files)
    assert edited.stat().st_mode & 0o222 == 0
    original = edited.read_bytes()
    at = original.index(b'__version__ = "2.0') + len('__version__ = "')
    with open(edited, "r+b") as fh:  # as root: in place, same size
        fh.write(original[:at] + b"7.7" + original[at + 3:])
    for name in ("c", "d"):
        project = tmp_path / name
        project.mkdir()
        for file in ("pyproject.toml", "pylock.toml"):
            shutil.copy(first / file, project / file)
        result = sync(project, index_server)
        assert result.code == 0, result.output
        got = site_packages(project / ".venv") / "alpha" / "__init__.py"
        assert got.read_bytes() == original
        warned = "alpha/__init__.py of alpha-2.0-py3-none-any.whl in the cache was changed"
        assert (warned in result.stderr) == (name == "c"), result.stderr  # d: the cache healed


def test_a_sync_process_ends_with_its_output_and_exit_handlers(project: Path, index_server: Any,
                                                               tmp_path: Path) -> None:
    """A sync ends its process without the interpreter's teardown (`fastpath._exit_now`): what
    it printed into a pipe still arrives, and the exit handlers still run (atexit: weakref
    finalizers, filelock's), for a sync with work and for a no-op alike."""
    write_project(project, ["alpha"])
    lock(project, index_server)
    marker = tmp_path / "atexit-ran"
    env = {**os.environ, "LOCKENV_INDEX_URL": index_server.json_url}
    for first in (True, False):  # a sync with work, then a no-op
        run = run_fastpath_main("sync", cwd=project, env=env, atexit_marker=marker)
        assert run.returncode == 0, run.stdout + run.stderr
        if first:
            assert run.stdout.splitlines() == ["+ alpha==2.0", "+ beta==2.0", "+ gamma==1.2"]
            assert "Installed 3" in run.stderr, run.stderr
        else:
            assert run.stdout == "" and "Environment is up to date" in run.stderr, run.stderr
    assert marker.read_text() == "ran\nran\n"

"""`--offline` on lock and sync: the cache answers, nothing touches the network, and what the
cache lacks fails at once (no retries), every missing page or file named, nothing changed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from helpers import run_lockenv
from helpers import env_for, installed, lock, snapshot, sync, write_project


def test_warm_cache_locks_and_syncs_with_the_index_stopped(project: Path, index_server: Any) -> None:
    write_project(project, ["alpha"])
    lock(project, index_server)
    assert sync(project, index_server).code == 0
    locked = (project / "pylock.toml").read_bytes()
    (project / "pylock.toml").unlink()
    (project / ".venv").rename(project.parent / "old-venv")
    env = env_for(index_server, LOCKENV_INDEX_TTL="0")  # pages count as expired: still used
    index_server.clear_log()
    index_server.stop()
    result = run_lockenv("lock", "--offline", cwd=project, env=env)
    assert result.code == 0, result.output
    assert (project / "pylock.toml").read_bytes() == locked
    result = run_lockenv("sync", "--offline", cwd=project, env=env)
    assert result.code == 0, result.output
    assert installed(project / ".venv") == {"alpha": "2.0", "beta": "2.0", "gamma": "1.2"}
    assert index_server.requests == []


def test_cold_lock_fails_at_once_naming_every_missing_page(project: Path, index_server: Any) -> None:
    write_project(project, ["alpha", "diamond"])
    result = run_lockenv("lock", "--offline", cwd=project, env=env_for(index_server))
    assert result.code == 2, result.output
    assert "--offline" in result.stderr
    assert "the index page of `alpha`" in result.stderr
    assert "the index page of `diamond`" in result.stderr
    assert "without --offline" in result.stderr  # the hint
    assert "Traceback" not in result.output
    assert not (project / "pylock.toml").exists()
    assert index_server.requests == []


def test_cold_sync_names_every_missing_file_and_changes_nothing(
        project: Path, index_server: Any, tmp_path: Path) -> None:
    write_project(project, ["alpha==1.0"])
    lock(project, index_server)
    assert sync(project, index_server).code == 0
    before = snapshot(project / ".venv")
    write_project(project, ["alpha==2.0"])
    lock(project, index_server)  # pages and metadata cached; alpha 2.0 and beta 2.0 files not
    index_server.clear_log()
    result = sync(project, index_server, "--offline")
    assert result.code == 2, result.output
    assert "alpha-2.0-py3-none-any.whl" in result.stderr
    assert "beta-2.0-py3-none-any.whl" in result.stderr
    assert snapshot(project / ".venv") == before
    assert index_server.requests == []
    # A new venv is not even created when its files are missing.
    empty_cache = tmp_path / "empty-cache"
    os.rename(project / ".venv", tmp_path / "kept-venv")
    result = sync(project, index_server, "--offline", LOCKENV_CACHE_DIR=str(empty_cache))
    assert result.code == 2, result.output
    assert "gamma-1.2-py3-none-any.whl" in result.stderr
    assert not (project / ".venv").exists()
    assert index_server.requests == []


def test_a_stale_lock_is_relocked_offline_or_the_sync_says_what_is_missing(
        project: Path, index_server: Any) -> None:
    write_project(project, ["alpha"])
    lock(project, index_server)
    assert sync(project, index_server).code == 0
    lock_before = (project / "pylock.toml").read_bytes()
    before = snapshot(project / ".venv")
    write_project(project, ["alpha", "feat"])  # feat's page was never fetched
    result = sync(project, index_server, "--offline")
    assert result.code == 2, result.output
    assert "the index page of `feat`" in result.stderr
    assert (project / "pylock.toml").read_bytes() == lock_before
    assert snapshot(project / ".venv") == before


def test_add_and_remove_offline(project: Path, index_server: Any) -> None:
    write_project(project, ["alpha"])
    lock(project, index_server)
    assert sync(project, index_server).code == 0
    pyproject = (project / "pyproject.toml").read_bytes()
    lock_before = (project / "pylock.toml").read_bytes()
    before = snapshot(project / ".venv")
    index_server.clear_log()
    cold = run_lockenv("add", "feat", "--offline", cwd=project, env=env_for(index_server))
    assert cold.code == 2, cold.output
    assert "the index page of `feat`" in cold.stderr and "nothing was changed" in cold.stderr
    assert (project / "pyproject.toml").read_bytes() == pyproject
    assert (project / "pylock.toml").read_bytes() == lock_before
    assert snapshot(project / ".venv") == before
    # Warm: gamma's page, metadata and file are all cached from the first sync.
    warm = run_lockenv("add", "gamma", "--offline", cwd=project, env=env_for(index_server))
    assert warm.code == 0, warm.output
    assert '"gamma>=1.2"' in (project / "pyproject.toml").read_text()
    removed = run_lockenv("remove", "gamma", "--offline", cwd=project, env=env_for(index_server))
    assert removed.code == 0, removed.output
    assert (project / "pyproject.toml").read_bytes() == pyproject
    assert index_server.requests == []

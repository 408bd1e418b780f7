"""Whole-output snapshots of CLI stories, run through the real CLI against the fixture index:
what a user reads, byte for byte (exit code, stdout, stderr), after temp paths, ports, timings
and the running Python are filtered out. The golden files are tests/snapshots/<story>.txt;
`scripts/test --update-snapshots tests/test_cli_snapshots.py` rewrites them (review the diff)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fixtures.index import IndexServer
from helpers import CliResult, env_for, lock, run_lockenv, sync, write_project


def _story(result: CliResult) -> str:
    return f"$ exit {result.code}\n--- stdout\n{result.stdout}--- stderr\n{result.stderr}"


def test_fresh_lock(project: Path, index_server: IndexServer, golden: Any) -> None:
    write_project(project, ["alpha", "feat[fast]"], groups={"dev": ["gamma"]})
    result = run_lockenv("lock", cwd=project, env=env_for(index_server))
    assert result.code == 0, result.output
    golden("fresh-lock", _story(result), project=project)


def test_relock_after_changing_a_requirement(project: Path, index_server: IndexServer,
                                             golden: Any) -> None:
    write_project(project, ["alpha", "feat[fast]"])
    lock(project, index_server)
    write_project(project, ["alpha==1.0", "feat"])
    result = run_lockenv("lock", cwd=project, env=env_for(index_server))
    assert result.code == 0, result.output
    golden("relock-diff", _story(result), project=project)


def test_conflict(project: Path, index_server: IndexServer, golden: Any) -> None:
    write_project(project, ["flasky>=2", "werky<2"])
    result = run_lockenv("lock", cwd=project, env=env_for(index_server))
    assert result.code == 2, result.output
    assert not (project / "pylock.toml").exists()
    golden("conflict", _story(result), project=project)


def test_sync_refuses_a_file_whose_hash_does_not_match(project: Path, index_server: IndexServer,
                                                       golden: Any) -> None:
    write_project(project, ["alpha==2.0"])
    lock(project, index_server)
    index_server.inject("alpha-2.0-py3-none-any.whl", "wrong-bytes")
    result = sync(project, index_server)
    assert result.code == 2, result.output
    golden("sync-refused-hash", _story(result), project=project)


def test_sync_dry_run_plan(project: Path, index_server: IndexServer, golden: Any) -> None:
    write_project(project, ["alpha==1.0", "gamma"])
    lock(project, index_server)
    assert sync(project, index_server).code == 0
    write_project(project, ["alpha==2.0", "feat"])
    lock(project, index_server)
    result = sync(project, index_server, "--dry-run")
    assert result.code == 0, result.output
    golden("sync-dry-run", _story(result), project=project)


def test_sync_that_relocks(project: Path, index_server: IndexServer, golden: Any) -> None:
    """The lock's changes and the environment's, each under its heading (issue 10)."""
    write_project(project, ["alpha==1.0", "gamma"])
    assert sync(project, index_server).code == 0
    write_project(project, ["alpha==2.0", "feat"])
    result = sync(project, index_server)
    assert result.code == 0, result.output
    golden("sync-relock", _story(result), project=project)

"""What a user sees of the manifest and the lock's freshness through the real CLI: bad
pyproject.toml messages, `lock --check` with typed reasons, and a relock that writes nothing
and asks the index nothing when the inputs are unchanged."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from fixtures.index import IndexServer
from lockenv import lockfile

PYPROJECT = """
[project]
name = "demo"
requires-python = ">=3.10"
dependencies = ["alpha<2"]

[dependency-groups]
dev = ["gamma"]
"""


def write(project: Path, text: str) -> None:
    (project / "pyproject.toml").write_text(textwrap.dedent(text).lstrip("\n"))


@pytest.fixture
def locked(cli, project: Path, index_server: IndexServer) -> tuple[Path, dict[str, str]]:
    write(project, PYPROJECT)
    env = {"LOCKENV_INDEX_URL": index_server.simple_url}
    result = cli("lock", cwd=project, env=env)
    assert result.code == 0, result.output
    assert (project / "pylock.toml").exists()
    return project, env


def test_lock_check_fresh_then_stale_with_reasons(cli, locked: tuple[Path, dict[str, str]]) -> None:
    project, env = locked
    lock = project / "pylock.toml"
    before = lock.read_bytes()
    result = cli("lock", "--check", cwd=project, env=env)
    assert result.code == 0, result.output
    assert "up to date" in result.stderr

    write(project, PYPROJECT.replace('["alpha<2"]', '["alpha<2", "diamond"]')
          .replace('">=3.10"', '">=3.11"').replace('dev = ["gamma"]', 'dev = ["gamma", "cee"]'))
    result = cli("lock", "--check", cwd=project, env=env)
    assert result.code == 1
    assert "pylock.toml is out of date with pyproject.toml" in result.stderr
    assert "changed requires-python from `>=3.10` to `>=3.11`" in result.stderr
    assert "added `diamond` to dependencies" in result.stderr
    assert "changed dependency group `dev`: added `cee`" in result.stderr
    assert "hint:" in result.stderr
    assert lock.read_bytes() == before  # --check never writes


def test_relock_with_unchanged_inputs_writes_nothing_and_asks_nothing(
    cli, locked: tuple[Path, dict[str, str]], index_server: IndexServer
) -> None:
    project, env = locked
    lock = project / "pylock.toml"
    stamp = lock.stat().st_mtime_ns
    index_server.clear_log()
    # reordering and respelling the requirements is not a change
    write(project, PYPROJECT.replace('["alpha<2"]', '["Alpha < 2"]'))
    result = cli("lock", cwd=project, env=env)
    assert result.code == 0, result.output
    assert "up to date" in result.stderr
    assert index_server.requests == []
    assert lock.stat().st_mtime_ns == stamp


def test_lock_written_by_another_tool_is_stale(cli, locked: tuple[Path, dict[str, str]]) -> None:
    project, env = locked
    (project / "pylock.toml").write_text('lock-version = "1.0"\ncreated-by = "uv"\npackages = []\n')
    result = cli("lock", "--check", cwd=project, env=env)
    assert result.code == 1
    assert "pylock.toml was not written by lockenv (no [tool.lockenv])" in result.stderr


@pytest.mark.parametrize(
    ("pyproject", "expected"),
    [
        ('[project]\nname = "demo"\ndependencies = [\n  "alpha"\n  "beta",\n]\n',
         "pyproject.toml:5:3: invalid TOML: unclosed array"),
        ('[project]\nname = "demo"\ndependencies = [\n  "alpha",\n  "beta >> 1",\n]\n',
         "pyproject.toml:5: invalid requirement `beta >> 1` in `project.dependencies[1]`"),
        ('[project]\nname = "demo"\n[dependency-groups]\ndev = [{include-group = "lint"}]\n',
         "pyproject.toml:4: dependency group `dev` includes unknown group `lint`"),
        ('[project]\nname = "demo"\n[dependency-groups]\na = [{include-group = "b"}]\nb = [{include-group = "a"}]\n',
         "pyproject.toml:4: dependency groups include each other in a cycle: `a` → `b` → `a`"),
    ],
    ids=["toml", "requirement", "unknown-include", "cyclic-include"],
)
def test_bad_pyproject_is_reported_and_nothing_written(cli, project: Path, pyproject: str, expected: str) -> None:
    (project / "pyproject.toml").write_text(pyproject)
    result = cli("lock", cwd=project, env={"LOCKENV_INDEX_URL": "http://127.0.0.1:9/simple/"})
    assert result.code == 2
    assert f"error: {project / expected}" in result.stderr
    assert "Traceback" not in result.output
    assert not (project / lockfile.LOCK_NAME).exists()


def test_missing_pyproject(cli, project: Path) -> None:
    result = cli("lock", cwd=project)
    assert result.code == 2
    assert f"error: no pyproject.toml in {project}" in result.stderr
    assert "--project" in result.stderr
    assert not (project / lockfile.LOCK_NAME).exists()

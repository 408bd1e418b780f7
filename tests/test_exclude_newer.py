"""Issue 9, point 9: a cut-off given once with `lock --exclude-newer` is remembered; it can be
cleared (`none`, or empty), and when it holds a package back during `--upgrade` or `-P` the
output says so, with the date. (timely: 1.0 in 2024-01, 1.1 in 2024-06, 1.2 in 2025-01.)"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from helpers import CliResult, run_lockenv
from fixtures.index import IndexServer

PYPROJECT = """\
[project]
name = "app"
version = "0.1"
requires-python = ">=3.10,<3.14"
dependencies = ["timely", "alpha"]
"""
HELD = ("`timely` stays at 1.0: 1.2 was uploaded 2025-01-15, after the exclude-newer cut-off "
        "2024-03-01T00:00:00Z remembered from an earlier `lock --exclude-newer`")


def lock(project: Path, srv: IndexServer, *args: str) -> CliResult:
    return run_lockenv("lock", *args, cwd=project, env={"LOCKENV_INDEX_URL": srv.json_url})


def timely(project: Path) -> str:
    data = tomllib.loads((project / "pylock.toml").read_text())
    (entry,) = [p for p in data["packages"] if p["name"] == "timely"]
    return entry["version"]


@pytest.fixture
def remembered(index_server: IndexServer, project: Path) -> Path:
    (project / "pyproject.toml").write_text(PYPROJECT)
    assert lock(project, index_server, "--exclude-newer", "2024-03-01").code == 0
    assert timely(project) == "1.0"
    return project


@pytest.mark.parametrize("args", [["--upgrade"], ["-P", "timely"], ["-U", "-q"]])
def test_a_remembered_cut_off_holding_a_package_back_is_said(
        remembered: Path, index_server: IndexServer, args: list[str]) -> None:
    result = lock(remembered, index_server, *args)
    assert result.code == 0, result.output
    assert timely(remembered) == "1.0"
    assert f"warning: {HELD}" in result.stderr
    assert "--exclude-newer none" in result.stderr
    assert result.stderr.count("stays at") == 1  # alpha is at its newest: nothing to say


def test_no_word_when_the_upgraded_package_is_not_held_back(
        remembered: Path, index_server: IndexServer) -> None:
    result = lock(remembered, index_server, "-P", "alpha")
    assert result.code == 0, result.output
    assert "stays at" not in result.stderr


def test_no_word_for_a_cut_off_given_on_this_command_line(
        remembered: Path, index_server: IndexServer) -> None:
    result = lock(remembered, index_server, "--upgrade", "--exclude-newer", "2024-03-01")
    assert result.code == 0, result.output
    assert "stays at" not in result.stderr


@pytest.mark.parametrize("value", ["none", "None", ""])
def test_exclude_newer_none_clears_the_remembered_cut_off(
        remembered: Path, index_server: IndexServer, value: str) -> None:
    result = lock(remembered, index_server, "--exclude-newer", value)
    assert result.code == 0, result.output
    assert "removed exclude-newer `2024-03-01T00:00:00Z` (--exclude-newer none)" in result.stderr
    text = (remembered / "pylock.toml").read_text()
    assert "exclude-newer" not in text
    assert timely(remembered) == "1.0"  # pins are kept; nothing asked to move
    upgraded = lock(remembered, index_server, "--upgrade")
    assert upgraded.code == 0, upgraded.output
    assert timely(remembered) == "1.2" and "stays at" not in upgraded.stderr
    again = lock(remembered, index_server, "--exclude-newer", value)
    assert again.code == 0 and "up to date" in again.stderr


def test_exclude_newer_none_keeps_the_one_from_pyproject(index_server: IndexServer,
                                                        project: Path) -> None:
    (project / "pyproject.toml").write_text(
        PYPROJECT + '\n[tool.lockenv]\nexclude-newer = "2024-03-01"\n')
    assert lock(project, index_server).code == 0
    result = lock(project, index_server, "--exclude-newer", "none", "--upgrade")
    assert result.code == 0, result.output
    assert timely(project) == "1.0"
    assert 'exclude-newer = "2024-03-01T00:00:00Z"' in (project / "pylock.toml").read_text()

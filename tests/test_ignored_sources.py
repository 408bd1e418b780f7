"""Sources another tool declares (uv's `[tool.uv.sources]`, Poetry's dependency tables) are not
read by lockenv: a package uv takes from a path, a git repository or its own index would be
locked from lockenv's index, silently another package of that name. `lock` says so, naming the
packages and the kind of source (never the value: a git URL may carry a password), and the
lock goes on; a fresh no-op stays quiet."""

from __future__ import annotations

import tomllib
from pathlib import Path

from fixtures.index import IndexServer
from helpers import env_for, run_lockenv, write_project

UV_SOURCES = """
[tool.uv.sources]
alpha = { path = "../alpha", editable = true }
gamma = [{ git = "https://deploy:hunter2@git.example.invalid/gamma.git", marker = "sys_platform == 'linux'" },
         { index = "internal", marker = "sys_platform != 'linux'" }]
diamond = { path = "../diamond" }   # not required by the project: nothing to say
"""

POETRY = """
[tool.poetry.dependencies]
python = "^3.10"
alpha = { version = ">=1", source = "mirror" }
[tool.poetry.group.test.dependencies]
gamma = { git = "https://git.example.invalid/gamma.git", branch = "main" }
"""


def _lock(project: Path, srv: IndexServer) -> tuple[int, str]:
    result = run_lockenv("lock", cwd=project, env=env_for(srv))
    return result.code, result.stderr


def test_uv_sources_for_required_packages_are_named_and_the_lock_goes_on(
        project: Path, index_server: IndexServer) -> None:
    write_project(project, ["alpha", "gamma"])
    (project / "pyproject.toml").write_text((project / "pyproject.toml").read_text() + UV_SOURCES)
    code, stderr = _lock(project, index_server)
    assert code == 0, stderr
    assert stderr.count("warning:") == 1, stderr
    assert ("[tool.uv.sources] has sources for `alpha` (a path), `gamma` (a git repository, its index `internal`); "
            "lockenv does not read another tool's sources") in " ".join(stderr.split())
    assert "hunter2" not in stderr and "deploy" not in stderr and "diamond" not in stderr.split("hint:")[0]
    names = {p["name"] for p in tomllib.loads((project / "pylock.toml").read_text())["packages"]}
    assert {"alpha", "gamma"} <= names
    code, stderr = _lock(project, index_server)  # fresh: nothing resolved, nothing said
    assert code == 0 and "warning:" not in stderr, stderr


def test_poetry_sources_in_dependency_tables_and_groups_are_named(
        project: Path, index_server: IndexServer) -> None:
    write_project(project, ["alpha"], groups={"test": ["gamma"]})
    (project / "pyproject.toml").write_text((project / "pyproject.toml").read_text() + POETRY)
    code, stderr = _lock(project, index_server)
    assert code == 0, stderr
    flat = " ".join(stderr.split())
    assert "[tool.poetry.dependencies] has sources for `alpha` (its source `mirror`)" in flat
    assert "[tool.poetry.group.test.dependencies] has sources for `gamma` (a git repository)" in flat
    assert "python" not in flat.split("hint:")[0].replace("Python", "")


def test_a_name_with_control_characters_is_not_shown(project: Path, index_server: IndexServer) -> None:
    write_project(project, ["alpha"])
    (project / "pyproject.toml").write_text((project / "pyproject.toml").read_text()
                                           + '\n[tool.uv.sources]\nalpha = { index = "evil\\u001b[2J" }\n')
    code, stderr = _lock(project, index_server)
    assert code == 0, stderr
    assert "has sources for `alpha` (its index);" in " ".join(stderr.split())
    assert "\x1b" not in stderr and "evil" not in stderr


def test_version_only_entries_say_nothing(project: Path, index_server: IndexServer) -> None:
    write_project(project, ["alpha"])
    (project / "pyproject.toml").write_text((project / "pyproject.toml").read_text()
                                           + '\n[tool.poetry.dependencies]\nalpha = ">=1"\n[tool.uv.sources]\n')
    code, stderr = _lock(project, index_server)
    assert code == 0 and "warning:" not in stderr, stderr

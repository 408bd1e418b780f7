"""Where a project's files are: the project directory, pyproject.toml, pylock.toml and .venv.

Standard library only: the no-op path (`fastpath`) and the CLI both start here.
"""

from __future__ import annotations

import os
from pathlib import Path

PYPROJECT = "pyproject.toml"
LOCK_NAME = "pylock.toml"
VENV_NAME = ".venv"


def find_project(start: Path) -> Path:
    """The nearest directory from `start` upward holding a pyproject.toml (as uv and PDM find
    it from a subdirectory); `start` itself when there is none, so errors name it."""
    start = start.resolve()
    for directory in (start, *start.parents):
        if (directory / PYPROJECT).is_file():
            return directory
    return start


def venv_path(project: Path) -> Path:
    """`LOCKENV_VENV` (relative to the project) or `<project>/.venv`."""
    env = os.environ.get("LOCKENV_VENV")
    if env:
        return (project / Path(env).expanduser()).resolve()
    return project / VENV_NAME


def foreign_virtual_env(project: Path) -> str | None:
    """`VIRTUAL_ENV` when it names another environment than the project's venv: `sync` and
    `run` then say which one they use (as uv does) instead of ignoring it silently."""
    active = os.environ.get("VIRTUAL_ENV")
    if not active:
        return None
    ours = venv_path(project)
    try:
        same = os.path.samefile(active, ours)
    except OSError:
        same = os.path.realpath(active) == os.path.realpath(ours)
    return None if same else active


def foreign_virtual_env_warning(project: Path, doing: str) -> str | None:
    """The warning for `foreign_virtual_env` (`doing`: "syncing", "running in"), or None."""
    active = foreign_virtual_env(project)
    if active is None:
        return None
    return (f"VIRTUAL_ENV={active} is not this project's environment and is ignored; "
            f"{doing} {venv_path(project)}")

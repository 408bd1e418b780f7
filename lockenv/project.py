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

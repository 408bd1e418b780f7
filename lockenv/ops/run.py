"""The `run` use case: sync when the lock or the venv is out of date, then become the command.

The command replaces lockenv's process (`execve`), so its exit status is lockenv's and
SIGINT/SIGTERM reach it directly, with nothing in between to forward or lose them. It runs with
the venv's scripts directory first on PATH and VIRTUAL_ENV set, so `lockenv run python` is the
venv's Python. `run` syncs exactly as `lockenv sync` with the same selection flags does, so the
two share the no-op fingerprint: after either, the other answers without work.

Standard library only at import time: the fast path (`fastpath`) execs from here before typer.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from lockenv.errors import RunError
from lockenv.project import LOCK_NAME, PYPROJECT, foreign_virtual_env_warning, venv_path


@dataclass(frozen=True)
class RunOptions:
    command: tuple[str, ...]
    sync: Any
    """The `SyncOptions` of the sync that runs first (selection, --locked/--frozen, --offline)."""
    no_sync: bool = False


def run(options: RunOptions, *, reporter: Any) -> int:
    """Sync unless told not to, then exec the command (returns only by raising)."""
    project: Path = options.sync.project
    if not options.command:
        raise RunError("`lockenv run` needs a command to run",
                       hint="for example `lockenv run python -c 'import sys; print(sys.prefix)'`")
    if options.no_sync and (options.sync.locked or options.sync.frozen):
        raise RunError("--no-sync skips the sync, so --locked/--frozen would do nothing",
                       hint="pass --no-sync alone, or --locked/--frozen alone")
    if not (project / PYPROJECT).is_file():
        raise RunError(f"no {PYPROJECT} in {project}: `lockenv run` runs in a project's venv",
                       hint="run it inside the project, or pass --project DIR")
    warning = foreign_virtual_env_warning(project, "running in")
    if warning and options.no_sync:  # else the sync says it
        reporter.warn(warning)
    if not options.no_sync:
        from lockenv.ops.sync import sync

        quiet = _DataToStderr(reporter)
        if not (project / LOCK_NAME).exists() and not (options.sync.locked or options.sync.frozen):
            from lockenv.ops.lock import LockOptions, lock  # a new project: lock it, as uv run does

            lock(LockOptions(project=project, offline=options.sync.offline), reporter=quiet)
        sync(options.sync, reporter=quiet)
    exec_command(project, options.command)


class _DataToStderr:
    """The sync's plan lines are status here: stdout belongs to the command (as with uv run)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def data(self, line: str) -> None:
        self._inner.status(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def command_env(venv: Path) -> dict[str, str]:
    """The environment the command gets: the venv's scripts first on PATH, VIRTUAL_ENV set,
    PYTHONHOME dropped (it would point the venv's Python at another installation)."""
    env = dict(os.environ)
    scripts = venv / ("Scripts" if os.name == "nt" else "bin")
    env["PATH"] = str(scripts) + (os.pathsep + env["PATH"] if env.get("PATH") else "")
    env["VIRTUAL_ENV"] = str(venv)
    env.pop("PYTHONHOME", None)
    return env


def _default_signals() -> None:
    """Python ignores SIGPIPE and SIGXFSZ, and an ignored signal stays ignored across
    `execve`: the command would inherit it (`lockenv run sh -c 'yes | head -1'` printed
    "yes: standard output: Broken pipe"). Back to the defaults, as subprocess does for a child."""
    import signal

    for name in ("SIGPIPE", "SIGXFSZ"):
        number = getattr(signal, name, None)
        if number is not None:
            signal.signal(number, signal.SIG_DFL)


def exec_command(project: Path, command: tuple[str, ...] | list[str]) -> NoReturn:
    """Replace this process with `command` run in the project's venv."""
    venv = venv_path(project)
    if not venv.is_dir():
        raise RunError(f"there is no virtual environment at {venv}",
                       hint="run `lockenv sync` first (or drop --no-sync)")
    env = command_env(venv)
    name = command[0]
    found = shutil.which(name, path=env["PATH"])
    if found is None:
        where = "" if os.sep in name else f" in {venv / 'bin'} or on PATH"
        raise RunError(
            f"command `{name}` not found{where}",
            hint=(f"if a package provides it, `lockenv add {name}`; check the spelling"
                  if os.sep not in name else "check the path"))
    sys.stdout.flush()
    sys.stderr.flush()
    _default_signals()
    try:
        os.execve(found, list(command), env)
    except OSError as exc:
        raise RunError(f"cannot run `{name}` ({found}): {exc.strerror or exc}",
                       hint="check that it is an executable file") from None
    raise AssertionError("unreachable")  # pragma: no cover

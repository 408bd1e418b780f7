"""The `init` use case: a minimal pyproject.toml, so `add`, `lock` and `sync` have a project."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from lockenv.errors import ManifestError
from lockenv.project import PYPROJECT
from lockenv.ui import Reporter

_NAME = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.IGNORECASE)


@dataclass(frozen=True)
class InitOptions:
    directory: Path
    name: str | None = None
    python: str | None = None
    """A version like 3.12 (or an interpreter's path): requires-python becomes `>=3.12`."""


def init(options: InitOptions, *, reporter: Reporter) -> int:
    """Write DIR/pyproject.toml ([project] name, version, requires-python, dependencies = []);
    refuse when one exists. Returns the exit code."""
    from lockenv.manifest_edit import minimal_pyproject
    from lockenv.ops.edit import write_file

    directory = options.directory.absolute()
    path = directory / PYPROJECT
    if path.exists() or path.is_symlink():
        raise ManifestError(f"{path} already exists; nothing was changed",
                            context={"file": str(path)},
                            hint="`lockenv add NAME` adds dependencies to an existing project")
    if directory.exists() and not directory.is_dir():
        raise ManifestError(f"{directory} is not a directory", context={"file": str(directory)})
    name = options.name if options.name is not None else directory.name
    if not _NAME.match(name):
        raise ManifestError(
            f"`{name}` is not a valid project name" + ("" if options.name else
                                                         f" (from the directory {directory})"),
            hint="pass `--name NAME`: letters, digits and `.`, `-`, `_`, starting and ending "
                 "with a letter or digit")
    minor = _python_minor(options.python, reporter)
    directory.mkdir(parents=True, exist_ok=True)
    write_file(path, minimal_pyproject(name, f">={minor}").encode("utf-8"))
    reporter.status(f"Initialized project `{name}` in {path} (requires-python >={minor})")
    return 0


def _python_minor(request: str | None, reporter: Reporter) -> str:
    """X.Y of the interpreter asked for (`--python`, else LOCKENV_PYTHON, else the one running
    lockenv): that is the Python the project's venv will be made with."""
    from lockenv.environment import find_python, request_source

    source = "--python"
    if request is None:
        request, source = request_source()
    return find_python(request, None, reporter, source=source).minor

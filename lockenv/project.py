"""Where a project's files are: the project directory, pyproject.toml, pylock.toml and .venv.

Standard library only: the no-op path (`fastpath`) and the CLI both start here.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

PYPROJECT = "pyproject.toml"
LOCK_NAME = "pylock.toml"
VENV_NAME = ".venv"
FRESH_LOCKS = "fresh-locks-v1"
"""The cache bucket of no-op markers (`cache.Bucket.FRESH_LOCKS`), named here so that the no-op
path finds it without importing the cache module."""


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


def read_pyvenv_cfg(path: Path) -> dict[str, str] | None:
    """`pyvenv.cfg` as a dict, or None when `path` is not a venv."""
    try:
        text = (path / "pyvenv.cfg").read_text(encoding="utf-8")
    except OSError:
        return None
    cfg = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            cfg[key.strip().lower()] = value.strip()
    return cfg


VERSION_REQUEST = r"^(?:python|cpython)?(3)(?:\.(\d+))?(?:\.(\d+))?$"
"""An interpreter asked for by version (`3.12`, `python3.12`): the pattern `--python` and
LOCKENV_PYTHON are read with (anything else is a path or a command name)."""


def is_version_request(request: str) -> bool:
    import re

    return bool(re.match(VERSION_REQUEST, request.strip()))


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


def cache_root() -> Path:
    """The cache's root: `LOCKENV_CACHE_DIR`, else the platform user cache dir."""
    env = os.environ.get("LOCKENV_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("lockenv", appauthor=False))


def lock_noop_marker(project: Path) -> Path | None:
    """A cache file that exists when `ops.lock.is_noop` found this exact pylock.toml fresh for
    this exact pyproject.toml, LOCKENV_* environment and lockenv code: freshness is a function
    of those alone, so the no-op `lock` answers from it without parsing either file (nor
    importing packaging). None when a file cannot be read."""
    import hashlib

    try:
        h = hashlib.sha256(b"lock\0" + (project / LOCK_NAME).read_bytes())
        h.update(b"\0" + (project / PYPROJECT).read_bytes())
        here = Path(__file__).parent
        code = [(here / f).stat().st_mtime_ns for f in _FRESHNESS_CODE]
    except OSError:
        return None
    from lockenv import __version__

    env = sorted((k, v) for k, v in os.environ.items() if k.startswith("LOCKENV_"))
    h.update(repr((__version__, code, env)).encode())
    return cache_root() / FRESH_LOCKS / f"lock-{h.hexdigest()}"


_FRESHNESS_CODE = ("manifest.py", "models.py", "distfiles.py", "lockfile/fresh.py", "lockfile/read.py",
                   "lockfile/common.py", "ops/lock.py")
"""The modules whose code decides whether a lock is fresh: a change to one (an editable
install, a development tree) is a new marker key even under the same version."""


def write_project_file(path: Path, data: bytes) -> None:
    """Replace one of the user's files (pyproject.toml, pylock.toml) with `data`, durably and
    keeping its permissions (a temporary is made 0600, and a user's file must not become
    private by being rewritten). Raises OSError."""
    replace_file(path, data, durable=True, keep_mode=True)


def replace_file(path: Path, data: bytes | Iterable[bytes], *, durable: bool = False, keep_mode: bool = False) -> None:
    """Write `data` to `path` so that no reader ever sees a partial file and a crash leaves the
    old or the new one: a temporary `.<name>.*.tmp` beside it, renamed over it. `durable`
    fsyncs the file and the directory (the user's files; the cache can be rebuilt);
    `keep_mode` gives it the old file's permissions (or the umask's). Raises OSError; the
    temporary is gone either way."""
    import tempfile

    mode = None
    if keep_mode:
        try:
            mode = path.stat().st_mode & 0o777
        except FileNotFoundError:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        try:  # plain writes on the descriptor: a buffered file object adds fstat, ioctl, lseek
            for chunk in (data,) if isinstance(data, bytes) else data:
                write_all(fd, chunk)
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    if durable:
        _fsync_dir(path.parent)


def write_all(fd: int, data: bytes) -> None:
    """All of `data` to the open descriptor `fd` (os.write may write less than asked)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _fsync_dir(directory: Path) -> None:
    """Make a rename durable (best effort: not every platform can open a directory)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)

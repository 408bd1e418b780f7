"""The file-system steps an install repeats per file or directory (make a directory, create a
file that must not exist, the mode of a written script), shared by a replayed install
(`replay`) and a whole sync's sealed plan (`lockenv.sync.whole`). Standard library only: the
sealed plan's path imports this and not the unpacking machinery."""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

from lockenv.project import write_all


def make_dirs(path: str, made: set[str] | None = None) -> None:
    """os.makedirs(path, exist_ok=True) in one mkdir when the parent exists (the usual case in
    a new venv: makedirs stats the parent first), climbing only when it does not; the parents
    it makes go into `made`."""
    try:
        os.mkdir(path)
    except FileNotFoundError:
        parent = os.path.dirname(path)
        if parent == path:
            raise
        make_dirs(parent, made)
        if made is not None:
            made.add(parent)
        try:
            os.mkdir(path)
        except FileExistsError:
            if not os.path.isdir(path):
                raise
    except FileExistsError:
        if not os.path.isdir(path):
            raise


def write_new(path: Path | str, data: bytes, mode: int = 0o644) -> None:
    """Create `path` (it must not exist: never a write through a link) holding `data`."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        write_all(fd, data)
    finally:
        os.close(fd)


def write_replacing(target: str, data: bytes, *, executable: bool, script: bool) -> None:
    """A recorded write (RECORD, a console script...): `target` created anew (what is there is
    unlinked first: never a write through a hard link into the cache), with the mode installer
    gives it."""
    try:
        write_new(target, data, 0o666)
    except FileExistsError:
        os.unlink(target)
        write_new(target, data, 0o666)
    if executable:
        mode = 0o777 & ~current_umask() | 0o111
        if script:
            mode |= (mode & 0o444) >> 2
        os.chmod(target, mode)


_umask_lock = threading.Lock()
_umask: list[int] = []


def current_umask() -> int:
    """The process umask, read once (os.umask must set it to read it: done under a lock, and
    from /proc where possible so no other thread sees a changed umask)."""
    with _umask_lock:
        if not _umask:
            value = None
            try:
                with open("/proc/self/status", encoding="ascii") as fh:
                    for line in fh:
                        if line.startswith("Umask:"):
                            value = int(line.split()[1], 8)
                            break
            except (OSError, ValueError):
                pass
            if value is None:
                value = os.umask(0o022)
                os.umask(value)
            _umask.append(value)
        return _umask[0]


_installer: list[str] = []


def installer_version() -> str:
    """installer's version and location, read from its `__init__.py` (part of every key of
    what an install did: importing installer costs ~10 ms)."""
    if not _installer:
        import importlib.util

        spec = importlib.util.find_spec("installer")
        origin = str(spec.origin) if spec is not None else "?"
        try:
            text = Path(origin).read_text(encoding="utf-8")
            found = re.search(r"""^__version__\s*=\s*["']([^"']+)["']""", text, re.M)
        except OSError:
            found = None
        if found is not None:
            version = found.group(1)
        else:
            import installer

            version = installer.__version__
        _installer.append(f"{version}@{origin}")
    return _installer[0]


VENV = "{venv}"
"""The venv root as written in what is kept venv-relative (replay records, sealed plans)."""


def relative_to(path: str, root: str) -> str:
    """`path` with the venv root written as VENV (the same for every venv of one layout)."""
    if path == root:
        return VENV
    if path.startswith(root + os.sep):
        return VENV + path[len(root):]
    return path


def simple_shebang(python: str) -> bool:
    """Whether installer writes `#!<python>` as it is for this interpreter path (its
    `_is_executable_simple`: no space, the line at most 127 bytes)."""
    raw = python.encode("utf-8", "surrogateescape")
    return b" " not in raw and len(raw) + 3 <= 127


def fixed_record(record: str, text: bytes, rewritten: dict[str, tuple[bytes, bytes]]) -> bytes:
    """RECORD's bytes (its path `record`) with the row of each rewritten file (target: (bytes
    before, bytes after)) given the sha256 and size of its new bytes, the row as installer
    writes it: path relative to RECORD's scheme directory, '/'-separated. ValueError when a
    file has not exactly one row."""
    start = os.path.dirname(os.path.dirname(record))
    for target, (before, after) in rewritten.items():
        path = os.path.relpath(target, start).replace(os.sep, "/").encode("utf-8")
        old_row = b"\n" + path + b"," + _sha256_field(before) + b",%d\n" % len(before)
        if (b"\n" + text).count(old_row) != 1:
            raise ValueError(f"no RECORD row for {target}")
        new_row = b"\n" + path + b"," + _sha256_field(after) + b",%d\n" % len(after)
        text = (b"\n" + text).replace(old_row, new_row)[1:]
    return text


def _sha256_field(data: bytes) -> bytes:
    import base64
    import hashlib

    return b"sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")

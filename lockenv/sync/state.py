"""What lockenv keeps inside a venv between syncs: the journal of a sync in progress and the
fingerprint of the last successful one.

The fingerprint is what makes a no-op sync fast: a hash over the lock's bytes, the selection
options, pyproject.toml, the interpreter, and the size and mtime of every file in the venv
(`__pycache__` excluded). Any install, removal or edit by hand changes it. This module imports
only the standard library: it is on the no-op path.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path

JOURNAL = ".lockenv-sync.json"
STATE = ".lockenv-state.json"
_SKIP_NAMES = frozenset({"__pycache__", JOURNAL, STATE})


def _walk(root: str, out: list[str], base_len: int) -> None:
    try:
        it = os.scandir(root)
    except OSError:
        return
    with it:
        for entry in it:
            name = entry.name
            if name in _SKIP_NAMES or name.startswith(".lockenv-stash-"):
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    _walk(entry.path, out, base_len)
                    continue
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            out.append(f"{entry.path[base_len:]}\0{st.st_size}\0{st.st_mtime_ns}")


def venv_digest(venv: Path) -> tuple[str, int]:
    """A digest of every file's path, size and mtime under the venv, and the file count."""
    root = str(venv)
    entries: list[str] = []
    _walk(root, entries, len(root))
    entries.sort()
    digest = hashlib.sha256("\n".join(entries).encode("utf-8", "surrogateescape")).hexdigest()
    return digest, len(entries)


def inputs_digest(lock_path: Path, options_key: str, project: Path) -> str | None:
    """A digest of what decides the venv's contents, other than the venv itself."""
    h = hashlib.sha256()
    try:
        h.update(lock_path.read_bytes())
    except OSError:
        return None
    h.update(b"\0" + options_key.encode())
    try:
        h.update(b"\0" + (project / "pyproject.toml").read_bytes())
    except OSError:
        h.update(b"\0-")
    return h.hexdigest()


def python_stamp(venv: Path) -> str:
    python = venv / "Scripts" / "python.exe" if os.name == "nt" else venv / "bin" / "python"
    try:
        real = os.path.realpath(python)
        st = os.stat(real)
    except OSError:
        return "missing"
    return f"{real}:{st.st_mtime_ns}:{st.st_size}"


def read_state(venv: Path) -> dict | None:
    try:
        return json.loads((venv / STATE).read_bytes())
    except (OSError, ValueError):
        return None


def is_fresh(venv: Path, inputs: str | None) -> dict | None:
    """The stored state when the venv and inputs are exactly as the last sync left them."""
    if inputs is None or (venv / JOURNAL).exists():
        return None
    state = read_state(venv)
    if not state or state.get("inputs") != inputs or state.get("python") != python_stamp(venv):
        return None
    digest, _count = venv_digest(venv)
    return state if state.get("venv") == digest else None


def write_state(venv: Path, inputs: str | None, packages: int, *, lock_checked: bool) -> None:
    """After a successful sync. `lock_checked` is False for `--frozen` (freshness unknown)."""
    if inputs is None:
        return
    digest, count = venv_digest(venv)
    data = {"inputs": inputs, "python": python_stamp(venv), "venv": digest, "files": count,
            "packages": packages, "lock_checked": lock_checked}
    _write(venv / STATE, data)


def clear_state(venv: Path) -> None:
    try:
        (venv / STATE).unlink()
    except OSError:
        pass


def _write(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


# -- journal ----------------------------------------------------------------------------------
def write_journal(venv: Path, names: Iterable[str], paths: Iterable[str], removing: Iterable[str]) -> None:
    """Before the first change: which distributions are about to change and which files the
    installs will write, so an interrupted sync can be repaired."""
    _write(venv / JOURNAL, {"pid": os.getpid(), "names": sorted(set(names)),
                            "paths": sorted(set(paths)), "removing": sorted(set(removing))})


def read_journal(venv: Path) -> dict | None:
    path = venv / JOURNAL
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_bytes())
        if isinstance(data, dict):
            return data
    except (OSError, ValueError):
        pass
    return {"names": [], "paths": [], "removing": [], "unreadable": True}


def clear_journal(venv: Path) -> None:
    try:
        (venv / JOURNAL).unlink()
    except OSError:
        pass

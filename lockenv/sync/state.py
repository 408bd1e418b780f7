"""What lockenv keeps inside a venv between syncs: the journal of a sync in progress and the
fingerprint of the last successful one.

The fingerprint is what makes a no-op sync fast: a hash over the lock's bytes, the selection
options, pyproject.toml and the interpreter, plus the venv's *shape*: every directory's mtime
and a digest of its entries (name and inode, `__pycache__` excluded). A no-op stats each
directory once (no file is stat-ed or read: on `data`, 2,300 directories instead of 18,500
files) and lists only a directory whose mtime moved (a new `__pycache__` moves it: the entries
still match, and the new mtime is kept for the next no-op). So it sees a file or directory
added, removed, renamed or replaced (a new inode: pip, an editor that writes a new file), and
trusts what cannot change a directory: a file rewritten in place keeps its entry. `verify`
hashes every file, and a sync that has anything to do checks every installed file's size and
mtime as before. This module imports only the standard library: it is on the no-op path, and on
a warm sync's, where `dataclasses` (its `inspect`, `ast`, `tokenize`) alone was ~40 M of ~350 M
instructions on web: so not that either, nor `typing` (reading a journal back, the repair's
work, is `sync.journal`'s).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from lockenv.cache import Bucket, sha256_after

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing: see `lockenv.fastpath`
if TYPE_CHECKING:
    from typing import Any

    from _typeshed import DataclassInstance

    from lockenv.cache import Cache

JOURNAL = ".lockenv-sync.json"
STATE = ".lockenv-state.json"
_SKIP_NAMES = frozenset({"__pycache__", JOURNAL, STATE})
SHAPE_FORMAT = 2
"""Bumped when the shape's meaning changes: a state of another format is never fresh."""


def _entries_digest(path: str, subdirs: list[str] | None) -> str | None:
    """A digest of a directory's entries (name and inode, sorted by name); its subdirectories
    are appended to `subdirs` when given. None when it cannot be listed."""
    names: list[str] = []
    try:
        with os.scandir(path) as it:
            for entry in it:
                name = entry.name
                if name in _SKIP_NAMES or name.startswith(".lockenv-stash-"):
                    continue
                names.append(f"{name}\0{entry.inode()}")
                if subdirs is not None and entry.is_dir(follow_symlinks=False):
                    subdirs.append(entry.path)
    except OSError:
        return None
    names.sort()
    return hashlib.sha256("\n".join(names).encode("utf-8", "surrogateescape")).hexdigest()[:32]


def venv_shape(venv: Path, walked: Mapping[str, Mapping[str, list[Any]]] | None = None) -> dict[str, list[Any]]:
    """Every directory under the venv (relative path, '' for the venv itself) → [mtime_ns,
    entries digest]. The venv's own mtime is not kept (writing the state file moves it).
    Listed on this thread alone: listing is system calls of microseconds, so two threads
    handed the GIL over at each and took twice as long (tmpfs, data's 2,281 directories:
    64-73 ms on two threads, 33-37 ms on one); two processes gained nothing, as one
    package's subtree (jedi's 959 directories) is most of the work. `walked`: subtrees
    already listed by `walk_subtree` once nothing would change in them any more (by their top
    directory's path under `venv` as given), not listed again."""
    root = str(venv)
    skip = frozenset(walked or ())
    shape: dict[str, list[Any]] = {}
    todo = [root]
    while todo:
        _shape_one(todo.pop(), root, shape, todo, skip)
    for subtree in (walked or {}).values():
        shape.update(subtree)
    return shape


def walk_subtree(top: str, root: str) -> dict[str, list[Any]]:
    """`venv_shape`'s entries of the directory `top` and every directory below it, in the venv
    at `root` (as `venv_shape` is given it): what the full walk would find there, for a caller
    that has made its last change to that subtree (`venv_shape`'s `walked`)."""
    part: dict[str, list[Any]] = {}
    stack = [top]
    while stack:
        _shape_one(stack.pop(), root, part, stack, frozenset())
    return part


def _shape_one(path: str, root: str, shape: dict[str, list[Any]], todo: list[str],
               skip: frozenset[str]) -> None:
    """`path`'s entry of the shape; its subdirectories are appended to `todo`. Nothing for a
    subtree in `skip` (listed already)."""
    if path in skip:
        return
    try:
        mtime = os.stat(path).st_mtime_ns if path != root else 0
    except OSError:
        return
    digest = _entries_digest(path, todo)
    if digest is not None:
        shape[path[len(root) + 1:]] = [mtime, digest]


def shape_matches(venv: Path, shape: object) -> tuple[bool, bool]:
    """(whether the venv still has `shape`, whether a directory's mtime moved without its
    entries changing: the caller then keeps the updated `shape`, changed in place)."""
    if not isinstance(shape, dict) or "" not in shape:
        return False, False
    root = str(venv)
    moved = False
    for rel, recorded in shape.items():
        if not (isinstance(rel, str) and isinstance(recorded, list) and len(recorded) == 2):
            return False, False
        path = os.path.join(root, rel) if rel else root
        if rel:
            try:
                mtime = os.stat(path).st_mtime_ns
            except OSError:
                return False, False
            if mtime == recorded[0]:
                continue
        else:
            mtime = 0
        if _entries_digest(path, None) != recorded[1]:
            return False, False
        if mtime != recorded[0]:
            recorded[0] = mtime
            moved = True
    return True, moved


def inputs_digest(lock_path: Path, options_key: str, project: Path) -> str | None:
    """A digest of what decides the venv's contents, other than the venv itself, as the files
    are now (the no-op's question)."""
    try:
        lock = lock_path.read_bytes()
    except OSError:
        return None
    return inputs_digest_of(lock, options_key, read_pyproject(project))


def read_pyproject(project: Path) -> bytes | None:
    try:
        return (project / "pyproject.toml").read_bytes()
    except OSError:
        return None


def inputs_digest_of(lock: bytes, options_key: str, pyproject: bytes | None) -> str:
    """`inputs_digest` of bytes already read: a sync records the lock it installed and the
    pyproject.toml it read before checking it, never the files read again afterwards (they may
    have changed meanwhile: a checkout mid-sync would then be taken for synced, F5)."""
    h = sha256_after(lock)
    h.update(b"\0" + options_key.encode())
    h.update(b"\0-" if pyproject is None else b"\0" + pyproject)
    return h.hexdigest()


NOT_IN_KEY = frozenset({"project", "dry_run", "locked", "frozen"})
"""Option fields that do not decide what the venv holds: where the project is (the venv is
found from it), a dry run, and how the lock's freshness is checked (recorded as `lock_checked`
instead). Every other field of the options is in the key, so a new one cannot be forgotten."""

KEY_ENVIRONMENT = ("LOCKENV_PYTHON", "LOCKENV_INDEX_URL", "LOCKENV_VENV")
"""Environment variables that decide what a sync does, like options."""


def options_key(options: DataclassInstance, version: str) -> str:
    """The options' part of the no-op fingerprint, derived from the options dataclass's fields
    (all but NOT_IN_KEY): lockenv's `version`, each field's value (sequences sorted: `--extra a
    --extra b` selects what `--extra b --extra a` does) and KEY_ENVIRONMENT."""
    import dataclasses  # `options` is one: already imported wherever this is called

    return _key_of([(f.name, getattr(options, f.name)) for f in dataclasses.fields(options)], version)


OPTION_FIELDS: tuple[tuple[str, object], ...] = (
    ("extras", ()), ("all_extras", False), ("groups", ()), ("only_groups", ()),
    ("no_default_groups", False), ("all_groups", False), ("lockfile", None),
    ("install_project", True), ("python", None), ("inexact", False), ("dry_run", False),
    ("locked", False), ("frozen", False), ("find_links", None), ("offline", False))
"""`ops.sync.SyncOptions`'s fields after `project`, in order, with their defaults (a test holds
them equal): the fast path keys a sync's options given as a dict without importing ops.sync."""


def options_key_of(values: Mapping[str, object], version: str) -> str:
    """`options_key` of the options `SyncOptions(project=..., **values)` would be."""
    return _key_of([("project", None), *((name, values.get(name, default)) for name, default in OPTION_FIELDS)],
                   version)


def _key_of(fields: Iterable[tuple[str, object]], version: str) -> str:
    parts: list[Any] = [version]
    for name, value in fields:
        if name not in NOT_IN_KEY:
            parts.append((name, _canonical(value)))
    parts += [(name, os.environ.get(name, "")) for name in KEY_ENVIRONMENT]
    return repr(parts)


def fresh_for(venv: Path, inputs: str | None, frozen: bool) -> dict[str, Any] | None:
    """The no-op's answer: the venv's stored state when it is fresh for `inputs` (`is_fresh`),
    unless the last sync was --frozen and this one is not (it must check the lock first)."""
    fresh = is_fresh(venv, inputs)
    if fresh is not None and not frozen and not fresh.get("lock_checked"):
        return None
    return fresh


def venv_lock_name(venv: Path) -> str:
    """The name of the inter-process lock of the venv at `venv` (in Bucket.VENV_LOCKS)."""
    return hashlib.sha256(str(venv.resolve()).encode("utf-8", "surrogateescape")).hexdigest()[:32]


def _canonical(value: object) -> object:
    if isinstance(value, (tuple, list, set, frozenset)):
        return sorted(str(v) for v in value)
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return str(value)


def fresh_marker(cache: Cache, project: Path, lock_path: Path, version: str) -> Path | None:
    """A cache file that exists when this exact lock was found fresh for this exact
    pyproject.toml (and index URL setting): freshness is a function of those bytes alone, and
    checking it parses the whole lock. None when either file cannot be read."""
    try:
        lock, pyproject = lock_path.read_bytes(), (project / "pyproject.toml").read_bytes()
    except OSError:
        return None
    return fresh_marker_of(cache.root, lock, pyproject, version)


def fresh_marker_of(root: Path, lock: bytes, pyproject: bytes, version: str) -> Path:
    """`fresh_marker` of bytes already read, in the cache at `root`."""
    h = sha256_after(lock)
    h.update(b"\0" + pyproject)
    h.update(f"\0{os.environ.get('LOCKENV_INDEX_URL', '')}\0{version}".encode())
    return root / Bucket.FRESH_LOCKS.value / h.hexdigest()


def python_stamp(venv: Path) -> str:
    python = venv / "Scripts" / "python.exe" if os.name == "nt" else venv / "bin" / "python"
    try:
        real = os.path.realpath(python)
        st = os.stat(real)
    except OSError:
        return "missing"
    return f"{real}:{st.st_mtime_ns}:{st.st_size}"


def read_state(venv: Path) -> dict[str, Any] | None:
    try:
        return json.loads((venv / STATE).read_bytes())
    except (OSError, ValueError):
        return None


def is_fresh(venv: Path, inputs: str | None) -> dict[str, Any] | None:
    """The stored state when the venv and inputs are as the last sync left them (see the
    module's docstring for what that covers)."""
    if inputs is None or (venv / JOURNAL).exists():
        return None
    state = read_state(venv)
    if not state or state.get("inputs") != inputs or state.get("python") != python_stamp(venv) \
            or state.get("format") != SHAPE_FORMAT:
        return None
    matches, moved = shape_matches(venv, state.get("shape"))
    if not matches:
        return None
    if moved:  # e.g. a new __pycache__: keep the new mtimes so the next no-op lists nothing
        try:
            _write(venv / STATE, state, durable=False)
        except OSError:
            pass
    return state


def write_state(venv: Path, inputs: str | None, packages: int, *, lock_checked: bool,
                walked: Mapping[str, Mapping[str, list[Any]]] | None = None) -> None:
    """After a successful sync. `lock_checked` is False for `--frozen` (freshness unknown);
    `walked`: `venv_shape`'s."""
    if inputs is None:
        return
    shape = venv_shape(venv, walked)
    data = {"format": SHAPE_FORMAT, "inputs": inputs, "python": python_stamp(venv),
            "shape": shape, "packages": packages, "lock_checked": lock_checked}
    _write(venv / STATE, data)


SELECTION_FILE = ".lockenv-selection.json"
"""In the venv: the selection (extras, groups, project or not) its last sync installed
(`ops.wanted.selection_bytes`), which `verify` checks again."""


def write_selection(venv: Path, text: bytes) -> None:
    """After a successful sync (never before: a failed sync must leave the venv's files as
    they were): the selection file, unless it already holds `text`."""
    from lockenv.cache import write_atomic

    try:
        if (venv / SELECTION_FILE).read_bytes() == text:
            return  # unchanged: a rewrite would be a new inode, and the no-op's shape would move
    except OSError:
        pass
    try:
        write_atomic(venv / SELECTION_FILE, text)
    except OSError:
        pass  # verify then checks the default selection, as before


def clear_state(venv: Path) -> None:
    try:
        (venv / STATE).unlink()
    except OSError:
        pass


def _write(path: Path, data: dict[str, Any], *, durable: bool = True) -> None:
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        # json.dumps, not json.dump: only the one-shot encoder is json's C one (the journal of
        # data, 18,000 paths, took 0.013-0.019 s through json.dump's Python encoder).
        fh.write(json.dumps(data, sort_keys=True, separators=(",", ":")))
        if durable:
            fh.flush()
            os.fsync(fh.fileno())
    os.replace(tmp, path)


# -- journal ----------------------------------------------------------------------------------
def write_journal(venv: Path, names: Iterable[str], paths: Iterable[str], removing: Iterable[str]) -> None:
    """Before the first change: which distributions are about to change and which files the
    installs will write, so an interrupted sync can be repaired."""
    # The paths in the order given (each install's are sorted), duplicates dropped: the repair
    # reads them as a set, and sorting data's 18,000 again cost 0.005-0.02 s.
    _write(venv / JOURNAL, {"pid": os.getpid(), "names": sorted(set(names)),
                            "paths": list(dict.fromkeys(paths)), "removing": sorted(set(removing))})


def clear_journal(venv: Path) -> None:
    try:
        (venv / JOURNAL).unlink()
    except OSError:
        pass

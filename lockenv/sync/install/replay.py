"""Installs replayed from the cache: what `installer` did for one wheel into one scheme, kept so
the next identical install is a loop of mkdir + hard link + three small writes.

`installer` stays the source of truth: the first install of a wheel tree into a given scheme
(absolute directories), interpreter, launcher kind and extra metadata runs through it, and every
write it makes (each a hard link from the tree, or bytes: console scripts, INSTALLER, RECORD…)
is recorded. The record is keyed by all those inputs plus installer's version, so a replay
writes exactly what installer would write. A replay checks the record before it writes: every
target inside a scheme directory, every linked source a member of the validated tree, unchanged
since it was unpacked (as a linking install does). An unreadable or inconsistent record is
ignored (installer runs again and records afresh).

The key holds the scheme and the interpreter relative to the venv (`scheme["data"]`), so a venv
at a new path (another checkout, a CI runner's fresh directory) replays the same record: its
targets move to the new root, and the one place installer writes the venv's path, a script's
`#!<venv>/bin/python` line, is rewritten, with the script's RECORD row (sha256, size) to match.
Only the plain shebang is rewritten (what installer writes when neither path has a space or
is too long): any other mention of the old root in a written file makes the record unusable
for the new path (installer runs instead).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sys
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lockenv.cache import Bucket
from lockenv.sync.install.fs import VENV, fixed_record, installer_version, simple_shebang, write_replacing
from lockenv.sync.install.fs import relative_to as _relative_to
from lockenv.sync.install.tree import Linker, Member, Tree, hand_over, take_over

if TYPE_CHECKING:
    from lockenv.cache import Cache

INSTALLS = Bucket.INSTALLS
FORMAT = 2
"""2: keyed on venv-relative paths, with the venv root it was recorded in."""


class BadRecord(Exception):
    """A replay record that does not fit the tree or the scheme; never replayed."""


def record_key(tree: Tree, scheme: Mapping[str, str], python: str,
               metadata: Mapping[str, bytes]) -> str:
    """Everything installer's output depends on. (`os.name` and `sys.version` decide installer's
    launcher kind; its version is read without importing it, which costs ~10 ms.)"""
    h = hashlib.sha256()
    root = scheme["data"]
    parts = [str(FORMAT), installer_version(), tree.sha256, _relative_to(python, root), os.name,
             sys.version, json.dumps({k: _relative_to(v, root) for k, v in scheme.items()},
                                     sort_keys=True)]
    for name in sorted(metadata):
        parts += [name, base64.b64encode(metadata[name]).decode("ascii")]
    h.update("\0".join(parts).encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def record_path(cache: Cache, key: str) -> Path:
    return cache.root / INSTALLS.value / key[:2] / f"{key}.json"


def load(cache: Cache, key: str) -> dict[str, Any] | None:
    """The record, if it is one this user's lockenv sealed (a record says what to write into
    the venv: a forged one would install other bytes, F4), or the one this sync saved."""
    path = record_path(cache, key)
    handed = take_over("record", path)
    if handed is not None:
        return handed  # built by `save` and written as such: nothing to check again
    try:
        sealed = cache.unseal(path.read_bytes())
        if sealed is None:
            return None
        data = json.loads(sealed)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("ops"), list) \
            or not isinstance(data.get("root"), str):
        return None
    return data


def save(cache: Cache, key: str, tree: Tree, ops: list[dict[str, Any]], root: str) -> None:
    """Keep what an install into the venv at `root` wrote, for the next install with `key`."""
    from lockenv.cache import write_atomic

    record = {"format": FORMAT, "tree": tree.sha256, "root": root, "ops": ops}
    sealed = cache.seal(json.dumps(record, separators=(",", ":")).encode())
    if sealed is None:
        return  # no key to seal it with: installer runs each time
    try:
        write_atomic(record_path(cache, key), sealed)
    except OSError:
        return  # only a cache: the next install runs installer again
    hand_over("record", record_path(cache, key), record)


TARGETS_FORMAT = 1
"""Bumped when what a planned install covers changes (e.g. the metadata lockenv adds)."""


def targets_path(cache: Cache, tree: Tree) -> Path:
    """Where the planned targets of `tree` are kept: they depend on the tree, installer (its
    version and launcher kind), never on the venv (see `load_targets`)."""
    h = hashlib.sha256("\0".join([str(TARGETS_FORMAT), installer_version(), tree.sha256,
                                    os.name, sys.platform]).encode("utf-8", "surrogateescape"))
    key = h.hexdigest()
    return cache.root / INSTALLS.value / "targets" / key[:2] / f"{key}.json"


def load_targets(cache: Cache, tree: Tree, schemes: Collection[str]) -> list[tuple[str, str]] | None:
    """The (scheme key, relative path) of every file an install of `tree` writes, as a dry run
    of installer found them before; None when missing or not well formed (a cache file is
    untrusted: only what this user's lockenv sealed is read, every key must be one of
    `schemes`)."""
    path = targets_path(cache, tree)
    handed = take_over("targets", path)
    if handed is not None and {key for key, _ in handed} <= set(schemes):
        return list(handed)  # what `save_targets` just wrote
    try:
        # Sealed like replay records: a forged plan could leave out a target (a script named
        # like the venv's interpreter link) from the checks and the journal (F4).
        sealed = cache.unseal(path.read_bytes())
        if sealed is None:
            return None
        data = json.loads(sealed)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("tree") != tree.sha256 \
            or not isinstance(data.get("targets"), list):
        return None
    # Each path was checked relative before it was sealed (`save_targets`): only the shape is
    # checked here (a per-item check was ~0.01 s of a warm sync of data, 18,000 targets).
    try:
        out = [(key, path) for key, path in data["targets"]]
        keys = {key for key, _ in out}
    except (TypeError, ValueError):
        return None
    if not keys <= set(schemes) or not all(type(path) is str for _, path in out):
        return None
    return out


def _relative(path: str) -> bool:
    parts = path.replace("\\", "/").split("/")
    return bool(path) and not os.path.isabs(path) and ".." not in parts and ":" not in parts[0]


def save_targets(cache: Cache, tree: Tree, targets: list[tuple[str, str]]) -> None:
    """Seal the plan for the next sync; never one with a path that is not relative without
    `..` (`load_targets` trusts what is sealed: the install's checks refuse such a path)."""
    from lockenv.cache import write_atomic

    if not all(_relative(path) for _, path in targets):
        return
    sealed = cache.seal(json.dumps({"tree": tree.sha256, "targets": [list(t) for t in targets]},
                                   separators=(",", ":")).encode())
    if sealed is None:
        return  # no key to seal it with: planned on every sync
    try:
        write_atomic(targets_path(cache, tree), sealed)
    except OSError:
        return  # only a cache: the next sync plans again
    hand_over("targets", targets_path(cache, tree), [(key, path) for key, path in targets])


def write_op(target: str, data: bytes, *, executable: bool, script: bool) -> dict[str, Any]:
    return {"op": "write", "target": target, "data": base64.b64encode(data).decode("ascii"),
            "exec": executable, "script": script}


def link_op(target: str, member: str) -> dict[str, Any]:
    return {"op": "link", "target": target, "member": member}


def normal_under(root: str, rel: str) -> bool:
    """Whether `root + rel` is what os.path.abspath makes of it, for `root` absolute, normalised
    and ending with a separator: tested on `rel` alone without the call for the usual path (no
    component starting with a dot, no empty one, no trailing separator); any other takes the
    exact test. (The venv's own directory is `.venv`: only what follows the root is looked at.)"""
    sep = os.sep
    if rel and not rel.startswith((".", sep)) and sep + "." not in rel and sep + sep not in rel \
            and not rel.endswith(sep) and (sep == "/" or "/" not in rel):
        return True
    return os.path.abspath(root + rel) == root + rel


def all_normal(paths: list[str]) -> bool:
    """Whether `normal_under`'s quick test (no component starting with a dot, no empty one, no
    leading or trailing separator) holds for every one of `paths`, tested by a few scans of
    them joined by NULs instead of path by path. A NUL inside a path can only make it fail."""
    if os.sep != "/":
        return False
    joined = "\0" + "\0".join(paths) + "\0"
    return not ("\0." in joined or "\0/" in joined or "/." in joined or "//" in joined
                or "/\0" in joined or "\0\0" in joined)


def check(ops: list[dict[str, Any]], tree: Tree,
           planned: Collection[str]) -> tuple[list[tuple[Member, str]], list[dict[str, Any]]]:
    """The record's links as (tree entry, target) and its writes, in order; BadRecord when the
    record's `ops` do not fit: a target that is not one of the install's `planned` targets
    (absolute, normalised, checked inside the venv and written to the journal before the
    install), a link from what is not a member of the tree, an unknown operation."""
    entries = {e["path"]: e for e in tree.entries}
    links: list[tuple[Member, str]] = []
    writes: list[dict[str, Any]] = []
    targets: list[Any] = []
    for op in ops:
        target = op.get("target")
        targets.append(target)
        kind = op.get("op")
        if kind == "link":
            member = op.get("member")
            entry = entries.get(member) if isinstance(member, str) else None
            if entry is None:
                raise BadRecord(f"not a member of the tree: {op.get('member')!r}")
            links.append((entry, target))  # type: ignore[arg-type]
        elif kind != "write" or not isinstance(op.get("data"), (str, bytes)):
            raise BadRecord(f"unknown operation {kind!r}")
        else:
            writes.append(op)
    try:
        outside = set(targets).difference(planned)
    except TypeError:  # a target that is not a string (a list...)
        raise BadRecord("a target that is not a path") from None
    if outside:
        raise BadRecord(f"targets not planned for the install: {sorted(map(repr, outside))[:3]}")
    return links, writes


def relocated(record: dict[str, Any], scheme: Mapping[str, str], python: str) -> list[dict[str, Any]]:
    """The record's operations for the venv `scheme` is in: as recorded in the same venv path;
    moved to the new root otherwise (written data as bytes, each `#!<old root>...` first line
    rewritten and RECORD's rows for those files to match). BadRecord when the record cannot be
    moved exactly (see the module docstring)."""
    old, new = record["root"], scheme["data"]
    if old == new:
        return record["ops"]
    rel_python = _relative_to(python, new)
    if os.name != "posix" or not rel_python.startswith(VENV + os.sep):
        raise BadRecord("recorded in another venv path")
    old_python = old + rel_python[len(VENV):]
    if not (simple_shebang(old_python) and simple_shebang(python)):
        raise BadRecord("the scripts' first line differs in form between the two venv paths")
    old_root, old_line = old.encode(), f"#!{old_python}\n".encode()
    new_line = f"#!{python}\n".encode()
    ops: list[dict[str, Any]] = []
    rewritten: dict[str, tuple[bytes, bytes]] = {}
    for op in record["ops"]:
        target = op.get("target")
        if not isinstance(target, str) or not target.startswith(old + os.sep):
            raise BadRecord(f"target outside the recorded venv: {target!r}")
        op = {**op, "target": new + target[len(old):]}
        if op.get("op") == "write" and isinstance(op.get("data"), str):
            data = base64.b64decode(op["data"])
            if data.startswith(old_line):
                op["data"] = new_line + data[len(old_line):]
                rewritten[op["target"]] = (data, op["data"])
                data = data[len(old_line):]
            else:
                op["data"] = data
            if old_root in data:
                raise BadRecord(f"{target} holds the recorded venv's path")
        ops.append(op)
    if rewritten:
        _fix_record_rows(ops, rewritten)
    return ops


def _fix_record_rows(ops: list[dict[str, Any]], rewritten: dict[str, tuple[bytes, bytes]]) -> None:
    """RECORD's row of each rewritten file, with the sha256 and size of its new bytes."""
    records = [op for op in ops if op.get("op") == "write"
               and op["target"].endswith(".dist-info" + os.sep + "RECORD")]
    if len(records) != 1:
        raise BadRecord("no single RECORD among the written files")
    try:
        records[0]["data"] = fixed_record(records[0]["target"], records[0]["data"], rewritten)
    except ValueError as exc:
        raise BadRecord(str(exc)) from None


def replay(record: dict[str, Any], tree: Tree, scheme: Mapping[str, str], python: str, *,
           planned: Collection[str], link: bool,
           made: set[str] | None = None) -> tuple[list[tuple[Member, str]], list[dict[str, Any]]]:
    """Write what the recorded install wrote (moved to this venv's path, see `relocated`).
    Files are hard-linked from the tree (copied when `link` is False or linking fails); written
    files get the modes installer gives them. Everything is checked before the first write
    (every target one of `planned`, the install's targets: a set, for speed).
    The install's directories are made first, each once (`made`: the directories a sync's
    installs made or found, shared by them), then the links, then the written files (RECORD,
    scripts...): an interrupted install is undone by the journal, whatever the order. Returns
    what it did: the links (tree entry, target) and the writes (for the sync's sealed plan)."""
    if record.get("tree") != tree.sha256:
        raise BadRecord("another tree")
    ops = relocated(record, scheme, python)
    links, writes = check(ops, tree, planned)
    linker = Linker(tree, link=link, made=made)
    linker.make_parents((op["target"] for op in ops),
                        roots={os.path.abspath(d) for d in scheme.values()})
    linker.place_all(links)
    for op in writes:
        data = op["data"] if isinstance(op["data"], bytes) else base64.b64decode(op["data"])
        write_replacing(op["target"], data, executable=bool(op.get("exec")), script=bool(op.get("script")))
    return links, writes

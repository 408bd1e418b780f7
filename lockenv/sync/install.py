"""Putting wheels into a venv with `installer`, and taking distributions out by RECORD.

Wheels are validated whole (every RECORD hash, every path) before anything is written: that
happens once, when a wheel is unpacked into the cache (`unpacked`); installs link from there.
Removal is transactional: files are moved aside into a stash inside the venv and only deleted
on commit; a rollback moves them back (PDM's StashedRemovePaths).
"""

from __future__ import annotations

import json
import os
import posixpath
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lockenv.errors import IntegrityError, SyncError
from lockenv.sync.scan import LOCKENV_SOURCE, read_record
from lockenv.sync.unpacked import (
    Tree,
    TreeChanged,
    TreeSource,
    tree_destination,
    unpack,
)

if TYPE_CHECKING:
    from lockenv.cache import Cache

INSTALLER_NAME = b"lockenv\n"


@dataclass(frozen=True)
class WheelInfo:
    """A validated wheel, unpacked in the cache, and the files its install will write."""

    path: Path
    name: str
    tree: Tree
    targets: tuple[str, ...]
    """Absolute paths the install writes (files, incl. dist-info and console scripts)."""


def scheme_for(paths: Mapping[str, str], version: str, name: str) -> dict[str, str]:
    """installer's scheme dict for a venv: headers go where pip puts them."""
    prefix = Path(paths["data"])
    minor = ".".join(version.split(".")[:2])
    return {
        "purelib": paths["purelib"],
        "platlib": paths["platlib"],
        "scripts": paths["scripts"],
        "data": paths["data"],
        "headers": str(prefix / "include" / "site" / f"python{minor}" / name),
    }


def validate_wheel(path: Path, *, name: str, scheme: Mapping[str, str], venv: Path, cache: Cache,
                   sha256: str | None = None) -> WheelInfo:
    """Refuse a wheel with an unsafe path or a RECORD that does not match its contents (checked
    once, while unpacking it into the cache); return the files its install will write."""
    if sha256 is None:
        from lockenv.cache import file_sha256

        sha256 = file_sha256(path)
    tree = unpack(path, sha256, name=name, cache=cache)
    targets = _targets(tree, scheme)
    # Members with `..` or absolute paths were refused when unpacking, so the scheme
    # directories decide where files land: check those (and each target, cheaply).
    root = os.path.abspath(venv)
    for target in targets:
        if not os.path.abspath(target).startswith(root + os.sep):
            raise IntegrityError(
                f"{path.name} would write `{target}`, outside the venv; refused",
                context={"package": name},
            )
    return WheelInfo(path=path, name=name, tree=tree, targets=tuple(targets))


def _targets(tree: Tree, scheme: Mapping[str, str]) -> list[str]:
    """Where each member of the wheel lands (mirrors installer's scheme logic)."""
    purelib = "root-is-purelib: true" in tree.read_dist_info("WHEEL").lower()
    root = scheme["purelib"] if purelib else scheme["platlib"]
    out = []
    for entry in tree.entries:
        member = entry["path"]
        if member.startswith(tree.data_dir + "/"):
            key, _, sub = member[len(tree.data_dir) + 1:].partition("/")
            base = scheme.get(key)
            if base is None:
                raise IntegrityError(f"{tree.wheel_name} has data for an unknown scheme `{key}`")
            out.append(os.path.join(base, *sub.split("/")))
        else:
            out.append(os.path.join(root, *member.split("/")))
    try:
        eps = tree.read_dist_info("entry_points.txt")
    except OSError:
        eps = ""
    section = None
    for line in eps.splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line.strip("[]").strip()
        elif "=" in line and section in ("console_scripts", "gui_scripts"):
            out.append(os.path.join(scheme["scripts"], line.split("=", 1)[0].strip()))
    for extra in ("INSTALLER", LOCKENV_SOURCE, "direct_url.json", "RECORD"):
        out.append(os.path.join(root, tree.dist_info_dir, extra))
    return sorted(set(out))


def install_wheel(info: WheelInfo, *, scheme: Mapping[str, str], python: str, cache: Cache,
                  source_sha256: str | None, source_name: str | None,
                  direct_url: Mapping[str, object] | None = None) -> None:
    """Install a validated wheel from its unpacked tree (hard links, or copies) with installer.
    INSTALLER says lockenv; `lockenv.json` records the archive the lock named, to notice a
    different archive of the same version later. An install done before with the same
    inputs is replayed from its record instead (see `replay`)."""
    metadata = {"INSTALLER": INSTALLER_NAME}
    if source_sha256:
        metadata[LOCKENV_SOURCE] = json.dumps(
            {"sha256": source_sha256, "filename": source_name}, sort_keys=True).encode() + b"\n"
    if direct_url is not None:
        metadata["direct_url.json"] = json.dumps(direct_url, sort_keys=True).encode()
    from lockenv.sync import replay

    tree = info.tree
    key = replay.record_key(tree, scheme, python, metadata)
    for attempt in (0, 1):
        try:
            record = replay.load(cache, key)
            if record is not None:
                try:
                    replay.replay(record, tree, scheme,
                                  link=os.environ.get("LOCKENV_LINK_MODE", "hardlink") != "copy")
                    return
                except replay.BadRecord:
                    pass  # checked before any write: installer records it afresh
            from installer import install

            ops: list[dict[str, object]] = []
            install(TreeSource(tree), tree_destination(tree, scheme, python, ops),
                    additional_metadata=metadata)
            replay.save(cache, key, tree, ops)
            return
        except TreeChanged:
            if attempt:
                raise
            tree = unpack(info.path, tree.sha256, name=info.name, cache=cache, discard=True)


# -- removal ----------------------------------------------------------------------------------
class Stash:
    """Paths moved aside (renamed into a directory inside the venv), deleted on commit, put
    back on rollback."""

    def __init__(self, venv: Path) -> None:
        self.root = venv / f".lockenv-stash-{os.getpid()}"
        self.moved: list[tuple[str, str]] = []

    def move(self, path: str) -> None:
        self.root.mkdir(exist_ok=True)
        target = str(self.root / str(len(self.moved)))
        os.rename(path, target)
        self.moved.append((path, target))

    def commit(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
        self.moved.clear()

    def rollback(self) -> None:
        for original, target in reversed(self.moved):
            os.makedirs(os.path.dirname(original), exist_ok=True)
            if os.path.lexists(original):
                _delete(original)
            os.rename(target, original)
        self.moved.clear()
        shutil.rmtree(self.root, ignore_errors=True)


def _delete(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root + os.sep)


def remove_distribution(dist_info: Path, *, venv: Path, stash: Stash, keep_dirs: Iterable[str],
                        warn: object = None) -> int:
    """Move a distribution's files (by RECORD), their `__pycache__` entries and the dist-info
    directory into `stash`, then remove directories left empty. Entries resolving outside
    the venv are skipped with a warning. Returns the number of paths removed."""
    root = os.path.realpath(venv)
    site = str(dist_info.parent)
    entries = read_record(dist_info) or []
    parents: set[str] = set()
    count = 0
    dist_info_real = os.path.realpath(dist_info)
    for entry in entries:
        path = os.path.normpath(os.path.join(site, *entry.path.split("/")))
        real = os.path.realpath(path)
        if not _within(real, root):
            if warn is not None:
                warn(f"{dist_info.name}: RECORD entry `{entry.path}` is outside the venv; left alone")  # type: ignore[operator]
            continue
        if _within(real, dist_info_real):
            continue  # the dist-info directory goes as a whole below
        if os.path.lexists(path):
            stash.move(path)
            count += 1
        parents.add(os.path.dirname(path))
        if path.endswith(".py"):
            cache_dir = os.path.join(os.path.dirname(path), "__pycache__")
            stem = posixpath.basename(path)[:-3] + "."
            try:
                cached = [n for n in os.listdir(cache_dir) if n.startswith(stem) and n.endswith(".pyc")]
            except OSError:
                cached = []
            for name in cached:
                stash.move(os.path.join(cache_dir, name))
            if cached:
                parents.add(cache_dir)
    if dist_info.exists():
        stash.move(str(dist_info))
        count += 1
    _remove_empty_dirs(parents, stop=_stops(venv, keep_dirs, site))
    return count


def _stops(venv: Path, keep_dirs: Iterable[str], *more: str) -> set[str]:
    """Directories empty-directory cleanup never removes nor goes above: the venv and its
    scheme directories (site-packages, bin, include…)."""
    stops = {os.path.normpath(venv), *(os.path.normpath(d) for d in keep_dirs)}
    stops.update(os.path.normpath(m) for m in more)
    return stops


def _remove_empty_dirs(dirs: Iterable[str], stop: set[str]) -> None:
    """Remove directories left empty (deepest first), also emptying their `__pycache__`-only
    leftovers, never going above `stop`."""
    candidates: set[str] = set()
    for d in dirs:
        d = os.path.normpath(d)
        while d not in stop and any(_within(d, s) for s in stop):
            candidates.add(d)
            d = os.path.dirname(d)
    for d in sorted(candidates, key=len, reverse=True):
        try:
            names = os.listdir(d)
        except OSError:
            continue
        if names == ["__pycache__"]:
            try:
                if not os.listdir(os.path.join(d, "__pycache__")):
                    os.rmdir(os.path.join(d, "__pycache__"))
            except OSError:
                continue
        try:
            os.rmdir(d)
        except OSError:
            pass


def delete_paths(paths: Iterable[str], *, venv: Path, keep_dirs: Iterable[str]) -> None:
    """Delete files an interrupted install may have left (used by repair), inside the venv only."""
    root = os.path.realpath(venv)
    parents = set()
    for path in paths:
        if not _within(os.path.realpath(path), root):
            continue
        if os.path.lexists(path):
            try:
                _delete(path)
            except OSError as exc:
                raise SyncError(f"could not remove {path} left by an interrupted sync: {exc}") from exc
        parents.add(os.path.dirname(path))
    _remove_empty_dirs(parents, stop=_stops(venv, keep_dirs))

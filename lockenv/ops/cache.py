"""The `cache` use cases: where the cache is, `clean` (all of it, or one package's entries) and
`prune` (what no lock can use any more).

Safety with other lockenv processes: every command that may use the cache holds a *shared* lock
on `locks/in-use.lock` for its lifetime (`hold_in_use`, taken by the CLI); `clean` waits for
the exclusive lock, so it never pulls an entry from under a running sync. `prune` does not wait:
with the exclusive lock it removes everything it may; when another process runs it removes only
what that process cannot be using (old buckets, temporary leftovers untouched for
`STALE_AFTER` seconds, entries whose own lock it can take) and says what it left. An unpacked
tree any of whose files has more than one link is linked from some venv and is kept.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lockenv.cache import Bucket, Cache
from lockenv.errors import CacheError
from lockenv.ops.in_use import IN_USE, Flock as _Flock, hold_in_use, release_in_use

__all__ = ["IN_USE", "hold_in_use", "release_in_use"]  # (moved to ops.in_use; imported here too)

STALE_AFTER = 600.0
"""A temporary file or directory nobody wrote to for this long belongs to a killed process."""
PAGE_KEEP = 7 * 86400.0
"""Index pages older than this are removed by prune (a fresh run refetches them after the TTL;
`--offline` runs may still read them until then)."""


@dataclass(frozen=True)
class CacheOptions:
    names: tuple[str, ...] = ()
    root: Path | None = None


@dataclass(frozen=True)
class Removed:
    bucket: str
    path: str
    bytes: int
    why: str


@dataclass(frozen=True)
class CacheReport:
    root: str
    removed: tuple[Removed, ...]
    kept_busy: int
    """Entries left because another lockenv process may be using them."""
    freed: int
    """Bytes removed."""


# -- dir ----------------------------------------------------------------------------------------


def cache_dir(options: CacheOptions, *, reporter: Any) -> Path:
    return (Cache(options.root).root).absolute()


# -- clean --------------------------------------------------------------------------------------


def clean(options: CacheOptions, *, reporter: Any) -> CacheReport:
    """Remove the whole cache, or every entry of the named packages; waits until no other
    lockenv process uses the cache."""
    cache = Cache(options.root)
    lock = _Flock(cache.root / Bucket.LOCKS.value / IN_USE)
    try:
        if not lock.take(exclusive=True, wait=False):
            reporter.status(f"Waiting for other lockenv processes using {cache.root}")
            lock.take(exclusive=True, wait=True)
        if not options.names:
            removed = [_remove(cache.root / entry.name, entry.name, "clean")
                       for entry in sorted(_children(cache.root), key=lambda p: p.name)
                       if entry.name != Bucket.LOCKS.value]
        else:
            removed = list(_clean_names(cache, options.names))
    finally:
        lock.close()
    done = tuple(r for r in removed if r is not None)
    return CacheReport(str(cache.root), done, 0, sum(r.bytes for r in done))


def _clean_names(cache: Cache, names: Iterable[str]) -> Iterator[Removed | None]:
    from packaging.utils import canonicalize_name

    wanted = {str(canonicalize_name(n)) for n in names}
    root = cache.root
    for page in sorted((root / Bucket.PAGES.value).glob("*/*.msgpack")):
        if page.stem in wanted:
            yield _remove(page, Bucket.PAGES.value, "clean")
    gone_trees: set[str] = set()
    for sha_dir in sorted((root / Bucket.FILES.value).glob("*/*")):
        if any(_dist_name(f.name) in wanted for f in _children(sha_dir)):
            gone_trees.add(sha_dir.name)
            yield _remove(sha_dir, Bucket.FILES.value, "clean")
    for meta in sorted((root / Bucket.METADATA.value).glob("*/*.json")):
        if _json_name(meta) in wanted:
            yield _remove(meta, Bucket.METADATA.value, "clean")
    for tree in sorted((root / Bucket.UNPACKED.value).glob("*/*")):
        if tree.name in gone_trees or _dist_name(str(_manifest(tree).get("wheel", ""))) in wanted:
            gone_trees.add(tree.name)
            yield _remove(tree, Bucket.UNPACKED.value, "clean")
    yield from _orphan_installs(root, gone_trees, everything=False)
    yield from _plans(root, lambda names, trees: bool(wanted & {str(canonicalize_name(n)) for n in names}
                                                      or {Path(t).parent.name for t in trees} & gone_trees),
                      "clean", keep=False)
    for built in sorted((root / Bucket.BUILT_WHEELS.value).glob("*")):
        if any(_dist_name(w.name) in wanted for w in built.glob("*.whl")):
            yield _remove(built, Bucket.BUILT_WHEELS.value, "clean")


# -- prune --------------------------------------------------------------------------------------


def prune(options: CacheOptions, *, reporter: Any) -> CacheReport:
    """Remove what no lock can use any more; never what another process is writing or a venv
    links to."""
    cache = Cache(options.root)
    root = cache.root
    lock = _Flock(root / Bucket.LOCKS.value / IN_USE)
    alone = lock.take(exclusive=True, wait=False)
    busy = 0
    removed: list[Removed | None] = []
    try:
        for entry in sorted(_children(root), key=lambda p: p.name):
            if _retired(entry.name):
                removed.append(_remove(entry, entry.name, "a bucket no lockenv version reads any more"))
        removed += _prune_leftovers(root, alone)
        removed += _prune_pages(root)
        trees, kept = _prune_unpacked(root, alone)
        busy += kept
        removed += trees
        removed += _orphan_installs(root, {r.path.rsplit("/", 1)[-1] for r in trees if r}, everything=True)
        removed += _plans(root, lambda names, trees: not all(os.path.isdir(t) for t in trees),
                          "a tree it links from is gone", keep=True)
        envs, kept = _prune_build_envs(cache, root)
        busy += kept
        removed += envs
        if alone:
            for bucket in (Bucket.PARSED_LOCKS, Bucket.SELECTIONS, Bucket.FRESH_LOCKS, Bucket.PROBE):
                for entry in sorted(_children(root / bucket.value), key=lambda p: p.name):
                    removed.append(_remove(entry, bucket.value, "recomputed when needed"))
        else:
            busy += 1
    finally:
        lock.close()
    done = tuple(r for r in removed if r is not None)
    return CacheReport(str(root), done, busy, sum(r.bytes for r in done))


def _prune_leftovers(root: Path, alone: bool) -> list[Removed | None]:
    """Temporary files and directories of writes that never finished (a killed process): all of
    them when no other process uses the cache, else those untouched for STALE_AFTER seconds."""
    out: list[Removed | None] = []
    now = time.time()
    for bucket in sorted(_children(root), key=lambda p: p.name):
        if bucket.name not in _CURRENT or bucket.name == Bucket.LOCKS.value or not bucket.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(bucket):
            here = Path(dirpath)
            for name in sorted([*dirnames, *filenames]):
                if not _is_temp(name):
                    continue
                path = here / name
                if alone or now - _newest_mtime(path) > STALE_AFTER:
                    out.append(_remove(path, bucket.name, "left by a process that did not finish"))
                if name in dirnames:
                    dirnames.remove(name)
            if bucket.name == Bucket.BUILD_ENVS.value and here == bucket:
                dirnames.clear()  # venvs: nothing of ours inside
            if bucket.name == Bucket.UNPACKED.value and here.parent.parent == bucket:
                dirnames.clear()  # a finished tree's own files are the wheel's, not ours
    return out


_CURRENT = frozenset(b.value for b in Bucket)
_RETIRED = frozenset({"wheels-built-v1"})
"""Buckets older lockenv versions wrote under names no bucket has now."""


def _retired(name: str) -> bool:
    """A bucket only an older lockenv reads: a retired name, or a current bucket's name with a
    lower version (`pages-v2` beside `pages-v4`). Anything else in the cache directory (a newer
    lockenv's `pages-v5`, files that are not lockenv's when the directory is shared) is left
    alone: prune removes only what it knows to be its own."""
    if name in _RETIRED:
        return True
    family, sep, version = name.rpartition("-v")
    if not sep or not version.isdigit():
        return False
    for current in _CURRENT:
        cur_family, cur_sep, cur_version = current.rpartition("-v")
        if cur_sep and cur_family == family and cur_version.isdigit():
            return int(version) < int(cur_version)
    return False


def _is_temp(name: str) -> bool:
    return name.startswith((".unpack-", ".retired-", ".download-", ".build-")) or (name.startswith(".") and name.endswith(".tmp"))


def _prune_pages(root: Path) -> list[Removed | None]:
    now = time.time()
    out: list[Removed | None] = []
    for page in sorted((root / Bucket.PAGES.value).glob("*/*.msgpack")):
        try:
            old = now - page.stat().st_mtime > PAGE_KEEP
        except OSError:
            continue
        if old:
            out.append(_remove(page, Bucket.PAGES.value, "index page not refreshed in a week"))
    return out


def _prune_unpacked(root: Path, alone: bool) -> tuple[list[Removed], int]:
    """Trees no venv links to (every file has one link). Only when no other process runs: a
    sync may be about to link from a tree it just checked."""
    trees = sorted((root / Bucket.UNPACKED.value).glob("*/*"))
    if not alone:
        return [], sum(1 for t in trees if not _linked(t))
    out: list[Removed] = []
    for tree in trees:
        if _is_temp(tree.name) or _linked(tree):
            continue
        done = _remove(tree, Bucket.UNPACKED.value, "not linked from any venv")
        if done is not None:
            out.append(done)
    return out, 0


def _linked(tree: Path) -> bool:
    for dirpath, _dirs, files in os.walk(tree):
        for name in files:
            try:
                if os.lstat(os.path.join(dirpath, name)).st_nlink > 1:
                    return True
            except OSError:
                continue
    return False


def _orphan_installs(root: Path, gone: set[str], everything: bool) -> list[Removed | None]:
    """Install records (and planned targets) of trees that are gone (never used again)."""
    out: list[Removed | None] = []
    unpacked = root / Bucket.UNPACKED.value
    installs = root / Bucket.INSTALLS.value
    for record in sorted([*installs.glob("*/*.json"), *installs.glob("targets/*/*.json")]):
        tree = str(_json(record).get("tree", ""))
        if tree in gone or (everything and tree and not (unpacked / tree[:2] / tree).exists()):
            out.append(_remove(record, Bucket.INSTALLS.value, "its unpacked tree is gone"))
    return out


def _plans(root: Path, drop: Callable[[list[str], list[str]], bool], why: str,
           keep: bool) -> list[Removed | None]:
    """Sealed install plans (`installs-v1/whole/`) for which `drop(names, tree directories)`
    holds, then (`keep`) all but the newest `whole.MAX_PLANS`; then the warm syncs' entries
    (`installs-v1/warm/`, `made/`) that name a plan (an entry) no longer kept (all but the
    newest MAX_ENTRIES when `keep`). A sync reads a plan whole or not at all: removing one under it is safe (it
    installs wheel by wheel)."""
    from lockenv.sync import warm
    from lockenv.sync.install import whole

    bucket = Bucket.INSTALLS.value
    out: list[Removed | None] = []
    for path, names, trees in whole.kept(root):
        if drop(names, trees):
            out.append(_remove(path, bucket, why))
    if keep:
        out += [_removed(path, bucket, f"beyond the newest {whole.MAX_PLANS} plans", size)
                for path, size in _beyond(root / bucket / "whole", whole.MAX_PLANS)]
    cache = Cache(root)
    for kind, named in (("warm", lambda key: whole.plan_path(cache, key)),
                        ("made", lambda key: warm.entry_path(cache, key))):
        for key, entries in sorted(warm.plans_named(root, kind).items()):
            if not key or not named(key).exists():
                out += [_remove(path, bucket, "the entry or plan it names is gone") for path in entries]
        if keep:
            out += [_removed(path, bucket, f"beyond the newest {warm.MAX_ENTRIES} entries", size)
                    for path, size in _beyond(root / bucket / kind, warm.MAX_ENTRIES)]
    return out


def _beyond(root: Path, keep: int) -> list[tuple[Path, int]]:
    """`whole.keep_newest`, with the size of each file it removed."""
    from lockenv.sync.install.whole import keep_newest

    sizes = {p: p.stat().st_size for p in root.glob("*/*") if p.is_file()}
    return [(path, sizes.get(path, 0)) for path in keep_newest(root, keep)]


def _removed(path: Path, bucket: str, why: str, size: int) -> Removed:
    return Removed(bucket, str(path), size, why)


def _prune_build_envs(cache: Cache, root: Path) -> tuple[list[Removed | None], int]:
    """Build environments whose creation never finished, when their own lock is free."""
    out: list[Removed | None] = []
    busy = 0
    for env in sorted(_children(root / Bucket.BUILD_ENVS.value), key=lambda p: p.name):
        if (env / ".lockenv-ready").exists() or not env.is_dir():
            continue
        guard = cache.lock(env)
        try:
            guard.acquire(timeout=0)
        except Exception:
            busy += 1
            continue
        try:
            out.append(_remove(env, Bucket.BUILD_ENVS.value, "its creation never finished"))
        finally:
            guard.release()
    return out, busy


# -- helpers ------------------------------------------------------------------------------------


def _children(path: Path) -> list[Path]:
    try:
        return list(path.iterdir())
    except OSError:
        return []


def _size(path: Path) -> int:
    try:
        st = os.lstat(path)
    except OSError:
        return 0
    if not stat.S_ISDIR(st.st_mode):
        return st.st_size if st.st_nlink <= 1 else 0  # a linked file stays on disk
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            total += _size(Path(dirpath) / name)
    return total


def _newest_mtime(path: Path) -> float:
    try:
        newest = os.lstat(path).st_mtime
    except OSError:
        return 0.0
    if path.is_dir() and not path.is_symlink():
        for dirpath, dirs, files in os.walk(path):
            for name in [*dirs, *files]:
                try:
                    newest = max(newest, os.lstat(os.path.join(dirpath, name)).st_mtime)
                except OSError:
                    continue
    return newest


def _remove(path: Path, bucket: str, why: str) -> Removed | None:
    size = _size(path)
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CacheError(f"cannot remove {path}: {exc.strerror or exc}",
                         hint="check the permissions of the cache directory",
                         context={"file": str(path)}) from None
    return Removed(bucket, str(path), size, why)


def _dist_name(filename: str) -> str | None:
    from lockenv.models import _parse_filename, is_dist_filename

    if not is_dist_filename(filename):
        return None
    return str(_parse_filename(filename)[0])


def _json(path: Path) -> dict[str, Any]:
    from lockenv.cache import SEAL

    try:
        blob = path.read_bytes()
        if blob.startswith(SEAL):  # a sealed entry (replay records): its payload, unverified
            blob = blob[len(SEAL) + 32:]  # (only read to decide what to prune)
        data = json.loads(blob)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _json_name(path: Path) -> str | None:
    from packaging.utils import canonicalize_name

    name = _json(path).get("name")
    return str(canonicalize_name(name)) if isinstance(name, str) else None


def _manifest(tree: Path) -> dict[str, Any]:
    return _json(tree / "manifest.json")

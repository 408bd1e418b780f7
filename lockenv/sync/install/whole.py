"""One sealed install plan per sync: what a whole selection's install into an empty venv did,
kept so the next identical one is a single cache read and a loop of mkdir + stat + link.

A sync into an empty venv installs every wheel of its selection from its unpacked tree: per
wheel it reads the tree's sealed manifest, its sealed planned targets and its sealed replay
record (`replay`), three HMACs and three JSON parses, then links and writes. Once such a sync
has succeeded, `save` keeps exactly what it did, under one key (`key_for`) of everything that
decided it: the wheels (name, version, kind, file name, size, sha256: the lock's selection for
this interpreter), the venv's interpreter and scheme directories (absolute: a plan belongs to
one venv path), lockenv's interpreter, installer's version and this format. A later sync with
the same key into an empty venv (`install`) reads that one entry instead of the 3 x N.

Why the trust is unchanged (F4, F8): the plan is sealed with the user's HMAC key like the
entries it replaces, and holds its own key, so a writer of the shared cache without the key can
neither forge one nor move one to another key. It binds every byte it installs: the written
files (RECORD, INSTALLER, scripts...) are its own sealed bytes, exactly what the per-wheel
install wrote; every linked file is named by its tree (keyed by the wheel's sha256, which the
lock's selection gives) and member, with the size and mtime its tree's sealed manifest gave
it, and is checked (one stat, F8) before it is linked, as the per-wheel install checks it.
Its targets are the ones the per-wheel install checked (inside the venv) and wrote to its
journal. Anything missing, unsealed or mismatched, a tree file found changed, a link refused
(another file system): the plan is not used, or what it placed is undone before the per-wheel
install runs as it always did. The journal is written before the first change, so a killed
replay is repaired by the next sync as a killed per-wheel install is.

Imports only the standard library and what every sync already has: no installer, zipfile,
json or dataclass modules.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import signal
import stat
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lockenv.cache import Bucket
from lockenv.sync.install.fs import installer_version, make_dirs, write_replacing

if TYPE_CHECKING:
    from lockenv.cache import Cache
    from lockenv.environment import Probe
    from lockenv.sync.install.tree import Member, Tree
    from lockenv.sync.plan import SyncPlan

FORMAT = 2
"""Bumped when what a plan holds or means changes: a plan of another format has another key."""

Link = tuple[str, int, int, "str | None"]
"""(member, size, mtime_ns, target): None as the target means the purelib directory + member."""
Stamp = tuple[int, int, int, int]
"""A tree's manifest and seal as the plan was made from them: (size, mtime_ns) of each."""
Wheel = tuple[str, str, list[Link], Stamp, list[str]]
"""(tree directory + separator, purelib directory + separator, links, the tree's Stamp, the
directories its links and writes need, parents first)."""
Write = tuple[str, bytes, bool, bool]
"""(target, bytes, executable, script)."""
Plan = tuple[str, list[str], list[str], list[Wheel], list[Write]]
"""(key, names, the journal's targets other than those linked or written, wheels, writes)."""

WORKERS = max(2, min(4, os.cpu_count() or 2))
"""Threads linking wheels, as `sync.apply.LINK_WORKERS`: mkdir, stat and link release the GIL,
and they are most of a sync into an empty venv (data, one thread: 2,282 mkdirs 0.49 s, 18,114
links 0.23 s, 20,000 stats 0.12 s of 1.2 s, at load 3)."""


class Unusable(Exception):
    """The plan does not fit what is on disk now (a tree file changed, a link refused): what it
    placed is undone and the per-wheel install runs instead."""


def key_for(plan: SyncPlan, installed: Sequence[object], *, probe: Probe) -> str | None:
    """The key of `plan`'s sealed install plan; None when the sync is not one a plan covers:
    anything already installed, anything but wheels from the lock installed from their trees
    (no local file, no build, no project), copies instead of links, or a system whose paths
    are not '/'-separated (the plan joins a tree's directory and a member's path as strings)."""
    if installed or os.environ.get("LOCKENV_LINK_MODE", "hardlink") == "copy" or os.sep != "/":
        return None
    wheels = []
    for action in plan.actions:
        want, file = action.wanted, action.wanted.file if action.wanted else None
        if action.kind != "install" or want is None or file is None or want.local_path \
                or want.is_project or not file.is_wheel or not want.sha256 \
                or want.sha256 != file.sha256 or want.kind not in ("wheel", "sdist", "archive"):
            return None
        wheels.append(repr((want.name, want.version, want.kind, file.filename, file.size, want.sha256)))
    if not wheels:
        return None
    paths = sorted((k, v) for k, v in probe.paths.items() if isinstance(v, str))
    parts = [f"whole-{FORMAT}", installer_version(), os.name, sys.platform, sys.version,
             probe.python, probe.version, repr(paths), *sorted(wheels)]
    return hashlib.sha256("\0".join(parts).encode("utf-8", "surrogateescape")).hexdigest()


def archives_cached(plan: SyncPlan, cache: Cache) -> bool:
    """Whether every wheel `plan` installs is in the cache with its locked size, as fetch
    checks a cached wheel before its sealed tree is used (the plan never reads an archive, as
    a sealed tree's install does not); a missing one is downloaded by the per-wheel path."""
    for action in plan.actions:
        file = action.wanted.file if action.wanted else None
        if file is None or not file.sha256:
            return False
        try:
            st = os.stat(cache.artifact_path(file.sha256, file.filename))
        except OSError:
            return False
        if not stat.S_ISREG(st.st_mode) or file.size not in (None, st.st_size):
            return False
    return True


def plan_path(cache: Cache, key: str) -> Path:
    return cache.root / Bucket.INSTALLS.value / "whole" / key[:2] / key


def load(cache: Cache, key: str) -> Plan | None:
    """The plan kept for `key`, if this user's lockenv sealed it for that key; None otherwise."""
    try:
        fd = os.open(plan_path(cache, key), os.O_RDONLY)
    except OSError:
        return None
    try:
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
    except OSError:
        return None
    finally:
        os.close(fd)
    data = cache.unseal(b"".join(chunks))
    head = key.encode("ascii") + b"\n"
    if data is None or not data.startswith(head):
        return None  # forged, damaged, another user's, or sealed for another key
    try:  # only bytes this user's lockenv sealed for this key (and interpreter) reach marshal
        plan = marshal.loads(memoryview(data)[len(head):])
    except (ValueError, EOFError, TypeError):
        return None
    if not (isinstance(plan, tuple) and len(plan) == 5 and plan[0] == key):
        return None
    return plan


Done = tuple["Tree", list[tuple["Member", str]], list[dict[str, Any]]]


def assemble(key: str, names: Iterable[str], targets: Iterable[str], done: Sequence[Done],
             purelib: str, roots: Iterable[str]) -> Plan:
    """The plan of a sync whose installs did `done` (each: the tree, its links, its writes),
    into the venv whose scheme directories are `roots`; `targets` are its journal's paths."""
    base = os.path.abspath(purelib) + os.sep
    wheels: list[Wheel] = []
    writes: list[Write] = []
    placed: set[str] = set()
    roots = list(roots)
    for tree, links, written in done:
        stamp = _stamp(str(tree.root.parent) + os.sep)
        if stamp is None:
            raise Unusable(f"{tree.root.parent}: no sealed manifest")
        mine: list[str] = []
        rows: list[Link] = []
        for entry, target in links:
            member = entry["path"]
            rows.append((member, entry["size"], entry["mtime"], None if target == base + member else target))
            mine.append(target)
        if links and not _linked(tree.path_of(links[-1][0]["path"]), links[-1][1]):
            raise Unusable(f"{tree.wheel_name} was copied, not linked (another file system)")
        for op in written:
            data = op["data"]
            if not isinstance(data, bytes):
                import base64

                data = base64.b64decode(data)
            writes.append((op["target"], data, bool(op.get("exec")), bool(op.get("script"))))
            mine.append(op["target"])
        # Each wheel makes every directory it needs (a few, like share/, are shared: made by
        # the first, found by the others): wheels are linked in parallel, in any order.
        wheels.append((str(tree.root) + os.sep, base, rows, stamp, _dirs(mine, roots)))
        placed.update(mine)
    extra = list(dict.fromkeys(targets).keys() - placed)
    return (key, sorted(set(names)), sorted(extra), wheels, writes)


def _linked(src: str, target: str) -> bool:
    """Whether `target` is a hard link of `src`. An install that could not link (the cache on
    another file system) copies from then on, so its last file tells: a plan would try to link
    and fall back on every sync."""
    try:
        a, b = os.stat(src), os.stat(target)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def forget(cache: Cache, key: str) -> None:
    """Remove the plan kept for `key` (one this sync found unusable and could not replace)."""
    try:
        os.unlink(plan_path(cache, key))
    except OSError:
        pass


def _stamp(tree_dir: str) -> Stamp | None:
    """(size, mtime_ns) of a tree's manifest and seal (`tree.MANIFEST`, `tree.SEAL`): a tree
    unpacked again, or a manifest rewritten (damaged, forged), has another, and the plan is
    then not used (the per-wheel install reads the manifest, and heals or refuses it)."""
    try:
        manifest, seal = os.stat(tree_dir + "manifest.json"), os.stat(tree_dir + "manifest.seal")
    except OSError:
        return None
    return manifest.st_size, manifest.st_mtime_ns, seal.st_size, seal.st_mtime_ns


def targets_of(plan: Plan) -> list[str]:
    """Every path the plan's install writes or planned (its journal's paths)."""
    out = [t if t is not None else base + m for _, base, links, _, _ in plan[3] for m, _, _, t in links]
    out += [target for target, _, _, _ in plan[4]]
    out += plan[2]
    return out


def _dirs(targets: Iterable[str], roots: Iterable[str]) -> list[str]:
    """The directories of `targets` and those between them and the scheme directories
    (`roots`, which a venv has), sorted: a parent before its children."""
    sep = os.sep
    stop = {os.path.abspath(r) for r in roots}
    dirs = {t[:t.rindex(sep)] or sep for t in targets}
    for d in list(dirs):
        up = d[:d.rindex(sep)] or sep
        while up not in dirs and up not in stop and up != sep:
            dirs.add(up)
            up = up[:up.rindex(sep)] or sep
    return sorted(dirs - stop)


def save(cache: Cache, plan: Plan) -> None:
    """Keep `plan` for the next sync with its key (only a cache: a failed write is dropped)."""
    from lockenv.cache import write_atomic

    key = plan[0]
    sealed = cache.seal(key.encode("ascii") + b"\n" + marshal.dumps(plan))
    if sealed is None:
        return  # no key to seal it with: every sync installs wheel by wheel
    try:
        write_atomic(plan_path(cache, key), sealed)
    except OSError:
        return
    _keep_newest(plan_path(cache, key).parent.parent, MAX_PLANS)


MAX_PLANS = 32
"""Plans kept in a cache, the newest: a plan belongs to one venv path, and a CI runner syncing
into a new directory each time would otherwise add one (0.5-3.5 MB) per run, for ever."""


def _keep_newest(root: Path, keep: int) -> None:
    """Remove all but the `keep` most recently written plans under `root` (after a save, the
    slow path: a listing of the plans' directories). Another process may remove the same ones,
    or be reading one: it has read it whole, or finds none and installs wheel by wheel."""
    found: list[tuple[int, str]] = []
    try:
        with os.scandir(root) as buckets:
            for bucket in buckets:
                with os.scandir(bucket.path) as plans:
                    found += [(p.stat().st_mtime_ns, p.path) for p in plans if p.is_file()]
    except OSError:
        return
    found.sort(reverse=True)
    for _, path in found[keep:]:
        try:
            os.unlink(path)
        except OSError:
            pass


def place(plan: Plan, *, crash_after: int = -1) -> None:
    """Link every wheel of the plan (`_place_wheel`), on WORKERS threads, then write the
    plan's bytes. `crash_after` (tests): one thread, SIGKILL once that many wheels are linked."""
    wheels, writes = plan[3], plan[4]
    if crash_after >= 0 or len(wheels) < 3:
        for i, wheel in enumerate(wheels):
            if i == crash_after:
                os.kill(os.getpid(), signal.SIGKILL)
            _place_wheel(wheel)
    else:
        _in_threads(wheels)
    for target, data, executable, script in writes:
        write_replacing(target, data, executable=executable, script=script)
    if crash_after == len(wheels):
        os.kill(os.getpid(), signal.SIGKILL)


def _in_threads(wheels: Sequence[Wheel]) -> None:
    """`_place_wheel` for each wheel, the most files first, on WORKERS threads (this one too);
    the first error is raised once every thread has stopped."""
    import threading

    todo = sorted(wheels, key=lambda wheel: len(wheel[2]))
    failed: list[BaseException] = []

    def work() -> None:
        while not failed:
            try:
                wheel = todo.pop()  # atomic: the threads share the list
            except IndexError:
                return
            try:
                _place_wheel(wheel)
            except BaseException as exc:  # noqa: BLE001 - raised again by the caller's thread
                failed.append(exc)

    helpers = [threading.Thread(target=work, daemon=True) for _ in range(WORKERS - 1)]
    for helper in helpers:
        helper.start()
    work()
    for helper in helpers:
        helper.join()
    if failed:
        raise failed[0]


def _place_wheel(wheel: Wheel) -> None:
    """Make the wheel's directories, and link each tree file after its F8 check (size, mtime
    and read-only mode as its tree's manifest gave them: Unusable otherwise)."""
    tree, base, links, stamp, dirs = wheel
    if _stamp(tree[:-len("files") - 1]) != stamp:
        raise Unusable(f"{tree}: unpacked again, or its manifest changed")
    for d in dirs:
        make_dirs(d)
    stat_of, link = os.stat, os.link
    for member, size, mtime, target in links:
        src = tree + member
        try:
            st = stat_of(src)
        except OSError:
            raise Unusable(src) from None
        if st.st_size != size or st.st_mtime_ns != mtime or st.st_mode & 0o222:
            raise Unusable(src)  # the per-wheel install unpacks it again and says so
        dest = base + member if target is None else target
        try:
            link(src, dest)
        except FileExistsError:  # put there meanwhile: replaced, as the per-wheel install does
            os.unlink(dest)
            link(src, dest)
        except OSError as exc:  # another file system (copies), or the tree file went
            raise Unusable(str(exc)) from None


def scripts_safe(targets: Iterable[str], scripts: str, venv: Path) -> bool:
    """The per-wheel install's check of its scripts, repeated: none replaces a link in the
    venv's bin/ that points out of the venv (the interpreter's)."""
    prefix = os.path.abspath(scripts) + os.sep
    real_root = os.path.realpath(venv) + os.sep
    for target in targets:
        if target.startswith(prefix) and os.path.islink(target) \
                and not os.path.realpath(target).startswith(real_root):
            return False
    return True


def install(plan: Plan, *, venv: Path, probe: Probe,
            before_changes: Callable[[], None] | None = None,
            warn: Callable[[str, str | None], None] | None = None) -> bool:
    """Install a whole selection from `plan`, transactionally as `apply` installs: journal
    first, whatever is in the way stashed, on any error the new files removed and the stash
    put back. False when the plan did not fit (nothing of it is left: the caller installs
    wheel by wheel); other errors are raised as `apply` raises them."""
    from lockenv.sync import state
    from lockenv.sync.install.remove import Stash, keep_dirs, stash_kept, undo_failed

    names, targets = plan[1], targets_of(plan)
    if not scripts_safe(targets, probe.paths["scripts"], venv):
        return False
    if before_changes is not None:
        before_changes()
    state.clear_state(venv)
    state.write_journal(venv, names, targets, ())
    stash = Stash(venv)
    try:
        stash_kept(targets, stash)
        crash = int(os.environ.get("LOCKENV_TEST_CRASH_AFTER", "-1") or "-1")
        try:
            place(plan, crash_after=crash)
        except (TypeError, ValueError, IndexError) as bad:  # a plan not of this format
            raise Unusable(str(bad)) from None
    except BaseException as exc:
        error = undo_failed(exc, targets, venv=venv, keep=keep_dirs(probe, venv), stash=stash, warn=warn)
        if isinstance(exc, Unusable):
            return False
        if error is exc:
            raise
        raise error from exc
    stash.commit()
    state.clear_journal(venv)
    return True

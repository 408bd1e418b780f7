"""One sealed install plan per sync: what a whole selection's install into an empty venv did,
kept so the next identical one is a single cache read and a loop of mkdir + stat + link.

A sync into an empty venv installs every wheel of its selection from its unpacked tree: per
wheel it reads the tree's sealed manifest, its sealed planned targets and its sealed replay
record (`replay`), three HMACs and three JSON parses, then links and writes. Once such a sync
has succeeded, `save` keeps exactly what it did, under one key (`key_for`) of everything that
decided it: the wheels (name, version, kind, file name, size, sha256: the lock's selection for
this interpreter), the venv's interpreter and scheme directories (relative to the venv's root,
as replay records are), lockenv's interpreter, installer's version and this format. A later
sync with the same key into an empty venv (`install`) reads that one entry instead of the 3 x N.

A plan is venv-relative: its targets are kept relative to the root of the venv it was made
in, so a venv at a new path (a CI runner's fresh checkout, a copy of the project) is served by
the same plan at once. The one place an install writes the venv's path, a console script's
`#!<venv>/bin/python` line, is rewritten for the new root with the script's RECORD row
(sha256, size) to match, exactly as a replay record is moved (`replay.relocated`); a plan
whose written bytes name its venv's path anywhere else is not moved (`movable` is false: the
sync at the new path installs wheel by wheel, and keeps its own plan).

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

from lockenv.cache import Bucket
from lockenv.sync.install.fs import (
    VENV,
    fixed_record,
    installer_version,
    make_dirs,
    relative_to,
    simple_shebang,
    write_replacing,
)

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing: see `lockenv.fastpath`
if TYPE_CHECKING:
    from typing import Any

    from lockenv.cache import Cache
    from lockenv.environment import Probe
    from lockenv.sync.install.tree import Member, Tree
    from lockenv.sync.plan import SyncPlan

FORMAT = 3
"""Bumped when what a plan holds or means changes: a plan of another format has another key."""

Link = tuple[str, int, int, "str | None"]
"""(member, size, mtime_ns, target relative to the venv root): None as the target means the
purelib directory + member."""
Stamp = tuple[int, int, int, int]
"""A tree's manifest and seal as the plan was made from them: (size, mtime_ns) of each."""
Wheel = tuple[str, str, list[Link], Stamp, list[str]]
"""(tree directory + separator, purelib directory + separator relative to the venv root,
links, the tree's Stamp, the directories its links and writes need, relative, parents first)."""
Write = tuple[str, bytes, bool, bool]
"""(target relative to the venv root, bytes, executable, script)."""
Plan = tuple[str, list[str], list[str], list[Wheel], list[Write], str, "list[tuple[int, int]] | None"]
"""(key, names, the journal's targets other than those linked or written (relative), wheels,
writes, the venv root it was made in, and, when it can be moved to another root, the
(script, its RECORD) indexes into writes of each script whose first line names the venv's
interpreter (None: not movable))."""

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
    root = probe.paths["data"]
    paths = sorted((k, relative_to(v, root)) for k, v in probe.paths.items() if isinstance(v, str))
    parts = [f"whole-{FORMAT}", installer_version(), os.name, sys.platform, sys.version,
             relative_to(probe.python, root), probe.version, repr(paths), *sorted(wheels)]
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
    if not (isinstance(plan, tuple) and len(plan) == 7 and plan[0] == key):
        return None
    return plan


Done = tuple["Tree", list[tuple["Member", str]], list[dict[str, "Any"]]]


def assemble(key: str, names: Iterable[str], targets: Iterable[str], done: Sequence[Done],
             paths: Mapping[str, str], python: str) -> Plan:
    """The plan of a sync whose installs did `done` (each: the tree, its links, its writes),
    into the venv whose scheme directories are `paths` and interpreter `python`; `targets` are
    its journal's paths. Every target is kept relative to the venv's root (`paths["data"]`)."""
    root = os.path.abspath(paths["data"])
    base = os.path.abspath(paths["purelib"]) + os.sep
    rel = _relative(root)
    wheels: list[Wheel] = []
    writes: list[Write] = []
    placed: set[str] = set()
    roots = [paths[k] for k in ("purelib", "platlib", "scripts", "data")]
    for tree, links, written in done:
        stamp = _stamp(str(tree.root.parent) + os.sep)
        if stamp is None:
            raise Unusable(f"{tree.root.parent}: no sealed manifest")
        mine: list[str] = []
        rows: list[Link] = []
        for entry, target in links:
            member = entry["path"]
            rows.append((member, entry["size"], entry["mtime"], None if target == base + member else rel(target)))
            mine.append(target)
        if links and not _linked(tree.path_of(links[-1][0]["path"]), links[-1][1]):
            raise Unusable(f"{tree.wheel_name} was copied, not linked (another file system)")
        for op in written:
            data = op["data"]
            if not isinstance(data, bytes):
                import base64

                data = base64.b64decode(data)
            writes.append((rel(op["target"]), data, bool(op.get("exec")), bool(op.get("script"))))
            mine.append(op["target"])
        # Each wheel makes every directory it needs (a few, like share/, are shared: made by
        # the first, found by the others): wheels are linked in parallel, in any order.
        wheels.append((str(tree.root) + os.sep, rel(base[:-1]) + os.sep, rows, stamp,
                       [rel(d) for d in _dirs(mine, roots)]))
        placed.update(mine)
    extra = [rel(t) for t in sorted(dict.fromkeys(targets).keys() - placed)]
    return (key, sorted(set(names)), extra, wheels, writes, root, _movable(writes, root, python))


def _relative(root: str) -> Callable[[str], str]:
    """A target of the venv at `root` as kept in a plan (Unusable for one outside it)."""
    prefix = root + os.sep

    def rel(target: str) -> str:
        if not target.startswith(prefix):
            raise Unusable(f"{target} is outside the venv {root}")
        return target[len(prefix):]
    return rel


def _movable(writes: Sequence[Write], root: str, python: str) -> list[tuple[int, int]] | None:
    """The (script, its RECORD) indexes into `writes` of each script whose first line is
    `#!<python>`, when the plan can be moved to another venv root: the interpreter inside the
    venv, its shebang of the plain form, and no written file naming the root anywhere else (a
    replay record is moved on the same terms). None otherwise."""
    if os.name != "posix" or not relative_to(python, root).startswith(VENV + os.sep) \
            or not simple_shebang(python):
        return None
    line, named = f"#!{python}\n".encode(), root.encode()
    records = _rows_by_path(writes)
    found: list[tuple[int, int]] = []
    for i, (target, data, _, _) in enumerate(writes):
        if data.startswith(line):
            owner = _record_of(target, data, records, writes)
            if owner is None:
                return None
            found.append((i, owner))
            data = data[len(line):]
        if named in data:
            return None
    return found


def _rows_by_path(writes: Sequence[Write]) -> dict[str, dict[bytes, list[int]]]:
    """For each directory holding RECORDs among `writes` (the scheme directory their rows are
    relative to), each row's path and the RECORDs (indexes into `writes`) with such a row: the
    few a script's row can be in. Asking every RECORD of every script was quadratic: 0.16 s
    of the end of a cold sync of data (its scripts against its 106 RECORDs)."""
    rows: dict[str, dict[bytes, list[int]]] = {}
    for i, (target, data, _, _) in enumerate(writes):
        if target.endswith(".dist-info" + os.sep + "RECORD"):
            paths = rows.setdefault(os.path.dirname(os.path.dirname(target)), {})
            for row in data.split(b"\n"):
                owners = paths.setdefault(row.rsplit(b",", 2)[0], [])
                if not owners or owners[-1] != i:
                    owners.append(i)
    return rows


def _record_of(target: str, data: bytes, records: Mapping[str, Mapping[bytes, list[int]]],
               writes: Sequence[Write]) -> int | None:
    """The index of the one RECORD among `writes` with a row for the script `target`
    (`fixed_record` decides, for each RECORD with a row of its path: `_rows_by_path`)."""
    owners = []
    for start, paths in records.items():
        path = os.path.relpath(target, start).replace(os.sep, "/").encode("utf-8")
        for index in paths.get(path, ()):
            try:
                fixed_record(writes[index][0], writes[index][1], {target: (data, data)})
            except ValueError:
                continue
            owners.append(index)
    return owners[0] if len(owners) == 1 else None


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


def targets_of(plan: Plan, root: str) -> list[str]:
    """Every path the plan's install into the venv at `root` writes or planned (its journal's
    paths)."""
    top = root + os.sep
    out = [top + (t if t is not None else base + m) for _, base, links, _, _ in plan[3] for m, _, _, t in links]
    out += [top + target for target, _, _, _ in plan[4]]
    out += [top + target for target in plan[2]]
    return out


def moved(plan: Plan, root: str, python: str) -> list[Write] | None:
    """The plan's writes for the venv at `root` (interpreter `python`): as they are in the venv
    it was made in; else each script's `#!<old interpreter>` line rewritten and its RECORD row
    to match (`replay.relocated`); None when the plan cannot be moved there."""
    old, writes, scripts = plan[5], plan[4], plan[6]
    if old == root:
        return writes
    rel_python = relative_to(python, root)
    if scripts is None or not rel_python.startswith(VENV + os.sep) or not simple_shebang(python):
        return None
    old_line, new_line = f"#!{old}{rel_python[len(VENV):]}\n".encode(), f"#!{python}\n".encode()
    out = list(writes)
    rewritten: dict[int, dict[str, tuple[bytes, bytes]]] = {}
    for script, record in scripts:
        target, data, executable, is_script = writes[script]
        if not data.startswith(old_line):
            return None
        after = new_line + data[len(old_line):]
        out[script] = (target, after, executable, is_script)
        rewritten.setdefault(record, {})[target] = (data, after)
    for record, files in rewritten.items():
        try:
            out[record] = (writes[record][0], fixed_record(writes[record][0], writes[record][1], files),
                           *writes[record][2:])
        except ValueError:
            return None
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


def save(cache: Cache, plan: Plan) -> bool:
    """Keep `plan` for the next sync with its key (only a cache: a failed write is dropped);
    whether it was kept."""
    from lockenv.cache import write_atomic

    key = plan[0]
    sealed = cache.seal(key.encode("ascii") + b"\n" + marshal.dumps(plan))
    if sealed is None:
        return False  # no key to seal it with: every sync installs wheel by wheel
    try:
        write_atomic(plan_path(cache, key), sealed)
    except OSError:
        return False
    keep_newest(plan_path(cache, key).parent.parent, MAX_PLANS)
    return True


MAX_PLANS = 32
"""Plans kept in a cache, the newest: every selection (each lock change, each interpreter) has
its own, and would otherwise add one (0.5-3.5 MB) for ever."""


def kept(root: Path) -> list[tuple[Path, list[str], list[str]]]:
    """Every plan kept in the cache at `root` that this format reads: (its path, the
    distributions it installs, the tree directories it links from). Read without the seal:
    for `cache prune`/`clean` only, which remove plans, never install from them."""
    from lockenv.cache import SEAL

    out = []
    for path in sorted((root / Bucket.INSTALLS.value / "whole").glob("*/*")):
        head = path.name.encode("ascii", "replace") + b"\n"
        try:
            data = path.read_bytes()[len(SEAL) + 32:]
            plan: Any = marshal.loads(data[len(head):]) if data.startswith(head) else None
            names = [str(n) for n in plan[1]]
            trees = [str(wheel[0]) for wheel in plan[3]]
        except (OSError, ValueError, EOFError, TypeError, IndexError):
            continue  # not a plan of this format (another lockenv's): bounded by MAX_PLANS
        out.append((path, names, trees))
    return out


def keep_newest(root: Path, keep: int) -> list[Path]:
    """Remove all but the `keep` most recently written plans (or warm entries) under `root`
    (after a save, the slow path: a listing of the plans' directories); the paths removed.
    Another process may remove the same ones, or be reading one: it has read it whole, or
    finds none and installs wheel by wheel."""
    found: list[tuple[int, str]] = []
    try:
        with os.scandir(root) as buckets:
            for bucket in buckets:
                with os.scandir(bucket.path) as plans:
                    found += [(p.stat().st_mtime_ns, p.path) for p in plans if p.is_file()]
    except OSError:
        return []
    found.sort(reverse=True)
    removed = []
    for _, path in found[keep:]:
        try:
            os.unlink(path)
        except OSError:
            continue
        removed.append(Path(path))
    return removed


def place(plan: Plan, root: str, writes: Sequence[Write], *, crash_after: int = -1,
          walked: dict[str, dict[str, list[Any]]] | None = None, roots: frozenset[str] | None = None) -> None:
    """Link every wheel of the plan (`_place_wheel`) into the venv at `root` and write `writes`
    (the plan's, moved to `root`): in two processes (`_in_two_processes`) or else on WORKERS
    threads, each wheel's writes by the worker that made its directories (`_tasks`), then
    each subtree that wheel alone has is listed for the no-op's shape into `walked` (when
    given, with the venv's `roots`: `_root_dirs`).
    `crash_after` (tests): one thread, every link first, SIGKILL once that many wheels are
    linked."""
    wheels, top = plan[3], root + os.sep
    if crash_after < 0 and len(wheels) >= 3:
        listed = walked is not None and roots is not None
        tasks, after = _tasks(wheels, writes, roots or frozenset(), listed)
        into = walked if walked is not None and listed else {}
        if not _in_two_processes(tasks, root, into):
            _in_threads(tasks, root, into)
    else:
        for i, wheel in enumerate(wheels):
            if i == crash_after:
                os.kill(os.getpid(), signal.SIGKILL)
            _place_wheel(wheel, top)
        after = list(writes)
    _write_all(after, top)
    if crash_after == len(wheels):
        os.kill(os.getpid(), signal.SIGKILL)


def _write_all(writes: Iterable[Write], top: str) -> None:
    for target, data, executable, script in writes:
        write_replacing(top + target, data, executable=executable, script=script)


Task = tuple["Wheel | None", list[Write], list[str]]
"""(a wheel to link, or None; the writes into directories it makes, or into the venv's own
directories; the top directories of the subtrees no other wheel makes, relative)."""


def _root_dirs(root: str, paths: Mapping[str, str]) -> frozenset[str] | None:
    """The venv's scheme directories `paths` (where its wheels' own directories stop:
    site-packages, bin/...) and every directory above them, relative to the venv's `root`;
    None when one of them is reached through a symlink (lib64/ on some systems: a walk from
    the venv's root, which follows none, would not find a subtree listed there as named)."""
    out: set[str] = set()
    for value in paths.values():
        if not isinstance(value, str):
            continue
        path = os.path.abspath(value)
        if os.path.realpath(path) != path:
            return None
        path = relative_to(path, root)
        if not path.startswith(VENV + os.sep):
            continue
        path = path[len(VENV) + 1:]
        while path:
            out.add(path)
            path = path[:path.rfind(os.sep)] if os.sep in path else ""
    return frozenset(out)


def _tasks(wheels: Sequence[Wheel], writes: Sequence[Write], roots: frozenset[str],
           subtrees: bool) -> tuple[list[Task], list[Write]]:
    """The linking threads' tasks, and the writes left for after them. A write goes with the
    wheel that makes its directory (the venv's own directories: a task of their own), so
    writes run beside the links; unless two targets of the plan are one path (one wheel's
    file replaced by another's): then every write is made after every link, in the plan's
    order, as the per-wheel install ordered them. With `subtrees`, each wheel's task names the
    top directories of the subtrees that it alone makes (nothing else is placed below them)."""
    owner: dict[str, int] = {}
    uses: dict[str, int] = {}
    for i, wheel in enumerate(wheels):
        for d in wheel[4]:
            owner.setdefault(d, i)
            uses[d] = uses.get(d, 0) + 1
    tops: list[list[str]] = [[] for _ in wheels]
    if subtrees:
        for i, wheel in enumerate(wheels):
            mine = {d for d in wheel[4] if uses[d] == 1 and d not in roots}
            tops[i] = [d for d in mine if d.rpartition(os.sep)[0] not in mine]
    if _collide(wheels, writes):  # (and no subtree listed before the writes into it)
        return [(wheel, [], []) for wheel in wheels], list(writes)
    own: list[list[Write]] = [[] for _ in wheels]
    free: list[Write] = []
    for write in writes:
        i = owner.get(write[0].rpartition(os.sep)[0], -1)
        (own[i] if i >= 0 else free).append(write)
    tasks: list[Task] = [(wheel, own[i], tops[i]) for i, wheel in enumerate(wheels)]
    return (tasks + [(None, free, [])] if free else tasks), []


def _collide(wheels: Sequence[Wheel], writes: Sequence[Write]) -> bool:
    """Whether a write's target is another write's, or a linked file's."""
    written = {target for target, _, _, _ in writes}
    if len(written) != len(writes):
        return True
    for _, base, links, _, _ in wheels:
        for member, _, _, target in links:
            if (base + member if target is None else target) in written:
                return True
    return False


def _in_two_processes(tasks: Sequence[Task], root: str, walked: dict[str, dict[str, list[Any]]]) -> bool:
    """Each task (`_do_task`), the most files first, shared out between this process and a
    child forked from it (`forks.share`); False when it cannot fork (nothing done: the caller
    uses threads). Errors are raised as a thread's would be (a child that said nothing:
    Unusable, so the per-wheel install runs after the undo).

    A link or stat takes microseconds, so two threads hand the GIL over at every call: on
    tmpfs a warm sync of web placed its plan in 58-74 ms on two threads, 30-46 ms on one, and
    data in 355-392 ms on two threads, 135-144 ms in two processes. Where file creation is
    slow in the kernel (ext4 without a journal, after a large deletion) a second worker pays
    (data: 0.90 s on one thread, 0.62 s on two, the same in two processes). The child keeps
    the venv's lock: a sync killed meanwhile leaves it locked until the child has placed what
    it took, and the next sync then repairs both from the journal."""
    from lockenv.sync.install import forks

    todo = sorted(tasks, key=_files, reverse=True)
    listed: dict[str, dict[str, list[Any]]] = {}
    try:
        forked, theirs = forks.share(len(todo), lambda i: _do_task(todo[i], root, listed),
                                     lambda: listed, known=(Unusable,))
    except forks.Lost as lost:
        raise Unusable(str(lost)) from None
    finally:
        walked.update(listed)  # (this process's, even on an error: the caller clears them)
    if forked:
        walked.update(theirs)
    return forked


def _files(task: Task) -> int:
    return (len(task[0][2]) if task[0] is not None else 0) + len(task[1])


def _in_threads(tasks: Sequence[Task], root: str, walked: dict[str, dict[str, list[Any]]]) -> None:
    """Each task (`_do_task`), the most files first, on WORKERS threads (this one too); the
    first error is raised once every thread has stopped."""
    import threading

    todo = sorted(tasks, key=lambda task: len(task[0][2]) if task[0] is not None else len(task[1]))
    failed: list[BaseException] = []

    def work() -> None:
        while not failed:
            try:
                task = todo.pop()  # atomic: the threads share the list
            except IndexError:
                return
            try:
                _do_task(task, root, walked)
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


def _do_task(task: Task, root: str, walked: dict[str, dict[str, list[Any]]]) -> None:
    """A wheel linked, its writes made, then its own subtrees listed (`state.walk_subtree`: the
    full walk of the no-op's shape after the sync would find them so, as nothing changes them
    any more); a subtree that cannot be listed is left to that walk."""
    wheel, writes, tops = task
    top = root + os.sep
    if wheel is not None:
        _place_wheel(wheel, top)
    _write_all(writes, top)
    if tops:
        from lockenv.sync.state import walk_subtree

        for d in tops:
            try:
                walked[top + d] = walk_subtree(top + d, root)
            except Exception:  # noqa: BLE001 - the full walk lists it, and says what is wrong
                continue


def _place_wheel(wheel: Wheel, top: str) -> None:
    """Make the wheel's directories under `top` (the venv root + separator), and link each tree
    file after its F8 check (size, mtime and read-only mode as its tree's manifest gave them:
    Unusable otherwise)."""
    tree, base, links, stamp, dirs = wheel
    if _stamp(tree[:-len("files") - 1]) != stamp:
        raise Unusable(f"{tree}: unpacked again, or its manifest changed")
    for d in dirs:
        make_dirs(top + d)
    base = top + base
    stat_of, link = os.stat, os.link
    for member, size, mtime, target in links:
        src = tree + member
        try:
            st = stat_of(src)
        except OSError:
            raise Unusable(src) from None
        if st.st_size != size or st.st_mtime_ns != mtime or st.st_mode & 0o222:
            raise Unusable(src)  # the per-wheel install unpacks it again and says so
        dest = base + member if target is None else top + target
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


def _may_be_there(targets: list[str], paths: Mapping[str, str]) -> list[str]:
    """The targets that may be in the way (`remove.stash_kept` looks at each): all but those
    under a site directory found empty, which holds none (the caller holds the venv's lock).
    A plan installs into an empty venv, so that is nearly all of them: data's 18,000 targets
    took 10-14 ms to ask about; ~40 are outside its site directories."""
    empty = set()
    for key in ("purelib", "platlib"):
        directory = os.path.abspath(paths[key])
        try:
            if not os.listdir(directory):
                empty.add(directory + os.sep)
        except OSError:
            continue
    if not empty:
        return targets
    inside = tuple(empty)
    return [target for target in targets if not target.startswith(inside)]


def install(plan: Plan, *, venv: Path, paths: Mapping[str, str], python: str,
            before_changes: Callable[[], None] | None = None,
            warn: Callable[[str, str | None], None] | None = None,
            walked: dict[str, dict[str, list[Any]]] | None = None) -> bool:
    """Install a whole selection from `plan` into `venv` (its interpreter `python`, its scheme
    directories `paths`), transactionally as `apply` installs: journal first, whatever is in
    the way stashed, on any error the new files removed and the stash put back. False when the
    plan did not fit (nothing of it is left: the caller installs wheel by wheel); other errors
    are raised as `apply` raises them. `walked` (given empty): filled with the subtrees of the
    no-op's shape listed as they were finished (`state.write_state`'s)."""
    from lockenv.sync import state
    from lockenv.sync.install.remove import Stash, keep_dirs, stash_kept, undo_failed

    root = os.path.abspath(paths["data"])
    writes = moved(plan, root, python)
    if writes is None:
        return False  # made in another venv path, and not movable
    names, targets = plan[1], targets_of(plan, root)
    if not scripts_safe(targets, paths["scripts"], venv):
        return False
    if before_changes is not None:
        before_changes()
    state.clear_state(venv)
    state.write_journal(venv, names, targets, ())
    stash = Stash(venv)
    try:
        stash_kept(_may_be_there(targets, paths), stash)
        crash = int(os.environ.get("LOCKENV_TEST_CRASH_AFTER", "-1") or "-1")
        try:
            listed = walked is not None and root == str(venv)
            place(plan, root, writes, crash_after=crash, walked=walked if listed else None,
                  roots=_root_dirs(root, paths) if listed else None)
        except (TypeError, ValueError, IndexError) as bad:  # a plan not of this format
            raise Unusable(str(bad)) from None
    except BaseException as exc:
        if walked is not None:
            walked.clear()  # listed before the undo: nothing the caller may keep
        error = undo_failed(exc, targets, venv=venv, keep=keep_dirs(paths, venv), stash=stash, warn=warn)
        if isinstance(exc, Unusable):
            return False
        if error is exc:
            raise
        raise error from exc
    stash.commit()
    state.clear_journal(venv)
    return True

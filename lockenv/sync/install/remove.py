"""Taking distributions out of a venv by RECORD, transactionally: files are moved aside into a
stash inside the venv and only deleted on commit; a rollback moves them back (PDM's
StashedRemovePaths).
"""

from __future__ import annotations

import os
import posixpath
import stat
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from lockenv.errors import LockenvError, SyncError

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing: see `lockenv.fastpath`
if TYPE_CHECKING:
    from collections.abc import Sequence


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
        if self.moved or os.path.lexists(self.root):  # nothing stashed: shutil not even imported
            import shutil

            shutil.rmtree(self.root, ignore_errors=True)
        self.moved.clear()

    def rollback(self) -> None:
        import shutil

        for original, target in reversed(self.moved):
            os.makedirs(os.path.dirname(original), exist_ok=True)
            if os.path.lexists(original):
                _delete(original)
            os.rename(target, original)
        self.moved.clear()
        shutil.rmtree(self.root, ignore_errors=True)


def _delete(path: str) -> None:
    import shutil

    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root + os.sep)


def remove_distribution(dist_info: Path, *, venv: Path, stash: Stash, keep_dirs: Iterable[str],
                        warn: Callable[[str], None] | None = None) -> int:
    """Move a distribution's files (by RECORD), their `__pycache__` entries and the dist-info
    directory into `stash`, then remove directories left empty. Entries resolving outside
    the venv are skipped with a warning. Returns the number of paths removed."""
    from lockenv.sync.scan import read_record  # not on the sealed plan's path (no removals)

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
                warn(f"{dist_info.name}: RECORD entry `{entry.path}` is outside the venv; left alone")
            continue
        if _within(real, dist_info_real):
            continue  # the dist-info directory goes as a whole below
        try:
            is_dir = stat.S_ISDIR(os.lstat(path).st_mode)
        except OSError:
            is_dir = None  # already gone
        if is_dir:  # RECORD lists files; a directory may hold other distributions' files
            if warn is not None:
                warn(f"{dist_info.name}: RECORD entry `{entry.path}` is a directory; left alone")
            continue
        if is_dir is not None:
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


def undo_failed(exc: BaseException, targets: Iterable[str], *, venv: Path, keep: Iterable[str],
                stash: Stash, warn: Callable[[str, str | None], None] | None) -> BaseException:
    """After an install into `venv` failed with `exc`: its new files removed, the stash put
    back, the journal cleared, and the error to raise (`exc` itself when it is the user's
    kind of error or not an Exception, else a SyncError saying the venv was left as it was).
    When undoing fails too, `exc` is raised here and the journal stays: the next sync repairs."""
    from lockenv.sync import state

    try:
        delete_paths(targets, venv=venv, keep_dirs=keep)
        stash.rollback()
    except Exception as rollback_exc:
        if warn is not None:
            warn(f"could not undo the partial sync: {rollback_exc}",
                 "run `lockenv sync` again to repair the environment")
        raise exc from None
    state.clear_journal(venv)
    if isinstance(exc, Exception) and not isinstance(exc, LockenvError):
        return SyncError(f"installing into {venv} failed: {exc}; the environment was left as it was")
    return exc


def keep_dirs(paths: Mapping[str, str], venv: Path) -> list[str]:
    """The venv's own directories (its interpreter's scheme `paths`), never removed when emptied."""
    return [paths["purelib"], paths["platlib"], paths["scripts"], paths["include"],
            str(Path(paths["purelib"]).parent), str(venv / "lib"), str(venv / "include")]


def stash_kept(targets: Sequence[str], stash: Stash) -> None:
    """Move aside what the install is about to replace that is still there after the removals:
    a kept distribution's file (a shared namespace `__init__.py`, a script of the same name).
    A rollback then restores it instead of deleting it (the install writes a new file either
    way). Directories that do not exist are not looked into, nor asked about below the first
    one missing: a fresh data venv asked 1,781 missing directories, now the ~250 at the top."""
    known: dict[str, bool] = {}

    def is_dir(path: str) -> bool:
        found = known.get(path)
        if found is None:
            up = os.path.dirname(path)
            found = (up == path or is_dir(up)) and os.path.isdir(path)
            known[path] = found
        return found

    sep = os.sep
    by_parent: dict[str, list[str]] = {}
    for target in targets:  # absolute and normalised: the parent precedes the last separator
        by_parent.setdefault(target[:target.rindex(sep)] or sep, []).append(target)
    for parent, inside in by_parent.items():
        if is_dir(parent):
            for target in inside:
                if os.path.lexists(target):
                    stash.move(target)

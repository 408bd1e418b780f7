"""The `add` and `remove` use cases: edit pyproject.toml (through `manifest_edit`), lock, sync.

All or nothing: when the lock or the sync fails (unknown package, no solution, the index down,
Ctrl-C, SIGTERM), pyproject.toml and pylock.toml get their exact bytes back and the venv is put
back as it was (a sync changes nothing before every file is fetched and verified; if it got
further, the old lock is synced again; a venv this command created is removed).
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from lockenv.errors import LockenvError, ManifestError
from lockenv.project import LOCK_NAME, PYPROJECT, venv_path
from lockenv.ui import Reporter


@dataclass(frozen=True)
class EditOptions:
    project: Path
    items: tuple[str, ...]
    """`add`: requirements (PEP 508); `remove`: package names."""
    group: str | None = None
    optional: str | None = None
    no_sync: bool = False
    frozen: bool = False
    """`add` only: edit pyproject.toml, neither lock nor sync."""
    offline: bool = False


def _target(options: EditOptions) -> Any:
    from lockenv.manifest_edit import Target

    if options.group and options.optional:
        raise ManifestError("--group and --optional name two different lists; pass one of them",
                            hint="--group NAME edits [dependency-groups], --optional EXTRA "
                                 "edits [project.optional-dependencies]")
    if options.group:
        return Target("group", options.group)
    if options.optional:
        return Target("extra", options.optional)
    return Target()


def _read_manifest(project: Path) -> tuple[Path, bytes]:
    path = project / PYPROJECT
    try:
        return path, path.read_bytes()
    except FileNotFoundError:
        raise ManifestError(f"no {PYPROJECT} in {project}", context={"file": str(path)},
                            hint="run `lockenv init` first, or point at the project with "
                                 "--project DIR") from None


def add(options: EditOptions, *, reporter: Reporter) -> int:
    """Add requirements to one list of pyproject.toml, then lock and sync (all or nothing)."""
    from lockenv.manifest_edit import add_requirements, bare_names, listed, parse_requirement

    target = _target(options)
    requirements = [parse_requirement(text) for text in options.items]
    path, original = _read_manifest(options.project)
    before = listed(original.decode("utf-8"), target, path)
    edited = add_requirements(original.decode("utf-8"), requirements, target, path)
    if options.frozen:
        _write(path, edited)
        reporter.status(f"{_added(requirements, before, target)} (--frozen: not locked)")
        return 0
    with _Transaction(options.project, path, original, reporter, offline=options.offline) as tx:
        _write(path, edited)
        _lock(options, reporter)
        bounded = _lower_bounds(options.project, requirements, bare_names(requirements))
        if bounded:  # the same pins again, only the recorded requirement changes: said once
            from lockenv.ui import NullReporter

            _write(path, add_requirements(edited, bounded, target, path))
            _lock(options, NullReporter())
        if not options.no_sync:
            tx.syncing()
            _sync(options, target, reporter)
    by_name = {b.name: b for b in bounded}
    reporter.status(_added([by_name.get(r.name, r) for r in requirements], before, target))
    return 0


def remove(options: EditOptions, *, reporter: Reporter) -> int:
    """Remove every requirement on these names from one list, then lock and sync."""
    from lockenv.manifest_edit import remove_requirements

    target = _target(options)
    path, original = _read_manifest(options.project)
    edited = remove_requirements(original.decode("utf-8"), list(options.items), target, path)
    with _Transaction(options.project, path, original, reporter, offline=options.offline) as tx:
        _write(path, edited)
        _lock(options, reporter)
        if not options.no_sync:
            tx.syncing()
            _sync(options, None, reporter)
    reporter.status(f"Removed {', '.join(f'`{n}`' for n in options.items)} from {target}")
    return 0


def _names(requirements: list[Any]) -> str:
    return ", ".join(f"`{r}`" for r in requirements)


def _added(requirements: list[Any], before: dict[str, str], target: Any) -> str:
    """What `add` did to each requirement, against what the list held before: added, updated
    (saying what it was) or already there as written."""
    from packaging.utils import canonicalize_name

    added, updated, same = [], [], []
    for req in requirements:
        old = before.get(canonicalize_name(req.name))
        if old is None:
            added.append(req)
        elif old == str(req):
            same.append(req)
        else:
            updated.append(f"`{req}` (was `{old}`)")
    parts = [f"Added {_names(added)} to {target}"] if added else []
    if updated:
        parts.append(f"{'updated' if parts else 'Updated'} {', '.join(updated)}"
                     + ("" if added else f" in {target}"))
    if same:
        parts.append(f"{_names(same)} {'was' if len(same) == 1 else 'were'} already "
                     + ("there" if parts else f"in {target}"))
    return "; ".join(parts)


def _write(path: Path, text: str) -> None:
    write_file(path, text.encode("utf-8"))


def write_file(path: Path, data: bytes) -> None:
    """Atomically, keeping the file's permissions (project.write_project_file)."""
    from lockenv.project import write_project_file

    write_project_file(path, data)


def _lock(options: EditOptions, reporter: Reporter) -> None:
    from lockenv.ops.lock import LockOptions, lock

    lock(LockOptions(project=options.project, offline=options.offline), reporter=reporter)


def _sync(options: EditOptions, target: Any, reporter: Reporter) -> None:
    from lockenv.ops.sync import SyncOptions, sync

    groups = (target.name,) if target is not None and target.kind == "group" else ()
    extras = (target.name,) if target is not None and target.kind == "extra" else ()
    sync(SyncOptions(project=options.project, groups=groups, extras=extras,
                     offline=options.offline), reporter=reporter)


def _lower_bounds(project: Path, requirements: list[Any], bare: list[str]) -> list[Any]:
    """The bare requirements with `>=` the version the lock chose (the lowest, when the lock
    forks by platform or Python)."""
    from packaging.utils import canonicalize_name
    from packaging.version import Version

    from lockenv import lockfile
    from lockenv.manifest_edit import with_lower_bound

    if not bare:
        return []
    pins = lockfile.read_pins(project / LOCK_NAME)
    out = []
    for req in requirements:
        versions = [v for v, _ in pins.get(canonicalize_name(req.name), [])]
        if req.name in bare and versions:
            out.append(with_lower_bound(req, str(min(versions, key=Version))))
    return out


class _Transaction:
    """Restores pyproject.toml, pylock.toml and the venv when the block fails in any way
    (SIGTERM included: it is turned into an exception while the block runs)."""

    def __init__(self, project: Path, manifest: Path, original: bytes, reporter: Reporter,
                 *, offline: bool) -> None:
        self.project, self.manifest, self.original = project, manifest, original
        self.reporter, self.offline = reporter, offline
        self.lock_path = project / LOCK_NAME
        self.lock_bytes = self.lock_path.read_bytes() if self.lock_path.exists() else None
        self.venv = venv_path(project)
        self.venv_existed = self.venv.exists()
        self.venv_was_fresh = False
        """The venv matched the lock before (so a changed one can be synced back to it)."""
        self.synced = False
        self._old_term: Any = None

    def syncing(self) -> None:
        """Called before the sync: from here on the venv may change."""
        self.synced = True

    def __enter__(self) -> _Transaction:
        from lockenv.ops.sync import is_noop

        self.venv_was_fresh = self.venv_existed and is_noop(self.project)  # before any edit
        try:
            self._old_term = signal.signal(signal.SIGTERM, _raise_interrupt)
        except ValueError:  # not the main thread: no handler, the rest still holds
            self._old_term = None
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            if exc is not None:
                restored = "nothing was changed: " + self._restore()
                if isinstance(exc, LockenvError):  # said with the error, after its message
                    raise exc.with_note(restored) from None
                self.reporter.warn(restored)
        finally:
            if self._old_term is not None:
                signal.signal(signal.SIGTERM, self._old_term)

    def _restore(self) -> str:
        write_file(self.manifest, self.original)
        if self.lock_bytes is None:
            self.lock_path.unlink(missing_ok=True)
        elif not self.lock_path.exists() or self.lock_path.read_bytes() != self.lock_bytes:
            write_file(self.lock_path, self.lock_bytes)
        restored = f"{PYPROJECT} and {LOCK_NAME} are as they were"
        if self.synced:
            restored += self._restore_venv()
        return restored

    def _restore_venv(self) -> str:
        import shutil

        from lockenv.ops.sync import SyncOptions, is_noop, sync

        if not self.venv_existed:
            if self.venv.exists():
                shutil.rmtree(self.venv, ignore_errors=True)
            return f"; {self.venv.name} was not created"
        if not self.venv_was_fresh:  # it did not match the old lock either: nothing to put back
            return ""
        if is_noop(self.project):
            return f"; {self.venv.name} is untouched"
        try:
            sync(SyncOptions(project=self.project, offline=self.offline), reporter=self.reporter)
        except Exception as exc:  # report the first failure; say the venv needs a sync
            return f"; {self.venv.name} could not be put back ({exc}): run `lockenv sync`"
        return f"; {self.venv.name} was synced back to the old lock"


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt

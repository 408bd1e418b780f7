"""What a lock selects for one venv: groups and extras from the options, `Pylock.select()` with
the venv's complete markers and tags, and the `--only-group` restriction.

`--only-group` is implemented by reachability, because a package's marker cannot say whether the
main dependencies need it too: select with only those groups, then keep the packages reachable
from the groups' requirements (recorded under `[tool.lockenv]`) and from the packages only those
groups select, following each package's `dependencies` in the lock.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from lockenv.cache import Bucket
from lockenv.errors import LockfileError, SyncError
from lockenv.distfiles import DistFile, is_sha256

if TYPE_CHECKING:
    from packaging.pylock import Pylock

    from lockenv.cache import Cache

PARSED_LOCKS = Bucket.PARSED_LOCKS.value
"""The cache bucket of parsed locks (`lockfile.read.load_cached`)."""


def load_lock(path: Path, cache: Cache | None, *, data: bytes | None = None) -> Pylock:
    """`lockfile.read.load_cached` (moved; callers import it here), imported when a lock is
    parsed: a warm sync whose selection is cached never loads the lockfile package."""
    from lockenv.lockfile.read import load_cached

    return load_cached(path, cache, data=data)


@dataclass(frozen=True)
class Wanted:
    """One distribution the lock selects for the venv."""

    name: str
    """Normalised name."""
    version: str | None
    kind: str
    """'wheel', 'sdist', 'archive', 'directory' or 'vcs'."""
    file: DistFile | None = None
    """The file to fetch (wheel, sdist, archive with a URL)."""
    local_path: str | None = None
    """Absolute path of a local file (`path` in the lock) or of a directory entry."""
    editable: bool = False
    sha256: str | None = None
    """The sha256 of the selected file; recorded in the installed dist-info to notice a changed
    archive of the same version."""
    is_project: bool = False
    """The project itself (installed editable, after its dependencies)."""

    @property
    def label(self) -> str:
        version = f"=={self.version}" if self.version else ""
        return f"{self.name}{version}" + (" (editable)" if self.editable else "")


@dataclass(frozen=True)
class Request:
    """Which extras and groups to select, and whether main dependencies are left out."""

    extras: frozenset[str]
    groups: frozenset[str]
    only_groups: bool


def _canon(name: str) -> str:
    from packaging.utils import canonicalize_name

    return str(canonicalize_name(name))


def default_groups(lock: Any) -> Sequence[str]:
    """The groups `lockenv sync` installs unless told otherwise: `[tool.lockenv]
    default-groups` (dev, by default) in a lock lockenv wrote; the standard `default-groups`
    (what plain installers use: the runtime only, in lockenv's locks) in anyone else's."""
    tool = getattr(lock, "tool", None)
    own = tool.get("lockenv") if isinstance(tool, Mapping) else None
    groups = own.get("default-groups") if isinstance(own, Mapping) else None
    if isinstance(groups, list) and all(isinstance(g, str) for g in groups):
        return groups
    return list(lock.default_groups or ())


def build_request(lock: Any, *, extras: Sequence[str], all_extras: bool, groups: Sequence[str],
                  only_groups: Sequence[str], no_default_groups: bool,
                  all_groups: bool) -> Request:
    """Turn the CLI options into the extras and groups to select; unknown ones are an error
    that lists what the lock offers."""
    available_extras = sorted({_canon(e) for e in (lock.extras or ())})
    defaults = default_groups(lock)
    declared_groups = {_canon(g) for g in (*(lock.dependency_groups or ()), *defaults)}
    available_groups = sorted(declared_groups)
    chosen_extras = set(available_extras) if all_extras else {_canon(e) for e in extras}
    unknown = sorted(chosen_extras - set(available_extras))
    if unknown:
        raise SyncError(
            f"unknown extra {', '.join(f'`{u}`' for u in unknown)}: the lock has "
            + (", ".join(available_extras) or "no extras"),
            hint="pass one of the lock's extras, or relock after adding it to pyproject.toml",
        )
    asked = {_canon(g) for g in (*groups, *only_groups)}
    unknown = sorted(asked - declared_groups)
    if unknown:
        raise SyncError(
            f"unknown dependency group {', '.join(f'`{u}`' for u in unknown)}: the lock has "
            + (", ".join(available_groups) or "no dependency groups"),
            hint="pass one of the lock's groups, or relock after adding it to pyproject.toml",
        )
    if only_groups:
        return Request(extras=frozenset(), groups=frozenset(asked), only_groups=True)
    chosen = set() if no_default_groups else {_canon(g) for g in defaults}
    chosen |= asked
    if all_groups:
        chosen |= declared_groups
    return Request(extras=frozenset(chosen_extras), groups=frozenset(chosen), only_groups=False)


def select(lock: Any, lock_path: Path, request: Request, *, markers: Mapping[str, str],
           tags: Sequence[Any], project_root: Path | None = None,
           group_requirements: Mapping[str, Sequence[str]] | None = None) -> list[Wanted]:
    """The distributions to install, sorted by name. `group_requirements` (group → requirement
    strings, from `[tool.lockenv]`) is needed for `--only-group`."""
    pairs = _select_pairs(lock, lock_path, markers=dict(markers), tags=tags,
                          extras=request.extras, groups=request.groups)
    if request.only_groups:
        pairs = _restrict_to_groups(lock, pairs, request.groups, dict(markers),
                                    group_requirements)
    base = lock_path.parent
    wanted = [_wanted(pkg, entry, base, project_root) for pkg, entry in pairs]
    return sorted(wanted, key=lambda w: w.name)


def _select_pairs(lock: Any, lock_path: Path, *, markers: dict[str, str], tags: Sequence[Any],
                  extras: Collection[str], groups: Collection[str]) -> list[tuple[Any, Any]]:
    from lockenv.lockfile import select as lf_select

    return lf_select(lock, environment=markers, tags=tags, extras=extras, groups=groups)


def _restrict_to_groups(lock: Any, pairs: list[tuple[Any, Any]], groups: Collection[str],
                        markers: dict[str, str],
                        group_requirements: Mapping[str, Sequence[str]] | None,
                        ) -> list[tuple[Any, Any]]:
    if group_requirements is None:
        raise SyncError(
            "`--only-group` needs a lock written by lockenv (it records each group's "
            "requirements under [tool.lockenv])",
            hint="use `--group` instead, or relock with `lockenv lock`",
        )
    from packaging.requirements import Requirement

    by_name = {pkg.name: pkg for pkg, _ in pairs}
    roots: set[str] = set()
    for group in groups:
        for text in group_requirements.get(group, ()):
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate(dict(markers, extra="")):
                roots.add(_canon(req.name))
    # Packages that the groups select and the main dependencies alone would not: covers what
    # the groups pull in through extras, whose edges a lock's dependency list may not carry.
    env_without = dict(markers, extras=frozenset(), dependency_groups=frozenset())
    for pkg, _ in pairs:
        if pkg.marker is not None and not _evaluate(pkg.marker, env_without):
            roots.add(pkg.name)
    keep: set[str] = set()
    todo = [name for name in roots if name in by_name]
    while todo:
        name = todo.pop()
        if name in keep:
            continue
        keep.add(name)
        for dep in by_name[name].dependencies or ():
            dep_name = _canon(str(dep.get("name", "")))
            if dep_name in by_name and dep_name not in keep:
                todo.append(dep_name)
    return [(pkg, entry) for pkg, entry in pairs if pkg.name in keep]


def _evaluate(marker: Any, env: dict[str, Any]) -> bool:
    from packaging.markers import Marker

    return Marker(str(marker)).evaluate(env, context="lock_file")


def _wanted(pkg: Any, entry: Any, base: Path, project_root: Path | None) -> Wanted:
    from packaging.pylock import (
        PackageArchive,
        PackageDirectory,
        PackageSdist,
        PackageWheel,
    )

    name = str(pkg.name)
    version = str(pkg.version) if pkg.version is not None else None
    if isinstance(entry, (PackageWheel, PackageSdist)):
        kind = "wheel" if isinstance(entry, PackageWheel) else "sdist"
        sha = _sha256_of(entry.hashes, name, entry.filename)
        local = str((base / entry.path).resolve()) if entry.path and not entry.url else None
        dist = DistFile(
            filename=entry.filename, url=_absolute_url(entry.url, base) if entry.url else
            (Path(local).as_uri() if local else ""), sha256=sha, size=entry.size,
            upload_time=entry.upload_time, requires_python=None, index=pkg.index or "",
        )
        return Wanted(name, version, kind, file=dist, local_path=local, sha256=sha)
    if isinstance(entry, PackageDirectory):
        path = (base / entry.path).resolve()
        is_project = project_root is not None and path == project_root.resolve()
        return Wanted(name, version, "directory", local_path=str(path),
                      editable=bool(entry.editable), is_project=is_project)
    if isinstance(entry, PackageArchive):
        sha = _sha256_of(entry.hashes, name, entry.url or entry.path or name)
        local = str((base / entry.path).resolve()) if entry.path and not entry.url else None
        filename = Path(urlparse(entry.url).path).name if entry.url else Path(local or "").name
        dist = DistFile(filename=unquote(filename), url=entry.url or Path(local or "").as_uri(),
                        sha256=sha, size=entry.size, upload_time=entry.upload_time,
                        requires_python=None)
        return Wanted(name, version, "archive", file=dist, local_path=local, sha256=sha)
    raise SyncError(
        f"`{name}` comes from a version control system, which lockenv sync does not install",
        hint="lock it from an index or an archive instead",
    )


def _sha256_of(hashes: Mapping[str, str], name: str, filename: str) -> str:
    sha = hashes.get("sha256")
    if not sha:
        raise LockfileError(
            f"`{name}`: {filename} has no sha256 hash in the lock "
            f"(it has {', '.join(sorted(hashes)) or 'none'})",
            hint="relock; lockenv verifies every file by sha256",
        )
    sha = sha.lower()
    if not is_sha256(sha):
        raise LockfileError(
            f"`{name}`: the sha256 of {filename} in the lock is not 64 hexadecimal digits: {sha[:80]!r}",
            hint="the lock was edited by hand or damaged; run `lockenv lock` to regenerate it",
            context={"package": name},
        )
    return sha


def _absolute_url(url: str, base: Path) -> str:
    if "://" in url:
        return url
    return (base / url).resolve().as_uri()


def group_requirements_of(lock_path: Path) -> dict[str, tuple[str, ...]] | None:
    """Group → requirements as the lock records them under `[tool.lockenv]`, if it does."""
    from lockenv.lockfile import read_inputs

    inputs = read_inputs(lock_path)
    if inputs is None:
        return None
    return {_canon(k): tuple(v) for k, v in inputs.dependency_groups.items()}


# ---------------------------------------------------------------------------------------------
# the selection cache

SELECTION_FORMAT = 2
"""Bumped when what a selection entry holds, or how it is computed, changes."""
_KEEP_SELECTIONS = 8
"""Selections kept per lock (options x interpreters); the oldest goes first."""


class LockSource:
    """The lock a sync installs from: its path and bytes, parsed only when a step needs it.

    Unpickling a parsed lock and selecting from it (packaging.pylock, markers, specifiers,
    tags) is ~0.03-0.04 s of a warm sync on web, for an answer that is a function of the lock's
    bytes, the options and the interpreter. That answer (the `Wanted` list and the lock's
    requires-python) is kept in the cache, sealed with the user's key like every cache entry
    that says what to install (the cache is untrusted: an entry someone else wrote is never
    used), keyed by the lock's bytes and the lockenv and packaging versions; a changed lock,
    option or interpreter misses and selects from the parsed lock as before. Only selections of
    index and URL files (and the project itself, keyed by its pyproject.toml) are kept: a local
    path or directory entry of the lock is resolved on disk each time.
    """

    def __init__(self, path: Path, cache: Cache | None, *, data: bytes | None = None,
                 parsed: Pylock | None = None) -> None:
        self.path = path
        self.cache = cache
        self.data = data
        self._parsed = parsed
        self._entry: dict[str, Any] | None = None
        self._entry_read = False
        self._entry_at: list[Path | None] = []

    @property
    def pylock(self) -> Pylock:
        """The parsed lock (`load_lock`: its own pickled cache, or the TOML)."""
        if self._parsed is None:
            self._parsed = load_lock(self.path, self.cache, data=self.data)
        return self._parsed

    def may_select_ahead(self) -> bool:
        """Whether a selection made elsewhere (`ops.sync._select_ahead`: a forked child) could
        be found here: the lock unparsed, its bytes and a cache at hand, no entry for them yet."""
        return self._parsed is None and self.data is not None and self.cache is not None \
            and self._read_entry() is None

    def read_again(self) -> bool:
        """Read the entry again (another process may have written it since); whether there
        is one now."""
        self._entry, self._entry_read = None, False
        return self._read_entry() is not None

    def requires_python(self) -> str | None:
        entry = self._read_entry()
        if entry is not None:
            return entry["requires-python"]
        value = self.pylock.requires_python
        return str(value) if value else None

    def select(self, key: Mapping[str, Any],
               compute: Callable[[Pylock], tuple[list[Wanted], bool]]) -> list[Wanted]:
        """What `compute(lock)` selects, or what it selected for the same `key` (everything
        besides the lock's bytes it depends on: options, markers, tags, the project) the last
        time; it also says whether its answer may be kept (see the class)."""
        import hashlib
        import json

        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
        entry = self._read_entry()
        rows = entry["selections"].get(digest) if entry is not None else None
        if rows is not None:
            try:
                return [_wanted_from_row(row) for row in rows]
            except (TypeError, ValueError, KeyError, IndexError):
                pass  # not what `_row` writes: select again
        wanted, keep = compute(self.pylock)
        if keep:
            self._remember(digest, wanted)
        return wanted

    def _entry_path(self) -> Path | None:
        if not self._entry_at:  # a sha256 of the lock's bytes (1 MB on data): once
            self._entry_at.append(self._find_entry_path())
        return self._entry_at[0]

    def _find_entry_path(self) -> Path | None:
        if self.cache is None or self.data is None:
            return None  # no usable cache, or no bytes (a dry run's relock is held in memory only)
        import packaging

        from lockenv import __version__
        from lockenv.cache import sha256_after

        h = sha256_after(self.data)
        h.update(f"\0{packaging.__version__}\0{__version__}\0{SELECTION_FORMAT}".encode())
        return self.cache.root / Bucket.SELECTIONS.value / f"{h.hexdigest()}.json"

    def _read_entry(self) -> dict[str, Any] | None:
        if self._entry_read:
            return self._entry
        self._entry_read = True
        path = self._entry_path()
        if path is None or self.cache is None:
            return None
        import json

        try:
            sealed = self.cache.unseal(path.read_bytes())
            entry = json.loads(sealed) if sealed is not None else None
        except (OSError, ValueError):
            entry = None
        if (isinstance(entry, dict) and isinstance(entry.get("selections"), dict)
                and isinstance(entry.get("requires-python"), (str, type(None)))):
            self._entry = entry
        return self._entry

    def _remember(self, digest: str, wanted: list[Wanted]) -> None:
        path = self._entry_path()
        if path is None or self.cache is None:
            return
        import json

        from lockenv.cache import write_atomic

        value = self.pylock.requires_python
        entry = self._entry or {"requires-python": str(value) if value else None, "selections": {}}
        selections = dict(entry["selections"])
        selections.pop(digest, None)
        while len(selections) >= _KEEP_SELECTIONS:
            selections.pop(next(iter(selections)))
        selections[digest] = [_row(w) for w in wanted]
        entry = {"requires-python": entry["requires-python"], "selections": selections}
        blob = self.cache.seal(json.dumps(entry, sort_keys=True).encode())
        if blob is None:
            return
        try:
            write_atomic(path, blob)
        except OSError:
            return  # a read-only cache: select from the lock next time too
        self._entry = entry


def is_remote_file(want: Wanted) -> bool:
    """An index or URL file (not a local path, a directory or the project): what a selection
    entry may hold besides the project itself."""
    file = want.file
    return (want.kind in ("wheel", "sdist", "archive") and file is not None and want.local_path is None
            and not want.editable and not want.is_project and "://" in file.url
            and not file.url.startswith("file:"))


def _row(want: Wanted) -> list[Any]:
    file = want.file
    if file is None:  # the project, editable (`ops.wanted.project_wanted`)
        return [want.name, want.version, want.kind, want.local_path, want.editable, want.is_project]
    when = file.upload_time.isoformat() if file.upload_time is not None else None
    return [want.name, want.version, want.kind, want.sha256, file.filename, file.url, file.sha256,
            file.size, when, file.index]


def _wanted_from_row(row: list[Any]) -> Wanted:
    if len(row) == 6:
        name, version, kind, local_path, editable, is_project = row
        if not all(isinstance(text, str) for text in (name, kind, local_path)) \
                or not isinstance(version, (str, type(None))) or editable is not True or is_project is not True:
            raise TypeError("not a selection entry")
        return Wanted(name, version, kind, local_path=local_path, editable=True, is_project=True)
    name, version, kind, sha, filename, url, file_sha, size, when, index = row
    if not all(isinstance(text, str) for text in (name, kind, sha, filename, url, file_sha, index)) \
            or not isinstance(version, (str, type(None))) or not isinstance(size, (int, type(None))):
        raise TypeError("not a selection entry")
    upload_time = None
    if when is not None:
        from datetime import datetime

        upload_time = datetime.fromisoformat(when)
    dist = DistFile(filename=filename, url=url, sha256=file_sha, size=size, upload_time=upload_time,
                    requires_python=None, index=index)
    return Wanted(name, version, kind, file=dist, sha256=sha)

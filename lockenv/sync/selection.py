"""What a lock selects for one venv: groups and extras from the options, `Pylock.select()` with
the venv's complete markers and tags, and the `--only-group` restriction.

`--only-group` is implemented by reachability, because a package's marker cannot say whether the
main dependencies need it too: select with only those groups, then keep the packages reachable
from the groups' requirements (recorded under `[tool.lockenv]`) and from the packages only those
groups select, following each package's `dependencies` in the lock.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from lockenv.errors import LockfileError, SyncError
from lockenv.lockfile.read import PARSED_LOCKS, load_cached as load_lock  # noqa: F401 (moved; callers import it here)
from lockenv.models import DistFile, is_sha256


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

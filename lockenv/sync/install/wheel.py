"""Putting wheels into a venv with `installer`.

Wheels are validated whole (every RECORD hash, every path) before anything is written: that
happens once, when a wheel is unpacked into the cache (`tree`); installs link from there,
through installer (`destination`) the first time and by replaying what it did after (`replay`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from lockenv.errors import IntegrityError
from lockenv.sync.install.tree import Member, Tree, TreeChanged, replaced, unpack
from lockenv.sync.scan import LOCKENV_SOURCE

if TYPE_CHECKING:
    from lockenv.cache import Cache


class FreshInstall(Protocol):
    """Installs a tree that has no replay record; returns the operations it did (see `replay`)."""

    def __call__(self, tree: Tree, scheme: Mapping[str, str], python: str, *,
                 metadata: dict[str, bytes], link: bool) -> list[dict[str, Any]]: ...


Applied = tuple[Tree, list[tuple[Member, str]], list[dict[str, Any]]]
"""What one install did: the tree it linked from, its links (entry, target), its writes."""

INSTALLER_NAME = b"lockenv\n"
ADDED_METADATA = ("INSTALLER", LOCKENV_SOURCE, "direct_url.json")
"""The dist-info files lockenv adds to an install (direct_url.json only for directories)."""


@dataclass(frozen=True)
class WheelInfo:
    """A validated wheel, unpacked in the cache, and the files its install will write."""

    path: Path
    name: str
    tree: Tree
    targets: tuple[str, ...]
    """Absolute paths the install writes (files, incl. dist-info and console scripts)."""
    verify: Callable[[], None] | None = None
    """Checks the wheel at `path` before it is read again (`unpack`'s): a tree found changed
    while installing is unpacked again from it."""


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
                   sha256: str | None = None, version: str | None = None,
                   verify: Callable[[], None] | None = None) -> WheelInfo:
    """Refuse a wheel with an unsafe path or a RECORD that does not match its contents (checked
    once, while unpacking it into the cache), or that is not the distribution `name` (and
    `version`, when given) the caller wants; return the files its install will write.
    `verify`: see `unpack` (the caller has not checked `path` against `sha256` yet)."""
    if sha256 is None:
        from lockenv.cache import file_sha256

        sha256 = file_sha256(path)
    tree = unpack(path, sha256, name=name, cache=cache, verify=verify)
    _check_identity(tree, path, name, version)
    try:
        targets = _targets(tree, scheme, cache)
    except OSError:  # a tree file is gone (a cache cleaner): unpack it again (F13)
        tree = unpack(path, sha256, name=name, cache=cache, stale=tree, verify=verify)
        targets = _targets(tree, scheme, cache)
    # Members with `..` or absolute paths were refused when unpacking, so the scheme
    # directories decide where files land: check those (and each target, cheaply).
    root = os.path.abspath(venv) + os.sep
    scripts = os.path.abspath(scheme["scripts"]) + os.sep
    real_root = os.path.realpath(venv) + os.sep
    for target in targets:  # absolute and normalised (`_targets`)
        if not target.startswith(root):
            raise IntegrityError(
                f"{path.name} would write `{target}`, outside the venv; refused",
                context={"package": name},
            )
        # bin/ holds symlinks out of the venv (python3.X -> the base interpreter): a script
        # named like one would replace it (the install unlinks, never writes through, links).
        if target.startswith(scripts) and os.path.islink(target) \
                and not os.path.realpath(target).startswith(real_root):
            raise IntegrityError(
                f"{path.name} would replace `{target}`, a link to "
                f"{os.path.realpath(target)} outside the venv; refused",
                context={"package": name},
                hint="a script of this wheel has the name of the venv's interpreter (or of "
                     "another link out of the venv); nothing was installed",
            )
    return WheelInfo(path=path, name=name, tree=tree, targets=tuple(targets), verify=verify)


def _check_identity(tree: Tree, path: Path, name: str, version: str | None) -> None:
    """The tree found by the file's sha256 must hold the distribution the lock names: a cached
    tree is keyed by bytes alone, so a lock entry carrying another wheel's sha256 would
    otherwise install that wheel under this entry's name (F7)."""
    from packaging.utils import canonicalize_name
    from packaging.version import InvalidVersion, Version

    dist, _, dist_version = tree.dist_info_dir[: -len(".dist-info")].partition("-")
    same_name = canonicalize_name(dist) == canonicalize_name(name)
    try:
        same_version = version is None or Version(dist_version) == Version(version)
    except InvalidVersion:
        same_version = dist_version == version
    if same_name and same_version:
        return
    wanted = f"{name} {version}" if version else name
    raise IntegrityError(
        f"{path.name} holds {dist} {dist_version}, not {wanted}: its sha256 is another "
        "distribution's; refused",
        context={"package": name},
        hint="the lock (or the index) gives this entry the hash of another wheel; run "
             "`lockenv lock` again, and check the index if it persists",
    )


def _targets(tree: Tree, scheme: Mapping[str, str], cache: Cache) -> list[str]:
    """Where each file of the install lands: `planned_targets` joined with the venv's scheme,
    absolute and normalised, each once (purelib and platlib are one directory in a venv), in
    no particular order (the journal, the stash and the replay's check use them as a set).
    abspath only where the joined path is not normal already (it was ~0.07 s of CPU per warm
    sync of `data`, 18,000 files), tested on all of a wheel's paths at once (`all_normal`)."""
    from lockenv.sync.install.replay import all_normal, normal_under

    bases = {key: os.path.abspath(d) + os.sep for key, d in scheme.items()}
    planned = planned_targets(tree, cache)
    if all_normal([path for _, path in planned]):
        return list({bases[key] + path: None for key, path in planned})
    out: dict[str, None] = {}
    for key, path in planned:
        base = bases[key]
        out[base + path if normal_under(base, path) else os.path.abspath(base + path)] = None
    return list(out)


SCHEMES = ("purelib", "platlib", "headers", "scripts", "data")
"""installer's scheme keys (its SCHEME_NAMES, named here so a warm sync need not import it)."""


def planned_targets(tree: Tree, cache: Cache) -> list[tuple[str, str]]:
    """Every file an install of `tree` writes, as (scheme key, path under it), as installer
    decides it: a dry run through a destination that writes nothing (members, scripts, the
    metadata lockenv adds, RECORD). It does not depend on the venv, so it is done once per tree
    and kept in the cache (it imports installer and walks every member: ~18 ms per 500 files,
    which every warm sync paid before); a cold sync does it while the other files download."""
    from lockenv.sync.install import replay

    planned = replay.load_targets(cache, tree, SCHEMES)
    if planned is None:
        planned = _plan_targets(tree)
        replay.save_targets(cache, tree, planned)
    return planned


def _plan_targets(tree: Tree) -> list[tuple[str, str]]:
    from installer import install
    from installer.exceptions import InstallerError

    from lockenv.sync.install.destination import PlannedTargets, TreeSource

    planned = PlannedTargets({key: f"/{key}" for key in SCHEMES})  # only the keys matter
    try:
        install(TreeSource(tree), planned, additional_metadata=dict.fromkeys(ADDED_METADATA, b""))
    except InstallerError as exc:
        raise IntegrityError(f"{tree.wheel_name} cannot be installed: {exc}") from None
    return sorted(set(planned.targets))


def install_wheel(info: WheelInfo, *, scheme: Mapping[str, str], python: str, cache: Cache,
                  source_sha256: str | None, source_name: str | None,
                  direct_url: Mapping[str, object] | None = None,
                  fresh: FreshInstall | None = None,
                  warn: Callable[[str, str | None], None] | None = None,
                  made: set[str] | None = None) -> Applied | None:
    """Install a validated wheel from its unpacked tree (hard links, or copies) with installer.
    INSTALLER says lockenv; `lockenv.json` records the archive the lock named, to notice a
    different archive of the same version later. An install done before with the same
    inputs is replayed from its record instead (see `replay`, with `made`: the directories
    this sync's installs made or found); `fresh` installs the others
    (installer, unless a caller hands in another). A tree file changed since it was unpacked is
    never linked: the tree is unpacked again, and `warn` told. Returns what it did (for the
    sync's sealed plan, `whole`): the tree, its links (entry, target) and the writes; None
    when the operations do not fit the planned targets (no plan is kept then)."""
    metadata = install_metadata(source_sha256, source_name, direct_url)
    from lockenv.sync.install import replay

    tree = info.tree
    link = os.environ.get("LOCKENV_LINK_MODE", "hardlink") != "copy"
    key = replay.record_key(tree, scheme, python, metadata)
    planned = frozenset(info.targets)
    for attempt in range(3):  # a tree another process replaced meanwhile: use the new one
        try:
            record = replay.load(cache, key)
            if record is not None:
                try:
                    links, writes = replay.replay(record, tree, scheme, python, planned=planned,
                                                  link=link, made=made)
                    return tree, links, writes
                except replay.BadRecord:
                    pass  # checked before any write: installer records it afresh
            ops = (fresh or install_with_installer)(tree, scheme, python, metadata=metadata, link=link)
            replay.save(cache, key, tree, ops, scheme["data"])
            try:
                links, writes = replay.check(ops, tree, planned)
            except replay.BadRecord:
                return None
            return tree, links, writes
        except TreeChanged as changed:
            if attempt == 2:
                raise
            if warn is not None and changed.member and not replaced(tree):
                warn(f"{changed.member} of {tree.wheel_name} in the cache was changed since it "
                     "was unpacked; it was unpacked again from the verified wheel",
                     "the venvs synced from this cache before share the changed file (hard "
                     "links): `lockenv verify` in each names it")
            tree = unpack(info.path, tree.sha256, name=info.name, cache=cache, stale=tree,
                          verify=info.verify)
    return None  # not reached: the third TreeChanged is raised


def install_metadata(source_sha256: str | None, source_name: str | None,
                     direct_url: Mapping[str, object] | None = None) -> dict[str, bytes]:
    """The dist-info files lockenv adds to an install (part of its replay record's key)."""
    metadata = {"INSTALLER": INSTALLER_NAME}
    if source_sha256:
        metadata[LOCKENV_SOURCE] = json.dumps(
            {"sha256": source_sha256, "filename": source_name}, sort_keys=True).encode() + b"\n"
    if direct_url is not None:
        metadata["direct_url.json"] = json.dumps(direct_url, sort_keys=True).encode()
    return metadata


def record_install(tree: Tree, *, scheme: Mapping[str, str], python: str,
                   metadata: dict[str, bytes], cache: Cache) -> None:
    """Run installer once over `tree` without writing anything, and keep what it would do: the
    replay record `install_wheel` then replays (instead of running installer), and the planned
    targets (instead of `planned_targets`' dry run). A cold sync did both installer passes per
    wheel before: the dry run while unpacking, the real install in the link stage (on data
    ~0.5 s of CPU and most of the link stage's wall)."""
    from installer import install
    from installer.exceptions import InstallerError

    from lockenv.sync.install import replay
    from lockenv.sync.install.destination import RecordingDestination, TreeSource

    key = replay.record_key(tree, scheme, python, metadata)
    if replay.record_path(cache, key).exists():
        planned_targets(tree, cache)
        return
    dest = RecordingDestination(tree, scheme, python)
    try:
        install(TreeSource(tree), dest, additional_metadata=metadata)
    except InstallerError as exc:
        raise IntegrityError(f"{tree.wheel_name} cannot be installed: {exc}") from None
    replay.save(cache, key, tree, dest.ops, scheme["data"])
    if replay.load_targets(cache, tree, SCHEMES) is None:
        replay.save_targets(cache, tree, _with_added_metadata(tree, dest.targets, metadata))


def _with_added_metadata(tree: Tree, targets: list[tuple[str, str]],
                         metadata: Mapping[str, bytes]) -> list[tuple[str, str]]:
    """`targets` of one install, plus the ADDED_METADATA files it did not write: the planned
    targets cover every install of the tree (as `_plan_targets`' dry run, which adds them all)."""
    record = f"{tree.dist_info_dir}/RECORD"
    root = next(key for key, path in targets if path == record)
    extra = [(root, f"{tree.dist_info_dir}/{name}") for name in ADDED_METADATA if name not in metadata]
    return sorted(set(targets) | set(extra))


def install_with_installer(tree: Tree, scheme: Mapping[str, str], python: str, *,
                           metadata: dict[str, bytes], link: bool) -> list[dict[str, Any]]:
    """installer's install of `tree` through a linking destination; returns what it wrote (the
    operations a replay repeats)."""
    from installer import install

    from lockenv.sync.install.destination import LinkingDestination, TreeSource

    ops: list[dict[str, Any]] = []
    install(TreeSource(tree), LinkingDestination(tree, scheme, python, link=link, ops=ops),
            additional_metadata=metadata)
    return ops

"""Does a lock serve what it was resolved for? Run after a resolution, before the lock is written.

Each target environment, selecting from the lock as `packaging.pylock` does (all extras, all
groups), must get exactly the pins its own resolution chose, with an installable file for each;
and environments outside the targets (another machine type, the next Python) must get one
version of each package and every root requirement that applies there (DESIGN.md).

The expectations are plain data (an environment, tags, a label, pins, names), so that the
lockfile package needs nothing from the resolver; the lock checked is the writer's own mapping.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import replace
from functools import lru_cache
from typing import TYPE_CHECKING, Protocol

from lockenv.errors import LockfileError
from lockenv.lockfile.write import to_pylock
from lockenv.models import Resolution

if TYPE_CHECKING:
    from packaging.pylock import Package, PackageWheel, Pylock
    from packaging.tags import Tag

__all__ = ["OutsideExpectation", "TargetExpectation", "check_serves"]

_BUG = "this is a bug in lockenv's universal merge; please report it with your pyproject.toml"


class TargetExpectation(Protocol):
    """One target environment and the pins its resolution chose."""

    @property
    def label(self) -> str: ...  # "Python 3.12 on linux-x86_64"
    @property
    def environment(self) -> Mapping[str, str]: ...  # complete marker environment
    @property
    def tags(self) -> Sequence[Tag]: ...  # most preferred first
    @property
    def pins(self) -> Collection[tuple[str, str]]: ...  # (normalised name, version)
    @property
    def unserved(self) -> Collection[str]: ...  # names pinned with no file there (lock warned)


class OutsideExpectation(Protocol):
    """An environment no target enumerates, and the names that must be selected there."""

    @property
    def label(self) -> str: ...
    @property
    def environment(self) -> Mapping[str, str]: ...
    @property
    def required(self) -> Collection[str]: ...


def check_serves(
    resolution: Resolution,
    targets: Iterable[TargetExpectation],
    outside: Iterable[OutsideExpectation] = (),
) -> None:
    """LockfileError (a bug, never a user mistake) when the lock would not serve an environment."""
    lock = to_pylock(resolution)
    extras = sorted(resolution.inputs.optional_dependencies)
    groups = sorted(resolution.inputs.dependency_groups)
    tagged = [(p, [(w, _wheel_tags(w.name)) for w in p.wheels] if p.wheels else None) for p in lock.packages]
    memo: dict[tuple[int, tuple[int, ...]], Package] = {}
    for target in targets:
        _check_target(lock, _narrowed(lock, tagged, target, memo), target, extras, groups)
    for probe in outside:
        _check_outside(resolution, probe)


def _narrowed(lock: Pylock, tagged: Sequence[tuple[Package, list[tuple[PackageWheel, frozenset[Tag]]] | None]],
              target: TargetExpectation, memo: dict[tuple[int, tuple[int, ...]], Package]) -> Pylock:
    """The lock with only the wheels whose tags the target accepts (select() parses every
    wheel name for every target; its choice among the accepted ones is unchanged), and without
    the packages left unserved there. Each package is narrowed once per distinct set of
    accepted wheels (a pure-Python one once for all targets)."""
    accepted = set(target.tags)
    unserved = set(target.unserved)
    packages = []
    for i, (p, wheels) in enumerate(tagged):
        if str(p.name) in unserved:
            continue  # no file here: checked by marker in _check_target
        if wheels is None:
            packages.append(p)
            continue
        keep = tuple(j for j, (_w, tags) in enumerate(wheels) if not accepted.isdisjoint(tags))
        narrowed = memo.get((i, keep))
        if narrowed is None:
            narrowed = memo[(i, keep)] = replace(p, wheels=[wheels[j][0] for j in keep] or None)
        packages.append(narrowed)
    return replace(lock, packages=packages)


def _check_target(lock: Pylock, narrowed: Pylock, target: TargetExpectation, extras: Sequence[str],
                  groups: Sequence[str]) -> None:
    """`select()` for the target gives exactly its pins."""
    unserved = set(target.unserved)
    try:
        selected = list(narrowed.select(
            environment=dict(target.environment),  # type: ignore[arg-type]
            tags=list(target.tags), extras=extras, dependency_groups=groups,
        ))
    except Exception as exc:
        raise LockfileError(f"the lock does not serve {target.label}: {exc}", hint=_BUG) from None
    got = {(str(p.name), str(p.version)) for p, _ in selected}
    got |= _selected_by_marker(lock, unserved, target.environment, extras, groups)
    kernel_bound = _kernel_bound(lock)
    got -= kernel_bound
    expected = set(target.pins) - kernel_bound
    if got != expected:
        raise LockfileError(
            f"the lock does not select exactly the resolution for {target.label}",
            details=[f"unexpected: {n} {v}" for n, v in sorted(got - expected)]
            + [f"missing: {n} {v}" for n, v in sorted(expected - got)],
            hint=_BUG,
        )


def _kernel_bound(lock: Pylock) -> set[tuple[str, str]]:
    """Entries whose marker names the kernel's release or version: the resolution took them on
    every target where that term could hold (no target knows the kernel), so whether `select()`
    takes them is for the machine that syncs to say."""
    return {(str(p.name), str(p.version)) for p in lock.packages
            if p.marker is not None and ("platform_release" in str(p.marker) or "platform_version" in str(p.marker))}


def _selected_by_marker(lock: Pylock, names: Collection[str], environment: Mapping[str, str],
                        extras: Sequence[str], groups: Sequence[str]) -> set[tuple[str, str]]:
    """The (name, version) entries of `names` whose markers hold in the environment."""
    if not names:
        return set()
    env = {**environment, "extras": frozenset(extras), "dependency_groups": frozenset(groups)}
    return {
        (str(p.name), str(p.version))
        for p in lock.packages
        if str(p.name) in names and (p.marker is None or p.marker.evaluate(env, "lock_file"))  # type: ignore[arg-type]
    }


def _check_outside(resolution: Resolution, probe: OutsideExpectation) -> None:
    """The lock's markers select one version of each package and every required name."""
    from packaging.markers import Marker

    inputs = resolution.inputs
    env = {**probe.environment, "extras": frozenset(inputs.optional_dependencies),
           "dependency_groups": frozenset(inputs.dependency_groups)}
    chosen: dict[str, list[str]] = {}
    for p in resolution.packages:
        if p.marker is None or Marker(p.marker).evaluate(env, "lock_file"):  # type: ignore[arg-type]
            chosen.setdefault(p.name, []).append(p.version)
    clashes = {n: vs for n, vs in chosen.items() if len(vs) > 1}
    kernel_bound = {p.name for p in resolution.packages if p.marker is not None
                    and ("platform_release" in p.marker or "platform_version" in p.marker)}
    missing = sorted(set(probe.required) - set(chosen) - kernel_bound)
    if clashes or missing:
        raise LockfileError(
            f"the lock would not serve {probe.label}, an environment outside its targets",
            details=[f"{n}: versions {', '.join(vs)} both selected" for n, vs in sorted(clashes.items())]
            + [f"{n}: required but not selected" for n in missing],
            hint=_BUG,
        )


@lru_cache(maxsize=None)
def _wheel_tags(filename: str) -> frozenset[Tag]:
    from packaging.utils import parse_wheel_filename

    return parse_wheel_filename(filename)[3]

"""Does a lock serve what it was resolved for? Run after a resolution, before the lock is written.

Each target environment, selecting from the lock as PEP 751 and `packaging.pylock`'s `select()`
do (all extras, all groups; the same marker evaluation, requires-python and one-version-a-name
errors, worked out over one compact table for every target), must get exactly the pins its own
resolution chose, with an installable file for each;
and environments outside the targets (another machine type, the next Python) must get one
version of each package and every root requirement that applies there (DESIGN.md).

The expectations are plain data (an environment, tags, a label, pins, names), so that the
lockfile package needs nothing from the resolver; the lock checked is the writer's own mapping.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol

from packaging.version import Version

from lockenv.errors import LockfileError
from lockenv.lockfile.write import to_pylock
from lockenv.models import Resolution

if TYPE_CHECKING:
    from packaging.pylock import Pylock
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
    table = _Table(lock, sorted(resolution.inputs.optional_dependencies), sorted(resolution.inputs.dependency_groups))
    for target in targets:
        _check_target(table, target)
    for probe in outside:
        _check_outside(table, probe)


class _Table:
    """The lock's packages, as compact as the check needs them, worked out once for every
    target (`packaging.pylock`'s `select()` per target parsed every wheel's name into Tags and
    ranked all ~1,200 of the target's tags each time: 0.1 s of the serial end of a cold lock):
    each entry's marker, requires-python and, per wheel, its tags as small integers (one per
    distinct tag in the lock). Only whether a compatible wheel exists matters here, not which
    one an installer ranks first."""

    def __init__(self, lock: Pylock, extras: Sequence[str], groups: Sequence[str]) -> None:
        from packaging.utils import canonicalize_name

        self.lock = lock
        self.extras = frozenset(canonicalize_name(e) for e in extras)
        self.groups = frozenset(canonicalize_name(g) for g in groups)
        # What select() refuses whatever the environment: extras or groups the lock does not declare.
        declared_groups = {canonicalize_name(g) for g in [*(lock.dependency_groups or ()), *(lock.default_groups or ())]}
        self.undeclared = sorted(self.extras - set(lock.extras or ())) + sorted(self.groups - declared_groups)
        self.tag_ids: dict[Tag, int] = {}
        self.wheels: list[tuple[tuple[int, ...], ...] | None] = []
        """Per package: each wheel's tags as ids (None: no wheels)."""
        for p in lock.packages:
            if not p.wheels:
                self.wheels.append(None)
                continue
            self.wheels.append(tuple(tuple(self.tag_ids.setdefault(t, len(self.tag_ids)) for t in _wheel_tags(w.name))
                                     for w in p.wheels))
        self.marker_texts = [None if p.marker is None else str(p.marker) for p in lock.packages]
        self.kernel_bound = {(str(p.name), str(p.version)) for p, text in zip(lock.packages, self.marker_texts)
                             if text is not None and _names_kernel(text)}
        self._holds: dict[tuple[Any, ...], bool] = {}
        """(marker text, the values of the variables it names) -> whether it holds: a library's
        lock has dozens of targets and long markers, most of them on a few variables."""
        self._admits: dict[tuple[int, str], bool] = {}

    def holds(self, i: int, env: Mapping[str, Any]) -> bool:
        """Does entry `i`'s marker hold in `env`? Evaluated once per distinct values of the
        variables the marker names (a marker's truth depends on nothing else)."""
        text = self.marker_texts[i]
        if text is None:
            return True
        key = (text, *((k, v) for k, v in env.items() if k in text))
        known = self._holds.get(key)
        if known is None:
            marker = self.lock.packages[i].marker
            assert marker is not None
            known = self._holds[key] = marker.evaluate(env, "lock_file")
        return known

    def admits(self, i: int, python: str, version: Version) -> bool:
        """Does entry `i`'s requires-python admit this Python (once per entry and Python)?"""
        spec = self.lock.packages[i].requires_python
        if not spec:
            return True
        known = self._admits.get((i, python))
        if known is None:
            known = self._admits[(i, python)] = spec.contains(version)
        return known

    def environment(self, environment: Mapping[str, str]) -> dict[str, Any]:
        """The environment `select()` evaluates the lock's markers in."""
        return {**environment, "extras": self.extras, "dependency_groups": self.groups}

    def accepted(self, tags: Sequence[Tag]) -> set[int]:
        """The ids of the lock's tags a target with `tags` installs."""
        ids = self.tag_ids
        return {i for t in tags if (i := ids.get(t)) is not None}


def _names_kernel(marker: str) -> bool:
    """Does the marker name the kernel's release or version? The resolution took such an entry
    on every target where that term could hold (no target knows the kernel), so whether an
    installer takes it is for the machine that syncs to say."""
    return "platform_release" in marker or "platform_version" in marker


def _check_target(table: _Table, target: TargetExpectation) -> None:
    """`select()` for the target gives exactly its pins."""
    unserved = set(target.unserved)
    env = table.environment(target.environment)
    try:
        got = _selected(table, target, env, unserved)
    except _NotServed as exc:
        raise LockfileError(f"the lock does not serve {target.label}: {exc}", hint=_BUG) from None
    got -= table.kernel_bound
    expected = set(target.pins) - table.kernel_bound
    if got != expected:
        raise LockfileError(
            f"the lock does not select exactly the resolution for {target.label}",
            details=[f"unexpected: {n} {v}" for n, v in sorted(got - expected)]
            + [f"missing: {n} {v}" for n, v in sorted(expected - got)],
            hint=_BUG,
        )


class _NotServed(Exception):
    """What `select()` would raise for the target."""


def _selected(table: _Table, target: TargetExpectation, env: Mapping[str, Any],
              unserved: Collection[str]) -> set[tuple[str, str]]:
    """The (name, version) entries `select()` installs for the target, as PEP 751 says an
    installer chooses (with its errors), plus the entries of names left unserved there (no file:
    selected by their marker alone)."""
    lock = table.lock
    if table.undeclared:
        raise _NotServed(f"undeclared extras or dependency groups: {', '.join(table.undeclared)}")
    python = target.environment["python_full_version"]
    version = Version(python)  # parsed once, not by every package's requires-python
    if lock.requires_python and not lock.requires_python.contains(version):
        raise _NotServed(f"python_full_version {python!r} does not satisfy the lock's requires-python "
                         f"{str(lock.requires_python)!r}")
    if lock.environments is not None and not any(
            m.evaluate(dict(target.environment), "requirement") for m in lock.environments):
        raise _NotServed("the environment satisfies none of the lock's environments")
    accepted: set[int] | None = None
    chosen: dict[str, int] = {}
    got: set[tuple[str, str]] = set()
    for i, p in enumerate(lock.packages):
        name = str(p.name)
        if not table.holds(i, env):
            continue
        if name in unserved:
            got.add((name, str(p.version)))  # no file here: its marker alone says
            continue
        if not table.admits(i, python, version):
            raise _NotServed(f"python_full_version {python!r} does not satisfy the requirement "
                             f"{str(p.requires_python)!r} of package {name!r} at packages[{i}]")
        if name in chosen:
            raise _NotServed(f"multiple packages with the name {name!r} are selected at packages[{i}] and "
                             f"packages[{chosen[name]}]")
        chosen[name] = i
    for name, i in chosen.items():
        p = lock.packages[i]
        if p.vcs is None and p.directory is None and p.archive is None and p.sdist is None:
            # wheels only: one must be installable here
            wheels = table.wheels[i]
            if accepted is None:
                accepted = table.accepted(target.tags)
            if wheels is None or all(accepted.isdisjoint(w) for w in wheels):
                raise _NotServed(f"no wheel found matching the provided tags for package {name!r} at "
                                 f"packages[{i}], and no sdist available as a fallback")
        got.add((name, str(p.version)))
    return got


def _check_outside(table: _Table, probe: OutsideExpectation) -> None:
    """The lock's markers select one version of each package and every required name."""
    env = table.environment(probe.environment)
    chosen: dict[str, list[str]] = {}
    for i, p in enumerate(table.lock.packages):
        if table.holds(i, env):
            chosen.setdefault(str(p.name), []).append(str(p.version))
    clashes = {n: vs for n, vs in chosen.items() if len(vs) > 1}
    kernel_bound = {n for n, _v in table.kernel_bound}
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

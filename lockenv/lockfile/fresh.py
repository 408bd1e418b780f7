"""Is the lock fresh? The inputs a lock records (from pyproject.toml), typed reasons why a lock no
longer matches them, and what moved between two locks' pins, as data (`ops/lock` words it).

On the no-op path: the stdlib TOML parser only, through `read.py`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from lockenv.errors import LockfileError
from lockenv.lockfile.common import canonical_inputs, format_timestamp
from lockenv.lockfile.read import is_edited, read_inputs
from lockenv.models import LockInputs, ProjectSpec, Resolution
from lockenv.urls import redact_url

__all__ = ["PinChange", "StaleReason", "diff_inputs", "diff_pins", "inputs_from_spec", "stale_reasons"]


def inputs_from_spec(spec: ProjectSpec) -> LockInputs:
    """The inputs recorded in the lock: normalised, sorted wherever order carries no meaning
    (so reordering pyproject.toml is not a change), the index URL without credentials."""
    return canonical_inputs(
        LockInputs(
            requires_python=spec.requires_python,
            dependencies=spec.dependencies,
            optional_dependencies=spec.optional_dependencies,
            dependency_groups=spec.dependency_groups,
            default_groups=spec.default_groups,
            index_url=redact_url(spec.index_url),
            exclude_newer=format_timestamp(spec.exclude_newer) if spec.exclude_newer else None,
            environments=spec.environments,
            indexes=_index_inputs(spec),
            sources=tuple(f"{k}={v}" for k, v in (spec.indexes.sources.items()
                                                  if spec.indexes else ())),
            required_environments=spec.required_environments,
        )
    )


def _index_inputs(spec: ProjectSpec) -> tuple[str, ...]:
    """The declared indexes as the lock records them: credentials never, order kept."""
    if spec.indexes is None:
        return ()
    return tuple(f"{i.name} {redact_url(i.url)}" + (" explicit" if i.explicit else "")
                 + (" default" if i.default else "") for i in spec.indexes.named)


@dataclass(frozen=True)
class StaleReason:
    """One reason the lock no longer matches pyproject.toml.

    `kind` is one of: missing, invalid, foreign, edited, requires-python, dependency-added,
    dependency-removed, extra-added, extra-removed, extra-changed, group-added, group-removed,
    group-changed, default-groups, index-url, indexes, source-added, source-removed,
    exclude-newer, environments.
    `subject` is what changed (a requirement, an extra or group name, a key); `detail` is the
    sentence shown to the user (what `str()` returns)."""

    kind: str
    subject: str
    detail: str

    def __str__(self) -> str:
        return self.detail


def stale_reasons(spec: ProjectSpec, path: Path) -> list[StaleReason]:
    """Why the lock at `path` does not match `spec`; [] when it is fresh. Offline and fast."""
    path = Path(path)
    name = path.name
    if not path.exists():
        return [StaleReason("missing", name, f"{name} is missing")]
    try:
        recorded = read_inputs(path)
    except LockfileError as exc:
        reason = exc.message
        prefix = f"{path}"
        if reason.startswith(prefix):
            reason = reason[len(prefix):].lstrip(":").strip()
        if "unresolved git merge conflict" in reason:  # `lock` resolves it: say what it is
            return [StaleReason("invalid", name, f"{name} has unresolved git merge conflicts")]
        return [StaleReason("invalid", name, f"{name} is invalid: {reason}")]
    if recorded is None:
        return [StaleReason("foreign", name, f"{name} was not written by lockenv (no [tool.lockenv])")]
    if is_edited(path):
        return [StaleReason("edited", name, f"{name} was changed by hand since lockenv wrote it")]
    current = inputs_from_spec(spec)
    if spec.exclude_newer is None and recorded.exclude_newer and recorded.exclude_newer_from_cli:
        # `lock --exclude-newer` records the cut-off; it holds until a new one is given.
        current = replace(current, exclude_newer=recorded.exclude_newer, exclude_newer_from_cli=True)
    return diff_inputs(recorded, current)


def diff_inputs(old: LockInputs, new: LockInputs) -> list[StaleReason]:
    """Typed differences between the inputs a lock was made from and today's."""
    old, new = canonical_inputs(old), canonical_inputs(new)
    reasons: list[StaleReason] = []
    if old.requires_python != new.requires_python:
        reasons.append(StaleReason(
            "requires-python", "requires-python",
            f"changed requires-python from `{old.requires_python}` to `{new.requires_python}`",
        ))
    for req in new.dependencies:
        if req not in old.dependencies:
            reasons.append(StaleReason("dependency-added", req, f"added `{req}` to dependencies"))
    for req in old.dependencies:
        if req not in new.dependencies:
            reasons.append(StaleReason("dependency-removed", req, f"removed `{req}` from dependencies"))
    reasons += _diff_tables("extra", "extra", old.optional_dependencies, new.optional_dependencies)
    reasons += _diff_tables("group", "dependency group", old.dependency_groups, new.dependency_groups)
    if old.default_groups != new.default_groups:
        reasons.append(StaleReason(
            "default-groups", "default-groups",
            f"changed default-groups from {_list(old.default_groups)} to {_list(new.default_groups)}",
        ))
    if old.index_url != new.index_url:
        reasons.append(StaleReason(
            "index-url", "index-url", f"changed index-url from `{old.index_url}` to `{new.index_url}`"
        ))
    reasons += _diff_indexes(old, new)
    if old.exclude_newer != new.exclude_newer:
        if old.exclude_newer is None:
            detail = f"added exclude-newer `{new.exclude_newer}`"
        elif new.exclude_newer is None:
            detail = f"removed exclude-newer `{old.exclude_newer}`"
        else:
            detail = f"changed exclude-newer from `{old.exclude_newer}` to `{new.exclude_newer}`"
        reasons.append(StaleReason("exclude-newer", "exclude-newer", detail))
    if old.environments != new.environments:
        parts = [f"added `{e}`" for e in new.environments if e not in old.environments]
        parts += [f"removed `{e}`" for e in old.environments if e not in new.environments]
        reasons.append(StaleReason("environments", "environments", "changed environments: " + ", ".join(parts)))
    if old.required_environments != new.required_environments:
        parts = [f"added `{e}`" for e in new.required_environments if e not in old.required_environments]
        parts += [f"removed `{e}`" for e in old.required_environments if e not in new.required_environments]
        reasons.append(StaleReason("environments", "required-environments",
                                   "changed required-environments: " + ", ".join(parts)))
    return reasons


def _diff_tables(kind: str, label: str, old: Mapping[str, tuple[str, ...]],
                 new: Mapping[str, tuple[str, ...]]) -> list[StaleReason]:
    reasons: list[StaleReason] = []
    for name in sorted(set(old) | set(new)):
        if name not in old:
            reasons.append(StaleReason(f"{kind}-added", name, f"added {label} `{name}`"))
        elif name not in new:
            reasons.append(StaleReason(f"{kind}-removed", name, f"removed {label} `{name}`"))
        elif old[name] != new[name]:
            parts = [f"added `{r}`" for r in new[name] if r not in old[name]]
            parts += [f"removed `{r}`" for r in old[name] if r not in new[name]]
            reasons.append(StaleReason(f"{kind}-changed", name, f"changed {label} `{name}`: " + ", ".join(parts)))
    return reasons


def _diff_indexes(old: LockInputs, new: LockInputs) -> list[StaleReason]:
    reasons: list[StaleReason] = []
    if old.indexes != new.indexes:
        reasons.append(StaleReason(
            "indexes", "indexes",
            f"changed the indexes from {_list(old.indexes)} to {_list(new.indexes)}"))
    for pin in new.sources:
        if pin not in old.sources:
            name, _, index = pin.partition("=")
            reasons.append(StaleReason("source-added", name, f"pinned `{name}` to index `{index}`"))
    for pin in old.sources:
        if pin not in new.sources:
            name, _, index = pin.partition("=")
            reasons.append(StaleReason("source-removed", name,
                                       f"removed the pin of `{name}` to index `{index}`"))
    return reasons


def _list(items: Sequence[str]) -> str:
    return "[" + ", ".join(f"`{i}`" for i in items) + "]" if items else "[]"


# ---------------------------------------------------------------------------------------------
# what moved between two locks


@dataclass(frozen=True)
class PinChange:
    """One package whose versions differ between the old lock's pins and a new resolution, with
    the facts that explain it (`ops/lock.py` words them)."""

    name: str
    before: tuple[str, ...]
    """Versions in the old lock, oldest first (empty: the package is new)."""
    after: tuple[str, ...]
    """Versions in the new resolution, oldest first (empty: no longer required)."""
    direct: tuple[str, str] | None
    """The project's own first requirement on it and its source ('main', 'extra:x', 'group:g')."""
    changed_requirement: str | None
    """A requirement of the project's on it that the old lock's inputs do not hold (edited)."""
    required_by: tuple[str, ...]
    """`name version` of every package entry that depends on it now, sorted."""

    @property
    def kind(self) -> str:
        """'added', 'removed' or 'moved'."""
        return "added" if not self.before else "removed" if not self.after else "moved"


def diff_pins(
    old: Mapping[str, Sequence[tuple[str, str | None]]],
    resolution: Resolution,
    spec: ProjectSpec,
    recorded: LockInputs | None,
) -> list[PinChange]:
    """The packages whose versions moved, by name. `old` is `read_pins` of the previous lock,
    `recorded` its `[tool.lockenv]` inputs (None: not written by lockenv, or no lock)."""
    new: dict[str, list[str]] = {}
    parents: dict[str, set[str]] = {}
    for p in resolution.packages:
        new.setdefault(p.name, []).append(p.version)
        for d in p.dependencies:
            parents.setdefault(d.name, set()).add(f"{p.name} {p.version}")
    direct = _direct_requirements(spec)
    before: set[str] = set()
    if recorded is not None:
        before = {*recorded.dependencies, *(r for rs in recorded.optional_dependencies.values() for r in rs),
                  *(r for rs in recorded.dependency_groups.values() for r in rs)}
    changes: list[PinChange] = []
    for name in sorted(set(old) | set(new)):
        was = tuple(sorted({v for v, _ in old.get(name, [])}, key=_version_key))
        now = tuple(sorted(set(new.get(name, [])), key=_version_key))
        if was == now:
            continue
        changed = [text for text, _ in direct.get(name, ()) if text not in before]
        changes.append(PinChange(
            name=name,
            before=was,
            after=now,
            direct=direct[name][0] if name in direct else None,
            changed_requirement=changed[0] if changed and recorded is not None else None,
            required_by=tuple(sorted(parents.get(name, ()))),
        ))
    return changes


def _direct_requirements(spec: ProjectSpec) -> dict[str, list[tuple[str, str]]]:
    """Name → the project's requirements on it, with their source, in pyproject.toml's order
    (main, then extras and groups by name)."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    sources: list[tuple[str, Iterable[str]]] = [("main", spec.dependencies)]
    sources += [(f"extra:{e}", r) for e, r in sorted(spec.optional_dependencies.items())]
    sources += [(f"group:{g}", r) for g, r in sorted(spec.dependency_groups.items())]
    direct: dict[str, list[tuple[str, str]]] = {}
    for source, reqs in sources:
        for text in reqs:
            direct.setdefault(canonicalize_name(Requirement(text).name), []).append((text, source))
    return direct


def _version_key(text: str) -> tuple[int, object]:
    from packaging.version import InvalidVersion, Version

    try:
        return (0, Version(text))
    except InvalidVersion:
        return (1, text)

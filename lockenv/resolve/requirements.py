"""What every resolve module trades in: identifiers, requirements and candidates, and the
project's root requirements.

An identifier is a project or one extra of it (`name[extra]`, one extra each); an extra's
candidate depends on its base pinned to the same version, so resolvelib keeps them together
(resolvelib's extras_provider example).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, NamedTuple

from packaging.markers import Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.tags import Tag
from packaging.utils import NormalizedName, canonicalize_name, parse_wheel_filename
from packaging.version import Version

from lockenv.errors import ManifestError
from lockenv.models import DistFile, ProjectSpec

__all__ = [
    "Candidate",
    "Ident",
    "Req",
    "applies",
    "context_marker",
    "dependency_reqs",
    "filename_tags",
    "file_tags",
    "parse_requirement",
    "requirement_to_reqs",
    "root_applies",
    "root_requirements",
]


class Ident(NamedTuple):
    """What resolvelib resolves: a project (`extra` None) or one of its extras. A tuple, so
    that hashing it (resolvelib does, constantly) costs what hashing a string does."""

    name: NormalizedName
    extra: str | None = None

    def __str__(self) -> str:
        return f"{self.name}[{self.extra}]" if self.extra else self.name


@dataclass(frozen=True)
class Req:
    """A requirement as resolvelib sees it: one identifier, and where it came from."""

    name: NormalizedName
    extra: str | None
    specifier: SpecifierSet
    requirement: Requirement
    """The original requirement (its marker is the edge's marker in the lock graph)."""
    source: str | None = None
    """For root requirements: 'main', 'extra:x' or 'group:g'. None for package dependencies."""
    identifier: Ident = field(init=False, repr=False, compare=False)
    """(name, extra), made once: resolvelib asks for it on every requirement, every round."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "identifier", Ident(self.name, self.extra))

    @property
    def pins_exactly(self) -> bool:
        return any(s.operator in ("==", "===") and "*" not in s.version for s in self.specifier)

    def __str__(self) -> str:
        return str(self.requirement)


@dataclass(frozen=True)
class Candidate:
    """One version of a project (or one of its extras) as installable on the environment."""

    name: NormalizedName
    version: Version
    extra: str | None
    file: DistFile
    """The file this environment would install: its best wheel, else the sdist."""
    files: tuple[DistFile, ...] = field(compare=False)
    installable: bool = field(default=True, compare=False)
    """False for a version this environment has no file for, chosen only because no allowed
    version has one (issue 9: no target vetoes the lock); `file` then only stands in for it."""
    identifier: Ident = field(init=False, repr=False, compare=False)
    """(name, extra), made once: resolvelib asks for it on every candidate, every round."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "identifier", Ident(self.name, self.extra))

    def __str__(self) -> str:
        return f"{self.identifier} {self.version}"


def requirement_to_reqs(requirement: Requirement, source: str | None = None) -> list[Req]:
    """`foo[a,b]>=1` → `foo>=1`, `foo[a]>=1`, `foo[b]>=1`."""
    name = canonicalize_name(requirement.name)
    reqs = [Req(name, None, requirement.specifier, requirement, source)]
    for extra in sorted(canonicalize_name(e) for e in requirement.extras):
        reqs.append(Req(name, extra, requirement.specifier, requirement, source))
    return reqs


_DEPENDENCY_REQS: dict[int, tuple[Requirement, tuple[Req, ...]]] = {}
"""id(requirement) -> (it, kept alive so the id stays its own; its Reqs)."""


def dependency_reqs(requirement: Requirement) -> tuple[Req, ...]:
    """`requirement_to_reqs` of a package's dependency, made once per Requirement object
    (`parse_requirement` shares them): every target asks again for every pin it reuses
    (data: ~6,000 times for ~1,000 requirements), and shared Reqs are shared by the crawler's
    bookkeeping too. At most ~16,000 kept."""
    found = _DEPENDENCY_REQS.get(id(requirement))
    if found is None or found[0] is not requirement:
        if len(_DEPENDENCY_REQS) >= 16384:
            _DEPENDENCY_REQS.clear()
        found = _DEPENDENCY_REQS[id(requirement)] = (requirement, tuple(requirement_to_reqs(requirement)))
    return found[1]


def applies(req: Requirement, environment: Mapping[str, str], extra: str | None) -> bool:
    """Does `req` apply to `name[extra]` (extra None: the base) in this environment?"""
    marker = req.marker
    if marker is None:
        return extra is None
    text = str(marker)
    mentions_extra = "extra" in text
    if extra is None:
        return not mentions_extra and marker_holds(marker, {**environment, "extra": ""}, text)
    return mentions_extra and marker_holds(marker, {**environment, "extra": extra}, text)


UNKNOWN_VARIABLES = ("platform_release", "platform_version")
"""The running kernel's release and version: no target knows them (they are not part of a wheel
tag), so a marker's term on them can hold on any target."""


def marker_holds(marker: Marker, environment: Mapping[str, str], text: str | None = None) -> bool:
    """Whether the marker may hold in this environment: a term on the kernel's release or version
    counts as true, so `six; platform_release >= '5.0'` is locked (under its marker, which sync
    evaluates on the machine) instead of silently left out. PEP 508 markers have no negation,
    so true for an unknown term never turns a marker false."""
    text = str(marker) if text is None else text
    if not any(var in text for var in UNKNOWN_VARIABLES):
        return marker.evaluate(dict(environment))
    return _terms_hold(marker._markers, dict(environment))


def _terms_hold(items: list[Any], environment: dict[str, str]) -> bool:
    """Evaluate packaging's parsed marker (terms, nested lists, 'and'/'or'; 'and' binds tighter)."""
    groups: list[list[bool]] = [[]]
    for item in items:
        if item == "or":
            groups.append([])
        elif isinstance(item, list):
            groups[-1].append(_terms_hold(item, environment))
        elif isinstance(item, tuple):
            if any(type(node).__name__ == "Variable" and node.value in UNKNOWN_VARIABLES for node in item):
                groups[-1].append(True)
            else:
                groups[-1].append(Marker(" ".join(node.serialize() for node in item)).evaluate(environment))
    return any(all(group) for group in groups)


@lru_cache(maxsize=16384)
def parse_requirement(text: str) -> Requirement:
    """`Requirement(text)`, memoised: the wheels of a version, and many versions, declare the
    same requirement strings (a warm lock of `data` parsed 5,049 of them, 963 distinct).
    Shared objects, so never modified."""
    return Requirement(text)


@lru_cache(maxsize=None)
def filename_tags(filename: str) -> frozenset[Tag]:
    """The tags of a wheel file name (memoised: the same names are ranked for every target)."""
    return parse_wheel_filename(filename)[3]


def file_tags(file: DistFile) -> frozenset[Tag]:
    return filename_tags(file.filename)


# -- roots ---------------------------------------------------------------------------------------


def root_requirements(spec: ProjectSpec) -> list[Req]:
    """Main dependencies, every extra and every group, each tagged with where it came from.
    A group that names the project itself (`myapp[test]`) stands for that extra's requirements."""
    out: list[Req] = []

    def add(texts: Sequence[str], source: str, seen: frozenset[str] = frozenset()) -> None:
        for text in texts:
            try:
                req = Requirement(text)
            except InvalidRequirement as exc:  # manifest validated already; defensive
                raise ManifestError(f"invalid requirement `{text}`: {exc}") from None
            if req.url:
                raise ManifestError(
                    f"`{text}`: direct URL requirements are not supported yet",
                    context={"file": spec.pyproject},
                    hint="use a version specifier from the index instead",
                )
            if canonicalize_name(req.name) == spec.name:
                for extra in sorted(canonicalize_name(e) for e in req.extras):
                    if extra in spec.optional_dependencies and extra not in seen:
                        add(spec.optional_dependencies[extra], source, seen | {extra})
                continue
            out.extend(requirement_to_reqs(req, source))

    add(spec.dependencies, "main")
    for extra, reqs in sorted(spec.optional_dependencies.items()):
        add(reqs, f"extra:{extra}")
    for group, reqs in sorted(spec.dependency_groups.items()):
        add(reqs, f"group:{group}")
    return out


def root_applies(req: Req, environment: Mapping[str, str]) -> bool:
    """Does a root requirement apply in this environment (its own marker; extras and groups
    are all part of a universal resolution)?"""
    marker = req.requirement.marker
    return marker is None or marker_holds(marker, {**environment, "extra": ""})


def context_marker(source: str) -> str | None:
    """The marker that stands for a root's source in the lock: `'x' in extras` for an extra,
    `'g' in dependency_groups` for a group, None for the main dependencies."""
    kind, _, name = source.partition(":")
    if kind == "extra":
        return f"'{name}' in extras"
    if kind == "group":
        return f"'{name}' in dependency_groups"
    return None

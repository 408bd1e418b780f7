"""Edits of pyproject.toml for `add` and `remove`, through tomlkit: text in, text out.

Only the one array that changes is touched; comments, order and layout of everything else stay
byte for byte (tomlkit round-trips what it does not edit). A requirement already present (same
normalized name) is replaced where it stands instead of being added twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomlkit
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from lockenv.errors import ManifestError
from lockenv.project import PYPROJECT


@dataclass(frozen=True)
class Target:
    """Which requirement list: `[project] dependencies` (kind "main"), a dependency group or an
    extra (`[project.optional-dependencies]`)."""

    kind: str = "main"
    name: str | None = None

    def __str__(self) -> str:
        if self.kind == "group":
            return f"[dependency-groups] {self.name}"
        if self.kind == "extra":
            return f"[project.optional-dependencies] {self.name}"
        return "[project] dependencies"


def parse_requirement(text: str) -> Requirement:
    """A requirement given on the command line, or a ManifestError saying what is wrong."""
    try:
        return Requirement(text)
    except InvalidRequirement as exc:
        raise ManifestError(
            f"`{text}` is not a valid requirement: {exc}",
            hint="write it as in pyproject.toml, such as `httpx`, `httpx>=0.27` or "
                 "`httpx[http2]>=0.27; python_version >= '3.10'`",
        ) from None


def _load(text: str, path: Path) -> Any:
    """The tomlkit document of pyproject.toml. A file TOML refuses is reported as `lock`
    reports it (`parse_toml`: file:line:column, the line, a caret), not in tomlkit's words,
    which name a `'\\x00'` for an unexpected end of file."""
    from lockenv.manifest import parse_toml

    parse_toml(path, text)
    try:
        return tomlkit.parse(text)
    except Exception as exc:  # tomlkit's ParseError carries line and column in its text
        raise ManifestError(f"{path}: not valid TOML: {exc}", context={"file": str(path)},
                            hint="fix the file, then run the command again") from None


def _array(doc: Any, target: Target, path: Path, *, create: bool) -> Any:
    """The tomlkit array `target` names (made, with its tables, when `create`), else None."""
    project = doc.get("project")
    if project is None:
        raise ManifestError(f"{path} has no [project] table", context={"file": str(path)},
                            hint="run `lockenv init` to write a minimal one")
    if target.kind == "main":
        if "dependencies" in project.get("dynamic", []):
            raise ManifestError(
                f"{path}: the project's dependencies are dynamic (computed by the build backend), "
                "so lockenv cannot edit them", context={"file": str(path)},
                hint="list them in `[project] dependencies` instead, or edit where the backend "
                     "reads them")
        table, key = project, "dependencies"
    elif target.kind == "extra":
        table, key = project.get("optional-dependencies"), str(canonicalize_name(target.name or ""))
        key = _existing_key(table, target.name or "")
        if table is None and create:  # a new [project.optional-dependencies], a blank line after
            table = tomlkit.table()
            table.add(key, tomlkit.array())
            table.add(tomlkit.nl())
            project.add("optional-dependencies", table)
    else:
        table = doc.get("dependency-groups")
        if table is None and create:
            table = tomlkit.table()
            doc.add("dependency-groups", table)
        key = _existing_key(table, target.name or "")
    if table is None:
        return None
    if key not in table:
        if not create:
            return None
        table[key] = tomlkit.array()
    array = table[key]
    if not isinstance(array, list):
        raise ManifestError(f"{path}: {target} is not a list", context={"file": str(path)},
                            hint="make it an array of requirement strings")
    return array


def _existing_key(table: Any, name: str) -> str:
    """The key spelling already in `table` for this group or extra name (normalized equal), or
    `name` as given when there is none."""
    if table is not None:
        for key in table:
            if canonicalize_name(str(key)) == canonicalize_name(name):
                return str(key)
    return name


def _index_of(array: Any, name: str) -> list[int]:
    """Positions of the requirement strings for `name` (normalized) in `array`; tables such as
    `{include-group = "..."}` are skipped."""
    found = []
    for i, item in enumerate(array):
        if isinstance(item, str):
            try:
                if canonicalize_name(Requirement(str(item)).name) == canonicalize_name(name):
                    found.append(i)
            except InvalidRequirement:
                continue
    return found


def add_requirements(text: str, requirements: list[Requirement], target: Target,
                     path: Path = Path(PYPROJECT)) -> str:
    """`text` with each requirement added to `target`, or replacing the first one with its
    name there (later duplicates removed)."""
    doc = _load(text, path)
    array = _array(doc, target, path, create=True)
    for req in requirements:
        spelled = str(req)
        where = _index_of(array, req.name)
        if where:
            array[where[0]] = spelled
            for i in reversed(where[1:]):
                del array[i]
        else:
            array.append(spelled)
    return tomlkit.dumps(doc)


def listed(text: str, target: Target, path: Path = Path(PYPROJECT)) -> dict[str, str]:
    """What `target` lists now, by normalized name (the first spelling of each): what `add`
    compares against to say added, updated or already there."""
    array = _array(_load(text, path), target, path, create=False)
    out: dict[str, str] = {}
    for item in array or []:
        if isinstance(item, str):
            try:
                out.setdefault(canonicalize_name(Requirement(str(item)).name), str(item))
            except InvalidRequirement:
                continue
    return out


def remove_requirements(text: str, names: list[str], target: Target,
                        path: Path = Path(PYPROJECT)) -> str:
    """`text` without any requirement on these names in `target`; a name not there is an error
    naming where it looked (and where else it is, if anywhere)."""
    doc = _load(text, path)
    array = _array(doc, target, path, create=False)
    for name in names:
        where = _index_of(array, name) if array is not None else []
        if not where:
            elsewhere = [str(t) for t in all_targets(doc) if t != target
                         and _index_of(_array(doc, t, path, create=False) or [], name)]
            raise ManifestError(
                f"`{name}` is not in {target} of {path}",
                context={"file": str(path), "package": name},
                hint=(f"it is in {', '.join(elsewhere)}: pass "
                      + _option_for(all_targets(doc), elsewhere[0]) if elsewhere
                      else "check the name; `lockenv tree` shows what the lock holds"),
            )
        for i in reversed(where):
            del array[i]
    return tomlkit.dumps(doc)


def all_targets(doc: Any) -> list[Target]:
    """Every requirement list the document has."""
    project = doc.get("project") or {}
    targets = [Target()]
    targets += [Target("extra", str(k)) for k in (project.get("optional-dependencies") or {})]
    targets += [Target("group", str(k)) for k in (doc.get("dependency-groups") or {})]
    return targets


def _option_for(targets: list[Target], shown: str) -> str:
    for t in targets:
        if str(t) == shown:
            if t.kind == "group":
                return f"`--group {t.name}`"
            if t.kind == "extra":
                return f"`--optional {t.name}`"
    return "no --group/--optional"


def bare_names(requirements: list[Requirement]) -> list[str]:
    """Names given without a version or URL: they get a lower bound on the locked version."""
    return [r.name for r in requirements if not r.specifier and not r.url]


def with_lower_bound(req: Requirement, version: str) -> Requirement:
    bounded = Requirement(str(req))
    bounded.specifier = SpecifierSet(f">={version}")
    return bounded


def minimal_pyproject(name: str, requires_python: str) -> str:
    """The `lockenv init` file: PEP 621 [project] with an empty dependency list."""
    doc = tomlkit.document()
    project = tomlkit.table()
    project.add("name", name)
    project.add("version", "0.1.0")
    project.add("requires-python", requires_python)
    project.add("dependencies", tomlkit.array())
    doc.add("project", project)
    return tomlkit.dumps(doc)

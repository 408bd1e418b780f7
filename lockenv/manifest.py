"""pyproject.toml → ProjectSpec: what the project asks for, normalised, with errors that name
the file and the line.

Normalisation (so that respelling is never a "change" and the lock compares cleanly):
- requirement strings become `str(Requirement(s))` with the project name and extras
  canonicalised (PEP 503): `Foo_Bar[Sec] >= 1.0` → `foo-bar[sec]>=1.0`; the lock records this
  spelling too (uv keeps the user's spelling but compares normalised; one spelling is simpler);
- extra and group names are canonicalised; a group's `include-group` entries are expanded;
- `requires-python` and `[tool.lockenv] environments` markers are written as packaging prints
  them; `exclude-newer` becomes an aware UTC datetime (a bare date means midnight UTC).

`ProjectSpec.line_of` maps keys to 1-based line numbers: the tables (`[project]`,
`[dependency-groups]`, `[tool.lockenv]`, `[build-system]`, `[project.optional-dependencies]`),
the dotted keys that were found (`project.dependencies`, `tool.lockenv.index-url`,
`dependency-groups.dev`, …) and the short aliases `dependencies`, `requires-python`, `name`.

This module is on the no-op path: it imports the stdlib TOML parser and packaging's small
modules only (no tomlkit, no httpx).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timezone
from pathlib import Path
from typing import Any

from packaging.markers import InvalidMarker, Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name

from lockenv.errors import ManifestError
from lockenv.project import PYPROJECT
from lockenv.models import IndexConfig, IndexSettings, ProjectSpec

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["PYPROJECT", "load", "normalize_requirement", "parse_exclude_newer", "default_index_url"]

INDEX_URL_ENV = "LOCKENV_INDEX_URL"
_INDEX_NAME = re.compile(r"[a-z0-9-]+")

_TOML_POS = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")
_TOML_EOF = re.compile(r"\s*\(at end of document\)\s*$")
_TABLE_RE = re.compile(r"^\s*\[\[?\s*([^\[\]]+?)\s*\]\]?\s*(?:#.*)?$")
_KEY_RE = re.compile(r"""^\s*((?:[A-Za-z0-9_\-]+|"[^"\n]*"|'[^'\n]*')(?:\s*\.\s*(?:[A-Za-z0-9_\-]+|"[^"\n]*"|'[^'\n]*'))*)\s*=""")


def load(project_dir: Path, *, environ: Mapping[str, str] | None = None) -> ProjectSpec:
    """Read `project_dir/pyproject.toml` into a ProjectSpec; ManifestError on anything wrong."""
    env = os.environ if environ is None else environ
    root = Path(project_dir).absolute()
    path = root / PYPROJECT
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ManifestError(
            f"no {PYPROJECT} in {root}",
            hint=f"create {PYPROJECT} with a [project] table, or point at the project with --project DIR",
            context={"file": str(path)},
        ) from None
    except IsADirectoryError:
        raise ManifestError(f"{path} is a directory, not a file", context={"file": str(path)}) from None
    except OSError as exc:
        raise ManifestError(f"cannot read {path}: {exc.strerror or exc}", context={"file": str(path)}) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ManifestError(
            f"{path}:{line}: not valid UTF-8 (byte {exc.start})",
            hint="save pyproject.toml as UTF-8",
            context={"file": str(path), "line": line},
        ) from None
    data = parse_toml(path, text)
    return _Reader(path, text, data, env).spec()


def parse_toml(path: Path, text: str) -> dict[str, Any]:
    """pyproject.toml's table, or the error `lock`, `add` and `remove` all give for a file
    TOML refuses: a byte-order mark, file:line:column with the line and a caret, or nesting
    too deep to read."""
    refuse_bom(path, text)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _toml_error(path, text, exc) from None
    except RecursionError:  # F31: arrays or tables nested thousands deep
        raise ManifestError(f"{path}: nested too deeply to read",
                            hint="pyproject.toml nests arrays or tables thousands of levels deep; "
                                 "flatten it", context={"file": str(path)}) from None


def refuse_bom(path: Path, text: str) -> None:
    """Notepad's "UTF-8" starts with a byte-order mark, which TOML readers (tomllib, tomlkit,
    pip, build backends) refuse with a puzzling "invalid statement" at a line that looks fine."""
    if text.startswith("\ufeff"):
        raise ManifestError(
            f"{path}:1: starts with a byte-order mark (BOM), which TOML does not allow",
            hint="save pyproject.toml as UTF-8 without BOM (pip and build backends refuse it too)",
            context={"file": str(path), "line": 1},
        )


def static_version(pyproject: Path) -> str | None:
    """`[project] version` when it is static (not listed in `dynamic`), normalised when valid;
    None when it is dynamic, absent or the file is unreadable. Never raises: sync asks this of
    directory entries (uv writes the project without a version) and they may not be projects."""
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    project = data.get("project", {})
    version = project.get("version")
    if isinstance(version, str) and "version" not in project.get("dynamic", []):
        from packaging.version import InvalidVersion, Version

        try:
            return str(Version(version))
        except InvalidVersion:
            return version
    return None


def normalize_requirement(requirement: str | Requirement) -> str:
    """The one spelling lockenv stores and compares: PEP 503 name and extras, packaging's
    rendering of specifiers and markers. Raises InvalidRequirement."""
    req = requirement if isinstance(requirement, Requirement) else Requirement(requirement)
    req.name = canonicalize_name(req.name)
    req.extras = {canonicalize_name(e) for e in req.extras}
    return str(req)


def _lock_only_variable(requirement: str) -> str | None:
    """`extras` or `dependency_groups` when the requirement's marker names it: PEP 751 defines them
    for lock files only, so packaging cannot evaluate such a marker in a project's requirement
    (the lock failed with an internal error, UndefinedEnvironmentName)."""
    from packaging.markers import UndefinedEnvironmentName, default_environment

    marker = Requirement(requirement).marker
    if marker is None:
        return None
    try:  # every term is evaluated (no short cut), so an undefined variable anywhere raises
        environment: dict[str, str] = {**default_environment(), "extra": ""}  # type: ignore[dict-item]
        marker.evaluate(environment, "metadata")
    except UndefinedEnvironmentName as exc:
        return "dependency_groups" if "dependency_groups" in str(exc) else "extras"
    return None


def parse_exclude_newer(value: object) -> datetime:
    """An RFC 3339 timestamp or a `YYYY-MM-DD` date (midnight UTC) → an aware UTC datetime.
    Naive timestamps are taken as UTC so the lock means the same on every machine. Raises
    ValueError with the accepted forms."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value, time(0, 0))
    elif isinstance(value, str):
        s = value.strip()
        try:
            if len(s) == 10:
                moment = datetime.combine(date.fromisoformat(s), time(0, 0))
            else:
                if s[-1:] in ("z", "Z"):
                    s = s[:-1] + "+00:00"
                moment = datetime.fromisoformat(s.replace(" ", "T", 1) if "T" not in s.upper() else s)
        except ValueError:
            raise ValueError(
                f"invalid timestamp `{value}`: expected an RFC 3339 timestamp "
                "(2025-01-31T12:00:00Z) or a date (2025-01-31)"
            ) from None
    else:
        raise ValueError(f"invalid timestamp {value!r}: expected a string such as 2025-01-31T12:00:00Z")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def default_index_url() -> str:
    """PyPI, from the one constant in `lockenv.index` (its light module when it exists, so that
    reading the manifest does not import httpx)."""
    from lockenv.urls import DEFAULT_INDEX_URL

    return DEFAULT_INDEX_URL


def _toml_error(path: Path, text: str, exc: Exception) -> ManifestError:
    msg = str(exc)
    line = column = None
    m = _TOML_POS.search(msg)
    if m:
        line, column = int(m.group(1)), int(m.group(2))
        msg = msg[: m.start()]
    elif _TOML_EOF.search(msg):
        msg = _TOML_EOF.sub("", msg) + " at end of file"
        line = text.count("\n") + 1
    line = getattr(exc, "lineno", None) or line
    column = getattr(exc, "colno", None) or column
    where = f"{path}:{line}:{column}" if line and column else (f"{path}:{line}" if line else str(path))
    details: list[str] = []
    if line:
        lines = text.splitlines()
        if 0 < line <= len(lines):
            details.append(lines[line - 1])
            if column:
                details.append(" " * (column - 1) + "^")
    reason = msg[:1].lower() + msg[1:]
    return ManifestError(
        f"{where}: invalid TOML: {reason}",
        hint="fix the TOML syntax at that line; nothing was written",
        context={"file": str(path), "line": line, "column": column},
        details=details,
    )


class _Lines:
    """Where keys and strings are in the raw text, for messages (a line scanner, not a
    parser: good enough to point at the right line, never used for values)."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self.keys: dict[str, int] = {}
        table = ""
        for number, line in enumerate(self.lines, 1):
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            m = _TABLE_RE.match(line)
            if m and stripped.startswith("["):
                table = _dotted(m.group(1))
                self.keys.setdefault(f"[{table}]", number)
                self.keys.setdefault(table, number)
                continue
            m = _KEY_RE.match(line)
            if m:
                key = _dotted(m.group(1))
                self.keys.setdefault(f"{table}.{key}" if table else key, number)

    def key(self, dotted: str) -> int | None:
        """Line of a key (`project.dependencies`), else of its nearest enclosing table."""
        parts = dotted.split(".")
        while parts:
            found = self.keys.get(".".join(parts))
            if found:
                return found
            parts.pop()
        return None

    def string(self, value: str, near: str) -> int | None:
        """Line of the quoted string `value`, searching from the line of key `near`."""
        start = self.key(near) or 1
        quoted = (f'"{value}"', f"'{value}'", f'"""{value}', f"'''{value}")
        for number in range(start, len(self.lines) + 1):
            if any(q in self.lines[number - 1] for q in quoted):
                return number
        for number in range(1, start):
            if any(q in self.lines[number - 1] for q in quoted):
                return number
        return self.key(near)


def _dotted(key: str) -> str:
    parts = re.findall(r'"[^"]*"|\'[^\']*\'|[^.\s]+', key)
    return ".".join(p[1:-1] if p[:1] in "\"'" else p for p in parts)


class _Reader:
    """One pass over the parsed document; every complaint names file, key and line."""

    def __init__(self, path: Path, text: str, data: dict[str, Any], environ: Mapping[str, str]) -> None:
        self.path = path
        self.data = data
        self.environ = environ
        self.where = _Lines(text)

    # -- errors ---------------------------------------------------------------------------

    def fail(self, message: str, *, key: str, line: int | None = None, hint: str | None = None,
             details: Sequence[str] = (), requirement: str | None = None, group: str | None = None,
             groups: Sequence[str] | None = None, package: str | None = None) -> ManifestError:
        line = line if line is not None else self.where.key(key)
        prefix = f"{self.path}:{line}" if line else str(self.path)
        return ManifestError(
            f"{prefix}: {message}",
            hint=hint or "fix that entry of pyproject.toml (PEP 621, PEP 735, [tool.lockenv] in the README); nothing was written",
            context={"file": str(self.path), "line": line, "key": key, "requirement": requirement,
                     "group": group, "groups": groups, "package": package},
            details=details,
        )

    def table(self, value: object, key: str) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(f"`{key}` must be a table, not {_kind(value)}", key=key)
        return value

    def string_list(self, value: object, key: str) -> list[str]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(f"`{key}` must be an array of strings, not {_kind(value)}", key=key)
        for i, item in enumerate(value):
            if not isinstance(item, str):
                raise self.fail(f"`{key}[{i}]` must be a string, not {_kind(item)}", key=key)
        return value

    def requirement(self, value: str, key: str, index: int) -> str:
        try:
            normalized = normalize_requirement(value)
        except InvalidRequirement as exc:
            reason, *rest = str(exc).splitlines()
            raise self.fail(
                f"invalid requirement `{value}` in `{key}[{index}]`: {reason}",
                key=f"{key}[{index}]",
                line=self.where.string(value, key),
                hint="write a PEP 508 requirement, such as `httpx>=0.27` or `rich[jupyter]; python_version >= '3.11'`",
                details=rest,
                requirement=value,
            ) from None
        variable = _lock_only_variable(normalized)
        if variable is not None:
            where = "[project.optional-dependencies]" if variable == "extras" else "[dependency-groups]"
            raise self.fail(
                f"`{value}` in `{key}[{index}]`: the marker variable `{variable}` exists only in lock files"
                " (PEP 751), not in a project's requirements",
                key=f"{key}[{index}]",
                line=self.where.string(value, key),
                hint=f"list the requirement under {where} instead of naming `{variable}` in its marker",
                requirement=value,
            )
        return normalized

    def requirements(self, value: object, key: str) -> tuple[str, ...]:
        return tuple(self.requirement(item, key, i) for i, item in enumerate(self.string_list(value, key)))

    # -- sections -------------------------------------------------------------------------

    def spec(self) -> ProjectSpec:
        project = self.data.get("project")
        if project is None:
            raise self.fail(
                "no [project] table",
                key="project",
                hint='add a [project] table with `name`, `requires-python` and `dependencies`',
            )
        project = self.table(project, "project")
        name = self.name(project)
        requires_python, declared = self.requires_python(project)
        dynamic = self.string_list(project.get("dynamic"), "project.dynamic")
        if "dependencies" in dynamic and "dependencies" not in project:
            raise self.fail(
                "`dependencies` is listed in `project.dynamic`: lockenv needs them written in pyproject.toml",
                key="project.dynamic",
                hint="move the dependencies into `[project] dependencies`",
            )
        dependencies = self.requirements(project.get("dependencies"), "project.dependencies")
        extras = self.optional_dependencies(project.get("optional-dependencies"))
        groups = self.dependency_groups(self.data.get("dependency-groups"))
        tool = self.table(self.table(self.data.get("tool"), "tool").get("lockenv"), "tool.lockenv")
        known = {"index-url", "environments", "required-environments", "exclude-newer", "default-groups", "index",
                 "sources", "keyring-provider", "allow-insecure-host"}
        unknown = sorted(set(tool) - known)
        if unknown:
            raise self.fail(
                f"unknown key `{unknown[0]}` in [tool.lockenv]",
                key=f"tool.lockenv.{unknown[0]}",
                hint="[tool.lockenv] accepts: " + ", ".join(sorted(known)),
            )
        indexes = self.index_settings(tool)
        return ProjectSpec(
            root=str(self.path.parent),
            pyproject=str(self.path),
            name=name,
            requires_python=requires_python,
            requires_python_declared=declared,
            dependencies=dependencies,
            optional_dependencies=extras,
            dependency_groups=groups,
            default_groups=self.default_groups(tool.get("default-groups"), groups),
            index_url=indexes.default.url,
            environments=self.environments(tool.get("environments")),
            exclude_newer=self.exclude_newer(tool.get("exclude-newer")),
            has_build_system=isinstance(self.data.get("build-system"), dict),
            line_of=self.line_of(),
            indexes=indexes,
            required_environments=self.environments(tool.get("required-environments"),
                                                    "tool.lockenv.required-environments"),
            ignored_sources=_ignored_sources(self.data, dependencies, extras, groups),
        )

    def name(self, project: dict[str, Any]) -> str:
        name = project.get("name")
        if name is None:
            raise self.fail("`project.name` is missing", key="project",
                            hint='add `name = "your-project"` to [project]')
        if not isinstance(name, str):
            raise self.fail(f"`project.name` must be a string, not {_kind(name)}", key="project.name")
        try:
            return canonicalize_name(name, validate=True)
        except ValueError:
            raise self.fail(
                f"invalid project name `{name}`",
                key="project.name",
                hint="use letters, digits, and `-`, `_`, `.` between them",
            ) from None

    def valid_name(self, name: str, what: str, key: str) -> str:
        """A PEP 508 name, normalised; extras and groups must be (PEP 685, PEP 735)."""
        try:
            return canonicalize_name(name, validate=True)
        except ValueError:
            raise self.fail(
                f"invalid {what} name `{name}`",
                key=key,
                hint="use letters, digits, and `-`, `_`, `.` between them",
            ) from None

    def requires_python(self, project: dict[str, Any]) -> tuple[str, bool]:
        value = project.get("requires-python")
        if value is None:
            return f">={sys.version_info[0]}.{sys.version_info[1]}", False
        key = "project.requires-python"
        if not isinstance(value, str):
            raise self.fail(f"`{key}` must be a string, not {_kind(value)}", key=key)
        if not value.strip():
            raise self.fail(f"`{key}` is empty", key=key, hint='write a range such as `requires-python = ">=3.10"`')
        try:
            return str(SpecifierSet(value)), True
        except InvalidSpecifier as exc:
            raise self.fail(
                f"invalid `requires-python` `{value}`: {exc}",
                key=key,
                hint='write a version range such as `requires-python = ">=3.10"`',
            ) from None

    def optional_dependencies(self, value: object) -> dict[str, tuple[str, ...]]:
        key = "project.optional-dependencies"
        table = self.table(value, key)
        out: dict[str, tuple[str, ...]] = {}
        spelled: dict[str, str] = {}
        for extra, reqs in table.items():
            norm = self.valid_name(extra, "extra", f"{key}.{extra}")
            if norm in spelled:
                raise self.fail(f"extras `{spelled[norm]}` and `{extra}` are the same name", key=f"{key}.{extra}")
            spelled[norm] = extra
            out[norm] = self.requirements(reqs, f"{key}.{extra}")
        return dict(sorted(out.items()))

    def dependency_groups(self, value: object) -> dict[str, tuple[str, ...]]:
        """PEP 735 groups with includes expanded; unknown and cyclic includes named."""
        key = "dependency-groups"
        table = self.table(value, key)
        if not table:
            return {}
        spelled: dict[str, str] = {}
        for group, items in table.items():
            norm = self.valid_name(group, "dependency group", f"{key}.{group}")
            if norm in spelled:
                raise self.fail(f"dependency groups `{spelled[norm]}` and `{group}` are the same name",
                                key=f"{key}.{group}")
            spelled[norm] = group
            gkey = f"{key}.{group}"
            if not isinstance(items, list):
                raise self.fail(f"`{gkey}` must be an array, not {_kind(items)}", key=gkey)
            for i, item in enumerate(items):
                if isinstance(item, str):
                    self.requirement(item, gkey, i)
                elif isinstance(item, dict) and set(item) == {"include-group"} and isinstance(item["include-group"], str):
                    target = item["include-group"]
                    if canonicalize_name(target) not in {canonicalize_name(g) for g in table}:
                        raise self.fail(
                            f"dependency group `{group}` includes unknown group `{target}`",
                            key=f"{gkey}[{i}]",
                            line=self.where.string(target, gkey),
                            hint="define that group in [dependency-groups] or remove the include; groups: "
                            + ", ".join(f"`{g}`" for g in table),
                            group=group,
                        )
                else:
                    raise self.fail(
                        f"`{gkey}[{i}]` must be a requirement string or `{{include-group = \"name\"}}`, not {item!r}",
                        key=f"{gkey}[{i}]",
                    )
        cycle = _find_cycle({canonicalize_name(g): [canonicalize_name(i["include-group"])
                                                    for i in items if isinstance(i, dict)]
                             for g, items in table.items()})
        if cycle:
            names = [spelled[c] for c in cycle]
            chain = " → ".join(f"`{n}`" for n in [*names, names[0]])
            raise self.fail(
                f"dependency groups include each other in a cycle: {chain}",
                key=f"{key}.{names[0]}",
                hint="remove one of these `include-group` entries",
                groups=", ".join(names),
            )
        from packaging.dependency_groups import DependencyGroupResolver

        try:
            resolver = DependencyGroupResolver(table)
            out = {}
            for group in table:
                norm = canonicalize_name(group)
                seen: dict[str, None] = {}
                for req in resolver.resolve(group):
                    seen.setdefault(normalize_requirement(str(req)), None)
                out[norm] = tuple(seen)
        except Exception as exc:  # what we did not catch above: still the user's data
            raise self.fail(f"invalid [dependency-groups]: {_flatten(exc)}", key=key) from None
        return dict(sorted(out.items()))

    def default_groups(self, value: object, groups: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
        key = "tool.lockenv.default-groups"
        if value is None:
            return ("dev",) if "dev" in groups else ()
        names = self.string_list(value, key)
        out: list[str] = []
        for name in names:
            norm = canonicalize_name(name)
            if norm not in groups:
                raise self.fail(
                    f"`{key}` names `{name}`, which is not a dependency group",
                    key=key,
                    line=self.where.string(name, key),
                    hint=("groups defined in [dependency-groups]: " + ", ".join(f"`{g}`" for g in groups))
                    if groups else "define it in [dependency-groups] or remove it",
                    group=name,
                )
            if norm not in out:
                out.append(norm)
        return tuple(sorted(out))

    def index_url(self, value: object) -> str:
        from_env = self.environ.get(INDEX_URL_ENV, "").strip()
        if from_env:
            url = from_env
            if not _is_url(url):
                raise ManifestError(
                    f"{INDEX_URL_ENV} is not an http(s) URL",
                    hint=f"set {INDEX_URL_ENV} to the index URL, such as https://host/simple/",
                    context={"variable": INDEX_URL_ENV},
                )
            if _garbled(url):
                raise ManifestError(f"{INDEX_URL_ENV}: {_GARBLED}", hint=_GARBLED_HINT,
                                    context={"variable": INDEX_URL_ENV})
            return url
        if value is None:
            return default_index_url()
        key = "tool.lockenv.index-url"
        if not isinstance(value, str) or not _is_url(value.strip()):
            raise self.fail(
                f"`{key}` must be an http(s) URL, not {value!r}" if not isinstance(value, str)
                else f"`{key}` is not an http(s) URL",
                key=key,
                hint='write the index URL, such as `index-url = "https://host/simple/"`',
            )
        if _garbled(value.strip()):
            raise self.fail(f"`{key}`: {_GARBLED}", key=key, hint=_GARBLED_HINT)
        return value.strip()

    def index_settings(self, tool: dict[str, Any]) -> IndexSettings:
        """`[[tool.lockenv.index]]`, `sources`, `keyring-provider`, `allow-insecure-host`.

        The default index (last resort): LOCKENV_INDEX_URL, else the one index declared
        `default = true`, else `index-url`, else PyPI. An explicit index is never searched."""
        named = self.indexes(tool.get("index"))
        defaults = [i for i in named if i.default]
        if len(defaults) > 1:
            raise self.fail(f"indexes `{defaults[0].name}` and `{defaults[1].name}` are both "
                            "`default = true`", key="tool.lockenv.index",
                            hint="keep `default = true` on one index only")
        if defaults and "index-url" in tool:
            raise self.fail(f"index `{defaults[0].name}` is `default = true` and `index-url` is "
                            "set too: both replace PyPI", key="tool.lockenv.index-url",
                            hint="remove `index-url`, or `default = true`")
        from_env = bool(self.environ.get(INDEX_URL_ENV, "").strip())
        if from_env or not defaults or defaults[0].explicit:
            last = IndexConfig(name=None, url=self.index_url(tool.get("index-url")))
        else:
            last = defaults[0]
        search = tuple(i for i in named if not i.explicit and not i.default) + (last,)
        return IndexSettings(
            search=search, named=named, sources=self.sources(tool.get("sources"), named),
            keyring_provider=self.keyring_provider(tool.get("keyring-provider")),
            allow_insecure_hosts=tuple(self.string_list(tool.get("allow-insecure-host"),
                                                        "tool.lockenv.allow-insecure-host")),
        )

    def indexes(self, value: object) -> tuple[IndexConfig, ...]:
        key = "tool.lockenv.index"
        if value is None:
            return ()
        if not isinstance(value, list):
            raise self.fail(f"`{key}` must be an array of tables (`[[{key}]]`), not "
                            f"{_kind(value)}", key=key)
        out: list[IndexConfig] = []
        for i, entry in enumerate(value):
            where = f"{key}[{i}]"
            if not isinstance(entry, dict):
                raise self.fail(f"`{where}` must be a table, not {_kind(entry)}", key=key)
            unknown = sorted(set(entry) - {"name", "url", "explicit", "default"})
            if unknown:
                raise self.fail(f"unknown key `{unknown[0]}` in `[[{key}]]`", key=key,
                                hint="an index takes `name`, `url`, `explicit` and `default`")
            name = entry.get("name")
            if not isinstance(name, str) or not _INDEX_NAME.fullmatch(name):
                shown = f"`{name}`" if isinstance(name, str) else _kind(name)
                raise self.fail(
                    f"invalid index name {shown} in `{where}`" if name is not None
                    else f"`{where}` has no `name`", key=key,
                    line=self.where.string(name, key) if isinstance(name, str) else None,
                    hint='name each index with lower-case letters, digits and `-`, such as '
                         '`name = "internal"`')
            if any(o.name == name for o in out):
                raise self.fail(f"two indexes are named `{name}`", key=key,
                                line=self.where.string(name, key), hint="give each index its own name")
            url = entry.get("url")
            if not isinstance(url, str) or not _is_url(url.strip()):
                raise self.fail(f"index `{name}` needs a `url` that is an http(s) URL", key=key,
                                hint='write `url = "https://host/simple/"` (simple API) or '
                                     '`url = "https://host/pypi"` (JSON API)')
            if _garbled(url.strip()):
                raise self.fail(f"the `url` of index `{name}`: {_GARBLED}", key=key,
                                hint=_GARBLED_HINT)
            flags = {}
            for flag in ("explicit", "default"):
                if not isinstance(entry.get(flag, False), bool):
                    raise self.fail(f"`{flag}` of index `{name}` must be true or false", key=key)
                flags[flag] = bool(entry.get(flag, False))
            out.append(IndexConfig(name=name, url=url.strip(), **flags))
        return tuple(out)

    def sources(self, value: object, named: tuple[IndexConfig, ...]) -> dict[str, str]:
        key = "tool.lockenv.sources"
        out: dict[str, str] = {}
        known = [i.name for i in named if i.name]
        for package, source in self.table(value, key).items():
            where = f"{key}.{package}"
            norm = self.valid_name(package, "package", where)
            if not (isinstance(source, dict) and set(source) == {"index"}
                    and isinstance(source["index"], str)):
                raise self.fail(f"`{where}` must be `{{ index = \"name\" }}`", key=where,
                                hint=f'write `{package} = {{ index = "internal" }}`')
            if source["index"] not in known:
                raise self.fail(
                    f"`{package}` is pinned to index `{source['index']}`, which is not declared",
                    key=where, line=self.where.string(source["index"], key),
                    hint=("declared indexes: " + ", ".join(f"`{n}`" for n in known)) if known
                    else "declare it in a [[tool.lockenv.index]] table with `name` and `url`",
                    package=norm)
            out[norm] = source["index"]
        return dict(sorted(out.items()))

    def keyring_provider(self, value: object) -> str | None:
        key = "tool.lockenv.keyring-provider"
        env = self.environ.get("LOCKENV_KEYRING_PROVIDER", "").strip()
        if env:
            if env not in ("subprocess", "disabled"):
                raise ManifestError(
                    f"LOCKENV_KEYRING_PROVIDER is `{env}`; it must be `subprocess` or `disabled`",
                    hint="unset it, or set it to `subprocess` to ask the `keyring` command",
                    context={"variable": "LOCKENV_KEYRING_PROVIDER"})
            return None if env == "disabled" else env
        if value is None or value == "disabled":
            return None
        if value != "subprocess":
            raise self.fail(f"`{key}` must be \"subprocess\" or \"disabled\", not {value!r}",
                            key=key, hint='write `keyring-provider = "subprocess"` to ask the '
                                          '`keyring` command for index passwords')
        return "subprocess"

    def environments(self, value: object, key: str = "tool.lockenv.environments") -> tuple[str, ...]:
        out: list[str] = []
        for i, marker in enumerate(self.string_list(value, key)):
            try:
                out.append(str(Marker(marker)))
            except InvalidMarker as exc:
                reason, *rest = str(exc).splitlines()
                raise self.fail(
                    f"invalid marker `{marker}` in `{key}[{i}]`: {reason}",
                    key=f"{key}[{i}]",
                    line=self.where.string(marker, key),
                    hint="write a PEP 508 marker, such as `sys_platform == 'linux'`",
                    details=rest,
                ) from None
        return tuple(out)

    def exclude_newer(self, value: object) -> datetime | None:
        if value is None:
            return None
        key = "tool.lockenv.exclude-newer"
        try:
            return parse_exclude_newer(value)
        except ValueError as exc:
            raise self.fail(f"`{key}`: {exc}", key=key,
                            hint='write e.g. `exclude-newer = "2025-01-31T00:00:00Z"`') from None

    def line_of(self) -> dict[str, int]:
        keys = dict(self.where.keys)
        for short in ("dependencies", "requires-python", "name"):
            line = keys.get(f"project.{short}")
            if line:
                keys[short] = line
        return keys


_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
"""An index or source name shown in a message as it is written; others (control characters,
a terminal's escape sequences, from a cloned project's pyproject.toml) are not shown."""
_SOURCE_KINDS = (("path", "a path"), ("git", "a git repository"), ("url", "a URL"),
                 ("workspace", "a workspace member"), ("index", "its index `{}`"), ("source", "its source `{}`"))


def _ignored_sources(data: dict[str, Any], dependencies: Sequence[str], extras: Mapping[str, Sequence[str]],
                     groups: Mapping[str, Sequence[str]]) -> tuple[tuple[str, str], ...]:
    """`ProjectSpec.ignored_sources`: uv's `[tool.uv.sources]` and Poetry's dependency tables,
    for the packages the project requires. Values are named by kind only (`a git repository`):
    a URL may carry credentials."""
    tool_table = data.get("tool")
    if not isinstance(tool_table, dict) or not ({"uv", "poetry"} & set(tool_table)):
        return ()  # the usual case, and the no-op path: no requirement parsed again
    required: set[str] = set()
    for text in [*dependencies, *(r for rs in extras.values() for r in rs), *(r for rs in groups.values() for r in rs)]:
        try:
            required.add(canonicalize_name(Requirement(text).name))
        except InvalidRequirement:
            continue
    def sub(table: object, key: str) -> dict[str, Any]:
        value = table.get(key) if isinstance(table, dict) else None
        return value if isinstance(value, dict) else {}

    tool = sub(data, "tool")
    poetry = sub(tool, "poetry")
    tables: list[tuple[str, object]] = [("[tool.uv.sources]", sub(tool, "uv").get("sources")),
                                        ("[tool.poetry.dependencies]", poetry.get("dependencies"))]
    tables += [(f"[tool.poetry.group.{g}.dependencies]", sub(poetry, "group")[g].get("dependencies"))
               for g in sub(poetry, "group") if isinstance(sub(poetry, "group")[g], dict)]
    out: list[tuple[str, str]] = []
    for table, entries in tables:
        if not isinstance(entries, dict):
            continue
        said = []
        for name, value in entries.items():
            if not isinstance(name, str) or canonicalize_name(name) not in required:
                continue
            kinds = [k for v in (value if isinstance(value, list) else [value]) if isinstance(v, dict)
                     for key, text in _SOURCE_KINDS if key in v
                     for k in [text.format(v[key]) if "{}" in text and _PLAIN_NAME.fullmatch(str(v[key])) else
                               text.replace(" `{}`", "")]]
            if kinds:
                said.append(f"`{canonicalize_name(name)}` ({', '.join(dict.fromkeys(kinds))})")
        if said:
            out.append((table, ", ".join(said)))
    return tuple(out)


def _is_url(url: str) -> bool:
    scheme, sep, rest = url.partition("://")
    return bool(sep and rest) and scheme.lower() in ("http", "https")


_GARBLED = ("its user name or password has an unencoded `/`, `#`, `?` or `@` (or its port is "
            "not a number)")
_GARBLED_HINT = ("percent-encode those characters in the credentials (`/` is %2F, `#` %23, `?` "
                 "%3F, `@` %40), or move them to LOCKENV_INDEX_<NAME>_PASSWORD or netrc")


def _garbled(url: str) -> bool:
    """True for a URL whose credentials were not percent-encoded (`https://u:pa/ss@host/`):
    it would reach the wrong host, and its password would not be redacted. The URL itself is
    never put in the message."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        parts.port
    except ValueError:
        return True
    return "@" in url.partition("://")[2].partition(parts.netloc)[2]


def _kind(value: object) -> str:
    return {dict: "a table", list: "an array", str: "a string", bool: "a boolean", int: "an integer",
            float: "a float"}.get(type(value), type(value).__name__)


def _flatten(exc: BaseException) -> str:
    subs = getattr(exc, "exceptions", None)
    if subs:
        return "; ".join(_flatten(e) for e in subs)
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    """The first include cycle (in file order), as the list of groups on it."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in graph:
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None

"""Resolution → `pylock.toml` (PEP 751, sorted, byte-stable, atomic) and back: loading,
validation and `select()` through `packaging.pylock`, and lock freshness as typed reasons.

The writer is a small deterministic TOML emitter rather than tomlkit: the output then depends
on nothing but the Resolution (not on a tomlkit version), and every array reads one item per
line. `read_inputs`, `read_pins` and `stale_reasons` are on the no-op path: they use the stdlib
TOML parser only (no tomlkit, no `packaging.pylock`, no httpx).
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from lockenv.project import LOCK_NAME
from lockenv.urls import redact_url
from lockenv.errors import LockfileError
from lockenv.models import DistFile, LockedPackage, LockInputs, ProjectSpec, Resolution

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

if TYPE_CHECKING:
    from packaging.pylock import Package, PackageSdist, PackageWheel, Pylock
    from packaging.tags import Tag

__all__ = [
    "LOCK_NAME",
    "CREATED_BY",
    "StaleReason",
    "dumps",
    "inputs_from_spec",
    "load",
    "read_inputs",
    "read_pins",
    "select",
    "stale_reasons",
    "write",
]

CREATED_BY = "lockenv"
LOCK_VERSION = "1.0"

_TOML_POS = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")


# ---------------------------------------------------------------------------------------------
# inputs


def inputs_from_spec(spec: ProjectSpec) -> LockInputs:
    """The inputs recorded in the lock: normalised, sorted wherever order carries no meaning
    (so reordering pyproject.toml is not a change), the index URL without credentials."""
    return _canonical_inputs(
        LockInputs(
            requires_python=spec.requires_python,
            dependencies=spec.dependencies,
            optional_dependencies=spec.optional_dependencies,
            dependency_groups=spec.dependency_groups,
            default_groups=spec.default_groups,
            index_url=redact_url(spec.index_url),
            exclude_newer=format_timestamp(spec.exclude_newer) if spec.exclude_newer else None,
            environments=spec.environments,
        )
    )


def format_timestamp(moment: datetime) -> str:
    """`YYYY-MM-DDTHH:MM:SSZ` in UTC (fractions kept only when present)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    moment = moment.astimezone(timezone.utc)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


def _canonical_inputs(inputs: LockInputs) -> LockInputs:
    return LockInputs(
        requires_python=inputs.requires_python,
        dependencies=_sorted_unique(inputs.dependencies),
        optional_dependencies={
            canonicalize_name(k): _sorted_unique(v) for k, v in sorted(inputs.optional_dependencies.items())
        },
        dependency_groups={
            canonicalize_name(k): _sorted_unique(v) for k, v in sorted(inputs.dependency_groups.items())
        },
        default_groups=_sorted_unique(canonicalize_name(g) for g in inputs.default_groups),
        index_url=inputs.index_url,
        exclude_newer=inputs.exclude_newer,
        environments=_sorted_unique(inputs.environments),
        exclude_newer_from_cli=bool(inputs.exclude_newer and inputs.exclude_newer_from_cli),
    )


def _sorted_unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(set(items)))


# ---------------------------------------------------------------------------------------------
# writing


def dumps(resolution: Resolution) -> str:
    """The lock as PEP 751 TOML text: the same Resolution (in any order) gives the same bytes.
    Raises LockfileError if the result is not a valid pylock file (a bug, not a user error)."""
    inputs = _canonical_inputs(resolution.inputs)
    out: list[str] = [f"lock-version = {_str(LOCK_VERSION)}"]
    if inputs.environments:
        out.append(f"environments = {_array(inputs.environments)}")
    out.append(f"requires-python = {_str(inputs.requires_python)}")
    out.append(f"extras = {_array(inputs.optional_dependencies)}")
    out.append(f"dependency-groups = {_array(inputs.dependency_groups)}")
    out.append(f"default-groups = {_array(inputs.default_groups)}")
    out.append(f"created-by = {_str(CREATED_BY)}")
    if not resolution.packages:
        out.append("packages = []")  # required by PEP 751, even for a project with no dependencies

    packages = sorted(resolution.packages, key=_package_key)
    seen: set[tuple[str, str, str]] = set()
    for package in packages:
        key = (package.name, package.version, package.marker or "")
        if key in seen:
            raise LockfileError(
                f"internal error: package `{package.name} {package.version}` is in the resolution twice",
                context={"package": package.name},
            )
        seen.add(key)
        out.append("")
        out.extend(_package(package))

    head = "\n".join(out) + "\n"
    out.append("")
    out.append("[tool.lockenv]")
    out.append(f"requires-python = {_str(inputs.requires_python)}")
    out.append(f"index-url = {_str(inputs.index_url)}")
    # What lockenv wrote above this table, so that a hand edit (a merge conflict resolved
    # badly, a deleted entry) is a stale lock, found by the no-op check without parsing it all.
    out.append(f"packages-sha256 = {_str(hashlib.sha256(head.encode()).hexdigest())}")
    if inputs.exclude_newer:
        out.append(f"exclude-newer = {_str(inputs.exclude_newer)}")
        if inputs.exclude_newer_from_cli:
            out.append('exclude-newer-origin = "command line"')
    if inputs.environments:
        out.append(f"environments = {_array(inputs.environments)}")
    out.append(f"default-groups = {_array(inputs.default_groups)}")
    out.append(f"dependencies = {_array(inputs.dependencies)}")
    if inputs.optional_dependencies:
        out.append("")
        out.append("[tool.lockenv.optional-dependencies]")
        out.extend(f"{_key(k)} = {_array(v)}" for k, v in inputs.optional_dependencies.items())
    if inputs.dependency_groups:
        out.append("")
        out.append("[tool.lockenv.dependency-groups]")
        out.extend(f"{_key(k)} = {_array(v)}" for k, v in inputs.dependency_groups.items())
    text = "\n".join(out) + "\n"
    _validate(text)
    return text


def _package_key(package: LockedPackage) -> tuple[str, Any, str]:
    try:
        version: Any = (0, Version(package.version))
    except InvalidVersion:
        version = (1, package.version)
    return (package.name, version, package.marker or "")


def _package(p: LockedPackage) -> list[str]:
    lines = ["[[packages]]", f"name = {_str(p.name)}", f"version = {_str(p.version)}"]
    if p.marker is not None:
        lines.append(f"marker = {_str(p.marker)}")
    if p.requires_python:
        lines.append(f"requires-python = {_str(p.requires_python)}")
    if p.index:
        lines.append(f"index = {_str(p.index)}")
    deps = sorted(set(p.dependencies), key=lambda d: (d.name, d.version or ""))
    dep_tables = [
        _inline([("name", _str(d.name))] + ([("version", _str(d.version))] if d.version else []))
        for d in deps
    ]
    lines.append(f"dependencies = {_raw_array(dep_tables)}")
    if not p.wheels and p.sdist is None:
        raise LockfileError(
            f"internal error: package `{p.name} {p.version}` has neither wheels nor an sdist",
            context={"package": p.name},
        )
    if p.wheels:
        wheels = sorted(set(p.wheels), key=lambda f: f.filename)
        lines.append(f"wheels = {_raw_array([_file(p, w) for w in wheels])}")
    if p.sdist is not None:
        lines.append(f"sdist = {_file(p, p.sdist)}")
    return lines


def _file(p: LockedPackage, f: DistFile) -> str:
    if not f.sha256:
        raise LockfileError(
            f"internal error: `{f.filename}` of `{p.name} {p.version}` has no sha256",
            context={"package": p.name, "file": f.filename},
        )
    fields = [("name", _str(f.filename)), ("url", _str(f.url))]
    if f.size is not None:
        fields.append(("size", str(int(f.size))))
    if f.upload_time is not None:
        fields.append(("upload-time", format_timestamp(f.upload_time)))
    fields.append(("hashes", _inline([("sha256", _str(f.sha256.lower()))])))
    return _inline(fields)


_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_PLAIN = re.compile(r'[^"\\\x00-\x1f\x7f]*\Z')
"""Text a basic string holds as it is."""
_LITERAL_OK = re.compile(r"[^'\x00-\x1f\x7f]*\Z")
"""Text a literal string holds (markers full of double quotes)."""


def _key(key: str) -> str:
    return key if _BARE_KEY.match(key) else _str(key)


def _str(value: str) -> str:
    """A TOML string: basic when nothing needs escaping, literal when the text holds `"` (as
    packaging's markers do) but no `'`, else an escaped basic string."""
    if _PLAIN.match(value):
        return f'"{value}"'
    if _LITERAL_OK.match(value):
        return f"'{value}'"
    escaped = []
    for c in value:
        if c == '"':
            escaped.append('\\"')
        elif c == "\\":
            escaped.append("\\\\")
        elif c == "\n":
            escaped.append("\\n")
        elif c == "\t":
            escaped.append("\\t")
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            escaped.append(f"\\u{ord(c):04X}")
        else:
            escaped.append(c)
    return '"' + "".join(escaped) + '"'


def _inline(fields: Sequence[tuple[str, str]]) -> str:
    return "{ " + ", ".join(f"{_key(k)} = {v}" for k, v in fields) + " }"


def _array(items: Iterable[str]) -> str:
    return _raw_array([_str(i) for i in items])


def _raw_array(items: Sequence[str]) -> str:
    """`[]`, `["one"]`, or one item per line when there are several."""
    if not items:
        return "[]"
    if len(items) == 1 and len(items[0]) < 80:
        return f"[{items[0]}]"
    return "[\n" + "".join(f"    {i},\n" for i in items) + "]"


def _validate(text: str) -> None:
    from packaging.pylock import Pylock, PylockValidationError

    try:
        Pylock.from_dict(tomllib.loads(text))  # validate() is from_dict(to_dict()): once is enough
    except (PylockValidationError, tomllib.TOMLDecodeError) as exc:
        raise LockfileError(
            f"internal error: the lock lockenv produced is not valid PEP 751: {exc}",
            hint="this is a bug in lockenv; please report it with your pyproject.toml",
        ) from exc


def write(path: Path, resolution: Resolution) -> bool:
    """Write the lock atomically (temp file in the same directory, fsync, rename). Returns
    False, touching nothing, when the file already holds exactly these bytes."""
    import tempfile  # not at module level: the no-op path never writes

    data = dumps(resolution).encode("utf-8")
    path = Path(path)
    try:
        if path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise LockfileError(f"cannot read {path}: {exc.strerror or exc}", context={"file": str(path)}) from None
    try:
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise LockfileError(f"cannot write {path}: {exc.strerror or exc}", context={"file": str(path)}) from None
        raise
    _fsync_dir(path.parent)
    return True


def _fsync_dir(directory: Path) -> None:
    """Make the rename durable (best effort: not every platform can open a directory)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------------------
# reading


def _tail(path: Path) -> tuple[bytes, int] | None:
    """The lock's bytes and where its `[tool.lockenv]` table (always last when lockenv wrote
    it) begins; None when the file is unreadable or not shaped like that."""
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    at = raw.rfind(b"\n[tool.lockenv]\n")
    return None if at < 0 else (raw, at)


def _parse_tool_tail(path: Path) -> dict[str, Any] | None:
    """Only the `[tool.lockenv]` tail: the no-op path then reads a few hundred bytes of TOML
    instead of a lock of a megabyte. None when there is none; the caller parses the file."""
    found = _tail(path)
    if found is None:
        return None
    raw, at = found
    try:
        return tomllib.loads(raw[at + 1 :].decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None


def _edited(path: Path) -> bool:
    """True when the packages above `[tool.lockenv]` are not the bytes lockenv wrote there
    (its `packages-sha256`). A lock without the key (older, or not ours) is not judged."""
    found = _tail(path)
    if found is None:
        return False
    raw, at = found
    m = re.search(rb'\npackages-sha256 = "([0-9a-f]{64})"\n', raw[at:])
    if m is None:
        return False
    return hashlib.sha256(raw[:at]).hexdigest() != m.group(1).decode()


def _parse(path: Path) -> dict[str, Any]:
    """tomllib on the file; LockfileError with file, line and column."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise LockfileError(
            f"{path} does not exist",
            hint="run `lockenv lock` to create it",
            context={"file": str(path)},
        ) from None
    except UnicodeDecodeError as exc:
        raise LockfileError(f"{path}: not valid UTF-8 (byte {exc.start})", context={"file": str(path)}) from None
    except OSError as exc:
        raise LockfileError(f"cannot read {path}: {exc.strerror or exc}", context={"file": str(path)}) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        m = _TOML_POS.search(msg)
        line = column = None
        if m:
            line, column = int(m.group(1)), int(m.group(2))
            msg = msg[: m.start()]
        where = f"{path}:{line}:{column}" if line else str(path)
        raise LockfileError(
            f"{where}: invalid TOML: {msg[:1].lower() + msg[1:]}",
            hint="regenerate it with `lockenv lock`",
            context={"file": str(path), "line": line, "column": column},
        ) from None


def load(path: Path) -> Pylock:
    """Parse and validate any PEP 751 file (ours, uv's, pip's). LockfileError names the file,
    the offending key and, when it is inside a package, that package."""
    from packaging.pylock import Pylock, PylockUnsupportedVersionError, PylockValidationError

    data = _parse(path)
    try:
        lock = Pylock.from_dict(data)
    except PylockUnsupportedVersionError as exc:
        raise LockfileError(
            f"{path}: {exc}",
            hint="lockenv reads lock-version 1.x; regenerate the lock with `lockenv lock`",
            context={"file": str(path), "lock-version": data.get("lock-version")},
        ) from None
    except PylockValidationError as exc:
        key = exc.context or ""
        package = _package_named_by(data, key)
        where = f" in package `{package}`" if package else ""
        raise LockfileError(
            f"{path} is not a valid pylock file: {exc.message}" + (f" at `{key}`" if key else "") + where,
            hint="regenerate it with `lockenv lock`",
            context={"file": str(path), "key": key or None, "package": package},
        ) from None
    _check_dependencies(lock, path)
    return lock


def _check_dependencies(lock: Pylock, path: Path) -> None:
    """Every `dependencies` entry must name a package of the lock (and, when it gives one, a
    version there): a deleted entry would otherwise install an incomplete environment."""
    present: dict[str, set[str]] = {}
    for p in lock.packages:
        present.setdefault(canonicalize_name(p.name), set()).add(str(p.version) if p.version else "")
    for p in lock.packages:
        for dep in p.dependencies or ():
            name = dep.get("name") if isinstance(dep, Mapping) else None
            if not isinstance(name, str):
                continue
            versions = present.get(canonicalize_name(name))
            version = dep.get("version")
            if versions is None or (isinstance(version, str) and version not in versions):
                wanted = f"{name} {version}" if isinstance(version, str) else name
                raise LockfileError(
                    f"{path}: `{p.name} {p.version}` depends on `{wanted}`, which the lock does not contain",
                    hint="the lock is incomplete (edited by hand?); run `lockenv lock` to regenerate it",
                    context={"file": str(path), "package": str(p.name)},
                )


def _package_named_by(data: Mapping[str, Any], key: str) -> str | None:
    m = re.match(r"packages\[(\d+)\]", key)
    if not m:
        return None
    try:
        entry = data["packages"][int(m.group(1))]
        name, version = entry.get("name"), entry.get("version")
    except (KeyError, IndexError, TypeError, AttributeError):
        return None
    if not isinstance(name, str):
        return None
    return f"{name} {version}" if isinstance(version, str) else name


def select(
    lock: Pylock,
    *,
    environment: Mapping[str, str],
    tags: Sequence[Tag],
    extras: Collection[str],
    groups: Collection[str] | None,
) -> list[tuple[Package, PackageWheel | PackageSdist | Any]]:
    """What to install for one environment, consumed whole so that no error surfaces after
    acting. `groups` replaces the lock's default-groups (pass their union if both are wanted;
    None means the defaults). `environment` must be a complete marker dict: packaging merges it
    over the running interpreter's markers otherwise."""
    from packaging.pylock import PylockSelectError

    try:
        return list(
            lock.select(
                environment=dict(environment),  # type: ignore[arg-type]
                tags=list(tags),
                extras=extras,
                dependency_groups=groups,
            )
        )
    except PylockSelectError as exc:
        env = ", ".join(
            f"{k} {environment[k]}"
            for k in ("python_full_version", "sys_platform", "platform_machine", "implementation_name")
            if k in environment
        )
        message = str(exc)
        package = None
        m = re.search(r"package '([^']+)'(?: at packages\[(\d+)\])?", message)
        if m:
            package = m.group(1)
        raise LockfileError(
            f"the lock cannot serve this environment ({env}): {message}",
            hint="relock with `lockenv lock` (and check `[tool.lockenv] environments` and requires-python)",
            context={"package": package, "environment": env},
        ) from None


def read_inputs(path: Path) -> LockInputs | None:
    """The `[tool.lockenv]` inputs of a lock; None when the file is missing or was not written
    by lockenv. LockfileError when it is not TOML or the table is malformed."""
    path = Path(path)
    if not path.exists():
        return None
    data = _parse_tool_tail(path) or _parse(path)
    tool = data.get("tool")
    section = tool.get("lockenv") if isinstance(tool, dict) else None
    if section is None:
        return None
    try:
        return _inputs_from_table(section)
    except (TypeError, ValueError, KeyError) as exc:
        raise LockfileError(
            f"{path}: [tool.lockenv] is malformed: {exc}",
            hint="regenerate it with `lockenv lock`",
            context={"file": str(path)},
        ) from None


def _inputs_from_table(t: Any) -> LockInputs:
    if not isinstance(t, dict):
        raise TypeError("not a table")

    def strings(key: str, value: Any) -> tuple[str, ...]:
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise TypeError(f"`{key}` must be an array of strings")
        return tuple(value)

    def table(key: str) -> dict[str, tuple[str, ...]]:
        value = t.get(key, {})
        if not isinstance(value, dict):
            raise TypeError(f"`{key}` must be a table")
        return {k: strings(f"{key}.{k}", v) for k, v in value.items()}

    def string(key: str, required: bool) -> str | None:
        value = t.get(key)
        if value is None and required:
            raise KeyError(f"`{key}` is missing")
        if value is not None and not isinstance(value, str):
            raise TypeError(f"`{key}` must be a string")
        return value

    return _canonical_inputs(
        LockInputs(
            requires_python=string("requires-python", True) or "",
            dependencies=strings("dependencies", t.get("dependencies")),
            optional_dependencies=table("optional-dependencies"),
            dependency_groups=table("dependency-groups"),
            default_groups=strings("default-groups", t.get("default-groups")),
            index_url=string("index-url", True) or "",
            exclude_newer=string("exclude-newer", False),
            environments=strings("environments", t.get("environments")),
            exclude_newer_from_cli=string("exclude-newer-origin", False) == "command line",
        )
    )


def read_pins(path: Path) -> dict[str, list[tuple[str, str | None]]]:
    """Name → [(version, marker)] of every package entry: the preferences of a relock.
    Empty when there is no lock; LockfileError when it is not TOML."""
    path = Path(path)
    if not path.exists():
        return {}
    data = _parse(path)
    pins: dict[str, list[tuple[str, str | None]]] = {}
    packages = data.get("packages")
    if not isinstance(packages, list):
        return pins
    for entry in packages:
        if not isinstance(entry, dict):
            continue
        name, version, marker = entry.get("name"), entry.get("version"), entry.get("marker")
        if not isinstance(name, str) or not isinstance(version, str):
            continue
        pins.setdefault(canonicalize_name(name), []).append((version, marker if isinstance(marker, str) else None))
    return pins


# ---------------------------------------------------------------------------------------------
# freshness


@dataclass(frozen=True)
class StaleReason:
    """One reason the lock no longer matches pyproject.toml.

    `kind` is one of: missing, invalid, foreign, requires-python, dependency-added,
    dependency-removed, extra-added, extra-removed, extra-changed, group-added, group-removed,
    group-changed, default-groups, index-url, exclude-newer, environments.
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
        return [StaleReason("invalid", name, f"{name} is invalid: {reason}")]
    if recorded is None:
        return [StaleReason("foreign", name, f"{name} was not written by lockenv (no [tool.lockenv])")]
    if _edited(path):
        return [StaleReason("edited", name, f"{name} was changed by hand since lockenv wrote it")]
    current = inputs_from_spec(spec)
    if spec.exclude_newer is None and recorded.exclude_newer and recorded.exclude_newer_from_cli:
        # `lock --exclude-newer` records the cut-off; it holds until a new one is given.
        current = replace(current, exclude_newer=recorded.exclude_newer, exclude_newer_from_cli=True)
    return diff_inputs(recorded, current)


def diff_inputs(old: LockInputs, new: LockInputs) -> list[StaleReason]:
    """Typed differences between the inputs a lock was made from and today's."""
    old, new = _canonical_inputs(old), _canonical_inputs(new)
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


def _list(items: Sequence[str]) -> str:
    return "[" + ", ".join(f"`{i}`" for i in items) + "]" if items else "[]"

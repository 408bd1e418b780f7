"""Resolution → `pylock.toml` (PEP 751): the one deterministic TOML emitter, and the atomic write.

The writer is a small emitter rather than tomlkit: the output then depends on nothing but the
Resolution (not on a tomlkit version), and every array reads one item per line. The text is
rendered from a mapping, key by key, and that mapping (what a TOML parser reads back from the
text) is what the serve-check (`check.py`) selects from: there is no second writer.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packaging.version import InvalidVersion, Version

from lockenv.errors import LockfileError
from lockenv.lockfile.common import CREATED_BY, LOCK_VERSION, canonical_inputs, format_timestamp
from lockenv.models import DistFile, LockedPackage, LockInputs, Resolution

if TYPE_CHECKING:
    from packaging.pylock import Pylock

__all__ = ["dumps", "to_pylock", "write"]


def dumps(resolution: Resolution) -> str:
    """The lock as PEP 751 TOML text: the same Resolution (in any order) gives the same bytes.
    Raises LockfileError if the result is not a valid pylock file (a bug, not a user error)."""
    return _rendered(resolution)[0]


def to_pylock(resolution: Resolution) -> Pylock:
    """The lock `dumps` writes, as `packaging.pylock` reads it (validated): what the
    serve-check selects from. It is built from the very mapping the text is rendered from,
    key by key, so it is what installers read without parsing the text back (1 MB of TOML:
    0.1 s for `data`)."""
    return _rendered(resolution)[1]


_last: list[tuple[Resolution, str, Pylock]] = []
"""The last resolution rendered (a lock is checked, then written: rendered once)."""


def _rendered(resolution: Resolution) -> tuple[str, Pylock]:
    if _last and _last[0][0] is resolution:
        return _last[0][1], _last[0][2]
    text, mapping = _render_lock(resolution)
    lock = _validate(mapping)
    _last[:] = [(resolution, text, lock)]
    return text, lock


class _Table:
    """One TOML table being written: its lines, and in step the mapping a TOML parser reads
    back from them (`_render` is the one place a value becomes text)."""

    def __init__(self, out: list[str], mapping: dict[str, Any]) -> None:
        self.out = out
        self.mapping = mapping

    def put(self, key: str, value: Any) -> None:
        self.out.append(f"{_key(key)} = {_render(value)}")
        self.mapping[key] = value


def _render_lock(resolution: Resolution) -> tuple[str, dict[str, Any]]:
    """The lock's text and the mapping it holds."""
    inputs = canonical_inputs(resolution.inputs)
    out: list[str] = []
    doc: dict[str, Any] = {}
    top = _Table(out, doc)
    top.put("lock-version", LOCK_VERSION)
    if inputs.environments:
        top.put("environments", list(inputs.environments))
    top.put("requires-python", inputs.requires_python)
    top.put("extras", list(inputs.optional_dependencies))
    top.put("dependency-groups", list(inputs.dependency_groups))
    # What a plain installer (`pip install -r pylock.toml`, which cannot deselect groups) puts
    # in: the runtime only, never `dev`. lockenv's own default groups (dev on for `lockenv
    # sync`) are `[tool.lockenv] default-groups` below, covered by packages-sha256.
    top.put("default-groups", [])
    top.put("created-by", CREATED_BY)
    entries: list[dict[str, Any]] = []
    if not resolution.packages:
        top.put("packages", entries)  # required by PEP 751, even for a project with no dependencies
    doc["packages"] = entries

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
        out.append("[[packages]]")
        entry: dict[str, Any] = {}
        _package(package, _Table(out, entry))
        entries.append(entry)
    _tool(inputs, out, doc)
    return "\n".join(out) + "\n", doc


def _tool(inputs: LockInputs, out: list[str], doc: dict[str, Any]) -> None:
    """`[tool.lockenv]`: the inputs the lock was made from, and the sha256 of the rest."""
    out.append("")
    out.append("[tool.lockenv]")
    mine: dict[str, Any] = {}
    doc["tool"] = {"lockenv": mine}
    table = _Table(out, mine)
    table.put("requires-python", inputs.requires_python)
    table.put("index-url", inputs.index_url)
    if inputs.indexes:
        table.put("indexes", list(inputs.indexes))
    if inputs.sources:
        table.put("sources", list(inputs.sources))
    # The sha256 of every other byte of the file (filled in below), so that a hand edit
    # anywhere (a merge conflict resolved badly, a deleted entry, a table appended at the end)
    # is found by the no-op check without parsing it all.
    hash_at = len(out)
    if inputs.exclude_newer:
        table.put("exclude-newer", inputs.exclude_newer)
        if inputs.exclude_newer_from_cli:
            table.put("exclude-newer-origin", "command line")
    if inputs.environments:
        table.put("environments", list(inputs.environments))
    if inputs.required_environments:
        table.put("required-environments", list(inputs.required_environments))
    table.put("default-groups", list(inputs.default_groups))
    table.put("dependencies", list(inputs.dependencies))
    for name, values in (("optional-dependencies", inputs.optional_dependencies),
                         ("dependency-groups", inputs.dependency_groups)):
        if values:
            out.append("")
            out.append(f"[tool.lockenv.{name}]")
            sub = _Table(out, {})
            for k, v in values.items():
                sub.put(k, list(v))
            mine[name] = sub.mapping
    digest = hashlib.sha256(("\n".join(out) + "\n").encode()).hexdigest()
    out.insert(hash_at, f"packages-sha256 = {_str(digest)}")
    mine["packages-sha256"] = digest


def _package_key(package: LockedPackage) -> tuple[str, Any, str]:
    try:
        version: Any = (0, Version(package.version))
    except InvalidVersion:
        version = (1, package.version)
    return (package.name, version, package.marker or "")


def _package(p: LockedPackage, table: _Table) -> None:
    table.put("name", p.name)
    table.put("version", p.version)
    if p.marker is not None:
        table.put("marker", p.marker)
    if p.requires_python:
        table.put("requires-python", p.requires_python)
    if p.index:
        table.put("index", p.index)
    deps = sorted(set(p.dependencies), key=lambda d: (d.name, d.version or ""))
    table.put("dependencies", [{"name": d.name, "version": d.version} if d.version else {"name": d.name}
                               for d in deps])
    if not p.wheels and p.sdist is None:
        raise LockfileError(
            f"internal error: package `{p.name} {p.version}` has neither wheels nor an sdist",
            context={"package": p.name},
        )
    if p.wheels:
        table.put("wheels", [_file(p, w) for w in sorted(set(p.wheels), key=lambda f: f.filename)])
    if p.sdist is not None:
        table.put("sdist", _file(p, p.sdist))


def _file(p: LockedPackage, f: DistFile) -> dict[str, Any]:
    if not f.sha256:
        raise LockfileError(
            f"internal error: `{f.filename}` of `{p.name} {p.version}` has no sha256",
            context={"package": p.name, "file": f.filename},
        )
    fields: dict[str, Any] = {"name": f.filename, "url": f.url}
    if f.size is not None:
        fields["size"] = int(f.size)
    if f.upload_time is not None:
        moment = f.upload_time
        fields["upload-time"] = moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None \
            else moment.astimezone(timezone.utc)
    fields["hashes"] = {"sha256": f.sha256.lower()}
    return fields


def _render(value: Any) -> str:
    """A value as TOML: strings, integers, UTC datetimes, tables inline, arrays."""
    if isinstance(value, str):
        return _str(value)
    if isinstance(value, dict):
        return _inline([(k, _render(v)) for k, v in value.items()])
    if isinstance(value, list):
        return _raw_array([_render(v) for v in value])
    if isinstance(value, datetime):
        return format_timestamp(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise TypeError(f"no TOML form for {type(value).__name__}")


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


def _raw_array(items: Sequence[str]) -> str:
    """`[]`, `["one"]`, or one item per line when there are several."""
    if not items:
        return "[]"
    if len(items) == 1 and len(items[0]) < 80:
        return f"[{items[0]}]"
    return "[\n" + "".join(f"    {i},\n" for i in items) + "]"


def _validate(mapping: dict[str, Any]) -> Pylock:
    """The lock's mapping as `packaging.pylock` reads it, validated (a failure is a bug)."""
    from packaging.pylock import Pylock, PylockValidationError

    try:
        return Pylock.from_dict(mapping)  # validate() is from_dict(to_dict()): once is enough
    except PylockValidationError as exc:
        raise LockfileError(
            f"internal error: the lock lockenv produced is not valid PEP 751: {exc}",
            hint="this is a bug in lockenv; please report it with your pyproject.toml",
        ) from exc


TEMPORARY_AGE = 60.0
"""Seconds after which a lock's temporary file is a killed run's leftover (writing one takes
milliseconds)."""


def sweep_temporaries(path: Path) -> None:
    """Remove `.pylock.toml.*.tmp` files a killed `lock` left beside `path` (F30): `git add -A`
    would commit them. Only ones older than TEMPORARY_AGE, so a concurrent write keeps its own."""
    import time

    now = time.time()
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        try:
            if now - tmp.lstat().st_mtime > TEMPORARY_AGE:
                tmp.unlink()
        except OSError:
            pass


def write(path: Path, resolution: Resolution) -> bool:
    """Write the lock atomically (temp file in the same directory, fsync, rename). Returns
    False, touching nothing, when the file already holds exactly these bytes."""
    from lockenv.project import write_project_file

    data = dumps(resolution).encode("utf-8")
    path = Path(path)
    sweep_temporaries(path)
    try:
        if path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise LockfileError(f"cannot read {path}: {exc.strerror or exc}", context={"file": str(path)}) from None
    try:
        write_project_file(path, data)
    except OSError as exc:
        raise LockfileError(f"cannot write {path}: {exc.strerror or exc}", context={"file": str(path)}) from None
    return True

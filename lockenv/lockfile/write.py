"""Resolution → `pylock.toml` (PEP 751): the one deterministic TOML emitter, and the atomic write.

The writer is a small emitter rather than tomlkit: the output then depends on nothing but the
Resolution (not on a tomlkit version), and every array reads one item per line. The same
mapping, parsed back, is what the serve-check (`check.py`) selects from: there is no second
writer.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packaging.version import InvalidVersion, Version

from lockenv.errors import LockfileError
from lockenv.lockfile.common import CREATED_BY, LOCK_VERSION, canonical_inputs, format_timestamp, tomllib
from lockenv.models import DistFile, LockedPackage, Resolution

if TYPE_CHECKING:
    from packaging.pylock import Pylock

__all__ = ["dumps", "to_pylock", "write"]


def dumps(resolution: Resolution) -> str:
    """The lock as PEP 751 TOML text: the same Resolution (in any order) gives the same bytes.
    Raises LockfileError if the result is not a valid pylock file (a bug, not a user error)."""
    inputs = canonical_inputs(resolution.inputs)
    out: list[str] = [f"lock-version = {_str(LOCK_VERSION)}"]
    if inputs.environments:
        out.append(f"environments = {_array(inputs.environments)}")
    out.append(f"requires-python = {_str(inputs.requires_python)}")
    out.append(f"extras = {_array(inputs.optional_dependencies)}")
    out.append(f"dependency-groups = {_array(inputs.dependency_groups)}")
    # What a plain installer (`pip install -r pylock.toml`, which cannot deselect groups) puts
    # in: the runtime only, never `dev`. lockenv's own default groups (dev on for `lockenv
    # sync`) are `[tool.lockenv] default-groups` below, covered by packages-sha256.
    out.append("default-groups = []")
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

    out.append("")
    out.append("[tool.lockenv]")
    out.append(f"requires-python = {_str(inputs.requires_python)}")
    out.append(f"index-url = {_str(inputs.index_url)}")
    if inputs.indexes:
        out.append(f"indexes = {_array(inputs.indexes)}")
    if inputs.sources:
        out.append(f"sources = {_array(inputs.sources)}")
    # The sha256 of every other byte of the file (filled in below), so that a hand edit
    # anywhere (a merge conflict resolved badly, a deleted entry, a table appended at the end)
    # is found by the no-op check without parsing it all.
    hash_at = len(out)
    if inputs.exclude_newer:
        out.append(f"exclude-newer = {_str(inputs.exclude_newer)}")
        if inputs.exclude_newer_from_cli:
            out.append('exclude-newer-origin = "command line"')
    if inputs.environments:
        out.append(f"environments = {_array(inputs.environments)}")
    if inputs.required_environments:
        out.append(f"required-environments = {_array(inputs.required_environments)}")
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
    unhashed = "\n".join(out) + "\n"
    out.insert(hash_at, f"packages-sha256 = {_str(hashlib.sha256(unhashed.encode()).hexdigest())}")
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


def to_pylock(resolution: Resolution) -> Pylock:
    """The lock `dumps` writes, parsed back and validated as `packaging.pylock` reads it: what
    the serve-check selects from, so that it checks the very mapping installers will read."""
    return _validate(dumps(resolution))


@lru_cache(maxsize=1)
def _validate(text: str) -> Pylock:
    """The validated lock of `text`. Memoised for the last text: the serve-check and the write
    of one lock then parse and validate it once (~0.1 s for a big lock)."""
    from packaging.pylock import Pylock, PylockValidationError

    try:
        return Pylock.from_dict(tomllib.loads(text))  # validate() is from_dict(to_dict()): once is enough
    except (PylockValidationError, tomllib.TOMLDecodeError) as exc:
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

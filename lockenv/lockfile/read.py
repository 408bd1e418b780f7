"""`pylock.toml` → data: loading and validating any PEP 751 file through `packaging.pylock` (with
a pickled parse cache for big locks), `select()` for one environment, and the `[tool.lockenv]`
inputs and pins lockenv records.

`read_inputs` and `read_pins` are on the no-op path: they use the stdlib TOML parser only (no
tomlkit, no `packaging.pylock`, no httpx).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packaging.utils import canonicalize_name

from lockenv.errors import LockfileError
from lockenv.lockfile.common import canonical_inputs, tomllib
from lockenv.models import LockInputs
from lockenv.project import LOCK_NAME

if TYPE_CHECKING:
    import pickle

    from packaging.pylock import Package, PackageSdist, PackageWheel, Pylock
    from packaging.tags import Tag

    from lockenv.cache import Cache

__all__ = ["PARSED_LOCKS", "edited_line", "is_edited", "load", "load_cached", "read_inputs", "read_pins", "select"]

_TOML_POS = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")


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
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError):
        return None


_HASH_LINE = re.compile(rb'(?m)^packages-sha256 = "([0-9a-f]{64})"\n')
_HASH_KEY = b'packages-sha256 = "'


def _hash_lines(raw: bytes) -> list[re.Match[bytes]]:
    """Every `packages-sha256` line of the lock, as `_HASH_LINE.finditer` finds them. The key is
    looked for with `bytes.find` and the pattern matched only where it starts a line: scanning a
    lock with the multiline pattern alone took 2.6 ms on web's 558 kB (every warm lock checks
    the lock it wrote, every stale-check of a sync reads it)."""
    out = []
    at = raw.find(_HASH_KEY)
    while at >= 0:
        if at == 0 or raw[at - 1] == 0x0A:  # `^` under MULTILINE
            m = _HASH_LINE.match(raw, at)
            if m is not None:
                out.append(m)
        at = raw.find(_HASH_KEY, at + 1)
    return out


def is_edited(path: Path) -> bool:
    """True when the lock is not the bytes lockenv wrote: its `packages-sha256` is the sha256 of
    every other byte of the file. A lockenv lock (it has `[tool.lockenv]`) without exactly one
    such line counts as edited: deleting the line must not turn the check off (F14)."""
    found = _tail(path)
    if found is None:
        return True
    raw, _ = found
    lines = _hash_lines(raw)
    if len(lines) != 1:
        return True
    m = lines[0]
    h = hashlib.sha256(memoryview(raw)[: m.start()])
    h.update(memoryview(raw)[m.end():])
    return h.hexdigest() != m.group(1).decode()


def edited_line(path: Path) -> int | None:
    """The line of the `packages-sha256` entry that no longer matches (None: no such line)."""
    found = _tail(path)
    lines = _hash_lines(found[0]) if found else []
    return None if not lines else found[0][: lines[0].start()].count(b"\n") + 1  # type: ignore[index]


def _missing_hint(path: Path) -> str:
    """`lockenv lock` writes the project's pylock.toml only: a `--lockfile` path that does not
    exist (a typo, a lock another tool was to export) is not what it would create."""
    if Path(path).name == LOCK_NAME:
        return "run `lockenv lock` to create it"
    return f"check the path (`lockenv lock` writes {LOCK_NAME} in the project; `--lockfile` reads a lock that exists)"


def _parse(path: Path, data: bytes | None = None) -> dict[str, Any]:
    """tomllib on the file (or on `data`, its bytes already read); LockfileError with file, line
    and column."""
    path = Path(path)
    try:
        text = (path.read_bytes() if data is None else data).decode("utf-8")
    except FileNotFoundError:
        raise LockfileError(
            f"{path} does not exist",
            hint=_missing_hint(path),
            context={"file": str(path)},
        ) from None
    except UnicodeDecodeError as exc:
        raise LockfileError(f"{path}: not valid UTF-8 (byte {exc.start})", context={"file": str(path)}) from None
    except OSError as exc:
        raise LockfileError(f"cannot read {path}: {exc.strerror or exc}", context={"file": str(path)}) from None
    try:
        return tomllib.loads(text)
    except RecursionError:  # F31: arrays or tables nested thousands deep
        raise LockfileError(f"{path}: nested too deeply to read", hint="regenerate it with `lockenv lock`",
                            context={"file": str(path)}) from None
    except tomllib.TOMLDecodeError as exc:
        _refuse_conflict(path, text)
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


def _refuse_conflict(path: Path, text: str) -> None:
    """Git merge conflicts get their own message: `lock` resolves them (lockfile.merge)."""
    if "<<<<<<<" not in text:
        return
    from lockenv.lockfile.merge import split_conflict

    sides = split_conflict(text)
    if sides is None:
        return
    line = next(n for n, t in enumerate(text.splitlines(), 1) if t.startswith("<<<<<<<"))
    regions = f"{sides.regions} region{'s' if sides.regions != 1 else ''}"
    raise LockfileError(
        f"{path}:{line}: unresolved git merge conflict ({regions} between `{sides.ours_label}` "
        f"and `{sides.theirs_label}`)",
        hint="run `lockenv lock`: it locks again with both sides' pins as preferences and says "
             "which side each package came from",
        context={"file": str(path), "line": line},
    )


def load(path: Path, raw: bytes | None = None) -> Pylock:
    """Parse and validate any PEP 751 file (ours, uv's, pip's), or `raw`, its bytes already
    read. LockfileError names the file, the offending key and, when it is inside a package,
    that package."""
    from packaging.pylock import Pylock, PylockUnsupportedVersionError, PylockValidationError

    data = _parse(path, raw)
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
        if m and m.group(2) and "No wheel found" in message:
            # a platform the lock was made without (lock warned): say which version
            entry = lock.packages[int(m.group(2))]
            raise LockfileError(
                f"`{package} {entry.version}` has no file for this environment ({env}): the lock "
                "has no wheel for its platform tags and no sdist",
                hint=_unserved_hint(lock),
                context={"package": package, "environment": env},
            ) from None
        raise LockfileError(
            f"the lock cannot serve this environment ({env}): {message}",
            hint="relock with `lockenv lock` (and check `[tool.lockenv] environments` and requires-python)",
            context={"package": package, "environment": env},
        ) from None


def _unserved_hint(lock: Pylock) -> str:
    """Why a lock has no file for this machine: lockenv warns about the platforms it leaves out;
    another tool's lock (pip's `pip lock`) may have been made for one environment only."""
    by = str(lock.created_by or "").strip()
    if by and by != "lockenv":
        shown = by if by.isprintable() and len(by) <= 40 else "another tool"
        return (f"this lock was made by {shown}, perhaps for another environment only: make it again for this one "
                "(or `lockenv lock` for every platform), or use the environment it was made for")
    return ("this platform was left unserved when the lock was made (see `lockenv lock`'s "
            "warning); use a platform the lock serves, or allow a version with a file here")


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

    return canonical_inputs(
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
            indexes=strings("indexes", t.get("indexes")),
            sources=strings("sources", t.get("sources")),
            required_environments=strings("required-environments", t.get("required-environments")),
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
# the parse cache

def __getattr__(name: str) -> str:
    """`PARSED_LOCKS` (the cache bucket of parsed locks), resolved on first use: the no-op
    path reads locks without loading the cache module."""
    if name == "PARSED_LOCKS":
        from lockenv.cache import Bucket

        return Bucket.PARSED_LOCKS.value
    raise AttributeError(name)


def load_cached(path: Path, cache: Cache | None, *, data: bytes | None = None) -> Pylock:
    """`load`, for a lock that must exist (or of `data`, its bytes as the caller read them);
    LockfileError with a hint when it is missing or invalid. `cache` is the use case's; None
    (no usable cache) parses the lock every time.

    A big lock takes ~0.1 s to parse and validate, so the validated object is kept in the cache
    (pickled, keyed by the file's sha256 and the packaging version): a warm sync reads it back.
    """
    import io
    import pickle

    import packaging

    from lockenv.cache import Bucket, write_atomic

    if data is None:
        try:
            data = path.read_bytes()
        except OSError:
            raise LockfileError(f"no lock file at {path}", hint=_missing_hint(path)) from None
    key = hashlib.sha256(data + b"\0" + packaging.__version__.encode()).hexdigest()
    if cache is None:
        return load(path, data)
    cached = cache.root / Bucket.PARSED_LOCKS.value / f"{key}.pickle"
    try:
        # Sealed with the user's key: a parse someone else wrote into the cache (another lock
        # under this lock's key) is never used (F4).
        sealed = cache.unseal(cached.read_bytes())
        if sealed is not None:
            lock: Pylock = _safe_unpickler(io.BytesIO(sealed)).load()
            return lock
    except Exception:
        pass  # missing, damaged or tampered with: parse the lock itself
    lock = load(path, data)
    try:
        blob = cache.seal(pickle.dumps(lock, protocol=pickle.HIGHEST_PROTOCOL))
        if blob is not None:
            write_atomic(cached, blob)
    except (OSError, pickle.PicklingError, TypeError):
        pass
    return lock


_LOCK_CLASSES = {
    ("datetime", "datetime"), ("datetime", "timedelta"), ("datetime", "timezone"),
    ("packaging.markers", "Marker"), ("packaging.pylock", "Package"),
    ("packaging.pylock", "PackageSdist"), ("packaging.pylock", "PackageWheel"),
    ("packaging.pylock", "PackageArchive"), ("packaging.pylock", "PackageDirectory"),
    ("packaging.pylock", "PackageVcs"), ("packaging.pylock", "Pylock"),
    ("packaging.specifiers", "Specifier"), ("packaging.specifiers", "SpecifierSet"),
    ("packaging.version", "Version"),
}


def _safe_unpickler(stream: Any) -> pickle.Unpickler:
    """The cache is untrusted input: a parsed lock may only rebuild the classes a Pylock is made
    of, never call anything else (a tampered entry fails and the lock is parsed)."""
    import pickle  # not at module level: the no-op path never unpickles

    class LockUnpickler(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            if (module, name) not in _LOCK_CLASSES:
                raise pickle.UnpicklingError(f"{module}.{name} is not part of a lock")
            return super().find_class(module, name)

    return LockUnpickler(stream)

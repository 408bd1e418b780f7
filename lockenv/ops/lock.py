"""The `lock` use case: pyproject.toml → pylock.toml, or a fast "up to date" without network."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from lockenv.errors import LockfileError, ManifestError, StaleLockError
from lockenv.ui import Reporter


@dataclass(frozen=True)
class LockOptions:
    project: Path
    check: bool = False
    upgrade: bool = False
    upgrade_packages: tuple[str, ...] = ()
    exclude_newer: str | None = None
    refresh: bool = False


def parse_timestamp(text: str, *, where: str) -> datetime:
    """`manifest.parse_exclude_newer`, as a ManifestError naming where the value came from."""
    from lockenv.manifest import parse_exclude_newer

    try:
        return parse_exclude_newer(text)
    except ValueError as exc:
        raise ManifestError(
            f"{exc} ({where})",
            hint="use RFC 3339 like `2025-01-31T00:00:00Z` or a date like `2025-01-31`",
        ) from None


def _fresh_check(options: LockOptions, reporter: Reporter | None) -> tuple[Any, Path, list[Any], bool]:
    """The project spec (exclude-newer carried over from the lock), the lock path and why the
    lock is stale ([] when fresh). Imports nothing heavy: this is the no-op path."""
    from lockenv import lockfile, manifest

    spec = manifest.load(options.project)
    if not spec.requires_python_declared and reporter is not None:
        reporter.warn(
            f"{spec.pyproject} has no `requires-python`; locking for Python {spec.requires_python}",
            hint=f'add `requires-python = "{spec.requires_python}"` to the [project] table',
        )
    path = Path(spec.root) / lockfile.LOCK_NAME
    try:
        recorded = lockfile.read_inputs(path)
    except LockfileError:
        recorded = None  # unreadable: stale_reasons says why, and `lock` writes a new one
    from_cli = False
    if options.exclude_newer is not None:
        spec = replace(spec, exclude_newer=parse_timestamp(options.exclude_newer, where="--exclude-newer"))
        from_cli = True
    elif spec.exclude_newer is None and recorded is not None and recorded.exclude_newer_from_cli:
        # Recorded in the lock by an earlier `--exclude-newer`: reused until changed.
        spec = replace(spec, exclude_newer=parse_timestamp(recorded.exclude_newer or "", where=str(path)))
        from_cli = True
    return spec, path, lockfile.stale_reasons(spec, path), from_cli


def is_noop(project: Path) -> bool:
    """True when a plain `lockenv lock` would do nothing (used before the CLI is even loaded)."""
    try:
        spec, _path, reasons, _cli = _fresh_check(LockOptions(project=project), None)
    except Exception:
        return False
    return spec.requires_python_declared and not reasons


def lock(options: LockOptions, *, reporter: Reporter) -> int:
    """Resolve and write pylock.toml; no network and no write when the inputs are unchanged."""
    from lockenv import lockfile

    started = time.perf_counter()
    spec, path, reasons, from_cli = _fresh_check(options, reporter)
    if options.check:
        if reasons:
            raise StaleLockError(
                f"{lockfile.LOCK_NAME} is out of date with pyproject.toml",
                context={"file": str(path)},
                details=[str(r) for r in reasons],
                hint="run `lockenv lock` and commit the result",
            )
        reporter.status(f"{lockfile.LOCK_NAME} is up to date")
        return 0
    if not reasons and not options.upgrade and not options.upgrade_packages and not options.refresh:
        reporter.status(f"{lockfile.LOCK_NAME} is up to date")
        return 0
    for reason in reasons:
        reporter.debug(f"relocking: {reason}")

    from filelock import FileLock

    from lockenv.cache import Cache
    from lockenv.index import IndexClient
    from lockenv.resolve import resolve

    cache = Cache()
    try:
        old_pins = lockfile.read_pins(path) if path.exists() else {}
    except LockfileError as exc:
        reporter.warn(f"{exc.message}; locking from scratch, without its pins")
        old_pins = {}
    unknown = sorted(n for n in options.upgrade_packages if _norm(n) not in old_pins)
    for name in unknown:
        reporter.warn(f"`{name}` is not in {lockfile.LOCK_NAME}; --upgrade-package has nothing to move")
    project_lock = cache.bucket("project-locks") / (_digest(str(path)) + ".lock")
    with FileLock(str(project_lock)):
        with IndexClient(
            spec.index_url,
            cache=cache,
            exclude_newer=spec.exclude_newer,
            refresh=options.refresh,
            reporter=reporter,
        ) as client:
            resolution = resolve(
                spec,
                client,
                preferences=old_pins,
                upgrade=options.upgrade,
                upgrade_packages=options.upgrade_packages,
                reporter=reporter,
            )
        if from_cli:
            resolution = replace(resolution, inputs=replace(resolution.inputs, exclude_newer_from_cli=True))
        written = lockfile.write(path, resolution)
    elapsed = time.perf_counter() - started
    count = len({p.name for p in resolution.packages})
    reporter.status(f"Resolved {count} packages in {elapsed:.2f}s")
    for line in describe_changes(old_pins, resolution, spec.name, options):
        reporter.status(line)
    if not written:
        reporter.status(f"{lockfile.LOCK_NAME} unchanged")
    return 0


def _norm(name: str) -> str:
    from packaging.utils import canonicalize_name

    return canonicalize_name(name)


def _digest(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()[:16]


def describe_changes(
    old: dict[str, list[tuple[str, str | None]]], resolution: Any, project: str, options: LockOptions
) -> list[str]:
    """`+ name 1.0 (why)`, `~ name 1.0 -> 2.0 (why)`, `- name 1.0 (why)` for what moved."""
    new: dict[str, list[str]] = {}
    parents: dict[str, set[str]] = {}
    for p in resolution.packages:
        new.setdefault(p.name, []).append(p.version)
        for d in p.dependencies:
            parents.setdefault(d.name, set()).add(f"{p.name} {p.version}")
    upgrade_names = {_norm(n) for n in options.upgrade_packages}

    def why_needed(name: str) -> str:
        who = sorted(parents.get(name, ()))
        if not who:
            return f"required by `{project}`"
        return "required by " + ", ".join(f"`{w}`" for w in who[:3]) + (" …" if len(who) > 3 else "")

    lines: list[str] = []
    for name in sorted(set(old) | set(new)):
        before = sorted({v for v, _ in old.get(name, [])})
        after = sorted(set(new.get(name, [])))
        if before == after:
            continue
        if not before:
            lines.append(f"+ {name} {', '.join(after)} ({why_needed(name)})")
        elif not after:
            lines.append(f"- {name} {', '.join(before)} (no longer required)")
        else:
            if options.upgrade:
                why = "--upgrade"
            elif name in upgrade_names:
                why = "--upgrade-package"
            else:
                why = why_needed(name)
            lines.append(f"~ {name} {', '.join(before)} -> {', '.join(after)} ({why})")
    return lines

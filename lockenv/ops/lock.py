"""The `lock` use case: pyproject.toml → pylock.toml, or a fast "up to date" without network."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from lockenv.errors import LockfileError, ManifestError, StaleLockError
from lockenv.ops import reports
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


def lock(options: LockOptions, *, reporter: Reporter, on_result: Any = None) -> int:
    """Resolve and write pylock.toml; no network and no write when the inputs are unchanged.
    `on_result` receives `--check`'s finding as data (`ops.reports.LockCheck`, for --json)."""
    from lockenv import lockfile

    started = time.perf_counter()
    spec, path, reasons, from_cli = _fresh_check(options, reporter)
    if options.check and (options.upgrade or options.upgrade_packages or options.exclude_newer):
        raise ManifestError(
            "--check writes nothing, so it cannot be combined with --upgrade, "
            "--upgrade-package or --exclude-newer",
            hint="run `lockenv lock --check` on its own",
        )
    if options.check:
        if on_result is not None:
            on_result(reports.lock_check(path, reasons))
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
        if reason.kind != "missing":
            reporter.status(f"Locking: {reason}")

    from filelock import FileLock

    from lockenv.cache import Bucket, Cache
    from lockenv.index.routing import IndexRouter, single
    from lockenv.ops.dispatch import distributions
    from lockenv.resolve import resolve

    cache = Cache()
    project_lock = cache.bucket(Bucket.PROJECT_LOCKS) / (_digest(str(path)) + ".lock")
    with FileLock(str(project_lock)):
        # Another lockenv may have written the lock while this one waited: look again.
        if not (options.upgrade or options.upgrade_packages or options.refresh):
            spec, path, reasons, from_cli = _fresh_check(options, None)
            if not reasons:
                reporter.status(f"{lockfile.LOCK_NAME} is up to date (another lockenv just wrote it)")
                return 0
        try:
            recorded = lockfile.read_inputs(path)
        except LockfileError:
            recorded = None
        try:
            old_pins = lockfile.read_pins(path) if path.exists() else {}
        except LockfileError as exc:
            reporter.warn(f"{exc.message}; locking from scratch, without its pins")
            old_pins = {}
        moves = _upgrade_requests(options)
        for name in sorted(n for n in moves if n not in old_pins):
            reporter.warn(f"`{name}` is not in {lockfile.LOCK_NAME}; --upgrade-package has nothing to move")
        preferences = {**old_pins, **{n: [(v, None)] for n, v in moves.items() if v}}
        with IndexRouter(
            spec.indexes or single(spec.index_url),
            cache=cache,
            exclude_newer=spec.exclude_newer,
            refresh=options.refresh,
            reporter=reporter,
        ) as client, distributions(client, cache=cache, reporter=reporter) as dists:
            resolution = resolve(
                spec,
                dists,
                preferences=preferences,
                upgrade=options.upgrade,
                upgrade_packages=tuple(n for n, v in moves.items() if not v),
                reporter=reporter,
            )
        for name, wanted in moves.items():
            got = sorted({p.version for p in resolution.packages if p.name == name})
            if wanted and got and wanted not in got:
                reporter.warn(f"`{name}` could not move to {wanted} (the other requirements or "
                              f"the index do not allow it); it is at {', '.join(got)}")
        if from_cli:
            resolution = replace(resolution, inputs=replace(resolution.inputs, exclude_newer_from_cli=True))
        written = lockfile.write(path, resolution)
    elapsed = time.perf_counter() - started
    count = len({p.name for p in resolution.packages})
    reporter.status(f"Resolved {count} package{'s' if count != 1 else ''} in {elapsed:.2f}s")
    for line in describe_changes(old_pins, resolution, spec, recorded, options):
        reporter.status(line)
    if not written:
        reporter.status(f"{lockfile.LOCK_NAME} unchanged")
    return 0


def _upgrade_requests(options: LockOptions) -> dict[str, str | None]:
    """`-P NAME` (move to the newest allowed) or `-P NAME==VERSION` (move to that version)."""
    from packaging.version import InvalidVersion, Version

    moves: dict[str, str | None] = {}
    for item in options.upgrade_packages:
        name, sep, version = item.partition("==")
        if sep:
            try:
                version = str(Version(version.strip()))
            except InvalidVersion:
                raise ManifestError(
                    f"--upgrade-package `{item}`: `{version}` is not a version",
                    hint="write NAME or NAME==VERSION, such as `-P httpx==0.27.2`",
                ) from None
        moves[_norm(name.strip())] = version if sep else None
    return moves


def _norm(name: str) -> str:
    from packaging.utils import canonicalize_name

    return canonicalize_name(name)


def _digest(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()[:16]


def describe_changes(
    old: dict[str, list[tuple[str, str | None]]],
    resolution: Any,
    spec: Any,
    recorded: Any,
    options: LockOptions,
) -> list[str]:
    """`+ name==1.0 (why)`, `~ name 1.0 -> 2.0 (why)`, `- name==1.0 (why)` for what moved.

    The why, most specific first: the flag that asked for it, the project's own requirement on
    it that changed, a changed exclude-newer or requires-python, else what requires it now."""
    from packaging.requirements import Requirement

    new: dict[str, list[str]] = {}
    parents: dict[str, set[str]] = {}
    for p in resolution.packages:
        new.setdefault(p.name, []).append(p.version)
        for d in p.dependencies:
            parents.setdefault(d.name, set()).add(f"{p.name} {p.version}")
    upgrade_names = set(_upgrade_requests(options))

    # The project's direct requirements, with where each comes from.
    direct: dict[str, list[tuple[str, str]]] = {}
    sources = [("", spec.dependencies)]
    sources += [(f"extra `{e}`", r) for e, r in sorted(spec.optional_dependencies.items())]
    sources += [(f"group `{g}`", r) for g, r in sorted(spec.dependency_groups.items())]
    for where, reqs in sources:
        for text in reqs:
            name = _norm(Requirement(text).name)
            direct.setdefault(name, []).append((text, where))
    before: set[str] = set()
    if recorded is not None:
        before = {*recorded.dependencies, *(r for rs in recorded.optional_dependencies.values() for r in rs),
                  *(r for rs in recorded.dependency_groups.values() for r in rs)}

    def why_needed(name: str) -> str:
        if name in direct:
            text, where = direct[name][0]
            return f"`{spec.name}` requires `{text}`" + (f" in {where}" if where else "")
        who = sorted(parents.get(name, ()))
        return "required by " + ", ".join(f"`{w}`" for w in who[:3]) + (" …" if len(who) > 3 else "")

    def why_moved(name: str) -> str:
        if options.upgrade:
            return "--upgrade"
        if name in upgrade_names:
            return "--upgrade-package"
        changed = [text for text, _ in direct.get(name, ()) if text not in before]
        if changed and recorded is not None:
            return f"requirement changed to `{changed[0]}`"
        if recorded is not None and recorded.exclude_newer != resolution.inputs.exclude_newer:
            return f"exclude-newer is now {resolution.inputs.exclude_newer or 'unset'}"
        if recorded is not None and recorded.requires_python != resolution.inputs.requires_python:
            return f"requires-python is now `{resolution.inputs.requires_python}`"
        return why_needed(name)

    lines: list[str] = []
    for name in sorted(set(old) | set(new)):
        was = sorted({v for v, _ in old.get(name, [])}, key=_version_key)
        now = sorted(set(new.get(name, [])), key=_version_key)
        if was == now:
            continue
        if not was:
            lines.extend(f"+ {name}=={v} ({why_needed(name)})" for v in now)
        elif not now:
            lines.extend(f"- {name}=={v} (no longer required)" for v in was)
        else:
            lines.append(f"~ {name} {', '.join(was)} -> {', '.join(now)} ({why_moved(name)})")
    return lines


def _version_key(text: str) -> Any:
    from packaging.version import InvalidVersion, Version

    try:
        return (0, Version(text))
    except InvalidVersion:
        return (1, text)

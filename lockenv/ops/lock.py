"""The `lock` use case: pyproject.toml → pylock.toml, or a fast "up to date" without network."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lockenv import lockfile
from lockenv.errors import LockfileError, ManifestError, OfflineError, StaleLockError
from lockenv.lockfile import PinChange, StaleReason
from lockenv.models import LockInputs, ProjectSpec, Resolution
from lockenv.project import LOCK_NAME
from lockenv.ui import Reporter

if TYPE_CHECKING:
    from lockenv.cache import Cache
    from lockenv.lockfile.merge import MergedPins
    from lockenv.ops import reports


@dataclass(frozen=True)
class LockOptions:
    project: Path
    check: bool = False
    upgrade: bool = False
    upgrade_packages: tuple[str, ...] = ()
    exclude_newer: str | None = None
    refresh: bool = False
    offline: bool = False
    """No network: the cache answers (pages of any age), or the lock fails naming what it lacks."""
    dry_run: bool = False
    """Resolve and say what would change; write nothing."""


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


def _fresh_check(options: LockOptions, reporter: Reporter | None) -> tuple[ProjectSpec, Path, list[StaleReason], bool]:
    """The project spec (exclude-newer carried over from the lock), the lock path and why the
    lock is stale ([] when fresh). Imports nothing heavy: this is the no-op path."""
    from lockenv import manifest

    spec = manifest.load(options.project)
    if not spec.requires_python_declared and reporter is not None:
        reporter.warn(
            f"{spec.pyproject} has no `requires-python`; locking for Python {spec.requires_python}",
            hint=f'add `requires-python = "{spec.requires_python}"` to the [project] table',
        )
    path = Path(spec.root) / LOCK_NAME
    try:
        recorded = lockfile.read_inputs(path)
    except LockfileError:
        recorded = None  # unreadable: stale_reasons says why, and `lock` writes a new one
    from lockenv.ops.cutoff import clears

    from_cli = False
    if clears(options.exclude_newer):
        # `--exclude-newer none`: forget the remembered cut-off (pyproject.toml's stays).
        reasons = lockfile.stale_reasons(spec, path)
        if spec.exclude_newer is None and recorded is not None and recorded.exclude_newer_from_cli:
            reasons = [StaleReason("exclude-newer", "exclude-newer",
                                   f"removed exclude-newer `{recorded.exclude_newer}` "
                                   "(--exclude-newer none)"), *reasons]
        return spec, path, reasons, False
    if options.exclude_newer is not None:
        spec = replace(spec, exclude_newer=parse_timestamp(options.exclude_newer, where="--exclude-newer"))
        from_cli = True
    elif spec.exclude_newer is None and recorded is not None and recorded.exclude_newer_from_cli:
        # Recorded in the lock by an earlier `--exclude-newer`: reused until changed.
        spec = replace(spec, exclude_newer=parse_timestamp(recorded.exclude_newer or "", where=str(path)))
        from_cli = True
    return spec, path, lockfile.stale_reasons(spec, path), from_cli


def is_noop(project: Path) -> bool:
    """True when a plain `lockenv lock` would do nothing (used before the CLI is even loaded).
    A True answer is remembered (`project.lock_noop_marker`): the next no-op reads no TOML."""
    try:
        spec, _path, reasons, _cli = _fresh_check(LockOptions(project=project), None)
    except Exception:
        return False
    fresh = spec.requires_python_declared and not reasons
    if fresh:
        _remember_fresh(project)
    return fresh


def _remember_fresh(project: Path) -> None:
    from lockenv.cache import write_atomic
    from lockenv.project import lock_noop_marker

    marker = lock_noop_marker(project)
    if marker is not None and not marker.exists():
        try:
            write_atomic(marker, b"fresh\n")
        except OSError:
            pass  # only a shortcut: the next no-op checks the files again


def lock(options: LockOptions, *, reporter: Reporter, on_result: Callable[[reports.LockCheck], None] | None = None,
         on_resolution: Callable[[Resolution], None] | None = None, heading: str | None = None) -> int:
    """Resolve and write pylock.toml; no network and no write when the inputs are unchanged.
    `on_result` receives `--check`'s finding as data (`ops.reports.LockCheck`, for --json);
    `on_resolution` the new resolution (a sync's dry run plans against it); `heading` goes
    before the list of changes (a sync that locks prints that list and its plan apart)."""
    started = time.perf_counter()
    spec, path, reasons, from_cli = _fresh_check(options, reporter)
    if _answer_without_resolving(options, path, reasons, reporter, on_result):
        return 0
    for table, said in spec.ignored_sources:
        reporter.warn(
            f"{spec.pyproject}: {table} has sources for {said}; lockenv does not read another tool's sources, "
            "so these are locked from lockenv's indexes like any other requirement",
            hint="pin an index in [tool.lockenv.sources] (see README, Private indexes); path, git and URL "
                 "sources are not supported by lockenv yet: check that the index's package is the one you mean",
        )
    for reason in reasons:
        if reason.kind != "missing":
            reporter.status(f"Locking: {reason}")

    from filelock import FileLock

    from lockenv.cache import Bucket, Cache

    _few_malloc_arenas()
    cache = Cache()
    with FileLock(str(cache.bucket(Bucket.PROJECT_LOCKS) / (_digest(str(path)) + ".lock"))):
        # Another lockenv may have written the lock while this one waited: look again.
        if not _forced(options):
            spec, path, reasons, from_cli = _fresh_check(options, None)
            if not reasons:
                reporter.status(f"{LOCK_NAME} is up to date (another lockenv just wrote it)")
                return 0
        previous = _previous_lock(path, reporter)
        moves = _upgrade_requests(options)
        inputs = lockfile.inputs_from_spec(spec)
        if from_cli:  # recorded, so that later runs keep this cut-off until it is changed
            inputs = replace(inputs, exclude_newer_from_cli=True)
        with _few_collections():
            resolution = _resolve(spec, inputs, previous, moves, options, cache, reporter)
            written = _write_or_compare(path, resolution, options.dry_run)
        if not options.dry_run:
            is_noop(options.project)  # remembers the fresh lock for the next no-op
    if on_resolution is not None:
        on_resolution(resolution)
    count = len({p.name for p in resolution.packages})
    reporter.status(f"Resolved {count} package{'s' if count != 1 else ''} in {time.perf_counter() - started:.2f}s")
    if previous.merge is not None:
        lines = describe_merge(previous.merge, resolution)
    else:
        changes = lockfile.diff_pins(previous.pins, resolution, spec, previous.inputs)
        lines = describe_changes(changes, resolution, previous.inputs, options, project=spec.name,
                                 old_pins=previous.pins)
    _report_changes(lines, written, options.dry_run, reporter, heading)
    return 0


def _few_malloc_arenas() -> None:
    """glibc gives each new thread its own malloc arena (up to 8 per core), and a freed block
    stays in its arena: the lock's ~40 index threads (pages, metadata, sizes) hold their
    finished buffers for good, 34 MiB free but kept at the peak of a cold `data` lock. The
    threads take turns on the GIL anyway, so two arenas serve them: peak RSS 119 -> 107 MiB,
    same CPU. Process-wide and only before threads start; a MALLOC_ARENA_MAX the user set
    wins; anywhere but glibc Linux this does nothing."""
    if not sys.platform.startswith("linux") or "MALLOC_ARENA_MAX" in os.environ:
        return
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl has no such knob): nothing to tune
        return
    mallopt(_M_ARENA_MAX, 2)


_M_ARENA_MAX = -8  # glibc's malloc.h


@contextmanager
def _few_collections() -> Iterator[None]:
    """Resolving builds a large heap of long-lived objects (index pages, metadata, markers) and
    little cyclic garbage (the index client's responses free their bodies without it), but at
    the default thresholds the cycle collector scans that growing heap again and again: 0.25 s
    of a 2 s warm `data` lock, 0.5 s of the cold one. Collect the young generations rarely and
    the oldest not at all while resolving; peak RSS stays the same (data cold, measured)."""
    import gc

    before = gc.get_threshold()
    gc.set_threshold(10_000, 50, 1_000)
    try:
        yield
    finally:
        gc.set_threshold(*before)


def _write_or_compare(path: Path, resolution: Resolution, dry_run: bool) -> bool:
    """Write the lock (True when its bytes changed); under --dry-run only say whether they would."""
    if not dry_run:
        return lockfile.write(path, resolution)
    try:
        return path.read_bytes() != lockfile.dumps(resolution).encode("utf-8")
    except OSError:
        return True


def _report_changes(lines: list[str], written: bool, dry_run: bool, reporter: Reporter,
                    heading: str | None = None) -> None:
    """What moved; under --dry-run that is the answer itself, so it goes to stdout."""
    for line in ([heading] if heading and lines else []) + lines:
        if dry_run:
            reporter.data(line)
        else:
            reporter.status(line)
    if dry_run:
        reporter.status(f"Dry run: {LOCK_NAME} would " + ("change" if written else "not change")
                        + "; nothing was written")
    elif not written:
        reporter.status(f"{LOCK_NAME} unchanged")


def _forced(options: LockOptions) -> bool:
    """Options that resolve again even when the lock is fresh."""
    return bool(options.upgrade or options.upgrade_packages or options.refresh)


def _answer_without_resolving(
    options: LockOptions,
    path: Path,
    reasons: Sequence[StaleReason],
    reporter: Reporter,
    on_result: Callable[[reports.LockCheck], None] | None,
) -> bool:
    """`--check`, or a fresh lock nothing forces to move: answer (or raise) and say so."""
    if options.check and options.dry_run:
        raise ManifestError("--check and --dry-run both write nothing; --check answers with its "
                            "exit status, --dry-run shows what a relock would change",
                            hint="pass one of them")
    if options.check and (options.upgrade or options.upgrade_packages or options.exclude_newer):
        raise ManifestError(
            "--check writes nothing, so it cannot be combined with --upgrade, "
            "--upgrade-package or --exclude-newer",
            hint="run `lockenv lock --check` on its own",
        )
    if options.check and on_result is not None:
        from lockenv.ops import reports

        on_result(reports.lock_check(path, reasons))
    if options.check and reasons:
        raise StaleLockError(
            f"{LOCK_NAME} is out of date with pyproject.toml",
            context={"file": str(path)},
            details=[str(r) for r in reasons],
            hint="run `lockenv lock` and commit the result",
        )
    if options.check or (not reasons and not _forced(options)):
        reporter.status(f"{LOCK_NAME} is up to date")
        return True
    return False


@dataclass(frozen=True)
class _Previous:
    """What the lock being replaced says: its recorded inputs and its pins (the preferences)."""

    inputs: LockInputs | None
    pins: dict[str, list[tuple[str, str | None]]]
    merge: MergedPins | None = None
    """Both sides' pins, when the lock held git merge conflicts."""


def _previous_lock(path: Path, reporter: Reporter) -> _Previous:
    try:
        recorded = lockfile.read_inputs(path)
    except LockfileError:
        recorded = None
    try:
        return _Previous(recorded, lockfile.read_pins(path) if path.exists() else {})
    except LockfileError as exc:
        error = exc
    from lockenv.lockfile.merge import merge_pins, salvage_pins, split_conflict

    try:
        text = path.read_bytes().decode("utf-8", "replace")
    except OSError:  # not a file at all (a directory, no permission): nothing to keep
        reporter.warn(f"{error.message}; locking from scratch, without its pins")
        return _Previous(None, {})
    sides = split_conflict(text)
    if sides is not None:
        merged = merge_pins(sides)
        reporter.status(f"{LOCK_NAME} has {_count(sides.regions, 'merge conflict')} between "
                        f"`{sides.ours_label}` and `{sides.theirs_label}`; locking again with both "
                        "sides' pins as preferences")
        for label, missed in ((sides.ours_label, merged.ours_lost), (sides.theirs_label, merged.theirs_lost)):
            if missed:
                reporter.warn(f"{_count(missed, 'package entry', 'package entries')} of "
                              f"`{label}` could not be read; locking them afresh")
        return _Previous(None, merged.pins, merged)
    salvage = salvage_pins(text)
    kept = sum(len(v) for v in salvage.pins.values())
    lost = f" ({_count(salvage.lost, 'package entry', 'package entries')} unreadable)" if salvage.lost else ""
    reporter.warn(f"{error.message}; keeping the {_count(kept, 'pin')} that can still be read{lost}",
                  hint="check the new lock's changes before committing it")
    return _Previous(None, salvage.pins)


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def _resolve(
    spec: ProjectSpec,
    inputs: LockInputs,
    previous: _Previous,
    moves: Mapping[str, str | None],
    options: LockOptions,
    cache: Cache,
    reporter: Reporter,
) -> Resolution:
    """The universal resolution, preferring the previous pins, checked to serve every target."""
    from lockenv.index.routing import IndexRouter, single
    from lockenv.ops.dispatch import distributions
    from lockenv.resolve import resolve

    for name in sorted(n for n in moves if n not in previous.pins):
        reporter.warn(f"`{name}` is not in {LOCK_NAME}; --upgrade-package has nothing to move")
    preferences: dict[str, list[tuple[str, str | None]]] = dict(previous.pins)
    preferences.update({n: [(v, None)] for n, v in moves.items() if v})
    with reporter.progress("Resolving"), IndexRouter(
        spec.indexes or single(spec.index_url),
        cache=cache,
        exclude_newer=spec.exclude_newer,
        refresh=options.refresh and not options.offline,
        reporter=reporter,
        offline=options.offline,
        follow_requires=True,
    ) as client, distributions(client, cache=cache, reporter=reporter) as dists:
        try:
            universal = resolve(
                spec,
                inputs,
                dists,
                preferences=preferences,
                upgrade=options.upgrade,
                upgrade_packages=tuple(n for n, v in moves.items() if not v),
                reporter=reporter,
            )
        except OfflineError:  # name every page and file the resolution reached, not just one
            raise client.offline_error() from None
    lockfile.check_serves(universal.resolution, universal.targets, universal.outside)
    for message, hint in universal.warnings:
        reporter.warn(message, hint=hint)
    resolution = universal.resolution
    _warn_own_name(spec, resolution, reporter)
    for name, wanted in moves.items():
        got = sorted({p.version for p in resolution.packages if p.name == name})
        if wanted and got and wanted not in got:
            reporter.warn(f"`{name}` could not move to {wanted} (the other requirements or "
                          f"the index do not allow it); it is at {', '.join(got)}")
    if inputs.exclude_newer_from_cli and options.exclude_newer is None and (options.upgrade or moves):
        _warn_held_back(cache, spec, resolution, options, moves, reporter)
    return resolution


def _warn_own_name(spec: ProjectSpec, resolution: Resolution, reporter: Reporter) -> None:
    """A dependency on the project's own name (developing `idna` with `requests` in a test group,
    or `packaging` with pytest) is taken from the index: the lock holds the index's release, and
    sync installs it instead of the project, silently (uv resolves such a dependency to the
    project itself; lockenv cannot yet)."""
    own = sorted({p.version for p in resolution.packages if p.name == spec.name})
    if not own:
        return
    needers = sorted({f"`{p.name} {p.version}`" for p in resolution.packages
                      if p.name != spec.name and any(d.name == spec.name for d in p.dependencies)})
    who = ", ".join(needers[:3]) + (f" and {len(needers) - 3} more" if len(needers) > 3 else "")
    reporter.warn(
        f"{who or 'a dependency'} {'depends' if len(needers) == 1 else 'depend'} on `{spec.name}`, this project's own "
        f"name: the lock takes `{spec.name}` {', '.join(own)} from the index, and `lockenv sync` installs that "
        "instead of the project itself",
        hint="lockenv does not resolve a dependency to the project itself yet; the venv imports the index's "
        "release, not this working copy",
    )


def _warn_held_back(cache: Cache, spec: ProjectSpec, resolution: Resolution, options: LockOptions,
                    moves: Mapping[str, str | None], reporter: Reporter) -> None:
    """A remembered cut-off that keeps an upgraded package back is said, with its date."""
    from lockenv.index.routing import IndexRouter, single
    from lockenv.ops.cutoff import held_back

    assert spec.exclude_newer is not None
    names = None if options.upgrade else set(moves)
    with IndexRouter(spec.indexes or single(spec.index_url), cache=cache) as unbounded:
        lines = held_back(unbounded, resolution.packages, names, spec.exclude_newer)
    for line in lines:
        reporter.warn(line, hint="`lockenv lock --exclude-newer none --upgrade` forgets it")


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

    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def describe_changes(
    changes: Sequence[PinChange],
    resolution: Resolution,
    recorded: LockInputs | None,
    options: LockOptions,
    *,
    project: str,
    old_pins: Mapping[str, Sequence[tuple[str, str | None]]] | None = None,
) -> list[str]:
    """`+ name==1.0 (why)`, `~ name 1.0 -> 2.0 (why)`, `- name==1.0 (why)` for what moved.

    The why, most specific first: the flag that asked for it, the project's own requirement on
    it that changed, a changed exclude-newer or requires-python, else what requires it now."""
    upgrade_names = set(_upgrade_requests(options))
    inputs = resolution.inputs

    def why_needed(change: PinChange) -> str:
        if change.direct is not None:
            text, source = change.direct
            kind, _, name = source.partition(":")
            where = "" if kind == "main" else f" in {'group' if kind == 'group' else 'extra'} `{name}`"
            return f"`{project}` requires `{text}`{where}"
        who = change.required_by
        return "required by " + ", ".join(f"`{w}`" for w in who[:3]) + (" …" if len(who) > 3 else "")

    def why_moved(change: PinChange) -> str:
        if options.upgrade:
            return "--upgrade"
        if change.name in upgrade_names:
            return "--upgrade-package"
        if change.changed_requirement is not None:
            return f"requirement changed to `{change.changed_requirement}`"
        if recorded is not None and recorded.exclude_newer != inputs.exclude_newer:
            return f"exclude-newer is now {inputs.exclude_newer or 'unset'}"
        if recorded is not None and recorded.requires_python != inputs.requires_python:
            return f"requires-python is now `{inputs.requires_python}`"
        return why_needed(change)

    new_pins: dict[str, list[tuple[str, str | None]]] = {}
    for p in resolution.packages:
        new_pins.setdefault(p.name, []).append((p.version, p.marker))
    lines: list[str] = []
    for change in changes:
        was = _forks((old_pins or {}).get(change.name, ()), change.before)
        now = _forks(new_pins.get(change.name, ()), change.after)
        if change.kind == "added":
            lines.extend(f"+ {change.name}=={v} ({why_needed(change)})" for v in now)
        elif change.kind == "removed":
            lines.extend(f"- {change.name}=={v} (no longer required)" for v in was)
        else:
            lines.append(f"~ {change.name} {', '.join(was)} -> {', '.join(now)} ({why_moved(change)})")
    return lines


def _forks(entries: Sequence[tuple[str, str | None]], versions: Sequence[str]) -> list[str]:
    """A forked package's versions each with where it applies (`1.5 ; python_version <
    "3.12"`, issue 9 point 10); otherwise the versions alone."""
    if len({v for v, _ in entries}) < 2:
        return list(versions)
    return [f"{v} ; {m}" if m else v for v in versions for vv, m in sorted(set(entries), key=lambda e: e[1] or "") if vv == v]


def describe_merge(merge: MergedPins, resolution: Resolution) -> list[str]:
    """After a lock with merge conflicts, one line per package: the side of the merge its
    version came from (`same on both sides`, which includes what git merged without a conflict;
    `from HEAD`; `from feature`), or what moved, was added or dropped and why."""
    now: dict[str, set[str]] = {}
    parents: dict[str, set[str]] = {}
    for p in resolution.packages:
        now.setdefault(p.name, set()).add(p.version)
        for d in p.dependencies:
            parents.setdefault(d.name, set()).add(f"`{p.name} {p.version}`")
    ours, theirs = merge.ours_label, merge.theirs_label
    lines: list[str] = []
    for name in sorted(set(now) | set(merge.pins)):
        new = _sorted_versions(now.get(name, ()))
        o = _sorted_versions(v for v, _ in merge.ours.get(name, ()))
        t = _sorted_versions(v for v, _ in merge.theirs.get(name, ()))
        text = ", ".join(new)
        why = ("required by " + ", ".join(sorted(parents[name])[:3])) if name in parents else \
            "required by the project"
        if not new:
            had = "both sides" if o and t else (ours if o else theirs)
            lines.append(f"- {name} {', '.join(o or t)} (dropped: no longer required; {had} had it)")
        elif new == o == t:
            lines.append(f"  {name} {text} (same on both sides)")
        elif new == o:
            lines.append(f"  {name} {text} (from {ours}; {theirs} {_had(t)})")
        elif new == t:
            lines.append(f"  {name} {text} (from {theirs}; {ours} {_had(o)})")
        elif not o and not t:
            lines.append(f"+ {name} {text} (new: {why})")
        else:
            was = ", ".join(o) if o == t else ", ".join(sorted(set(o) | set(t)))
            sides = f"both sides had {', '.join(o)}" if o == t else f"{ours} {_had(o)}, {theirs} {_had(t)}"
            lines.append(f"~ {name} {was} -> {text} (moved; {sides}; {why})")
    return lines


def _had(versions: Sequence[str]) -> str:
    return f"had {', '.join(versions)}" if versions else "did not have it"


def _sorted_versions(versions: Iterable[str]) -> list[str]:
    from packaging.version import InvalidVersion, Version

    def key(v: str) -> tuple[int, Any]:
        try:
            return (0, Version(v))
        except InvalidVersion:
            return (1, v)

    return sorted(set(versions), key=key)

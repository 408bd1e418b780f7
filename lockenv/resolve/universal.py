"""Universal resolution, orchestrated: resolve each target (reusing an earlier target's pins
where they fit), merge into one marker-annotated graph (`graph.py`), list each package's files,
and say what the lock written from it must serve (checked by `lockfile.check_serves`)."""

from __future__ import annotations

import json
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from dep_logic.markers import BaseMarker
from packaging.markers import Marker
from packaging.tags import Tag
from packaging.utils import canonicalize_name
from packaging.version import Version

from lockenv.error_context import ErrorContext
from lockenv.errors import LockenvError, ManifestError, ResolutionError
from lockenv.models import Dependency, DistFile, LockedPackage, LockInputs, ProjectSpec, Resolution
from lockenv.resolve.graph import PackageKey, merge
from lockenv.resolve.prefetch import Prefetcher
from lockenv.resolve.provider import Provider
from lockenv.resolve.requirements import Ident, Req, root_applies, root_requirements
from lockenv.resolve.single import NO_VERSIONS, Edge, Pins, TargetResult, resolve_target, try_reuse
from lockenv.resolve.source import IndexSource, PackageIndex, common_requires_python, lock_files, metadata_file, with_sizes
from lockenv.resolve.derived import derive_targets, marker_values
from lockenv.resolve.targets import Platform, Target, make_targets
from lockenv.resolve.unserved import unserved_by_package, unserved_warnings
from lockenv.resolve.tidy import tidy_marker
from lockenv.ui import Reporter, counted

__all__ = ["OutsideProbe", "TargetPins", "UniversalResolution", "resolve_universal"]

LockedVersions = Mapping[str, Sequence[tuple[str, str | None]]]
"""Name → [(version, marker)] of the previous lock's entries: what a relock prefers."""


@dataclass(frozen=True)
class TargetPins:
    """A target and the pins its own resolution chose: the lock must select exactly these there."""

    label: str
    environment: Mapping[str, str]
    tags: tuple[Tag, ...]
    pins: frozenset[tuple[str, str]]
    """(normalised name, version); extras are not packages of the lock."""
    unserved: frozenset[str] = frozenset()
    """Names pinned here with no file to install (the lock warned): selected by marker only."""


@dataclass(frozen=True)
class OutsideProbe:
    """An environment no target enumerates, and the root names that apply there: the lock must
    select one version of each package and all of these names."""

    label: str
    environment: Mapping[str, str]
    required: frozenset[str]


@dataclass(frozen=True)
class UniversalResolution:
    """The resolution, and what the lock written from it must serve (`lockfile.check_serves`)."""

    resolution: Resolution
    targets: tuple[TargetPins, ...]
    outside: tuple[OutsideProbe, ...]
    warnings: tuple[tuple[str, str | None], ...] = ()
    """(message, hint) a user should read: a yanked pin, a target left unserved."""


def resolve_universal(
    spec: ProjectSpec,
    inputs: LockInputs,
    index: PackageIndex,
    *,
    preferences: LockedVersions,
    upgrade: bool,
    upgrade_packages: Collection[str],
    reporter: Reporter | None = None,
) -> UniversalResolution:
    """Every target resolved, one graph, one package entry per (name, version)."""
    started = time.perf_counter()
    targets = _targets(spec)
    roots = root_requirements(spec)
    skip = {canonicalize_name(n) for n in upgrade_packages}
    locked = {} if upgrade else {k: v for k, v in preferences.items() if canonicalize_name(k) not in skip}
    source = IndexSource(index, index, targets)
    crawler = Prefetcher(source)
    _crawl_ahead(crawler, roots, targets)
    try:
        results = _resolve_targets(spec, targets, roots, source, crawler, locked, reporter)
        for _round in range(3):  # the graph names environments no target is: serve them too
            derived = derive_targets(_graph_values(results, roots, source), targets, spec.environments)
            if not derived:
                break
            targets = targets + derived
            crawler.prefetch_targets(results, derived)
            results = _resolve_targets(spec, derived, roots, source, crawler, locked, reporter, prior=results)
    finally:
        crawler.close()
    markers, deps = merge(results)
    packages = _lock_entries(_package_files(results), markers, deps, index, spec.requires_python, spec.environments)
    if reporter is not None:
        reporter.debug(f"universal resolution of {len(targets)} targets in {time.perf_counter() - started:.2f}s")
    return UniversalResolution(
        Resolution(inputs=inputs, packages=packages),
        _target_pins(results),
        () if spec.environments else _outside_probes(roots, targets),
        warnings=tuple(_yank_warnings(results) + _unserved_warnings(results, targets, spec)
                       + _unknown_extra_warnings(results, source)),
    )


def _unserved_warnings(results: Sequence[TargetResult], targets: Sequence[Target],
                       spec: ProjectSpec) -> list[tuple[str, str | None]]:
    """The packages some target pinned without a file to install, and one fix for all."""
    chosen = {
        res.target: {ident.name: str(c.version) for ident, c in res.pins.items() if ident.extra is None and not c.installable}
        for res in results
    }
    return unserved_warnings(unserved_by_package(chosen), targets, spec.requires_python, spec.environments)


def _unknown_extra_warnings(results: Sequence[TargetResult],
                            source: IndexSource) -> list[tuple[str, str | None]]:
    """`requests[sockss]`: an extra the package does not declare adds nothing, silently
    leaving out what the typo meant to bring in; say so (pip and uv warn too), once for every
    locked version that lacks it (one warning, not one per fork)."""
    missing: dict[tuple[str, str, str], set[Version]] = {}
    for res in results:
        for ident, cand in res.pins.items():
            if ident.extra is None:
                continue
            known = source.extras_of(cand.files)
            if known is None or ident.extra in known:
                continue
            offered = ", ".join(f"`{e}`" for e in sorted(known)) or "none"
            missing.setdefault((ident.name, ident.extra, offered), set()).add(cand.version)
    return [
        (f"`{name} {', '.join(str(v) for v in sorted(versions))}` has no extra `{extra}` (its extras: "
         f"{offered}); the requirement `{name}[{extra}]` adds nothing",
         "check the extra's spelling where it is required")
        for (name, extra, offered), versions in sorted(missing.items())
    ]


def _yank_warnings(results: Sequence[TargetResult]) -> list[tuple[str, str | None]]:
    """PEP 592: a yanked release is locked only because the project pins it; say so, with
    the reason its authors gave."""
    out: dict[str, tuple[str, str | None]] = {}
    for res in results:
        for ident, cand in res.pins.items():
            if ident.extra is not None or not cand.file.yanked:
                continue
            reason = cand.file.yanked_reason or next((f.yanked_reason for f in cand.files if f.yanked_reason), None)
            out.setdefault(
                f"{ident.name} {cand.version}",
                (
                    f"`{ident.name} {cand.version}` is yanked"
                    + (f" (reason: {reason})" if reason else " (no reason given)")
                    + "; it is locked because the project pins it",
                    "pin a version that is not yanked, unless this one is needed",
                ),
            )
    return [out[k] for k in sorted(out)]


def _targets(spec: ProjectSpec) -> list[Target]:
    targets = make_targets(spec.requires_python, spec.environments)
    if not targets:
        raise ManifestError(
            f"no target environment fits requires-python `{spec.requires_python}`"
            + (" and [tool.lockenv] environments" if spec.environments else ""),
            context={"file": spec.pyproject},
            hint="check requires-python and environments in pyproject.toml",
        )
    return targets


def _crawl_ahead(crawler: Prefetcher, roots: Sequence[Req], targets: Sequence[Target]) -> None:
    """Crawl ahead for a few far-apart targets at once (newest/oldest Python, Linux/Windows/
    macOS), so dependencies that only some targets need are fetched early too: one crawl of
    each requirement for all of them."""
    newest, oldest = targets[0].python, targets[-1].python
    far = [t for t in targets if t.python in (newest, oldest)]
    crawler.speculate_targets([(r, [t for t in far if root_applies(r, t.environment)]) for r in roots])


def _resolve_targets(
    spec: ProjectSpec,
    targets: Sequence[Target],
    roots: Sequence[Req],
    source: IndexSource,
    crawler: Prefetcher,
    locked: LockedVersions,
    reporter: Reporter | None,
    prior: Sequence[TargetResult] = (),
) -> list[TargetResult]:
    """Each target in turn, newest Python first; each prefers what earlier targets chose (and,
    before that, the previous lock's version for it), and reuses an earlier target's pins
    outright when they fit. Returns `prior` and the new results."""
    results: list[TargetResult] = list(prior)
    earlier: dict[str, str] = {}
    for res in prior:
        for ident, cand in res.pins.items():
            if ident.extra is None:
                earlier.setdefault(ident.name, str(cand.version))
    for target in targets:
        prefs = dict(earlier)
        for name, versions in locked.items():
            chosen = _locked_version_for(versions, target)
            if chosen:
                prefs[name] = chosen
        provider = Provider(source, crawler, environment=target.environment, tag_priority=target.tag_priority, preferences=prefs)
        reused = _reuse(results, target, roots, provider)
        if reused is None:
            try:
                pins, edges = _resolve_one(spec, target, roots, source, crawler, prefs, reporter)
            except ResolutionError as exc:
                raise _particular(exc, target, results) from None
        else:
            pins, edges = reused
        results.append(TargetResult(target, pins, edges))
        for ident, cand in pins.items():
            if ident.extra is None:
                earlier.setdefault(ident.name, str(cand.version))
        if reporter is not None:
            reporter.debug(f"resolved {target.name}: {len(pins)} identifiers" + (" (reused)" if reused else ""))
            reporter.activity(f"Resolved {len(results)} of {len(targets)} environments")
    return results


def _resolve_one(
    spec: ProjectSpec, target: Target, roots: Sequence[Req], source: IndexSource, crawler: Prefetcher,
    prefs: Mapping[str, str], reporter: Reporter | None,
) -> tuple[Pins, list[Edge]]:
    """One target by resolvelib: a package with no file here is still pinned (the lock warns),
    unless `required-environments` admits the target (then that is the error)."""
    required = next((m for m in spec.required_environments if Marker(m).evaluate(dict(target.environment))), None)
    try:
        return resolve_target(
            target.environment, target.tag_priority, roots, source, crawler, prefs,
            label=target.label, project=spec.name, requires_python=spec.requires_python,
            reporter=reporter, unserved_ok=required is None,
        )
    except ResolutionError as exc:
        if required is None and target.origin is not None:
            raise _derived_error(exc, target, spec) from None
        if required is None:
            raise
        raise ResolutionError(
            exc.message,
            details=exc.details,
            context=exc.context.merged(ErrorContext(file=str(spec.pyproject))),
            note=f"{target.label} (sys_platform {target.environment['sys_platform']}, platform_machine "
            f"{target.environment['platform_machine']}) must be served: [tool.lockenv] "
            f"required-environments has `{required}`",
            hint="allow a version that has a file there (loosen the requirement), or take that "
            f"environment out of required-environments; {exc.hint}" if exc.hint else None,
        ) from None


def _particular(exc: ResolutionError, failed: Target, resolved: Sequence[TargetResult]) -> ResolutionError:
    """A conflict met after other targets resolved is particular to some environments: the
    report says where the requirements do resolve (known already: no resolution is run), so
    that the one it names reads as the exception it is."""
    if not resolved or exc.message != NO_VERSIONS.format(failed.label) or exc.note is not None:
        return exc
    first, others = resolved[0].target.label, len(resolved) - 1
    where = first + (f" and {counted(others, 'other environment')}" if others else "")
    return ResolutionError(exc.message, details=exc.details, context=exc.context, hint=exc.hint,
                           note=f"the requirements do resolve on {where}")


def _derived_error(exc: ResolutionError, target: Target, spec: ProjectSpec) -> ResolutionError:
    """A target derived from the graph's markers has no solution: name it, and the
    `environments` value that leaves it out."""
    assert target.origin is not None
    var, value = target.origin
    clause = f"{var} != '{value}'"
    values = [f"({e}) and {clause}" for e in spec.environments] if spec.environments else [clause]
    shown = ", ".join(json.dumps(v) for v in values)
    return ResolutionError(
        exc.message,
        details=exc.details,
        context=exc.context,
        note=f"{target.label} is resolved because the dependency graph names `{var} == '{value}'`",
        hint=(f"{exc.hint}; " if exc.hint else "")
        + f"or, if the project need not support it, leave it out in pyproject.toml: "
        f"`[tool.lockenv] environments = [{shown}]`",
    )


def _graph_values(results: Sequence[TargetResult], roots: Sequence[Req], source: IndexSource) -> set[tuple[str, str]]:
    """The marker values (`implementation_name == 'pypy'`...) of every requirement the project
    and its pinned packages declare, applicable or not (memoised reads: no new fetch)."""
    markers = [r.requirement.marker for r in roots if r.requirement.marker is not None]
    seen: set[tuple[str, str]] = set()
    for res in results:
        for cand in res.pins.values():
            key = (cand.name, str(cand.version))
            if key in seen:
                continue
            seen.add(key)
            try:
                reqs = source.requirements_for(cand.files, metadata_file(cand, res.target.tag_priority), res.target.environment)
            except LockenvError:
                continue  # its metadata could not be had: resolution already said so
            markers.extend(r.marker for r in reqs if r.marker is not None)
    return marker_values(markers)


def _reuse(
    results: Sequence[TargetResult], target: Target, roots: Sequence[Req], provider: Provider
) -> tuple[Pins, list[Edge]] | None:
    """The latest earlier target's pins that also resolve this target, if any. Pins the same
    as a later target's (same versions) give the same answer: tried once (sqla's Python 3.8
    targets tried 40 earlier results, a handful of distinct ones, 0.75 s of CPU each). Only a
    target on the same or a newer Python: targets derived from the graph (PyPy, Emscripten,
    ppc64le at every Python) come after the oldest CPython, whose pins fit them too but are that
    Python's choices (PyPy 3.15 got Python 3.10's autobahn 24, sphinx 8, pandas 2.3)."""
    tried: set[frozenset[tuple[Ident, Version]]] = set()
    for prev in reversed(results):
        if prev.target.python < target.python:
            continue  # an older Python's choices: they may fit, but are older than this Python's
        key = frozenset((ident, cand.version) for ident, cand in prev.pins.items())
        if key in tried:
            continue
        tried.add(key)
        reused = try_reuse(prev.pins, target, roots, provider)
        if reused is not None:
            return reused
    return None


def _locked_version_for(versions: Sequence[tuple[str, str | None]], target: Target) -> str | None:
    """The newest of the previous lock's versions of a package whose marker holds on the target."""
    env = {**target.environment, "extra": ""}
    best: str | None = None
    for version, marker in versions:
        ok = True
        if marker:
            text = marker
            if " in extras" in text or " in dependency_groups" in text:
                ok = True
            else:
                try:
                    ok = Marker(text).evaluate(env)
                except Exception:
                    ok = True
        if ok and (best is None or Version(version) > Version(best)):
            best = version
    return best


# -- the lock's entries --------------------------------------------------------------------------


def _package_files(results: Sequence[TargetResult]) -> dict[PackageKey, tuple[DistFile, ...]]:
    """Every (name, version) some target chose, with all the files of that version."""
    files_of: dict[PackageKey, tuple[DistFile, ...]] = {}
    for res in results:
        for ident, cand in res.pins.items():
            if ident.extra is None:
                files_of[(ident.name, str(cand.version))] = cand.files
    return files_of


def _lock_entries(
    files_of: dict[PackageKey, tuple[DistFile, ...]],
    markers: Mapping[PackageKey, BaseMarker],
    deps: Mapping[PackageKey, set[PackageKey]],
    index: PackageIndex,
    requires_python: str,
    environments: Sequence[str] = (),
) -> tuple[LockedPackage, ...]:
    """One package entry per (name, version), sorted; a dependency names its version only when
    the lock holds several of that package."""
    versions_per_name: dict[str, set[str]] = {}
    for (name, version) in files_of:
        versions_per_name.setdefault(name, set()).add(version)
    sized = with_sizes(dict(files_of), index, requires_python, environments)
    packages: list[LockedPackage] = []
    for (name, version), files in sorted(sized.items(), key=lambda kv: (kv[0][0], Version(kv[0][1]))):
        m = markers.get((name, version))
        if m is None or m.is_empty():
            raise ResolutionError(f"`{name} {version}` was resolved but no path in the graph leads to it (a bug)")
        wheels, sdist = lock_files(files, requires_python, environments)
        dependencies = tuple(
            Dependency(canonicalize_name(d), v if len(versions_per_name.get(d, ())) > 1 else None)
            for d, v in sorted(deps.get((name, version), ()), key=lambda dv: (dv[0], Version(dv[1])))
        )
        packages.append(LockedPackage(
            name=canonicalize_name(name),
            version=version,
            marker=None if m.is_any() else tidy_marker(str(m)),
            requires_python=common_requires_python(files),
            index=next((f.index for f in files if f.index), index.simple_index_url),  # each name: one index
            dependencies=dependencies,
            wheels=wheels,
            sdist=sdist,
        ))
    return tuple(packages)


# -- what the lock must serve --------------------------------------------------------------------


def _target_pins(results: Sequence[TargetResult]) -> tuple[TargetPins, ...]:
    return tuple(
        TargetPins(
            label=res.target.label,
            environment=res.target.environment,
            tags=tuple(res.target.tags),
            pins=frozenset((ident.name, str(c.version)) for ident, c in res.pins.items() if ident.extra is None),
            unserved=frozenset(ident.name for ident, c in res.pins.items() if not c.installable),
        )
        for res in results
    )


def _outside_probes(roots: Sequence[Req], targets: Sequence[Target]) -> tuple[OutsideProbe, ...]:
    """The lock must also serve environments no target enumerates (DESIGN.md): another Linux
    machine type on the oldest Python, and the next Python."""
    newest = max(t.python for t in targets)
    oldest = min(t.python for t in targets)
    ppc = Platform("linux-ppc64le", "linux", "Linux", "posix", "ppc64le")
    linux = next((t.platform for t in targets if t.platform.key == "linux-x86_64"), targets[0].platform)
    probes = [Target(oldest, f"3.{oldest[1]}.0", ppc), Target((3, newest[1] + 1), f"3.{newest[1] + 1}.0", linux)]
    return tuple(
        OutsideProbe(
            label=probe.label,
            environment=probe.environment,
            required=frozenset(r.name for r in roots if root_applies(r, probe.environment)),
        )
        for probe in probes
    )

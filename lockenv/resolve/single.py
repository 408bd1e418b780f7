"""One environment: resolvelib for a target (or a build env), the reuse of an earlier target's
pins without resolving again, and the conflict report a user reads when nothing fits."""

from __future__ import annotations

import re

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.tags import Tag
from packaging.version import Version
from resolvelib import BaseReporter, Resolver
from resolvelib.resolvers import ResolutionImpossible, ResolutionTooDeep

from lockenv.errors import LockenvError, ManifestError, ResolutionError
from lockenv.models import DistFile
from lockenv.resolve.hints import python_ceiling, python_floor, requires_python_hint, wheel_floor
from lockenv.resolve.prefetch import Prefetcher
from lockenv.resolve.provider import UNAVAILABLE, Crawler, Provider, Unsatisfiable
from lockenv.resolve.requirements import Candidate, Ident, Req, file_tags, requirement_to_reqs, root_applies
from lockenv.resolve.source import Index, IndexSource, PackageSource, best_file
from lockenv.resolve.targets import Target
from lockenv.ui import Reporter

if TYPE_CHECKING:
    from resolvelib.structs import RequirementInformation

__all__ = ["Edge", "Pins", "TargetResult", "resolve_single", "resolve_target", "try_reuse"]

Pins = dict[Ident, Candidate]
"""What one environment resolved to: a candidate per identifier."""
Edge = tuple[Ident | None, Req]
"""(parent identifier, or None for a root; the requirement)."""


@dataclass
class TargetResult:
    """One target's resolution: its pins and the edges that led to them."""

    target: Target
    pins: Pins
    edges: list[Edge] = field(default_factory=list)


class _Progress(BaseReporter):
    """Says, on a terminal's live line only, how far resolvelib has got (issue 9, point 3), and
    tells the provider which candidates were pinned and which rejected."""

    def __init__(self, reporter: Reporter | None, label: str, provider: Provider) -> None:
        self.reporter = reporter
        self.label = label
        self.provider = provider
        self.pinned: set[str] = set()

    def rejecting_candidate(self, criterion: object, candidate: Candidate) -> None:
        self.provider.rejecting(candidate)

    def pinning(self, candidate: Candidate) -> None:
        self.provider.pinning(candidate)
        if self.reporter is not None:
            self.pinned.add(candidate.name)
            self.reporter.activity(
                f"Resolving for {self.label}: {len(self.pinned)} packages, at {candidate}")


def resolve_target(
    target_env: Mapping[str, str],
    tag_priority: Mapping[Tag, int],
    roots: Sequence[Req],
    source: PackageSource,
    crawler: Crawler,
    preferences: Mapping[str, str],
    *,
    label: str,
    project: str,
    requires_python: str,
    reporter: Reporter | None = None,
    unserved_ok: bool = False,
) -> tuple[Pins, list[Edge]]:
    """resolvelib for one environment; conflicts become a ResolutionError naming the chain.
    `unserved_ok`: a package no allowed version of which has a file here is still pinned."""
    applicable = [r for r in roots if root_applies(r, target_env)]
    provider = Provider(
        source, crawler, environment=target_env, tag_priority=tag_priority, preferences=preferences,
        roots=applicable, project=project, unserved_ok=unserved_ok,
    )
    crawler.speculate(applicable, target_env, tag_priority)
    resolver: Resolver[Req, Candidate, Ident] = _resolver_class()(provider, _Progress(reporter, label, provider))
    try:
        result = resolver.resolve(applicable, max_rounds=20000)
    except ResolutionImpossible as exc:
        learned = provider.learned_conflict()  # the project's own bounds may name it best
        if learned is not None:
            raise _learned_error(learned, provider, label) from None
        raise _conflict_error(exc, provider, label=label, project=project, requires_python=requires_python) from None
    except Unsatisfiable as exc:
        raise _learned_error(exc, provider, label) from None
    except ResolutionTooDeep:
        raise ResolutionError(
            f"resolution gave up after too many steps ({label})",
            hint="narrow the requirements (add lower bounds) so fewer versions need trying",
        ) from None
    edges: list[Edge] = []
    for ident, crit in result.criteria.items():
        if ident not in result.mapping:
            continue
        for info in crit.information:
            parent = None
            if info.parent is not None:
                parent = info.parent.identifier
                pinned = result.mapping.get(parent)
                if pinned is None or pinned.version != info.parent.version:
                    continue  # left by a parent version backtracked away (resolvelib keeps it)
            edges.append((parent, info.requirement))
    return dict(result.mapping), edges


def _resolver_class() -> type[Resolver[Req, Candidate, Ident]]:
    """resolvelib's resolver without its doubling backjumps (`backjump`), or resolvelib's own
    when a resolvelib without the internals that builds on is installed (the same locks,
    slower after long backjumps): `resolvelib>=1.1` allows versions this was not written for."""
    try:
        from lockenv.resolve.backjump import BackjumpResolver
    except ImportError:
        return Resolver
    return BackjumpResolver


def try_reuse(
    prev: Mapping[Ident, Candidate], target: Target, roots: Sequence[Req], provider: Provider
) -> tuple[Pins, list[Edge]] | None:
    """If an earlier target's pins also form a valid resolution here, return it without running
    resolvelib. It is a valid resolution and deterministic, but not always the one resolvelib
    would find: the caller (`universal._reuse`) tries the LATEST earlier target's pins first,
    while resolvelib's preferences are each name's FIRST target's version; the two agree
    wherever those pins are the same (sqla's notes: allowing a stand-in here gave Python 3.9+ on
    ppc64le Python 3.8's older pins, so it is not allowed). An identifier the earlier target did not pin, or pinned to a version that does not fit
    here (no file for this target, or outside a requirement), takes resolvelib's first choice
    for it when that is the first choice for each of its requirements alone (then for any set
    of them too: resolvelib would pin it and never backtrack; the earlier pin, its preference,
    is not among the candidates). So one version without a file for an older Python no longer
    costs that target a resolvelib run (data: 2 of 3 runs)."""
    pins: Pins = {}
    edges: list[Edge] = []
    fresh: set[Ident] = set()
    queue: list[Edge] = [(None, r) for r in roots if root_applies(r, target.environment)]
    while queue:
        parent, req = queue.pop()
        edges.append((parent, req))
        ident = req.identifier
        if ident in fresh:
            first = _first_choice(provider, req)
            if first is None or first.version != pins[ident].version:
                return None
            continue
        if ident in pins:
            if not req.specifier.contains(pins[ident].version, prereleases=True):
                return None
            continue
        old = prev.get(ident)
        cand = _carried(old, req, target, provider.source) if old is not None else None
        if cand is None:
            cand = _first_choice(provider, req)
            fresh.add(ident)
        if cand is None:
            return None
        pins[ident] = cand
        provider.pinning(cand)
        for dep in provider.get_dependencies(cand):
            queue.append((ident, dep))
    return pins, edges


def _carried(old: Candidate, req: Req, target: Target, source: PackageSource) -> Candidate | None:
    """The earlier target's pin, with this target's best file, if it fits `req` here."""
    if not req.specifier.contains(old.version, prereleases=True):
        return None
    if not any(f.yanked for f in old.files):
        chosen = source.best_for(old.files, target)  # worked out once per version and target
    else:
        usable = [f for f in old.files if not f.yanked] or (
            list(old.files) if req.pins_exactly and req.source is not None else [])
        chosen = best_file(usable, target.tag_priority, target.python_full)
    if chosen is None:
        return None
    return Candidate(old.name, old.version, old.extra, chosen, old.files)


def _first_choice(provider: Provider, req: Req) -> Candidate | None:
    """The candidate resolvelib tries first for `req` alone, if it is a final release with a
    file here: a pre-release or a stand-in depends on the whole set of requirements, so those
    are left to resolvelib."""
    ident = req.identifier
    first = next(provider.find_matches(ident, {ident: iter([req])}, {ident: iter(())})(), None)
    if first is None or first.version.is_prerelease or not first.installable:
        return None
    return first


def resolve_single(
    requirements: Sequence[str],
    index: Index,
    *,
    environment: Mapping[str, str],
    tags: Sequence[Tag],
) -> list[tuple[str, str, DistFile]]:
    """One environment (e.g. an isolated build env): (name, version, file to install)."""
    roots = []
    for text in requirements:
        try:
            roots.extend(requirement_to_reqs(Requirement(text), "main"))
        except InvalidRequirement as exc:
            raise ManifestError(f"invalid requirement `{text}`: {exc}") from None
    env = dict(environment)
    source = IndexSource(index, index)
    crawler = Prefetcher(source)
    try:
        pins, _edges = resolve_target(
            env,
            {tag: i for i, tag in enumerate(tags)},
            roots,
            source,
            crawler,
            {},
            label=f"Python {env.get('python_version', '?')} build environment",
            project="build requirements",
            requires_python=f"=={env.get('python_full_version', '')}",
        )
    finally:
        crawler.close()
    return sorted(
        ((c.name, str(c.version), c.file) for ident, c in pins.items() if ident.extra is None),
        key=lambda x: x[0],
    )


# -- the conflict report -------------------------------------------------------------------------
NO_VERSIONS = "no versions satisfy the requirements (resolving for {})"
"""The conflict report's first line: the target named is where resolution ran into it (the
first target, for a conflict that holds everywhere), not a claim that it is that target's."""


def _conflict_error(
    exc: ResolutionImpossible[Req, Candidate], provider: Provider, *, label: str, project: str, requires_python: str
) -> LockenvError:
    lines: list[str] = []
    python_lines: list[str] = []
    idents: list[Ident] = []
    causes: Collection[RequirementInformation[Req, Candidate]] = exc.causes
    for info in causes:  # the project names a package no index has: the index's own words
        missing = provider.source.not_found(info.requirement.name) if info.parent is None else None
        if missing is not None:
            return missing
    for info in causes:
        req = info.requirement
        if req.name.startswith(UNAVAILABLE):
            continue  # said below, with the other versions skipped
        who = f"`{project}`" if info.parent is None else f"`{info.parent.name} {info.parent.version}`"
        lines.append(f"{who} depends on `{req.requirement}`{_source_label(req.source) if info.parent is None else ''}")
        idents.append(req.identifier)
    for ident in dict.fromkeys(idents):
        why = provider.no_candidates.get(ident)
        if why and "requires Python" in why:
            python_lines.append(f"`{ident}`: {why}, but requires-python `{requires_python}` includes {label}")
            python_lines.extend(_exact_minor_note(why, provider.python_full))
        elif why:
            lines.append(why if why.startswith(f"`{ident.name}` ") else f"`{ident}`: {why}")
    lines = list(dict.fromkeys(lines + _skipped(provider)))
    no_file = [i for i in dict.fromkeys(idents) if "no wheel for this platform" in provider.no_candidates.get(i, "")]
    if no_file and not python_lines:
        return ResolutionError(
            f"`{no_file[0]}` has no file installable on {label}",
            details=lines,
            hint=_narrowing_hint(no_file[0], provider, _joined_spec(no_file[0], causes)),
        )
    if python_lines:
        hint = requires_python_hint(_python_floor(causes, provider), _python_ceiling(causes, provider, requires_python),
                                    requires_python)
    else:
        hint = _contexts_hint(causes) or "loosen one of these requirements, or pin a version of the package that satisfies all"
    return ResolutionError(
        NO_VERSIONS.format(label),
        details=python_lines + lines,
        hint=hint,
    )


def _source_label(source: str | None) -> str:
    """Where a root requirement comes from, for the conflict report: ` (group `dev`)`."""
    kind, _, name = (source or "").partition(":")
    return f" ({kind} `{name}`)" if kind in ("extra", "group") and name else ""


def _contexts_hint(causes: Collection[RequirementInformation[Req, Candidate]]) -> str | None:
    """Root requirements of different extras or groups that clash: one lock serves every
    combination of them, so they must agree (a declaration that two of them never go together,
    as uv's `conflicts`, is not supported)."""
    sources = sorted({info.requirement.source or "main" for info in causes if info.parent is None})
    named = [_source_label(s).strip(" ()") for s in sources if s != "main"]
    if len(sources) < 2 or not named:
        return None
    return (f"{' and '.join(named)} must resolve together: one lock serves every combination of extras and "
            "groups (lockenv cannot lock extras or groups that exclude each other); make these requirements agree")


def _exact_minor_note(why: str, python_full: str) -> list[str]:
    """Why a `!=3.14` (meant as `!=3.14.*` by its authors, as in airflow 2) refuses the target:
    it excludes 3.14.0, the first 3.14 the project allows, which the lock must serve too."""
    minor = python_full.rsplit(".", 1)[0]
    for excluded in ([minor] if python_full.endswith(".0") else []) + [python_full]:
        if re.search(rf"!={re.escape(excluded)}(?![.\d*])", why):  # also `!=3.9.0` (cryptography)
            return [f"(`!={excluded}` excludes Python {python_full}, which requires-python allows and the lock must serve)"]
    return []


def _python_floor(causes: Collection[RequirementInformation[Req, Candidate]],
                  provider: Provider) -> str | None:
    """The requires-python floor that lets every package refused for its Python resolve."""
    floors = []
    for ident in dict.fromkeys(info.requirement.identifier for info in causes):
        if "requires Python" not in provider.no_candidates.get(ident, ""):
            continue
        spec = SpecifierSet()
        for info in causes:
            if info.requirement.identifier == ident:
                spec &= info.requirement.specifier
        floor = python_floor(provider.source.versions(ident.name), spec, provider.python_full)
        if floor is None:
            return None
        floors.append(Version(floor))
    return str(max(floors)) if floors else None


def _python_ceiling(causes: Collection[RequirementInformation[Req, Candidate]], provider: Provider,
                    requires_python: str) -> str | None:
    """The requires-python cap that lets every package refused for its Python resolve on the
    project's older Pythons (the lowest cap any of them needs)."""
    ceilings = []
    for ident in dict.fromkeys(info.requirement.identifier for info in causes):
        if "requires Python" not in provider.no_candidates.get(ident, ""):
            continue
        ceiling = python_ceiling(provider.source.versions(ident.name), _joined_spec(ident, causes),
                                 provider.python_full, requires_python)
        if ceiling is None:
            return None
        ceilings.append(Version(ceiling))
    return str(min(ceilings)) if ceilings else None


def _learned_error(exc: Unsatisfiable, provider: Provider, label: str) -> ResolutionError:
    return ResolutionError(
        NO_VERSIONS.format(label), details=exc.lines + _skipped(provider), hint=exc.hint
    )


def _skipped(provider: Provider) -> list[str]:
    """The versions left out because their metadata could not be had (a few: the first says
    why; the rest are the same story)."""
    msgs = [provider.unavailable[k] for k in sorted(provider.unavailable)]
    return msgs[:3] + ([f"(and {len(msgs) - 3} more versions skipped the same way)"] if len(msgs) > 3 else [])


def _joined_spec(ident: Ident, causes: Collection[RequirementInformation[Req, Candidate]]) -> SpecifierSet:
    spec = SpecifierSet()
    for info in causes:
        if info.requirement.identifier == ident:
            spec &= info.requirement.specifier
    return spec


def _narrowing_hint(ident: Ident, provider: Provider, spec: SpecifierSet) -> str:
    """What to narrow: the Python range when a version the requirements allow has wheels for
    this platform (just not for this Python), else the platforms."""
    env = provider.environment
    platforms = {t.platform for t in provider.tag_priority}
    allowed = set(provider.allowed(ident.name, spec))
    files = [f for v, fs in provider.source.versions(ident.name).items() if v in allowed for f in fs if f.is_wheel]
    here = [t for f in files for t in file_tags(f) if t.platform in platforms]
    if here:
        minors = [int(t.interpreter[3:]) for t in here if t.interpreter[:3] in ("cp3", "pp3") and t.interpreter[3:].isdigit()]
        floor = wheel_floor(minors, env["python_version"])
        if floor is not None:
            return f"its wheels for this platform start at Python {floor}: " + requires_python_hint(floor)
        bound = f"3.{max(minors) + 1}" if minors else env["python_version"]
        return (
            f"its wheels for this platform stop before Python {bound}: add an upper bound "
            f"`<{bound}` to requires-python, or wait for a release with wheels for newer Pythons"
        )
    if env["sys_platform"] == "win32":
        example = "sys_platform != 'win32'"
    elif env["sys_platform"] == "darwin":
        example = f"sys_platform != 'darwin' or platform_machine != '{env['platform_machine']}'"
    else:
        example = f"sys_platform != 'linux' or platform_machine != '{env['platform_machine']}'"
    return (
        "it has no wheel for this platform and no sdist: leave the platform out with "
        f'`[tool.lockenv] environments = ["{example}"]` in pyproject.toml'
    )

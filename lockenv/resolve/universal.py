"""Universal resolution: resolve each target, then merge into one marker-annotated graph.

Targets pick versions; the dependency graph writes the markers (DESIGN.md, "Universal
resolution"). A package's marker is the OR over its incoming edges of (parent's marker AND the
edge's marker), from the roots down; where targets chose different versions, each version also
gets a condition that separates its targets from the others'.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from dep_logic.markers import AnyMarker, BaseMarker, EmptyMarker, parse_marker
from packaging.markers import Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.tags import Tag
from packaging.utils import canonicalize_name
from packaging.version import Version
from resolvelib import BaseReporter, Resolver
from resolvelib.resolvers import ResolutionImpossible, ResolutionTooDeep

from lockenv.errors import ManifestError, ResolutionError
from lockenv.models import Dependency, DistFile, LockedPackage, LockInputs, ProjectSpec, Resolution
from lockenv.resolve.markers import partition, separator, to_marker
from lockenv.resolve.provider import (
    Candidate,
    Metadata,
    Provider,
    Req,
    best_file,
    filename_tags,
    file_tags,
    requirement_to_reqs,
)
from lockenv.resolve.targets import Platform, Target, make_targets

Node = tuple[str, str]
"""(identifier, version) of a resolved candidate, or (root source, '') for a root."""


@dataclass
class TargetResult:
    """One target's resolution: its pins and the edges that led to them."""

    target: Target
    pins: dict[str, Candidate]
    edges: list[tuple[str | None, Req]] = field(default_factory=list)
    """(parent identifier or None for a root, requirement)."""


# -- roots ---------------------------------------------------------------------------------------


def root_requirements(spec: ProjectSpec) -> list[Req]:
    """Main dependencies, every extra and every group, each tagged with where it came from.
    A group that names the project itself (`myapp[test]`) stands for that extra's requirements."""
    out: list[Req] = []

    def add(texts: Sequence[str], source: str, seen: frozenset[str] = frozenset()) -> None:
        for text in texts:
            try:
                req = Requirement(text)
            except InvalidRequirement as exc:  # manifest validated already; defensive
                raise ManifestError(f"invalid requirement `{text}`: {exc}") from None
            if req.url:
                raise ManifestError(
                    f"`{text}`: direct URL requirements are not supported yet",
                    context={"file": spec.pyproject},
                    hint="use a version specifier from the index instead",
                )
            if canonicalize_name(req.name) == spec.name:
                for extra in sorted(canonicalize_name(e) for e in req.extras):
                    if extra in spec.optional_dependencies and extra not in seen:
                        add(spec.optional_dependencies[extra], source, seen | {extra})
                continue
            out.extend(requirement_to_reqs(req, source))

    add(spec.dependencies, "main")
    for extra, reqs in sorted(spec.optional_dependencies.items()):
        add(reqs, f"extra:{extra}")
    for group, reqs in sorted(spec.dependency_groups.items()):
        add(reqs, f"group:{group}")
    return out


def _root_applies(req: Req, environment: Mapping[str, str]) -> bool:
    marker = req.requirement.marker
    return marker is None or marker.evaluate({**environment, "extra": ""})


# -- one target ----------------------------------------------------------------------------------


class _QuietReporter(BaseReporter):  # type: ignore[misc]
    pass


def resolve_target(
    target_env: Mapping[str, str],
    tag_priority: Mapping[object, int],
    roots: Sequence[Req],
    meta: Metadata,
    preferences: Mapping[str, str],
    *,
    label: str,
    project: str,
    requires_python: str,
) -> tuple[dict[str, Candidate], list[tuple[str | None, Req]]]:
    """resolvelib for one environment; conflicts become a ResolutionError naming the chain."""
    provider = Provider(meta, environment=target_env, tag_priority=tag_priority, preferences=preferences)  # type: ignore[arg-type]
    applicable = [r for r in roots if _root_applies(r, target_env)]
    meta.speculate(applicable, target_env, tag_priority)  # type: ignore[arg-type]
    resolver = Resolver(provider, _QuietReporter())
    try:
        result = resolver.resolve(applicable, max_rounds=20000)
    except ResolutionImpossible as exc:
        raise _conflict_error(exc, provider, label=label, project=project, requires_python=requires_python) from None
    except ResolutionTooDeep:
        raise ResolutionError(
            f"resolution gave up after too many steps ({label})",
            hint="narrow the requirements (add lower bounds) so fewer versions need trying",
        ) from None
    edges: list[tuple[str | None, Req]] = []
    for ident, crit in result.criteria.items():
        if ident not in result.mapping:
            continue
        for info in crit.information:
            parent = info.parent.identifier if info.parent is not None else None
            edges.append((parent, info.requirement))
    return dict(result.mapping), edges


def _conflict_error(
    exc: ResolutionImpossible, provider: Provider, *, label: str, project: str, requires_python: str
) -> ResolutionError:
    lines: list[str] = []
    python_lines: list[str] = []
    idents = []
    for info in exc.causes:
        req: Req = info.requirement
        who = f"`{project}`" if info.parent is None else f"`{info.parent.name} {info.parent.version}`"
        lines.append(f"{who} depends on `{req.requirement}`")
        idents.append(req.identifier)
    for ident in dict.fromkeys(idents):
        why = provider.no_candidates.get(ident)
        if why and "requires Python" in why:
            python_lines.append(f"`{ident}`: {why}, but requires-python `{requires_python}` includes {label}")
        elif why:
            lines.append(f"`{ident}`: {why}")
    lines = list(dict.fromkeys(lines))
    no_file = [i for i in dict.fromkeys(idents) if "no wheel for this platform" in provider.no_candidates.get(i, "")]
    if no_file and not python_lines:
        return ResolutionError(
            f"`{no_file[0]}` has no file installable on {label}",
            details=lines,
            hint=_narrowing_hint(no_file[0], provider),
        )
    if python_lines:
        hint = (
            "raise requires-python in pyproject.toml, or add a marker such as "
            "`; python_version >= \"3.X\"` to the requirement"
        )
    else:
        hint = "loosen one of these requirements, or pin a version of the package that satisfies all"
    return ResolutionError(
        f"no versions satisfy the requirements ({label})",
        details=python_lines + lines,
        hint=hint,
    )


def _narrowing_hint(ident: str, provider: Provider) -> str:
    """What to narrow: the Python range when the package has wheels for this platform (just
    not for this Python yet), else the platforms."""
    env = provider.environment
    platforms = {t.platform for t in provider.tag_priority}
    files = [f for fs in provider.meta.versions(_ident_name(ident)).values() for f in fs if f.is_wheel]
    here = [t for f in files for t in file_tags(f) if t.platform in platforms]
    if here:
        minors = [int(t.interpreter[3:]) for t in here if t.interpreter[:3] in ("cp3", "pp3") and t.interpreter[3:].isdigit()]
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


def try_reuse(
    prev: Mapping[str, Candidate], target: Target, roots: Sequence[Req], provider: Provider
) -> tuple[dict[str, Candidate], list[tuple[str | None, Req]]] | None:
    """If an earlier target's pins also form a valid resolution here, return it (the same thing
    resolvelib would find first, given those pins as preferences) without running resolvelib."""
    pins: dict[str, Candidate] = {}
    edges: list[tuple[str | None, Req]] = []
    queue: list[tuple[str | None, Req]] = [(None, r) for r in roots if _root_applies(r, target.environment)]
    seen_reqs: dict[str, list[Req]] = {}
    while queue:
        parent, req = queue.pop()
        edges.append((parent, req))
        ident = req.identifier
        seen_reqs.setdefault(ident, []).append(req)
        old = prev.get(ident)
        if old is None:
            return None
        if not req.specifier.contains(old.version, prereleases=True):
            return None
        if ident in pins:
            continue
        usable = [f for f in old.files if not f.yanked] or (list(old.files) if req.pins_exactly else [])
        chosen = best_file(usable, target.tag_priority, target.python_full)
        if chosen is None:
            return None
        cand = Candidate(old.name, old.version, old.extra, chosen, old.files)
        pins[ident] = cand
        for dep in provider.get_dependencies(cand):
            queue.append((ident, dep))
    return pins, edges


# -- the universal merge -------------------------------------------------------------------------


def _context_marker(source: str) -> str | None:
    kind, _, name = source.partition(":")
    if kind == "extra":
        return f"'{name}' in extras"
    if kind == "group":
        return f"'{name}' in dependency_groups"
    return None


def _edge_marker(parent: str | None, req: Req) -> BaseMarker:
    marker = req.requirement.marker
    m: BaseMarker = AnyMarker()
    if marker is not None:
        m = parse_marker(str(marker)).without_extras()
    if parent is None and req.source:
        ctx = _context_marker(req.source)
        if ctx:
            m = parse_marker(ctx) & m
    return m


def _ident_name(ident: str) -> str:
    return ident.split("[", 1)[0]


def merge(
    results: Sequence[TargetResult], roots: Sequence[Req]
) -> tuple[dict[tuple[str, str], BaseMarker], dict[tuple[str, str], set[tuple[str, str]]]]:
    """Markers per (name, version) and the dependency edges between package entries."""
    # Where each node is, and each edge (parent node, child node, edge marker text).
    node_targets: dict[Node, set[Target]] = {}
    edge_targets: dict[tuple[Node, Node, str], set[Target]] = {}
    edge_marker_obj: dict[tuple[Node, Node, str], BaseMarker] = {}
    for res in results:
        t = res.target
        for ident, cand in res.pins.items():
            node_targets.setdefault((ident, str(cand.version)), set()).add(t)
        for parent, req in res.edges:
            child = res.pins.get(req.identifier)
            if child is None:
                continue
            if parent is None:
                pnode: Node = (f"<{req.source or 'main'}>", "")
            else:
                pnode = (parent, str(res.pins[parent].version))
            cnode: Node = (req.identifier, str(child.version))
            em = _edge_marker(parent, req)
            key = (pnode, cnode, str(em))
            edge_targets.setdefault(key, set()).add(t)
            edge_marker_obj[key] = em

    # Per-platform metadata: an edge present on fewer targets than its parent (and its own
    # marker) would allow gets a condition separating those targets.
    by_parent_child: dict[tuple[Node, str, str], set[Target]] = {}
    for (p, c, mtext), ts in edge_targets.items():
        by_parent_child.setdefault((p, _ident_name(c[0]), mtext), set()).update(ts)
    for (p, c, mtext) in list(edge_targets):
        if p[0].startswith("<"):
            continue
        present = by_parent_child[(p, _ident_name(c[0]), mtext)]
        parent_ts = node_targets.get(p, set())
        em = edge_marker_obj[(p, c, mtext)]
        applicable = {t for t in parent_ts if _marker_true_on(em, t)}
        missing = applicable - present
        if missing:
            sep = separator(sorted(present, key=lambda t: t.name), sorted(missing, key=lambda t: t.name))
            edge_marker_obj[(p, c, mtext)] = em & to_marker(sep)

    # Forks: one condition per version of a package chosen by different targets.
    fork_cond: dict[Node, BaseMarker] = {}
    versions_of: dict[str, dict[str, set[Target]]] = {}
    for (ident, version), ts in node_targets.items():
        if "[" not in ident:
            versions_of.setdefault(ident, {})[version] = ts
    for name, versions in versions_of.items():
        if len(versions) < 2:
            continue
        order = sorted(versions, key=Version)
        groups = [sorted(versions[v], key=lambda t: t.name) for v in order]
        conds = partition(groups)
        for v, cond in zip(order, conds):
            fork_cond[(name, v)] = to_marker(cond)
    for (ident, version) in node_targets:
        if "[" in ident and (_ident_name(ident), version) in fork_cond:
            fork_cond[(ident, version)] = fork_cond[(_ident_name(ident), version)]

    # Propagate from the roots to a fixed point (the graph may have cycles).
    marker: dict[Node, BaseMarker] = {}
    for (p, _c, _m) in edge_targets:
        if p[0].startswith("<"):
            marker[p] = AnyMarker()
    edges = list(edge_marker_obj.items())
    for _ in range(100):
        changed = False
        for (p, c, _m), em in edges:
            pm = marker.get(p)
            if pm is None or pm.is_empty():
                continue
            contrib = pm & em
            if c in fork_cond:
                contrib = contrib & fork_cond[c]
            old = marker.get(c, EmptyMarker())
            new = old | contrib
            if str(new) != str(old):
                marker[c] = new
                changed = True
        if not changed:
            break
    else:
        raise ResolutionError("the lock's markers did not settle (a bug: please report it)")

    package_marker: dict[tuple[str, str], BaseMarker] = {}
    for (ident, version), m in marker.items():
        if ident.startswith("<") or "[" in ident:
            continue
        package_marker[(ident, version)] = m
    deps: dict[tuple[str, str], set[tuple[str, str]]] = {k: set() for k in package_marker}
    for (p, c, _m) in edge_targets:
        if p[0].startswith("<"):
            continue
        parent_pkg = (_ident_name(p[0]), p[1])
        child_pkg = (_ident_name(c[0]), c[1])
        if parent_pkg != child_pkg and parent_pkg in deps:
            deps[parent_pkg].add(child_pkg)
    return package_marker, deps


def _marker_true_on(m: BaseMarker, target: Target) -> bool:
    if m.is_any():
        return True
    if m.is_empty():
        return False
    env = {**target.environment, "extra": "", "extras": frozenset(), "dependency_groups": frozenset()}
    text = str(m)
    if " in extras" in text or " in dependency_groups" in text:
        return True  # context markers: every extra and group is part of a target's resolution
    return Marker(text).evaluate(env)


# -- the lock's files ----------------------------------------------------------------------------


def lock_files(files: Sequence[DistFile], requires_python: str) -> tuple[tuple[DistFile, ...], DistFile | None]:
    """Every non-yanked wheel some Python in requires-python could run (any platform: the lock
    also serves environments outside the targets), and the sdist."""
    from packaging.specifiers import SpecifierSet

    spec = SpecifierSet(requires_python) if requires_python else SpecifierSet()
    minors = [m for m in range(0, 40) if spec.contains(f"3.{m}.99", prereleases=True) or spec.contains(f"3.{m}.0", prereleases=True)]
    usable = [f for f in files if not f.yanked] or list(files)
    wheels: list[DistFile] = []
    sdist: DistFile | None = None
    for f in usable:
        if f.is_wheel:
            if _wheel_python_ok(f, minors):
                wheels.append(f)
        elif sdist is None or f.filename < sdist.filename:
            sdist = f
    wheels.sort(key=lambda f: f.filename)
    return tuple(wheels), sdist


def _wheel_python_ok(f: DistFile, minors: Sequence[int]) -> bool:
    """Could some Python 3 in requires-python run this wheel (any tag of it)?"""
    for tag in file_tags(f):
        interp = tag.interpreter
        digits = "".join(ch for ch in interp[2:] if ch.isdigit())
        if interp.startswith("py"):
            if digits.startswith("3") or interp == "py3":
                return True
            continue  # py2: another tag of a py2.py3 wheel may still fit
        if interp.startswith(("cp", "pp", "gp", "ip")):
            if not digits.startswith("3"):
                continue
            minor = int(digits[1:] or 0)
            if minor in minors or (tag.abi == "abi3" and any(m >= minor for m in minors)):
                return True
            continue
        return True  # an interpreter tag we do not know: keep the file, installers decide
    return False


# -- entry point ---------------------------------------------------------------------------------


def resolve_universal(
    spec: ProjectSpec,
    inputs: LockInputs,
    client: object,
    *,
    preferences: Mapping[str, Sequence[tuple[str, str | None]]],
    upgrade: bool,
    upgrade_packages: Collection[str],
    reporter: object | None = None,
) -> UniversalResolution:
    started = time.perf_counter()
    targets = make_targets(spec.requires_python, spec.environments)
    if not targets:
        raise ManifestError(
            f"no target environment fits requires-python `{spec.requires_python}`"
            + (" and [tool.lockenv] environments" if spec.environments else ""),
            context={"file": spec.pyproject},
            hint="check requires-python and environments in pyproject.toml",
        )
    roots = root_requirements(spec)
    meta = Metadata(client, targets)
    skip = {canonicalize_name(n) for n in upgrade_packages}
    lock_prefs = {} if upgrade else {k: v for k, v in preferences.items() if canonicalize_name(k) not in skip}

    # Crawl ahead for a few far-apart targets at once (newest/oldest Python, Linux/Windows/
    # macOS), so dependencies that only some targets need are fetched early too.
    newest, oldest = targets[0].python, targets[-1].python
    for t in targets:
        if t.python in (newest, oldest):
            meta.speculate([r for r in roots if _root_applies(r, t.environment)], t.environment, t.tag_priority)
    try:
        results: list[TargetResult] = []
        earlier: dict[str, str] = {}
        for target in targets:
            prefs = dict(earlier)
            for name, pins in lock_prefs.items():
                chosen = _pin_for(pins, target)
                if chosen:
                    prefs[name] = chosen
            provider = Provider(meta, environment=target.environment, tag_priority=target.tag_priority, preferences=prefs)
            reused = None
            for prev in reversed(results):
                reused = try_reuse(prev.pins, target, roots, provider)
                if reused is not None:
                    break
            if reused is None:
                pins, edges = resolve_target(
                    target.environment, target.tag_priority, roots, meta, prefs,
                    label=target.label,
                    project=spec.name, requires_python=spec.requires_python,
                )
            else:
                pins, edges = reused
            results.append(TargetResult(target, pins, edges))
            for ident, cand in pins.items():
                if "[" not in ident:
                    earlier.setdefault(ident, str(cand.version))
            if reporter is not None:
                reporter.debug(f"resolved {target.name}: {len(pins)} identifiers" + (" (reused)" if reused else ""))
    finally:
        meta.close()

    markers, deps = merge(results, roots)
    files_of: dict[tuple[str, str], tuple[DistFile, ...]] = {}
    for res in results:
        for ident, cand in res.pins.items():
            if "[" not in ident:
                files_of[(ident, str(cand.version))] = cand.files
    versions_per_name: dict[str, set[str]] = {}
    for (name, version) in files_of:
        versions_per_name.setdefault(name, set()).add(version)

    files_of = _with_sizes(files_of, client, spec.requires_python)
    packages: list[LockedPackage] = []
    for (name, version), files in sorted(files_of.items(), key=lambda kv: (kv[0][0], Version(kv[0][1]))):
        m = markers.get((name, version))
        if m is None or m.is_empty():
            raise ResolutionError(f"`{name} {version}` was resolved but no path in the graph leads to it (a bug)")
        wheels, sdist = lock_files(files, spec.requires_python)
        rp = {f.requires_python for f in files if f.requires_python}
        dependencies = tuple(
            Dependency(canonicalize_name(d), v if len(versions_per_name.get(d, ())) > 1 else None)
            for d, v in sorted(deps.get((name, version), ()), key=lambda dv: (dv[0], Version(dv[1])))
        )
        packages.append(
            LockedPackage(
                name=canonicalize_name(name),
                version=version,
                marker=None if m.is_any() else str(m),
                requires_python=sorted(rp)[-1] if len(rp) == 1 else (_common_rp(files) if rp else None),
                # The index the files came from (each name comes from one index).
                index=next((f.index for f in files if f.index),
                           getattr(client, "simple_index_url", inputs.index_url)),
                dependencies=dependencies,
                wheels=wheels,
                sdist=sdist,
            )
        )
    resolution = Resolution(inputs=inputs, packages=tuple(packages))
    if reporter is not None:
        reporter.debug(f"universal resolution of {len(targets)} targets in {time.perf_counter() - started:.2f}s")
    return UniversalResolution(
        resolution,
        target_pins(results),
        () if spec.environments else outside_probes(roots, targets),
    )


def _with_sizes(
    files_of: dict[tuple[str, str], tuple[DistFile, ...]], client: object, requires_python: str
) -> dict[tuple[str, str], tuple[DistFile, ...]]:
    """Simple HTML indexes do not list sizes; the lock records one for every file it keeps."""
    ensure = getattr(client, "ensure_size", None)
    wanted = {
        f.filename: f
        for files in files_of.values()
        for f in (lambda w, s: (*w, *([s] if s else [])))(*lock_files(files, requires_python))
        if f.size is None
    }
    if ensure is None or not wanted:
        return files_of
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(16) as pool:
        sized = dict(zip(wanted, pool.map(ensure, wanted.values())))
    return {k: tuple(sized.get(f.filename, f) for f in files) for k, files in files_of.items()}


def _common_rp(files: Sequence[DistFile]) -> str | None:
    """The sdist's requires-python, else the most common one among the files."""
    for f in files:
        if not f.is_wheel and f.requires_python:
            return f.requires_python
    counts: dict[str, int] = {}
    for f in files:
        if f.requires_python:
            counts[f.requires_python] = counts.get(f.requires_python, 0) + 1
    return max(sorted(counts), key=lambda k: counts[k]) if counts else None


def _pin_for(pins: Sequence[tuple[str, str | None]], target: Target) -> str | None:
    env = {**target.environment, "extra": ""}
    best: str | None = None
    for version, marker in pins:
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


# -- what the lock must serve ----------------------------------------------------------------


@dataclass(frozen=True)
class TargetPins:
    """A target and the pins its own resolution chose: the lock must select exactly these there."""

    label: str
    environment: Mapping[str, str]
    tags: tuple[Tag, ...]
    pins: frozenset[tuple[str, str]]
    """(normalised name, version); extras are not packages of the lock."""


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


def target_pins(results: Sequence[TargetResult]) -> tuple[TargetPins, ...]:
    return tuple(
        TargetPins(
            label=res.target.label,
            environment=res.target.environment,
            tags=tuple(res.target.tags),
            pins=frozenset((n, str(c.version)) for n, c in res.pins.items() if "[" not in n),
        )
        for res in results
    )


def outside_probes(roots: Sequence[Req], targets: Sequence[Target]) -> tuple[OutsideProbe, ...]:
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
            required=frozenset(r.name for r in roots if _root_applies(r, probe.environment)),
        )
        for probe in probes
    )

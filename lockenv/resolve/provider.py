"""The resolvelib provider for one environment (a target, or a build env): thin hooks over the
package source (`source.py`) and the crawler (`prefetch.py`).

Candidates are created lazily: a candidate's metadata is fetched only when resolvelib asks for
its dependencies. Each hook's docstring says what it costs, since resolvelib calls some of them
once per round and others once per candidate tried.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from typing import TYPE_CHECKING, Protocol

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.tags import Tag
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version
from resolvelib import AbstractProvider

from lockenv.errors import AuthError, BuildCycleError, BuildError, IntegrityError, LockenvError, NetworkError, PackageIndexError
from lockenv.models import DistFile
from lockenv.resolve.requirements import Candidate, Ident, Req, applies, dependency_reqs, parse_requirement
from lockenv.resolve.source import PackageSource, all_yanked, best_file, metadata_file, python_ok, stand_in

if TYPE_CHECKING:
    from resolvelib.structs import RequirementInformation

    Information = RequirementInformation[Req, Candidate]
    Preference = tuple[bool, bool, bool, bool, str]

__all__ = ["Crawler", "Provider", "Unsatisfiable"]

_LEARN_MAX = 150
"""At most this many versions of one package are read at once to prove a conflict."""

_WALK = 5
"""After this many rejected candidates of one package, resolvelib is walking down its versions
(each a metadata read, or a build): worth proving a conflict from the project's bounds."""

_AHEAD = 8
"""How many older versions of a package `rejecting` starts reading once resolvelib walks it."""

UNAVAILABLE = "lockenv-metadata-unavailable"
"""Prefix of the identifier a candidate whose metadata cannot be had depends on: nothing
matches it, so resolvelib rejects that candidate and tries the next (pip's trick for
requires-python), instead of the lock ending on one broken sdist."""


def _joined(reqs: Sequence[Requirement]) -> SpecifierSet:
    spec = SpecifierSet()
    for r in reqs:
        spec &= r.specifier
    return spec


def _loosen_hint(one: str, other: str | None) -> str:
    both = f"`{one}`" if other in (None, one) else f"`{one}` or `{other}`"
    return f"loosen {both} in pyproject.toml, or drop one of them, so that the requirements can meet"


def _span(loosest: str, loosest_set: set[Version], theirs: set[Version], before: set[Version] | None) -> str:
    """What every version requires of a dependency, as one true statement: the loosest of
    their specifiers when it admits all they admit, else the bound on the side that clashes
    with what is already required (`>=0.27.0` against `<0.20`)."""
    if loosest_set >= theirs:
        return loosest
    lo, hi = min(theirs), max(theirs)
    if before and max(before) < lo:
        return f">={lo}"
    if before and min(before) > hi:
        return f"<={hi}"
    return f">={lo},<={hi}"


class Unsatisfiable(Exception):
    """Raised from a hook when the project's own requirements, with what is known of the
    versions they allow, admit no solution whatever else is pinned: there is no point trying
    more versions of anything (each try could read metadata or build an sdist)."""

    def __init__(self, lines: list[str], hint: str) -> None:
        super().__init__("; ".join(lines))
        self.lines = lines
        self.hint = hint


def _exact_versions(spec: SpecifierSet) -> list[Version]:
    """The versions `==`/`===` clauses name (a wildcard or a non-version string names none)."""
    out = []
    for s in spec:
        if s.operator in ("==", "===") and "*" not in s.version:
            try:
                out.append(Version(s.version))
            except InvalidVersion:
                continue
    return out


def _release_key(version: Version) -> tuple[int, ...]:
    """The release without trailing zeros (2.0 and 2.0.0 are one release to `==`)."""
    release = version.release
    end = len(release)
    while end > 1 and release[end - 1] == 0:
        end -= 1
    return release[:end]


class Crawler(Protocol):
    """Work ahead of the resolver (`prefetch.Prefetcher`); hints only, never answers."""

    def speculate(
        self, reqs: Iterable[Req], environment: Mapping[str, str], tag_priority: Mapping[Tag, int],
        *, new_only: bool = False,
    ) -> None: ...
    def prefetch_version(self, files: Sequence[DistFile], tag_priority: Mapping[Tag, int], python_full: str) -> None: ...
    def read_ahead(self, versions: Sequence[tuple[Sequence[DistFile], DistFile]], environment: Mapping[str, str]) -> None: ...


class Provider(AbstractProvider[Req, Candidate, Ident]):
    """resolvelib hooks for one marker environment and tag list."""

    def __init__(
        self,
        source: PackageSource,
        crawler: Crawler,
        *,
        environment: Mapping[str, str],
        tag_priority: Mapping[Tag, int],
        preferences: Mapping[str, str] | None = None,
        roots: Sequence[Req] = (),
        project: str = "the project",
        unserved_ok: bool = False,
    ) -> None:
        self.source = source
        self.unserved_ok = unserved_ok
        """After every version with a file here, offer those without one (no target vetoes
        a lock); False for a build env and for `required-environments`."""
        self.crawler = crawler
        self.environment = dict(environment)
        self.python_full = environment["python_full_version"]
        self.tag_priority = tag_priority
        self.preferences = {canonicalize_name(k): Version(v) for k, v in (preferences or {}).items()}
        self.no_candidates: dict[Ident, str] = {}
        """identifier → why nothing matched (for error messages)."""
        self.project = project
        self.root_specs: dict[Ident, SpecifierSet] = {}
        """What the project itself requires of each identifier: fixed, whatever is pinned."""
        for r in roots:
            self.root_specs[r.identifier] = self.root_specs.get(r.identifier, SpecifierSet()) & r.specifier
        self.known_deps: dict[tuple[Ident, Version], list[Requirement]] = {}
        """The requirements of every candidate resolvelib has asked about."""
        self.unavailable: dict[str, str] = {}
        """Synthetic identifier name → why that candidate's metadata could not be had."""
        self._allowed: dict[tuple[str, str], list[Version]] = {}
        self._matches: dict[tuple[str, str], tuple[Version, ...]] = {}
        self._learn_cands: dict[tuple[Ident, Version], Candidate | None] = {}
        self._releases: dict[str, dict[tuple[int, ...], list[Version]]] = {}
        self._ahead: set[tuple[str, Version]] = set()
        """Versions `rejecting` started reading ahead (each once)."""
        self._satisfied: dict[tuple[int, Version], tuple[SpecifierSet, bool]] = {}
        """(id(specifier), version) -> (the specifier, kept alive so the id stays its own; the answer)."""
        self._choices: dict[tuple[str, Version, bool], tuple[DistFile | None, tuple[DistFile, ...], str, bool]] = {}
        self._preference: dict[tuple[str, tuple[int, ...]], tuple[tuple[SpecifierSet, ...], bool, bool]] = {}
        self.unavailable_versions: set[tuple[str, Version]] = set()
        self.rejected: dict[Ident, int] = {}
        """identifier → how many of its candidates resolvelib rejected (their requirements
        clash with the pins so far)."""
        self._checked_at = -1

    # -- resolvelib hooks ---------------------------------------------------------------------
    def identify(self, requirement_or_candidate: Req | Candidate) -> Ident:
        """Free: a field. Called for every requirement and candidate."""
        return requirement_or_candidate.identifier

    def get_preference(
        self,
        identifier: Ident,
        resolutions: Mapping[Ident, Candidate],
        candidates: Mapping[Ident, Iterator[Candidate]],
        information: Mapping[Ident, Iterator[Information]],
        backtrack_causes: Sequence[Information],
    ) -> Preference:
        """Cheap, but called for every unresolved identifier in every round: no I/O (the page
        is read already, by find_matches). Backtrack causes first, then exact pins, then
        packages whose likely version has a wheel (its metadata is a cheap read; an sdist-only
        one may need a build, which learning the others' requirements first can rule out),
        then direct ones; the name breaks ties (stable order)."""
        infos = list(information[identifier])
        direct = any(i.parent is None for i in infos)
        causes = {c.requirement.name for c in backtrack_causes} | {
            c.parent.name for c in backtrack_causes if c.parent is not None
        }
        specs = tuple(i.requirement.specifier for i in infos)
        # The same requirements come back round after round: what they decide is memoised by
        # their specifier objects (kept alive in the value, so no id is reused).
        key = (identifier.name, tuple(map(id, specs)))
        known = self._preference.get(key)
        if known is None:
            pinned = any(i.requirement.pins_exactly for i in infos)
            spec = SpecifierSet()
            for one in specs:
                spec &= one
            known = self._preference[key] = (specs, not pinned, self._needs_build(identifier.name, spec))
        return (identifier.name not in causes, known[1], known[2], not direct, str(identifier))

    def _needs_build(self, name: str, spec: SpecifierSet) -> bool:
        """Has the version find_matches would offer first no wheel at all (so reading its
        requirements may mean building the sdist)?"""
        allowed = self.allowed(name, spec)
        if not allowed:
            return False
        preferred = self.preferences.get(canonicalize_name(name))
        first = preferred if preferred is not None and preferred in allowed else allowed[0]
        return not any(f.is_wheel for f in self.source.versions(name).get(first, ()))

    def find_matches(
        self,
        identifier: Ident,
        requirements: Mapping[Ident, Iterator[Req]],
        incompatibilities: Mapping[Ident, Iterator[Candidate]],
    ) -> Callable[[], Iterator[Candidate]]:
        """One project page (memoised, usually prefetched); candidates are then made lazily,
        newest allowed first (the previous lock's pin before them)."""
        name, extra = identifier
        if name.startswith(UNAVAILABLE):
            self.no_candidates[identifier] = self.unavailable.get(name, "its metadata could not be read")
            return lambda: iter(())
        reqs = list(requirements[identifier])
        bad = {c.version for c in incompatibilities[identifier]}
        if bad:  # backtracking: first ask whether the project's own requirements allow anything
            self.check_roots()
        by_version = self.source.versions(name)
        spec = SpecifierSet()
        for r in reqs:
            spec &= r.specifier
        # PEP 592: a yanked release only when the project itself pins it (==/===); never to
        # satisfy a package's requirement.
        pinned_exact = {
            v for r in reqs if r.source is not None for v in _exact_versions(r.specifier)
        }
        allowed = list(self._matching(name, spec))
        preferred = self.preferences.get(name)
        if preferred is not None and preferred in allowed:
            allowed.remove(preferred)
            allowed.insert(0, preferred)
        if bad:  # after a backjump resolvelib tries the next versions, a metadata read each
            self._read_ahead(name, list(islice((v for v in allowed if v not in bad), _AHEAD)))
        if not by_version:
            missing = self.source.not_found(name)
            self.no_candidates[identifier] = missing.message if missing else "the index lists no files for it"
        elif not allowed:
            self.no_candidates[identifier] = f"no version matches `{spec or 'any'}`"
            if len(reqs) > 1 and self._worth_proving(reqs):  # can the project's own bounds meet?
                self.check_roots()

        def candidates() -> Iterator[Candidate]:
            # Lazy: most of a big project's old versions are never looked at.
            reasons: list[str] = []
            unserved: list[Version] = []
            found = False
            for version in allowed:
                if version in bad:
                    continue
                chosen, all_files, reason, no_file = self._choice(name, version, by_version[version],
                                                                  version in pinned_exact)
                if chosen is None:
                    reasons.append(reason)
                    if no_file:
                        unserved.append(version)
                    continue
                found = True
                yield Candidate(name, version, extra, chosen, all_files)
            if not found and allowed:
                self.no_candidates[identifier] = "; ".join(reasons[:3])
            if self.unserved_ok:
                yield from self._unserved(name, extra, unserved, by_version, pinned_exact)

        return candidates

    def _choice(self, name: NormalizedName, version: Version, files: Sequence[DistFile],
                pinned: bool) -> tuple[DistFile | None, tuple[DistFile, ...], str, bool]:
        """The file this environment installs of a version, all its files; when there is none,
        why not and whether it is for want of a file here (not its Python, not yanked).
        Memoised: while resolvelib walks down versions it asks for the same ones again and again
        (sqla: each of ~1,800 candidates a Python 3.8 target tries ranked every file of its
        version)."""
        key = (name, version, pinned)
        known = self._choices.get(key)
        if known is not None:
            return known
        all_files = tuple(files)
        chosen, reason, no_file = None, "", False
        if all(f.yanked for f in all_files) and not pinned:
            reason = f"{version} is yanked"
        else:
            usable = [f for f in all_files if not f.yanked or pinned]
            chosen = best_file(usable, self.tag_priority, self.python_full)
            if chosen is None:
                rp = {f.requires_python for f in usable if f.requires_python}
                if rp and not any(python_ok(f, self.python_full) for f in usable):
                    reason = f"{version} requires Python {sorted(rp)[0]}"
                else:
                    reason, no_file = f"{version} has no wheel for this platform and no sdist", True
        known = self._choices[key] = (chosen, all_files, reason, no_file)
        return known

    def _worth_proving(self, reqs: Sequence[Req]) -> bool:
        """Is a clash of requirements worth `check_roots`, which may read the metadata of every
        version the project's bounds leave, down the graph? When the project's own bound is in
        it (django<4 + djangorestframework>=3.16), or once resolvelib has rejected several
        candidates of one package (it is walking down its versions). Else it is a step of an
        ordinary resolution: the newest alembic needs SQLAlchemy>=2, airflow 2 allows <2, the
        next alembic fits (a cold airflow lock learned 1,100 files' metadata from that one)."""
        return any(r.source is not None for r in reqs) or max(self.rejected.values(), default=0) >= _WALK

    def rejecting(self, candidate: Candidate) -> None:
        """resolvelib rejected the candidate: its requirements clash with the pins so far. When
        they were read (not only `name==V` of an extra's candidate), resolvelib is walking down
        the package's versions for what they require, each try a metadata read on its critical
        path: start the next few now, together (sqla's Python 3.8 walk read eight versions one
        after the other, ~0.15 s each)."""
        self.rejected[candidate.identifier] = self.rejected.get(candidate.identifier, 0) + 1
        if (candidate.identifier, candidate.version) not in self.known_deps:
            return
        ordered = self.source.sorted_versions(candidate.name)
        stable = not candidate.version.is_prerelease
        at = bisect_left(ordered, candidate.version)
        self._read_ahead(candidate.name, [v for v in reversed(ordered[max(0, at - 2 * _AHEAD):at])
                                          if not (stable and v.is_prerelease)])

    def _read_ahead(self, name: NormalizedName, versions: Sequence[Version]) -> None:
        """Start reading this environment's file of the first `_AHEAD` of `versions` (the
        next ones resolvelib will try), each version once; never an sdist (it may need a
        build)."""
        by_version = self.source.versions(name)
        ahead: list[tuple[Sequence[DistFile], DistFile]] = []
        for v in versions[:_AHEAD]:
            if (name, v) in self._ahead:
                continue
            self._ahead.add((name, v))
            own = self._choice(name, v, by_version[v], False)[0]
            if own is not None and own.is_wheel:
                ahead.append((by_version[v], own))
        if ahead:
            self.crawler.read_ahead(ahead, self.environment)

    def pinning(self, candidate: Candidate) -> None:
        """A candidate is pinned, and likely kept: start reading the metadata every target
        reads of its version (a candidate only tried reads this environment's file alone)."""
        self.crawler.prefetch_version(candidate.files, self.tag_priority, self.python_full)

    def _unserved(
        self, name: NormalizedName, extra: str | None, versions: Sequence[Version],
        by_version: Mapping[Version, Sequence[DistFile]], pinned_exact: set[Version],
    ) -> Iterator[Candidate]:
        """The allowed versions with no file for this environment, in preference order, each
        standing in with a wheel of another platform (for its metadata): the other targets'
        choice locks, and the lock warns that this environment is left unserved."""
        for version in versions:
            files = by_version[version]
            file = stand_in([f for f in files if not f.yanked or version in pinned_exact], self.tag_priority)
            if file is not None:
                yield Candidate(name, version, extra, file, tuple(files), installable=False)

    def is_satisfied_by(self, requirement: Req, candidate: Candidate) -> bool:
        """A specifier test, memoised: resolvelib asks it for every requirement against every
        pin, each round (sqla: 300,000 times, a few thousand distinct)."""
        if requirement.name != candidate.name or requirement.extra != candidate.extra:
            return False
        spec = requirement.specifier
        key = (id(spec), candidate.version)
        known = self._satisfied.get(key)
        if known is None or known[0] is not spec:
            known = self._satisfied[key] = (spec, spec.contains(candidate.version, prereleases=True))
        return known[1]

    def get_dependencies(self, candidate: Candidate) -> Iterable[Req]:
        """One metadata read per candidate tried (memoised across targets, usually prefetched):
        the resolver's critical path. Starts crawling the dependencies' pages. The other
        targets' files of the version are read once it is pinned (`pinning`).

        `name[x] V` depends first on `name==V`, known without its metadata: handed over first,
        and the metadata read only when resolvelib asks for more. resolvelib merges the
        dependencies one by one and rejects the candidate at the first that clashes, so a walk
        down an extra's versions while `name` itself is pinned to another version (sqlalchemy
        with 20 extras on Python 3.8: ~1,800 candidates a target) reads nothing; the same
        rejections, in the same order, as when every requirement was read first."""
        if not candidate.extra:
            return self._dependencies(candidate, [])
        return self._extra_dependencies(candidate)

    def _extra_dependencies(self, candidate: Candidate) -> Iterator[Req]:
        base = parse_requirement(f"{candidate.name}=={candidate.version}")
        first = Req(candidate.name, None, base.specifier, base)
        yield first
        yield from self._dependencies(candidate, [first])[1:]

    def _dependencies(self, candidate: Candidate, deps: list[Req]) -> list[Req]:
        """`deps` and the candidate's requirements (its metadata read, memoised); their pages
        crawled."""
        deps = list(deps)
        key = (candidate.identifier, candidate.version)
        known = self.known_deps.get(key)
        if known is None:
            try:
                known = self.dependencies(candidate)
            except (BuildError, IntegrityError, PackageIndexError) as exc:
                if isinstance(exc, (NetworkError, AuthError, BuildCycleError)):
                    raise
                return deps + [self._unavailable(candidate, exc)]
            self.known_deps[key] = known
        for req in known:
            deps.extend(dependency_reqs(req))
        self.crawler.speculate(deps, self.environment, self.tag_priority, new_only=True)
        return deps

    def _unavailable(self, candidate: Candidate, exc: LockenvError) -> Req:
        """A requirement nothing satisfies, standing for "this version's metadata cannot be
        had" (a failed build, a broken archive): the version does not fit, and the conflict
        report says why if nothing else does."""
        name = NormalizedName(f"{UNAVAILABLE}-{candidate.name}-{candidate.version}")
        last = next((d.strip() for d in reversed(exc.details) if d.strip()), "")
        self.unavailable[name] = f"`{candidate.name} {candidate.version}` was skipped: {exc.message}" + (
            f" ({last})" if last else ""
        )
        self.known_deps[(candidate.identifier, candidate.version)] = []
        self.unavailable_versions.add((candidate.name, candidate.version))
        req = Requirement(f"{candidate.name}=={candidate.version}")
        return Req(name, None, SpecifierSet(), req)

    # -- learning from conflicts ----------------------------------------------------------------
    def learned_conflict(self) -> Unsatisfiable | None:
        """What `check_roots` can prove from all that is known now, if anything."""
        try:
            self.check_roots(force=True)
        except Unsatisfiable as exc:
            return exc
        return None

    def check_roots(self, *, force: bool = False) -> None:
        """Raise `Unsatisfiable` when the project's own requirements cannot all hold, by what
        is known of the versions they allow (PubGrub's derivation, on sets of versions):
        a package the project requires restricts a dependency that every version it allows
        requires, and so on down; when some package is left with no version, no choice of
        other pins can help. So `djangorestframework>=3.16` + `django<4` fails at once instead
        of trying (and building) every Django. Run while backtracking, when more is known."""
        if len(self.known_deps) == self._checked_at and not force:
            return
        self._checked_at = len(self.known_deps)
        allowed: dict[str, set[Version]] = {}
        why: dict[str, list[str]] = {}
        desc: dict[str, str] = {}
        root_of: dict[str, str] = {}
        todo: list[Ident] = []
        order: dict[str, list[Version]] = {}
        """`allowed`'s sets newest first: a root's is `self.allowed`'s list (memoised); ordering
        every root's set again at each call hashed millions of Versions on sqla (20 extras)."""

        def newest_first(i: Ident) -> list[Version]:
            got = order.get(str(i))
            if got is None:
                got = order[str(i)] = self._newest_first(i.name, allowed[str(i)])
            return got

        for ident, spec in self.root_specs.items():
            order[str(ident)] = self.allowed(ident.name, spec)
            allowed[str(ident)] = set(order[str(ident)])
            why[str(ident)] = [f"`{self.project}` requires `{ident}{spec}`"]
            desc[str(ident)] = root_of[str(ident)] = f"{ident}{spec}"
            todo.append(ident)
        seen = 0
        while todo and seen < 10_000:
            seen += 1
            ident = todo.pop(0)
            versions = newest_first(ident)
            if self._learnable(ident, versions):
                # Those waiting are learned with it, in the same parallel reads (a wave per
                # depth, not two per package: 162 waves on a cold airflow lock).
                self._learn([(i, newest_first(i)) for i in dict.fromkeys([ident, *todo])])
            if not versions or any((ident, v) not in self.known_deps for v in versions):
                continue
            usable = [v for v in versions if (ident.name, v) not in self.unavailable_versions]
            if not usable:
                raise Unsatisfiable(
                    why[str(ident)] + [f"`{desc[str(ident)]}`: no version it allows has metadata that can be read"],
                    "pin a version whose metadata can be read, or loosen the bound",
                )
            deps = [self.known_deps[(ident, v)] for v in usable]
            for dep in sorted(set.intersection(*({canonicalize_name(r.name) for r in d} for d in deps))):
                per_version = [[r for r in d if canonicalize_name(r.name) == dep] for d in deps]
                theirs: set[Version] = set()
                for rs in per_version:
                    theirs.update(self.allowed(dep, _joined(rs)))
                if not theirs:
                    continue  # nothing at all (not on the index, say): resolvelib's report says why
                loosest = max(per_version, key=lambda rs: (len(self.allowed(dep, _joined(rs))), str(_joined(rs))))
                wanted = _span(str(_joined(loosest)), set(self.allowed(dep, _joined(loosest))), theirs,
                               allowed.get(str(Ident(dep, None))))
                shown = ", ".join(f"{ident.name} {v}" for v in usable[:3]) + (", …" if len(usable) > 3 else "")
                line = f"`{desc[str(ident)]}` requires `{dep}{wanted}` (every version it allows: {shown})"
                chain = [w for w in why[str(ident)] if not w.startswith(f"`{self.project}` ")]
                key = str(Ident(dep, None))
                before = allowed.get(key)
                narrowed = theirs if before is None else before & theirs
                if not narrowed:
                    raise Unsatisfiable(
                        list(dict.fromkeys(chain + [line] + why.get(key, []))),
                        _loosen_hint(root_of[str(ident)], root_of.get(key)),
                    )
                if before is None or narrowed != before:
                    allowed[key] = narrowed
                    order.pop(key, None)
                    why[key] = list(dict.fromkeys(why.get(key, []) + chain + [line]))
                    desc.setdefault(key, f"{dep}{wanted}")
                    root_of.setdefault(key, root_of[str(ident)])
                    todo.append(Ident(dep, None))

    def _learn(self, wanted: Sequence[tuple[Ident, Sequence[Version]]]) -> None:
        """Read the requirements of every version the project's bounds leave for each
        identifier, all at once (parallel wheel-metadata reads), so that `check_roots` can
        decide instead of resolvelib trying the versions one by one (each a round trip, or a
        build). An identifier is learned only when no read would need a build and there are
        not too many versions: else resolvelib goes on as before.

        Each read is this environment's own file only: the other targets' wheels of a version
        merely learned are read if and when a target pins it. And the newest and the oldest
        version go first: `check_roots` derives only from what every version requires, so when
        those two share no dependency (a leaf such as rpds-py, with no dependency at all) the
        rest cannot tell it anything. Reading all of them, with every target's wheels, was
        4,084 of the 4,446 metadata reads of a cold airflow lock (rpds-py: 50 versions x 10)."""
        plans = [(ident, versions, cands) for ident, versions in wanted
                 if (cands := self._learnable(ident, versions))]
        self._read_deps([cands[v] for _ident, versions, cands in plans
                         for v in dict.fromkeys((versions[0], versions[-1])) if v in cands])
        self._read_deps([c for ident, versions, cands in plans if self._shared_dependencies(ident, versions)
                         for v, c in cands.items() if (ident, v) not in self.known_deps])

    def _learnable(self, ident: Ident, versions: Sequence[Version]) -> dict[Version, Candidate]:
        """The candidates `_learn` would read for `ident` (none: nothing to learn, too many, or
        one would need a build or has no file here)."""
        missing = [v for v in versions if (ident, v) not in self.known_deps]
        if not missing or len(missing) > _LEARN_MAX:
            return {}
        cands = {}
        for v in missing:
            cand = self._learn_candidate(ident, v)
            if cand is None:
                return {}
            cands[v] = cand
        return cands

    def _learn_candidate(self, ident: Ident, version: Version) -> Candidate | None:
        """The candidate `_learn` reads for a version: None when it has no file here (resolvelib
        would skip it: nothing certain to learn) or reading it would mean a build. Memoised:
        `check_roots` asks again for every identifier still waiting, at each wave of reads."""
        key = (ident, version)
        if key in self._learn_cands:
            return self._learn_cands[key]
        files = self.source.versions(ident.name).get(version, ())
        chosen = best_file([f for f in files if not f.yanked], self.tag_priority, self.python_full)
        cand = None if chosen is None else Candidate(ident.name, version, ident.extra, chosen, tuple(files))
        if cand is not None and not metadata_file(cand, self.tag_priority).is_wheel:
            cand = None
        self._learn_cands[key] = cand
        return cand

    def _shared_dependencies(self, ident: Ident, versions: Sequence[Version]) -> bool:
        """Might every version of `versions` require some one package, by the requirements read
        so far (none read, or none usable: yes, nothing is known against it)?"""
        shared: set[NormalizedName] | None = None
        for v in versions:
            deps = self.known_deps.get((ident, v))
            if deps is None or (ident.name, v) in self.unavailable_versions:
                continue
            names = {canonicalize_name(r.name) for r in deps}
            shared = names if shared is None else shared & names
            if not shared:
                return False
        return True

    def _read_deps(self, cands: Sequence[Candidate]) -> None:
        """The requirements of these candidates here, read in parallel (this environment's
        file of each: no prefetch for the other targets)."""
        if not cands:
            return
        with ThreadPoolExecutor(16, thread_name_prefix="lockenv-learn") as pool:
            reads = [(cand, pool.submit(self.dependencies, cand)) for cand in cands]
        for cand, read in reads:
            try:
                self.known_deps[(cand.identifier, cand.version)] = read.result()
            except (BuildError, IntegrityError, PackageIndexError) as exc:
                if isinstance(exc, (NetworkError, AuthError, BuildCycleError)):
                    raise
                self._unavailable(cand, exc)

    def _newest_first(self, name: str, versions: set[Version]) -> list[Version]:
        """`versions` (of the project's own) in the project's order, newest first: a pass with
        set lookups, where sorting compared Versions in Python (check_roots runs again each
        time the resolver learns something, over up to thousands of versions)."""
        if len(versions) < 8:
            return sorted(versions, reverse=True)
        ordered = self.source.sorted_versions(name)
        out = [v for v in reversed(ordered) if v in versions]
        if len(out) != len(versions):  # not all from the page (cannot happen): sort them
            return sorted(versions, reverse=True)
        return out

    def _matching(self, name: str, spec: SpecifierSet) -> tuple[Version, ...]:
        """Every version `spec` admits, newest first (pre-releases only when nothing else
        does), memoised: while backtracking, resolvelib asks again for the same combined
        specifier of a project with thousands of versions (botocore), and filtering and sorting
        them each time was most of a lock's CPU."""
        key = (name, str(spec))
        cached = self._matches.get(key)
        if cached is None:
            ordered = self.source.sorted_versions(name)  # oldest first: filter keeps the order
            pool = self._pinned_pool(name, spec, ordered)
            found = list(spec.filter(pool, prereleases=None))
            if not found and any(v.is_prerelease for v in ordered):
                found = list(spec.filter(pool, prereleases=True))
            cached = self._matches[key] = tuple(reversed(found))
        return cached

    def _pinned_pool(self, name: str, spec: SpecifierSet, ordered: Sequence[Version]) -> Sequence[Version]:
        """The versions `spec` could admit, oldest first: those with the release an `==` clause
        names (`==2.0` admits 2.0.0 and 2.0+local, never another release), else all. An
        extra's candidate pins its package (`sqlalchemy==2.0.57`), and each such specifier is
        new: filtering all of a project's versions for each was most of a walk's CPU."""
        exact = _exact_versions(spec)
        if not exact:
            return ordered
        groups = self._releases.get(name)
        if groups is None:
            groups = {}
            for v in ordered:
                groups.setdefault(_release_key(v), []).append(v)
            self._releases[name] = groups
        return groups.get(_release_key(exact[0]), ())

    def allowed(self, name: str, spec: SpecifierSet) -> list[Version]:
        """The versions a specifier admits (pre-releases only when nothing else does), newest
        first, yanked ones left out unless pinned; memoised."""
        key = (name, str(spec))
        cached = self._allowed.get(key)
        if cached is not None:
            return cached
        by_version = self.source.versions(name)
        pinned = set(_exact_versions(spec))
        live = [v for v in self.source.sorted_versions(name)
                if v in pinned or not all_yanked(by_version[v])]
        allowed = list(spec.filter(live, prereleases=None))
        if not allowed and any(v.is_prerelease for v in live):
            allowed = list(spec.filter(live, prereleases=True))
        allowed.sort(reverse=True)
        self._allowed[key] = allowed
        return allowed

    # -- helpers ---------------------------------------------------------------------------------
    def dependencies(self, candidate: Candidate) -> list[Requirement]:
        """The candidate's requirements that apply in this environment (for `name[x]`: only
        those its extra adds), from this environment's own file (see `requirements_for`)."""
        out = []
        own = metadata_file(candidate, self.tag_priority)
        for req in self.source.requirements_for(candidate.files, own, self.environment):
            if applies(req, self.environment, candidate.extra):
                out.append(req)
        return out

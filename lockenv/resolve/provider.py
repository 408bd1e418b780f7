"""The resolvelib provider for one environment (a target, or a build env): thin hooks over the
package source (`source.py`) and the crawler (`prefetch.py`).

Candidates are created lazily: a candidate's metadata is fetched only when resolvelib asks for
its dependencies. Each hook's docstring says what it costs, since resolvelib calls some of them
once per round and others once per candidate tried.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.tags import Tag
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version
from resolvelib import AbstractProvider

from lockenv.models import DistFile
from lockenv.resolve.requirements import Candidate, Ident, Req, applies, requirement_to_reqs
from lockenv.resolve.source import PackageSource, best_file, metadata_file, python_ok

if TYPE_CHECKING:
    from resolvelib.structs import RequirementInformation

    Information = RequirementInformation[Req, Candidate]
    Preference = tuple[bool, bool, bool, str]

__all__ = ["Crawler", "Provider"]


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


class Crawler(Protocol):
    """Work ahead of the resolver (`prefetch.Prefetcher`); hints only, never answers."""

    def speculate(self, reqs: Iterable[Req], environment: Mapping[str, str], tag_priority: Mapping[Tag, int]) -> None: ...
    def prefetch_version(self, files: Sequence[DistFile], tag_priority: Mapping[Tag, int], python_full: str) -> None: ...


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
    ) -> None:
        self.source = source
        self.crawler = crawler
        self.environment = dict(environment)
        self.python_full = environment["python_full_version"]
        self.tag_priority = tag_priority
        self.preferences = {canonicalize_name(k): Version(v) for k, v in (preferences or {}).items()}
        self.no_candidates: dict[Ident, str] = {}
        """identifier → why nothing matched (for error messages)."""

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
        """Cheap, but called for every unresolved identifier in every round: no I/O. Backtrack
        causes first, then unpinned, then indirect; the name breaks ties (stable order)."""
        infos = list(information[identifier])
        pinned = any(i.requirement.pins_exactly for i in infos)
        direct = any(i.parent is None for i in infos)
        causes = {c.requirement.name for c in backtrack_causes} | {
            c.parent.name for c in backtrack_causes if c.parent is not None
        }
        return (identifier.name not in causes, not pinned, not direct, str(identifier))

    def find_matches(
        self,
        identifier: Ident,
        requirements: Mapping[Ident, Iterator[Req]],
        incompatibilities: Mapping[Ident, Iterator[Candidate]],
    ) -> Callable[[], Iterator[Candidate]]:
        """One project page (memoised, usually prefetched); candidates are then made lazily,
        newest allowed first (the previous lock's pin before them)."""
        reqs = list(requirements[identifier])
        bad = {c.version for c in incompatibilities[identifier]}
        name, extra = identifier
        by_version = self.source.versions(name)
        spec = SpecifierSet()
        for r in reqs:
            spec &= r.specifier
        # PEP 592: a yanked release only when the project itself pins it (==/===); never to
        # satisfy a package's requirement.
        pinned_exact = {
            v for r in reqs if r.source is not None for v in _exact_versions(r.specifier)
        }
        allowed = list(spec.filter(sorted(by_version), prereleases=None))
        if not allowed and any(v.is_prerelease for v in by_version):
            allowed = list(spec.filter(sorted(by_version), prereleases=True))
        allowed.sort(reverse=True)
        preferred = self.preferences.get(name)
        if preferred is not None and preferred in allowed:
            allowed.remove(preferred)
            allowed.insert(0, preferred)
        if not by_version:
            missing = self.source.not_found(name)
            self.no_candidates[identifier] = missing.message if missing else "the index lists no files for it"
        elif not allowed:
            self.no_candidates[identifier] = f"no version matches `{spec or 'any'}`"

        def candidates() -> Iterator[Candidate]:
            # Lazy: most of a big project's old versions are never looked at.
            reasons: list[str] = []
            found = False
            for version in allowed:
                if version in bad:
                    continue
                files = by_version[version]
                if all(f.yanked for f in files) and version not in pinned_exact:
                    reasons.append(f"{version} is yanked")
                    continue
                usable = [f for f in files if not f.yanked or version in pinned_exact]
                chosen = best_file(usable, self.tag_priority, self.python_full)
                if chosen is None:
                    rp = {f.requires_python for f in usable if f.requires_python}
                    if rp and not any(python_ok(f, self.python_full) for f in usable):
                        reasons.append(f"{version} requires Python {sorted(rp)[0]}")
                    else:
                        reasons.append(f"{version} has no wheel for this platform and no sdist")
                    continue
                found = True
                yield Candidate(name, version, extra, chosen, tuple(files))
            if not found and allowed:
                self.no_candidates[identifier] = "; ".join(reasons[:3])

        return candidates

    def is_satisfied_by(self, requirement: Req, candidate: Candidate) -> bool:
        """Free: a specifier test. Called for every requirement against every pin."""
        if requirement.identifier != candidate.identifier:
            return False
        return requirement.specifier.contains(candidate.version, prereleases=True)

    def get_dependencies(self, candidate: Candidate) -> list[Req]:
        """One metadata read per candidate pinned (memoised across targets, usually prefetched):
        the resolver's critical path. Starts crawling the dependencies' pages."""
        deps: list[Req] = []
        if candidate.extra:
            base = Requirement(f"{candidate.name}=={candidate.version}")
            deps.append(Req(candidate.name, None, base.specifier, base))
        for req in self.dependencies(candidate):
            deps.extend(requirement_to_reqs(req))
        self.crawler.speculate(deps, self.environment, self.tag_priority)
        return deps

    # -- helpers ---------------------------------------------------------------------------------
    def dependencies(self, candidate: Candidate) -> list[Requirement]:
        """The candidate's requirements that apply in this environment (for `name[x]`: only
        those its extra adds)."""
        out = []
        self.crawler.prefetch_version(candidate.files, self.tag_priority, self.python_full)
        own = metadata_file(candidate, self.tag_priority)
        for req in self.source.requirements_for(candidate.files, own, self.environment):
            if applies(req, self.environment, candidate.extra):
                out.append(req)
        return out

"""The resolvelib provider for one environment (a target, or a build env).

Identifiers are `name` or `name[extra]` (one extra each); an extra's candidate depends on its
base pinned to the same version, so resolvelib keeps them together (resolvelib's
extras_provider example). Candidates are created lazily: a candidate's metadata is fetched only
when resolvelib asks for its dependencies.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from packaging.markers import Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.tags import Tag
from packaging.utils import NormalizedName, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version
from resolvelib import AbstractProvider

from lockenv.models import DistFile, ProjectFiles


@dataclass(frozen=True)
class Req:
    """A requirement as resolvelib sees it: one identifier, and where it came from."""

    name: NormalizedName
    extra: str | None
    specifier: SpecifierSet
    requirement: Requirement
    """The original requirement (its marker is the edge's marker in the lock graph)."""
    source: str | None = None
    """For root requirements: 'main', 'extra:x' or 'group:g'. None for package dependencies."""

    @property
    def identifier(self) -> str:
        return f"{self.name}[{self.extra}]" if self.extra else self.name

    @property
    def pins_exactly(self) -> bool:
        return any(s.operator in ("==", "===") and "*" not in s.version for s in self.specifier)

    def __str__(self) -> str:
        return str(self.requirement)


@dataclass(frozen=True)
class Candidate:
    """One version of a project (or one of its extras) as installable on the environment."""

    name: NormalizedName
    version: Version
    extra: str | None
    file: DistFile
    """The file this environment would install: its best wheel, else the sdist."""
    files: tuple[DistFile, ...] = field(compare=False)

    @property
    def identifier(self) -> str:
        return f"{self.name}[{self.extra}]" if self.extra else self.name

    def __str__(self) -> str:
        return f"{self.identifier} {self.version}"


def requirement_to_reqs(requirement: Requirement, source: str | None = None) -> list[Req]:
    """`foo[a,b]>=1` → `foo>=1`, `foo[a]>=1`, `foo[b]>=1`."""
    name = canonicalize_name(requirement.name)
    reqs = [Req(name, None, requirement.specifier, requirement, source)]
    for extra in sorted(canonicalize_name(e) for e in requirement.extras):
        reqs.append(Req(name, extra, requirement.specifier, requirement, source))
    return reqs


@lru_cache(maxsize=None)
def filename_tags(filename: str) -> frozenset[Tag]:
    return parse_wheel_filename(filename)[3]


def _version_text(filename: str) -> str:
    """The version part of a wheel or sdist name, without parsing the rest (pages of big
    projects list 15,000 files; the index client has validated the names)."""
    if filename.endswith(".whl"):
        return filename.split("-", 2)[1]
    stem = filename
    for ext in (".tar.gz", ".zip", ".tar.bz2", ".tgz", ".tar"):
        if stem.endswith(ext):
            stem = stem[: -len(ext)]
            break
    return stem.rpartition("-")[2]


def file_tags(file: DistFile) -> frozenset[Tag]:
    return filename_tags(file.filename)


@lru_cache(maxsize=None)
def _python_allows(requires_python: str, python_full: str) -> bool:
    try:
        return SpecifierSet(requires_python).contains(python_full, prereleases=True)
    except InvalidSpecifier:
        return True  # junk requires-python from an index: do not let it hide the file


def _python_ok(file: DistFile, python_full: str) -> bool:
    return not file.requires_python or _python_allows(file.requires_python, python_full)


def best_file(
    files: Iterable[DistFile], tag_priority: Mapping[Tag, int], python_full: str
) -> DistFile | None:
    """The file an installer on this environment picks: best-ranked compatible wheel, else the
    sdist."""
    best: tuple[int, str] | None = None
    best_file_: DistFile | None = None
    sdist: DistFile | None = None
    for f in files:
        if not _python_ok(f, python_full):
            continue
        if f.is_wheel:
            try:
                ranks = [tag_priority[t] for t in file_tags(f) if t in tag_priority]
            except Exception:
                continue
            if ranks:
                key = (min(ranks), f.filename)
                if best is None or key < best:
                    best, best_file_ = key, f
        elif sdist is None or f.filename < sdist.filename:
            sdist = f
    return best_file_ or sdist


class Metadata:
    """What the provider needs from the index, shared across targets (thread-safe memo).

    Resolution is a chain of round trips (a page, then a version's metadata, then its
    dependencies' pages…). To overlap them, every dependency seen starts a background task
    that fetches its page and then the metadata of the version the resolver will most likely
    pick, for the file each target would install (so per-platform metadata is known early)."""

    def __init__(self, client: Any, targets: Sequence[Any] = ()) -> None:
        self.client = client
        self.targets = list(targets)
        self._deps: dict[str, tuple[Requirement, ...]] = {}
        self._lock = threading.Lock()
        self._speculated: set[str] = set()
        self._versions: dict[str, dict[Version, list[DistFile]]] = {}
        self._reps: dict[str, dict[tuple[str, str], tuple[DistFile, DistFile]]] = {}
        self._live: dict[str, tuple[dict[Version, list[DistFile]], list[Version]]] = {}
        self._pool: Any = None
        self._closed = False

    def project(self, name: str) -> ProjectFiles:
        return self.client.project(name)

    def versions(self, name: str) -> dict[Version, list[DistFile]]:
        """A project's files grouped by version (parsed once per run)."""
        with self._lock:
            cached = self._versions.get(name)
        if cached is not None:
            return cached
        by_text: dict[str, list[DistFile]] = {}
        for f in self.client.project(name).files:
            by_text.setdefault(_version_text(f.filename), []).append(f)
        grouped: dict[Version, list[DistFile]] = {}
        for text, files in by_text.items():
            try:
                version = Version(text)
            except InvalidVersion:
                continue  # a file name the index should not have listed
            grouped.setdefault(version, []).extend(files)
        with self._lock:
            self._versions[name] = grouped
        return grouped

    def prefetch(self, names: Iterable[str]) -> None:
        self.client.prefetch(names)

    def speculate(self, reqs: Iterable[Req], environment: Mapping[str, str], tag_priority: Mapping[Tag, int]) -> None:
        """Crawl ahead of the resolver in the background: for each requirement, its page, the
        newest allowed version's metadata, then the same for that version's dependencies. The
        resolver's critical path (page, metadata, next page…) then mostly hits finished work."""
        todo = []
        if self._closed:
            return
        with self._lock:
            env_key = f"{environment['python_full_version']}/{environment['sys_platform']}/{environment['platform_machine']}"
            for r in reqs:
                key = f"{env_key}|{r.identifier}:{r.specifier}"
                if key not in self._speculated:
                    self._speculated.add(key)
                    todo.append(r)
            if todo and self._pool is None:
                from concurrent.futures import ThreadPoolExecutor

                self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="lockenv-speculate")
            pool = self._pool
        if not todo or pool is None:
            return
        self.client.prefetch({r.name for r in todo})
        for r in todo:
            try:
                pool.submit(self._speculate_one, r, environment, tag_priority)
            except RuntimeError:
                return  # shut down: the resolution is over

    def _speculate_one(self, req: Req, environment: Mapping[str, str], tag_priority: Mapping[Tag, int]) -> None:
        if self._closed:
            return
        try:
            python_full = environment["python_full_version"]
            versions, newest_first = self._live_versions(req.name)
            chosen = next(iter(req.specifier.filter(newest_first)), None)
            if chosen is None:
                return
            files = versions[chosen]
            self.prefetch_version(files, tag_priority, python_full)
            mine = best_file(files, tag_priority, python_full)
            if mine is None or not mine.is_wheel or self._closed:
                return
            deps: list[Req] = []
            for dep in self.requirements(mine):
                if applies(dep, environment, None) or (req.extra and applies(dep, environment, req.extra)):
                    deps.extend(requirement_to_reqs(dep))
            self.speculate(deps, environment, tag_priority)
        except Exception:
            return  # speculation only: the resolver will ask again and report errors itself

    def _live_versions(self, name: str) -> tuple[dict[Version, list[DistFile]], list[Version]]:
        """Non-yanked versions of a project, newest first (memoised: speculation asks often)."""
        key = f"live:{name}"
        with self._lock:
            cached = self._live.get(key)
        if cached is not None:
            return cached
        versions = {v: fs for v, fs in self.versions(name).items() if not all(f.yanked for f in fs)}
        result = (versions, sorted(versions, reverse=True))
        with self._lock:
            self._live[key] = result
        return result

    def prefetch_version(self, files: Sequence[DistFile], tag_priority: Mapping[Tag, int], python_full: str) -> None:
        """Prefetch the metadata of the file each target (or this environment) would install."""
        if not files or self._closed:
            return
        key = f"version:{files[0].url}"
        with self._lock:
            if key in self._speculated:
                return
            self._speculated.add(key)
        chosen: dict[str, DistFile] = {}
        if self.targets:
            for newest, oldest in self._representatives(files).values():
                chosen[newest.filename] = newest
                chosen[oldest.filename] = oldest
        else:
            f = best_file(files, tag_priority, python_full)
            if f is not None and f.is_wheel:  # never speculate an sdist: it may need a build
                chosen[f.filename] = f
        with self._lock:
            todo = [f for f in chosen.values() if (f.sha256 or f.url) not in self._deps]
        if todo:
            self.client.prefetch_metadata(todo)

    def _representatives(self, files: Sequence[DistFile]) -> dict[tuple[str, str], tuple[DistFile, DistFile]]:
        """Per platform: the wheels the newest and the oldest Python target there would install."""
        key = f"reps:{files[0].url}"
        with self._lock:
            cached = self._reps.get(key)
        if cached is not None:
            return cached
        per: dict[tuple[str, str], list[DistFile]] = {}
        for t in self.targets:  # newest Python first
            f = best_file(files, t.tag_priority, t.python_full)
            if f is not None and f.is_wheel:
                per.setdefault((t.environment["sys_platform"], t.environment["platform_machine"]), []).append(f)
        reps = {plat: (fs[0], fs[-1]) for plat, fs in per.items()}
        with self._lock:
            self._reps[key] = reps
        return reps

    def requirements_for(self, files: Sequence[DistFile], own: DistFile, environment: Mapping[str, str]) -> tuple[Requirement, ...]:
        """The requirements `own` declares, read from as few wheels as is safe.

        Wheels of one version usually share their metadata; where they differ, it is by
        platform (a Windows wheel adds a dependency) or by the Python a wheel was built for.
        So per platform the newest and the oldest Python's wheels are read; when they agree,
        the wheels between them are taken to agree too, and otherwise each target reads its
        own wheel. That is ~10 reads per version instead of one per target (30)."""
        if not own.is_wheel or not self.targets or not files:
            return self.requirements(own)
        pair = self._representatives(files).get((environment["sys_platform"], environment["platform_machine"]))
        if pair is None or own in pair:
            return self.requirements(own)
        newest, oldest = pair
        reqs = self.requirements(newest)
        if sorted(map(str, reqs)) == sorted(map(str, self.requirements(oldest))):
            return reqs
        return self.requirements(own)

    def close(self) -> None:
        """Stop crawling: queued work is dropped, running work stops at its next step (it would
        otherwise compete with writing the lock for the interpreter)."""
        self._closed = True
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def requirements(self, file: DistFile) -> tuple[Requirement, ...]:
        key = file.sha256 or file.url
        with self._lock:
            cached = self._deps.get(key)
        if cached is not None:
            return cached
        meta = self.client.metadata(file)
        reqs: list[Requirement] = []
        for text in meta.requires_dist:
            try:
                reqs.append(Requirement(text))
            except InvalidRequirement:
                from lockenv.errors import PackageIndexError

                raise PackageIndexError(
                    f"{file.filename} declares an invalid requirement `{text}`",
                    context={"file": file.url},
                    hint="report it to the package's authors; pin another version meanwhile",
                ) from None
        result = tuple(reqs)
        with self._lock:
            self._deps[key] = result
        return result


class Provider(AbstractProvider):  # type: ignore[misc]
    """resolvelib hooks for one marker environment and tag list."""

    def __init__(
        self,
        metadata: Metadata,
        *,
        environment: Mapping[str, str],
        tag_priority: Mapping[Tag, int],
        preferences: Mapping[str, str] | None = None,
    ) -> None:
        self.meta = metadata
        self.environment = dict(environment)
        self.python_full = environment["python_full_version"]
        self.tag_priority = tag_priority
        self.preferences = {canonicalize_name(k): Version(v) for k, v in (preferences or {}).items()}
        self.no_candidates: dict[str, str] = {}
        """identifier → why nothing matched (for error messages)."""

    # -- resolvelib hooks ---------------------------------------------------------------------
    def identify(self, requirement_or_candidate: Req | Candidate) -> str:
        return requirement_or_candidate.identifier

    def get_preference(
        self,
        identifier: str,
        resolutions: Mapping[str, Candidate],
        candidates: Mapping[str, Iterator[Candidate]],
        information: Mapping[str, Iterator[Any]],
        backtrack_causes: Sequence[Any],
    ) -> tuple[bool, bool, bool, str]:
        infos = list(information[identifier])
        pinned = any(i.requirement.pins_exactly for i in infos)
        direct = any(i.parent is None for i in infos)
        causes = {c.requirement.name for c in backtrack_causes} | {
            c.parent.name for c in backtrack_causes if c.parent is not None
        }
        name = identifier.split("[", 1)[0]
        return (name not in causes, not pinned, not direct, identifier)

    def find_matches(
        self,
        identifier: str,
        requirements: Mapping[str, Iterator[Req]],
        incompatibilities: Mapping[str, Iterator[Candidate]],
    ) -> Any:
        reqs = list(requirements[identifier])
        bad = {c.version for c in incompatibilities[identifier]}
        name = canonicalize_name(identifier.split("[", 1)[0])
        extra = identifier[len(name) + 1 : -1] if "[" in identifier else None
        by_version = self.meta.versions(name)
        spec = SpecifierSet()
        for r in reqs:
            spec &= r.specifier
        pinned_exact = {
            Version(s.version) for r in reqs for s in r.specifier if s.operator == "==" and "*" not in s.version
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
            self.no_candidates[identifier] = "the index lists no files for it"
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
                    if rp and not any(_python_ok(f, self.python_full) for f in usable):
                        reasons.append(f"{version} requires Python {sorted(rp)[0]}")
                    else:
                        reasons.append(f"{version} has no wheel for this platform and no sdist")
                    continue
                found = True
                yield Candidate(name, version, extra, chosen, tuple(files))
            if not found and allowed:
                self.no_candidates[identifier] = "; ".join(reasons[:3])

        return candidates  # type: ignore[return-value]

    def is_satisfied_by(self, requirement: Req, candidate: Candidate) -> bool:
        if requirement.identifier != candidate.identifier:
            return False
        return requirement.specifier.contains(candidate.version, prereleases=True)

    def get_dependencies(self, candidate: Candidate) -> list[Req]:
        deps: list[Req] = []
        if candidate.extra:
            base = Requirement(f"{candidate.name}=={candidate.version}")
            deps.append(Req(candidate.name, None, base.specifier, base))
        for req in self.dependencies(candidate):
            deps.extend(requirement_to_reqs(req))
        self.meta.speculate(deps, self.environment, self.tag_priority)
        return deps

    # -- helpers shared with the universal merge ----------------------------------------------
    def dependencies(self, candidate: Candidate) -> list[Requirement]:
        """The candidate's requirements that apply in this environment (for `name[x]`: only
        those its extra adds)."""
        out = []
        self.meta.prefetch_version(candidate.files, self.tag_priority, self.python_full)
        own = metadata_file(candidate, self.tag_priority)
        for req in self.meta.requirements_for(candidate.files, own, self.environment):
            if applies(req, self.environment, candidate.extra):
                out.append(req)
        return out


def metadata_file(candidate: Candidate, tag_priority: Mapping[Tag, int]) -> DistFile:
    """The file whose metadata stands for the candidate here: the file this environment would
    install; but when that is an sdist of a version that also has wheels (no wheel for this
    Python yet, say), a wheel's metadata, so that locking never runs a PEP 517 build just to
    read what the wheels already say. Pure wheels first, then one for this platform, then the
    newest Python's; the sdist stays the file that sync will build."""
    if candidate.file.is_wheel:
        return candidate.file
    wheels = [f for f in candidate.files if f.is_wheel and not f.yanked]
    if not wheels:
        return candidate.file
    platforms = {t.platform for t in tag_priority}

    def rank(f: DistFile) -> tuple[int, int, str]:
        tags = file_tags(f)
        if any(t.platform == "any" for t in tags):
            kind = 0
        elif any(t.platform in platforms for t in tags):
            kind = 1
        else:
            kind = 2
        newest = max((int("".join(c for c in t.interpreter[2:] if c.isdigit()) or 0) for t in tags), default=0)
        return (kind, -newest, f.filename)

    return min(wheels, key=rank)


def applies(req: Requirement, environment: Mapping[str, str], extra: str | None) -> bool:
    """Does `req` apply to `name[extra]` (extra None: the base) in this environment?"""
    marker: Marker | None = req.marker
    if marker is None:
        return extra is None
    mentions_extra = "extra" in str(marker)
    if extra is None:
        return not mentions_extra and marker.evaluate({**environment, "extra": ""})
    return mentions_extra and marker.evaluate({**environment, "extra": extra})

"""The package source the resolver asks: versions and files per project, the requirements a file
declares (read from as few wheels as is safe), which file an environment installs, and which
files the lock keeps.

`IndexSource` is the one implementation, shared across targets (a thread-safe memo over an
index); the provider depends only on the `PackageSource` protocol. The index side is two small
protocols too, `ProjectPages` and `MetadataReader`, so that one object (the index client) or two
(pages from the client, metadata from a distributions layer) fit.
"""

from __future__ import annotations

import re
import sys
import threading
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import Protocol, TypeVar

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.tags import Tag
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from lockenv.errors import PackageIndexError, PackageNotFoundError
from lockenv.models import CoreMetadata, DistFile, ProjectFiles, VersionFiles
from lockenv.resolve.requirements import Candidate, file_tags, filename_tags, parse_requirement
from lockenv.resolve.targets import Target

__all__ = [
    "Index",
    "all_yanked",
    "IndexSource",
    "MetadataReader",
    "PackageIndex",
    "PackageSource",
    "ProjectPages",
    "SizedFiles",
    "best_file",
    "common_requires_python",
    "lock_files",
    "metadata_file",
    "python_ok",
    "stand_in",
    "with_sizes",
]


K = TypeVar("K")


class ProjectPages(Protocol):
    """An index's project pages (the index client)."""

    def project(self, name: str) -> ProjectFiles: ...
    def prefetch(self, names: Iterable[str]) -> None: ...


class MetadataReader(Protocol):
    """A file's core metadata, however it is obtained (PEP 658, range reads, a build)."""

    def metadata(self, file: DistFile) -> CoreMetadata: ...
    def prefetch_metadata(self, files: Iterable[DistFile]) -> None: ...
    def metadata_cached(self, file: DistFile) -> bool: ...


class SizedFiles(Protocol):
    """An index that can tell a file's size (a HEAD request) when its pages do not."""

    def ensure_size(self, file: DistFile) -> DistFile: ...


class Index(ProjectPages, MetadataReader, Protocol):
    """An index the resolver can read pages and metadata from (the index client is one)."""


class PackageIndex(Index, SizedFiles, Protocol):
    """All a universal resolution asks of an index (the index client is one)."""

    @property
    def simple_index_url(self) -> str: ...


class PackageSource(Protocol):
    """What the provider asks of the packages it resolves."""

    def versions(self, name: str) -> Mapping[Version, Sequence[DistFile]]: ...
    def sorted_versions(self, name: str) -> Sequence[Version]: ...
    def best_for(self, files: Sequence[DistFile], target: Target) -> DistFile | None: ...
    def not_found(self, name: str) -> PackageNotFoundError | None: ...
    def requirements_for(
        self, files: Sequence[DistFile], own: DistFile, environment: Mapping[str, str]
    ) -> tuple[Requirement, ...]: ...


class IndexSource:
    """`PackageSource` over an index, memoised and thread-safe: one per universal resolution,
    shared by every target and by the crawler (`prefetch.py`)."""

    def __init__(self, pages: ProjectPages, metadata: MetadataReader, targets: Sequence[Target] = ()) -> None:
        self.pages = pages
        self.metadata = metadata
        self.targets = list(targets)
        self._lock = threading.Lock()
        self._versions: dict[str, dict[Version, Sequence[DistFile]]] = {}
        self._deps: dict[str, tuple[Requirement, ...]] = {}
        self._extras: dict[str, frozenset[str]] = {}
        """file key → the extras its metadata declares (Provides-Extra, or named in a marker)."""
        self._reps: dict[str, dict[tuple[str, str], tuple[DistFile, DistFile]]] = {}
        self._best: dict[str, tuple[DistFile | None, ...]] = {}
        """Version key -> the file each of `targets` installs (made with `representatives`)."""
        self._target_index = {t: i for i, t in enumerate(self.targets)}
        self._ranks: list[tuple[dict[str, int], str]] | None = None
        self._ranks_lock = threading.Lock()
        self._missing: dict[str, PackageNotFoundError] = {}
        self._agreed: dict[tuple[str, str], bool] = {}
        self._sorted: dict[str, list[Version]] = {}
        self._from_cache: set[str] = set()
        """Projects whose page was read from the cache (no request)."""

    def not_found(self, name: str) -> PackageNotFoundError | None:
        """The index's "not found" for a project `versions` answered with nothing."""
        with self._lock:
            return self._missing.get(name)

    def versions(self, name: str) -> dict[Version, Sequence[DistFile]]:
        """A project's files grouped by version (parsed once per run; each version's files are
        made when first used: see `models.VersionFiles`). A project the index does not know
        (404) has no versions: on a path the resolver may still leave, that is "no
        candidates", not the end of the lock (`single.py` names it if nothing else fits)."""
        with self._lock:
            cached = self._versions.get(name)
        if cached is not None:
            return cached
        try:
            project = self.pages.project(name)
        except PackageNotFoundError as exc:
            with self._lock:
                self._missing[name] = exc
                self._versions[name] = {}
            return {}
        grouped: dict[Version, Sequence[DistFile]] = {}
        for files in project.versions:
            try:
                version = Version(files.text)
            except InvalidVersion:
                continue  # a file name the index should not have listed
            known = grouped.get(version)
            # Two spellings of one version (`1.0`, `1.0.0`): rare; one group, made now.
            grouped[version] = files if known is None else (*known, *files)
        with self._lock:
            self._versions[name] = grouped
            if project.from_cache:
                self._from_cache.add(name)
        return grouped

    def sorted_versions(self, name: str) -> list[Version]:
        """A project's versions, oldest first (sorted once per run: the provider and the
        crawler ask for every project, often; a comparison is two Python calls)."""
        with self._lock:
            cached = self._sorted.get(name)
        if cached is None:
            cached = sorted(self.versions(name))
            with self._lock:
                self._sorted[name] = cached
        return cached

    def page_from_cache(self, name: str) -> bool:
        """Was the project's page (asked for already, by `versions`) read from the cache?"""
        with self._lock:
            return name in self._from_cache

    def requirements_for(
        self, files: Sequence[DistFile], own: DistFile, environment: Mapping[str, str]
    ) -> tuple[Requirement, ...]:
        """The requirements `own` declares, read from as few wheels as is safe.

        Wheels of one version usually share their metadata; where they differ, it is by
        platform (a Windows wheel adds a dependency) or by the Python a wheel was built for.
        So per platform the newest and the oldest Python's wheels are read; when they agree,
        the wheels between them are taken to agree too, and otherwise each target reads its
        own wheel. That is ~10 reads per version instead of one per target (30)."""
        if not own.is_wheel or not self.targets or not files:
            return self.requirements(own)
        pair = self.representatives(files).get((environment["sys_platform"], environment["platform_machine"]))
        if pair is None or own in pair:
            return self.requirements(own)
        newest, oldest = pair
        reqs = self.requirements(newest)
        if self._agree(newest, oldest):
            return reqs
        return self.requirements(own)

    def files_read_for(self, files: Sequence[DistFile], own: DistFile, environment: Mapping[str, str]) -> tuple[DistFile, ...]:
        """The wheels `requirements_for` reads first for `own` (to start them early): `own`, or
        the newest and the oldest Python's wheels of its platform."""
        if not own.is_wheel or not self.targets or not files:
            return (own,)
        pair = self.representatives(files).get((environment["sys_platform"], environment["platform_machine"]))
        return (own,) if pair is None or own in pair else pair

    def _agree(self, newest: DistFile, oldest: DistFile) -> bool:
        """Do the two wheels declare the same requirements (in any order)? Asked for every
        target and candidate, so answered once per pair."""
        key = (newest.sha256 or newest.url, oldest.sha256 or oldest.url)
        with self._lock:
            known = self._agreed.get(key)
        if known is None:
            a, b = self.requirements(newest), self.requirements(oldest)
            known = a is b or sorted(map(str, a)) == sorted(map(str, b))
            with self._lock:
                self._agreed[key] = known
        return known

    def representatives(self, files: Sequence[DistFile]) -> dict[tuple[str, str], tuple[DistFile, DistFile]]:
        """Per platform: the wheels the newest and the oldest Python target there would install."""
        key = f"reps:{files[0].url}"
        with self._lock:
            cached = self._reps.get(key)
        if cached is not None:
            return cached
        per: dict[tuple[str, str], list[DistFile]] = {}
        best = best_files(files, self._ranked())
        for t, f in zip(self.targets, best):  # newest Python first
            if f is not None and f.is_wheel:
                per.setdefault((t.environment["sys_platform"], t.environment["platform_machine"]), []).append(f)
        reps = {plat: (fs[0], fs[-1]) for plat, fs in per.items()}
        with self._lock:
            self._reps[key] = reps
            self._best[key] = best
        return reps

    def best_all(self, files: Sequence[DistFile]) -> tuple[DistFile | None, ...]:
        """`best_for` of each of `targets`, in their order (worked out once per version)."""
        key = f"reps:{files[0].url}"
        with self._lock:
            best = self._best.get(key)
        if best is None:
            self.representatives(files)
            with self._lock:
                best = self._best[key]
        return best

    def best_of(self, files: Sequence[DistFile], indices: Sequence[int]) -> Sequence[DistFile | None]:
        """`best_for` of these targets (by index; the others' answers None), ranked now unless
        the version was ranked for all targets already."""
        key = f"reps:{files[0].url}"
        with self._lock:
            best = self._best.get(key)
        if best is not None:
            return best
        ranked = self._ranked()
        out: list[DistFile | None] = [None] * len(ranked)
        for i, f in zip(indices, best_files(files, [ranked[i] for i in indices])):
            out[i] = f
        return out

    def reads_to_start(self, files: Sequence[DistFile], takers: Iterable[int]) -> list[DistFile]:
        """The wheels `requirements_for` reads of this version for each of these targets (by
        index; each has a file in it) that are not read yet: its own wheel, or its platform's
        newest and oldest Python's wheels; for an sdist, those of the wheel that stands in for
        it (`metadata_file`); never an sdist (reading it may need a build)."""
        reps = self.representatives(files)
        best = self.best_all(files)
        out: dict[str, DistFile] = {}
        for i in takers:
            own = best[i]
            target = self.targets[i]
            if own is None:
                continue
            if not own.is_wheel:
                own = stand_in(files, target.tag_priority)
                if own is None:
                    continue
            pair = reps.get((target.environment["sys_platform"], target.environment["platform_machine"]))
            for f in (own,) if pair is None or own in pair else pair:
                out[f.filename] = f
        with self._lock:
            return [f for f in out.values() if (f.sha256 or f.url) not in self._deps]

    def _ranked(self) -> Sequence[tuple[dict[str, int], str]]:
        """Each target's tag ranks by tag string and its Python, made once (under the lock:
        the crawler's threads all start by asking)."""
        with self._ranks_lock:
            if self._ranks is None:
                self._ranks = [(_tag_ranks(t.tag_priority), t.python_full) for t in self.targets]
            return self._ranks

    def best_for(self, files: Sequence[DistFile], target: Target) -> DistFile | None:
        """`best_file` of all a version's files for a target: for one of this resolution's
        targets, the answer `representatives` worked out (the reuse of a pin asks it again for
        every target), else computed."""
        index = self._target_index.get(target)
        if index is None or not files:
            return best_file(files, target.tag_priority, target.python_full)
        return self.best_all(files)[index]

    def has_requirements(self, file: DistFile) -> bool:
        """Are the file's requirements read already (no need to prefetch its metadata)?"""
        with self._lock:
            return (file.sha256 or file.url) in self._deps

    def requirements(self, file: DistFile) -> tuple[Requirement, ...]:
        """The requirements a file's metadata declares (read once per run)."""
        key = file.sha256 or file.url
        with self._lock:
            cached = self._deps.get(key)
        if cached is not None:
            return cached
        meta = self.metadata.metadata(file)
        reqs: list[Requirement] = []
        for text in meta.requires_dist:
            try:
                reqs.append(parse_requirement(text))
            except InvalidRequirement:
                raise PackageIndexError(
                    f"{file.filename} declares an invalid requirement `{text}`",
                    context={"file": file.url},
                    hint="report it to the package's authors; pin another version meanwhile",
                ) from None
        result = tuple(reqs)
        extras = {canonicalize_name(e) for e in meta.provides_extra}
        extras.update(canonicalize_name(e) for r in result if r.marker is not None
                      for e in _MARKER_EXTRA.findall(str(r.marker)))
        with self._lock:
            self._deps[key] = result
            self._extras[key] = frozenset(extras)
        return result

    def extras_of(self, files: Sequence[DistFile]) -> frozenset[str] | None:
        """The extras a version declares, from whichever of its files' metadata was read
        (None when none was: nothing is known)."""
        with self._lock:
            found = [self._extras[k] for f in files if (k := f.sha256 or f.url) in self._extras]
        return frozenset().union(*found) if found else None


_MARKER_EXTRA = re.compile(r"""\bextra\s*==\s*["']([^"']+)["']""")
"""`extra == "x"` in a requirement's marker: old metadata (before 2.1) names extras only so."""


# -- which file ----------------------------------------------------------------------------------


def all_yanked(files: Sequence[DistFile]) -> bool:
    """Is every file of a version yanked? Known without making a page's files
    (`VersionFiles.all_yanked`): the resolver asks it of every version of a project."""
    if isinstance(files, VersionFiles):
        return files.all_yanked
    return all(f.yanked for f in files)


@lru_cache(maxsize=None)
def _python_allows(requires_python: str, python_full: str) -> bool:
    try:
        return SpecifierSet(requires_python).contains(python_full, prereleases=True)
    except InvalidSpecifier:
        return True  # junk requires-python from an index: do not let it hide the file


def python_ok(file: DistFile, python_full: str) -> bool:
    """Does the file's requires-python admit this Python?"""
    return not file.requires_python or _python_allows(file.requires_python, python_full)


def best_file(
    files: Iterable[DistFile], tag_priority: Mapping[Tag, int], python_full: str
) -> DistFile | None:
    """The file an installer on this environment picks: best-ranked compatible wheel (ties by
    file name), else the first sdist by name; files whose requires-python excludes this Python
    never. Tags are compared as strings (a str hashes in C, packaging's Tag in Python: this
    runs for every version pinned, on every target, over all of the version's files)."""
    return best_files(files, ((_tag_ranks(tag_priority), python_full),))[0]


def best_files(files: Iterable[DistFile], targets: Sequence[tuple[dict[str, int], str]]) -> tuple[DistFile | None, ...]:
    """`best_file` for each of several targets (tag ranks by string, Python), the same
    answers for less work: the version's wheels are indexed by tag once, and each target looks
    at the tags it accepts only (a set intersection in C; a binary package's version has ~60
    wheels, of which a target can install one or two)."""
    by_tag: dict[str, list[DistFile]] = {}
    sdists: list[DistFile] = []
    for f in files:
        name = f.filename
        if name.endswith(".whl"):
            try:
                tags = _tag_texts(name)
            except Exception:
                continue
            for tag in tags:
                by_tag.setdefault(tag, []).append(f)
        else:
            sdists.append(f)
    out: list[DistFile | None] = []
    for ranks, python_full in targets:
        best: tuple[int, str] | None = None
        chosen: DistFile | None = None
        for tag in by_tag.keys() & ranks.keys():
            rank = ranks[tag]
            if best is not None and rank > best[0]:
                continue
            for f in by_tag[tag]:
                requires = f.requires_python
                if (best is None or (rank, f.filename) < best) and (
                        not requires or _python_allows(requires, python_full)):
                    best, chosen = (rank, f.filename), f
        if chosen is None:
            for f in sdists:
                requires = f.requires_python
                if (chosen is None or f.filename < chosen.filename) and (
                        not requires or _python_allows(requires, python_full)):
                    chosen = f
        out.append(chosen)
    return tuple(out)


@lru_cache(maxsize=None)
def _tag_texts(filename: str) -> tuple[str, ...]:
    """A wheel's tags as `interpreter-abi-platform` strings (memoised, like `filename_tags`)."""
    return tuple(sys.intern(str(tag)) for tag in filename_tags(filename))


_RANKS: dict[int, tuple[Mapping[Tag, int], dict[str, int]]] = {}
"""id(tag priority) -> (that mapping, kept alive so the id stays its own; the same by tag string)."""


def _tag_ranks(tag_priority: Mapping[Tag, int]) -> dict[str, int]:
    """`tag_priority` keyed by tag string, made once per mapping (a target's, or a build
    environment's; its strings shared with the others'); at most a few hundred kept."""
    found = _RANKS.get(id(tag_priority))
    if found is None or found[0] is not tag_priority:
        if len(_RANKS) >= 256:
            _RANKS.clear()
        found = _RANKS[id(tag_priority)] = (tag_priority, {sys.intern(str(t)): r for t, r in tag_priority.items()})
    return found[1]


def metadata_file(candidate: Candidate, tag_priority: Mapping[Tag, int]) -> DistFile:
    """The file whose metadata stands for the candidate here: the file this environment would
    install; but when that is an sdist of a version that also has wheels (no wheel for this
    Python yet, say), a wheel's metadata, so that locking never runs a PEP 517 build just to
    read what the wheels already say. Pure wheels first, then one for this platform, then the
    newest Python's; the sdist stays the file that sync will build."""
    if candidate.file.is_wheel:
        return candidate.file
    return stand_in(candidate.files, tag_priority) or candidate.file


def stand_in(files: Sequence[DistFile], tag_priority: Mapping[Tag, int]) -> DistFile | None:
    """The wheel whose metadata best stands for a version here (see `metadata_file`); None
    when the version has no wheel. Memoised by the version (its first file: every caller passes
    all of a version's files that are not yanked, the only ones looked at) and the platforms
    the tags name: each target reusing a pin whose file is an sdist asks again (data: 289
    times, ~0.07 s of the main thread ranking every wheel's tags)."""
    if not files:
        return None
    platforms = _platforms(tag_priority)
    key = (files[0].url, platforms)
    try:
        return _STAND_INS[key]
    except KeyError:
        pass
    if len(_STAND_INS) >= 16384:
        _STAND_INS.clear()
    found = _STAND_INS[key] = _stand_in(files, platforms)
    return found


_STAND_INS: dict[tuple[str, frozenset[str]], DistFile | None] = {}
_PLATFORMS: dict[int, tuple[Mapping[Tag, int], frozenset[str]]] = {}
"""id(tag priority) -> (it, kept alive so the id stays its own; the platforms its tags name)."""


def _platforms(tag_priority: Mapping[Tag, int]) -> frozenset[str]:
    found = _PLATFORMS.get(id(tag_priority))
    if found is None or found[0] is not tag_priority:
        if len(_PLATFORMS) >= 256:
            _PLATFORMS.clear()
        found = _PLATFORMS[id(tag_priority)] = (tag_priority, frozenset(t.platform for t in tag_priority))
    return found[1]


def _stand_in(files: Sequence[DistFile], platforms: frozenset[str]) -> DistFile | None:
    wheels = [f for f in files if f.is_wheel and not f.yanked]
    if not wheels:
        return None

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


# -- the lock's files ----------------------------------------------------------------------------


def lock_files(
    files: Sequence[DistFile], requires_python: str, environments: Sequence[str] = ()
) -> tuple[tuple[DistFile, ...], DistFile | None]:
    """Every non-yanked wheel some Python in requires-python could run (any platform: the lock
    also serves environments outside the targets; with `[tool.lockenv] environments`, only
    platforms those markers admit), and the sdist."""
    minors = _python_minors(requires_python)
    usable = [f for f in files if not f.yanked] or list(files)
    wheels: list[DistFile] = []
    sdist: DistFile | None = None
    for f in usable:
        if f.is_wheel:
            if _wheel_python_ok(f, minors) and (not environments or _wheel_env_ok(f, tuple(environments))):
                wheels.append(f)
        elif sdist is None or f.filename < sdist.filename:
            sdist = f
    wheels.sort(key=lambda f: f.filename)
    return tuple(wheels), sdist


@lru_cache(maxsize=None)
def _python_minors(requires_python: str) -> frozenset[int]:
    """The Python 3 minors requires-python admits, worked out once (80 specifier checks;
    `lock_files` runs twice for every package of the lock)."""
    spec = SpecifierSet(requires_python) if requires_python else SpecifierSet()
    return frozenset(m for m in range(0, 40)
                     if spec.contains(f"3.{m}.99", prereleases=True) or spec.contains(f"3.{m}.0", prereleases=True))


_MACHINES = ("x86_64", "aarch64", "i686", "ppc64le", "s390x", "armv7l", "ppc64", "riscv64", "loongarch64")


def _platform_envs(platform: str) -> list[dict[str, str]]:
    """The (sys_platform, platform_machine, ...) a wheel's platform tag can run on; [] when the
    tag is one lockenv cannot place (kept: installers decide)."""
    if platform == "any":
        return []
    if platform.startswith(("manylinux", "musllinux", "linux")):
        machine = next((m for m in _MACHINES if platform.endswith("_" + m)), platform.rsplit("_", 1)[-1])
        return [{"sys_platform": "linux", "platform_system": "Linux", "os_name": "posix", "platform_machine": machine}]
    if platform.startswith("macosx"):
        arch = platform.split("_", 3)[-1]
        machines = {"universal2": ["x86_64", "arm64"], "arm64": ["arm64"], "x86_64": ["x86_64"],
                    "intel": ["x86_64"]}.get(arch, ["x86_64"])
        return [{"sys_platform": "darwin", "platform_system": "Darwin", "os_name": "posix", "platform_machine": m}
                for m in machines]
    if platform.startswith("win"):
        machine = {"win_amd64": "AMD64", "win32": "x86", "win_arm64": "ARM64"}.get(platform, "AMD64")
        return [{"sys_platform": "win32", "platform_system": "Windows", "os_name": "nt", "platform_machine": machine}]
    return []


@lru_cache(maxsize=None)
def _wheel_name_env_ok(filename: str, environments: tuple[str, ...]) -> bool:
    """Could an environment the markers admit install this wheel? Its platform decides; Python
    version and implementation markers are left to requires-python and the interpreter tag."""
    from packaging.markers import Marker

    markers = [Marker(m) for m in environments]
    base = {"implementation_name": "cpython", "platform_python_implementation": "CPython",
            "implementation_version": "3.12.0", "python_full_version": "3.12.0", "python_version": "3.12",
            "platform_release": "", "platform_version": "", "extra": ""}
    for tag in filename_tags(filename):
        envs = _platform_envs(tag.platform)
        if not envs:
            return True
        for env in envs:
            full = {**base, **env}
            for python in range(8, 16):
                full.update(python_version=f"3.{python}", python_full_version=f"3.{python}.0",
                            implementation_version=f"3.{python}.0")
                for impl, label in (("cpython", "CPython"), ("pypy", "PyPy")):
                    full.update(implementation_name=impl, platform_python_implementation=label)
                    if any(m.evaluate(full) for m in markers):
                        return True
    return False


def _wheel_env_ok(f: DistFile, environments: tuple[str, ...]) -> bool:
    try:
        return _wheel_name_env_ok(f.filename, environments)
    except Exception:
        return True  # a name or marker lockenv cannot read: keep the file, installers decide


def _wheel_python_ok(f: DistFile, minors: frozenset[int]) -> bool:
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


def with_sizes(
    files_of: dict[K, tuple[DistFile, ...]], index: SizedFiles, requires_python: str, environments: Sequence[str] = ()
) -> dict[K, tuple[DistFile, ...]]:
    """Simple HTML indexes do not list sizes, some mirrors no hashes; the lock records both for
    every file it keeps."""
    wanted: dict[str, DistFile] = {}
    for files in files_of.values():
        wheels, sdist = lock_files(files, requires_python, environments)
        for f in (*wheels, *([sdist] if sdist else [])):
            if f.size is None or f.sha256 is None:
                wanted[f.filename] = f
    if not wanted:
        return files_of
    with ThreadPoolExecutor(16) as pool:
        sized = dict(zip(wanted, pool.map(index.ensure_size, wanted.values())))
    return {k: tuple(sized.get(f.filename, f) for f in files) for k, files in files_of.items()}


def common_requires_python(files: Sequence[DistFile]) -> str | None:
    """The package entry's requires-python: the one all its files share, else the sdist's, else
    the most common one among the files."""
    rp = {f.requires_python for f in files if f.requires_python}
    if not rp:
        return None
    if len(rp) == 1:
        return sorted(rp)[-1]
    for f in files:
        if not f.is_wheel and f.requires_python:
            return f.requires_python
    counts: dict[str, int] = {}
    for f in files:
        if f.requires_python:
            counts[f.requires_python] = counts.get(f.requires_python, 0) + 1
    return max(sorted(counts), key=lambda k: counts[k])

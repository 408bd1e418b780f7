"""The plain, frozen data that travels between pipeline stages (manifest → index → resolve →
lockfile → sync). Stages import these; none of them does I/O."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from datetime import datetime
from typing import overload

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import Version


@dataclass(frozen=True)
class ProjectSpec:
    """What pyproject.toml asks for, normalised; the input of `lock`."""

    root: str
    """Absolute path of the project directory."""
    pyproject: str
    """Absolute path of pyproject.toml."""
    name: str
    """Normalised project name (PEP 503)."""
    requires_python: str
    """`requires-python` as a specifier string; when not declared, the derived default."""
    requires_python_declared: bool
    """False when pyproject.toml has no `requires-python` (lock warns and derives one)."""
    dependencies: tuple[str, ...]
    """`[project] dependencies`, each `str(Requirement(...))` (normalised spelling)."""
    optional_dependencies: dict[str, tuple[str, ...]]
    """Extra name (normalised) → requirements."""
    dependency_groups: dict[str, tuple[str, ...]]
    """Group name (normalised) → requirements, with `include-group` expanded."""
    default_groups: tuple[str, ...]
    """Groups installed unless the user says otherwise (default: `dev` when it exists)."""
    index_url: str
    """The index to resolve against (LOCKENV_INDEX_URL > [tool.lockenv] index-url > PyPI).
    May carry credentials: redact before showing or writing it."""
    environments: tuple[str, ...]
    """`[tool.lockenv] environments` marker strings; empty means the default targets."""
    exclude_newer: datetime | None
    """Ignore files uploaded after this instant (timezone-aware, UTC)."""
    has_build_system: bool
    """True when pyproject.toml has `[build-system]` (sync installs the project editable)."""
    line_of: dict[str, int] = field(default_factory=dict, compare=False)
    """1-based line numbers of notable keys (e.g. 'dependencies', 'requires-python'), for
    messages."""
    indexes: IndexSettings | None = None
    """`[[tool.lockenv.index]]`, `[tool.lockenv.sources]` and the trust settings; None is the
    default index alone (`index_url`), with no names, pins or keyring."""
    required_environments: tuple[str, ...] = ()
    """`[tool.lockenv] required-environments` markers (uv's name): the targets they admit must
    get an installable file of every package, or the lock fails (elsewhere it only warns)."""


@dataclass(frozen=True)
class IndexConfig:
    """One package index as `[[tool.lockenv.index]]` (or `index-url`) declares it."""

    name: str | None
    """`[a-z0-9-]+`, used in messages and in `LOCKENV_INDEX_<NAME>_*`; None for the default
    index when it comes from `index-url`, LOCKENV_INDEX_URL or PyPI."""
    url: str
    """Simple-API URL or JSON-API base; may carry `user:password@`: a secret, never shown
    (wrap it in `lockenv.urls.SafeUrl`)."""
    explicit: bool = False
    """Only packages pinned to it in `[tool.lockenv.sources]` come from it."""
    default: bool = False
    """Declared `default = true`: the index of last resort instead of PyPI."""

    def __repr__(self) -> str:  # the URL may carry a password
        from lockenv.urls import redact_url

        return (f"IndexConfig(name={self.name!r}, url={redact_url(self.url)!r}, "
                f"explicit={self.explicit}, default={self.default})")

    @property
    def label(self) -> str:
        """How messages name it: "index `internal`" or "the default index"."""
        return f"index `{self.name}`" if self.name else "the default index"


@dataclass(frozen=True)
class IndexSettings:
    """Where each package name may come from, and what credentials and trust apply.

    Routing (first index that has a name wins; pinned names only from their index) is decided
    from this by `lockenv.index.routing`; nothing here does I/O."""

    search: tuple[IndexConfig, ...]
    """Indexes asked, in order, for a name that is not pinned; the default index last."""
    named: tuple[IndexConfig, ...] = ()
    """Every `[[tool.lockenv.index]]` entry in file order (explicit ones included)."""
    sources: dict[str, str] = field(default_factory=dict)
    """Normalised package name → the name of the only index it may come from."""
    keyring_provider: str | None = None
    """"subprocess" to ask the `keyring` command for passwords; None not to."""
    allow_insecure_hosts: tuple[str, ...] = ()
    """`host` or `host:port` entries credentials may be sent to over plain http."""

    @property
    def default(self) -> IndexConfig:
        return self.search[-1]

    def by_name(self, name: str) -> IndexConfig | None:
        return next((i for i in self.named if i.name == name), None)


@dataclass(frozen=True, slots=True, eq=False)
class DistFile:
    """One wheel or sdist as an index lists it. Slotted: a lock holds one per file of every
    page it reads (53,000 on the data benchmark), and an instance without a dict is ~50 bytes
    smaller. Equal when all fields are, whatever the class (`PackedFile` included)."""

    filename: str
    url: str
    """Absolute URL, without credentials."""
    sha256: str | None
    size: int | None
    upload_time: datetime | None
    requires_python: str | None
    yanked: bool = False
    yanked_reason: str | None = None
    metadata: bool | None = None
    """PEP 658/714: True when the index advertises `<url>.metadata`, False when it says there
    is none, None when it does not say (the JSON API): then try it anyway."""
    index: str = ""
    """The simple-API base URL of the index the file came from (redacted), for the lock."""

    @property
    def is_wheel(self) -> bool:
        return self.filename.endswith(".whl")

    @property
    def project_name(self) -> NormalizedName:
        return _parse_filename(self.filename)[0]

    @property
    def version(self) -> Version:
        return _parse_filename(self.filename)[1]

    def _fields(self) -> tuple[object, ...]:
        return (self.filename, self.url, self.sha256, self.size, self.upload_time,
                self.requires_python, self.yanked, self.yanked_reason, self.metadata, self.index)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DistFile):
            return NotImplemented
        return self is other or self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())


_DIGEST_PATH = re.compile(r"([0-9a-f]{2})/([0-9a-f]{2})/([0-9a-f]{60})/")
"""`ab/cd/<60 hex>/`: where PyPI (and its mirrors) keep a file, by its blake2b-256 digest."""
_FILLED = ("filename", "sha256", "size", "upload_time", "requires_python", "yanked",
           "yanked_reason", "metadata", "index")


class PackedFile(DistFile):
    """A DistFile as an index page lists it, with its URL `<base>ab/cd/<60 hex>/<filename>`
    and its sha256 kept packed: the base (one string per page) and one 64-byte string of the
    two digests, ~110 bytes instead of ~340 per file (the data benchmark's pages list 53,000
    files; the resolver reads the URLs and hashes of a few hundred). Each is built on first
    read, and kept."""

    __slots__ = ("_base", "_digest")
    _base: str
    _digest: bytes

    @staticmethod
    def make(filename: str, url: str, sha256: str | None, size: int | None,
             upload_time: datetime | None, requires_python: str | None, yanked: bool,
             yanked_reason: str | None, metadata: bool | None, index: str,
             bases: dict[str, str]) -> DistFile:
        """A PackedFile when `url` has that shape (`bases` shares the base strings of a page),
        else a plain DistFile; either way equal to `DistFile(filename, url, ...)`."""
        at = len(url) - len(filename) - 67
        match = _DIGEST_PATH.match(url, at, at + 67) if at > 0 else None
        if match is None or not url.endswith(filename):
            return DistFile(filename, url, sha256, size, upload_time, requires_python, yanked,
                            yanked_reason, metadata, index)
        packed = object.__new__(PackedFile)  # the slots set directly: 2x faster than __init__
        base = url[:at]
        _set_base(packed, bases.setdefault(base, base))
        digest = bytes.fromhex("".join(match.groups()))
        if sha256 is not None:
            try:
                raw = bytes.fromhex(sha256)
            except ValueError:
                raw = b""
            if len(raw) == 32 and len(sha256) == 64 and sha256.islower():
                digest += raw  # the hex string comes back from it exactly
            else:
                _set_sha256(packed, sha256)
        else:
            _set_sha256(packed, None)
        _set_digest(packed, digest)
        _set_filename(packed, filename)
        _set_size(packed, size)
        _set_upload_time(packed, upload_time)
        _set_requires_python(packed, requires_python)
        _set_yanked(packed, yanked)
        _set_yanked_reason(packed, yanked_reason)
        _set_metadata(packed, metadata)
        _set_index(packed, index)
        return packed

    def __getattr__(self, name: str) -> str:
        """Only called for a slot never set: `url` or `sha256` (else a real miss)."""
        if name == "url":
            digest = self._digest[:32].hex()
            value = f"{self._base}{digest[:2]}/{digest[2:4]}/{digest[4:]}/{self.filename}"
        elif name == "sha256":
            value = self._digest[32:].hex()
        else:
            raise AttributeError(name)
        object.__setattr__(self, name, value)
        return value


(_set_filename, _set_sha256, _set_size, _set_upload_time, _set_requires_python, _set_yanked,
 _set_yanked_reason, _set_metadata, _set_index) = (
    DistFile.__dict__[name].__set__ for name in _FILLED)
_set_base = PackedFile.__dict__["_base"].__set__
_set_digest = PackedFile.__dict__["_digest"].__set__


SDIST_EXTENSIONS = (".tar.gz", ".zip", ".tar.bz2", ".tgz", ".tar")
"""Source archives lockenv can unpack and build (tarfile and zipfile read them all); any other
archive type an index lists (.exe, .egg, .msi, .rpm, .tar.zst…) is skipped, as pip and uv do."""

_NAME = re.compile(r"[A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9]", re.IGNORECASE)


def _parse_filename(filename: str) -> tuple[NormalizedName, Version]:
    """(name, version) of a wheel or sdist file name; raises ValueError (or packaging's
    Invalid*Filename, both ValueErrors) for anything else."""
    if filename.endswith(".whl"):
        name, version, _build, _tags = parse_wheel_filename(filename)  # checks the tags too
        return name, version
    ext = next((e for e in SDIST_EXTENSIONS if filename.endswith(e)), None)
    if ext is None:
        raise InvalidSdistFilename(f"not a wheel or a known sdist archive: {filename!r}")
    # Legacy sdists (`Foo_Bar-1.0.tar.bz2`) are split at the last dash, as packaging does.
    raw_name, dash, raw_version = filename[: -len(ext)].rpartition("-")
    if not dash or not _NAME.fullmatch(raw_name):
        raise InvalidSdistFilename(f"invalid sdist name {filename!r}")
    return canonicalize_name(raw_name), Version(raw_version)


@lru_cache(maxsize=4096)
def sdist_name_ok(name: str) -> bool:
    """Is `name` (an sdist file name up to its last dash) a project name `_parse_filename`
    accepts?"""
    return _NAME.fullmatch(name) is not None


_HEX = frozenset("0123456789abcdef")


def is_sha256(text: object) -> bool:
    """A sha256 as lockenv accepts one (F2): exactly 64 lower-case hex digits. Every hash from a
    lock, an index page or the cache passes this before it is compared or becomes a path."""
    return isinstance(text, str) and len(text) == 64 and _HEX.issuperset(text)


def is_dist_filename(filename: str) -> bool:
    """True for a wheel or sdist file name lockenv understands."""
    return filename_problem(filename) is None


def filename_problem(filename: str) -> str | None:
    """Why `filename` is not a wheel or sdist lockenv can use (None: it is one)."""
    try:
        _parse_filename(filename)
    except ValueError as exc:  # InvalidWheelFilename, InvalidSdistFilename, InvalidVersion
        return str(exc) or type(exc).__name__
    return None


class VersionFiles(Sequence[DistFile]):
    """The files of one version of a project page (its version text as the file names spell
    it), made on first use: a lock looks at a few versions of each project, and a page lists
    hundreds (the web benchmark's 44 pages: 51,000 files, a few thousand of them ever read).
    `all_yanked` is known without making them (the resolver skips such versions). Thread-safe:
    two first uses at once make the files twice and both get the first one kept."""

    __slots__ = ("text", "all_yanked", "_make", "_files")

    def __init__(self, text: str, all_yanked: bool,
                 make: Callable[[], tuple[DistFile, ...]] | None = None,
                 files: tuple[DistFile, ...] | None = None) -> None:
        self.text = text
        self.all_yanked = all_yanked
        self._make = make
        self._files = files

    @property
    def files(self) -> tuple[DistFile, ...]:
        files = self._files
        if files is None:
            make = self._make
            assert make is not None
            made = make()
            if self._files is None:
                self._files = made
                self._make = None
            files = self._files
        return files

    @property
    def made(self) -> bool:
        """Are the files made already (no work, no error left in reading them)?"""
        return self._files is not None

    def __len__(self) -> int:
        return len(self.files)

    def __iter__(self) -> Iterator[DistFile]:
        return iter(self.files)

    @overload
    def __getitem__(self, index: int) -> DistFile: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[DistFile, ...]: ...

    def __getitem__(self, index: int | slice) -> DistFile | tuple[DistFile, ...]:
        return self.files[index]

    def __eq__(self, other: object) -> bool:
        """Equal to a VersionFiles of the same version text and files (so two reads of one
        page are equal `ProjectFiles`); makes the files of both."""
        if not isinstance(other, VersionFiles):
            return NotImplemented
        return self is other or (self.text == other.text and self.files == other.files)

    __hash__ = None  # type: ignore[assignment]  # equal by contents, which are made lazily

    def __repr__(self) -> str:
        return f"VersionFiles({self.text!r}, {self.files!r})"


@dataclass(frozen=True)
class ProjectFiles:
    """Everything an index lists for one project (after exclude-newer filtering), by version:
    each version's files are made when first asked for (see `VersionFiles`)."""

    name: NormalizedName
    versions: tuple[VersionFiles, ...]
    """In the order of the page (a version where its first file is)."""
    index_url: str
    """The redacted URL of the page this came from."""
    from_cache: bool = field(default=False, compare=False)
    """Read from the cache, no request sent: nothing about it for the crawler to hide."""

    @property
    def files(self) -> tuple[DistFile, ...]:
        """Every file of every version (makes them all: for code that reads the whole page)."""
        return tuple(f for version in self.versions for f in version.files)


@dataclass(frozen=True)
class CoreMetadata:
    """The parts of a distribution's METADATA the resolver needs."""

    name: NormalizedName
    version: str
    requires_dist: tuple[str, ...]
    requires_python: str | None
    provides_extra: tuple[str, ...]
    source: str
    """Where it came from: 'pep658', 'range', 'wheel', 'sdist', 'build'."""


@dataclass(frozen=True)
class Dependency:
    """An edge of the locked graph: points at one `LockedPackage` entry."""

    name: NormalizedName
    version: str | None = None
    """Set when the target package has several entries (a fork), to say which."""


@dataclass(frozen=True)
class LockedPackage:
    """One `[[packages]]` entry of the lock."""

    name: NormalizedName
    version: str
    marker: str | None
    """None when every environment the lock serves needs the package."""
    requires_python: str | None
    index: str
    """Simple-API base URL of the index (redacted)."""
    dependencies: tuple[Dependency, ...]
    wheels: tuple[DistFile, ...]
    sdist: DistFile | None


@dataclass(frozen=True)
class LockInputs:
    """The manifest inputs a lock was made from, recorded under `[tool.lockenv]` so that
    freshness is decided without the network."""

    requires_python: str
    dependencies: tuple[str, ...]
    optional_dependencies: dict[str, tuple[str, ...]]
    dependency_groups: dict[str, tuple[str, ...]]
    default_groups: tuple[str, ...]
    index_url: str
    """Redacted."""
    exclude_newer: str | None
    """RFC 3339, UTC, e.g. '2025-01-01T00:00:00Z'."""
    environments: tuple[str, ...]
    exclude_newer_from_cli: bool = False
    """The cut-off came from `lock --exclude-newer`, not pyproject.toml: it holds for later
    relocks until a new one is given (one from pyproject.toml is dropped with it)."""
    indexes: tuple[str, ...] = ()
    """`[[tool.lockenv.index]]` entries in file order (search order matters), each
    "name url[ explicit][ default]", URLs redacted; empty with the default index alone."""
    sources: tuple[str, ...] = ()
    """`[tool.lockenv.sources]` pins, each "package=index", sorted."""
    required_environments: tuple[str, ...] = ()
    """`[tool.lockenv] required-environments` markers, sorted."""


@dataclass(frozen=True)
class Resolution:
    """The output of `resolve`: everything `lockfile.write` needs."""

    inputs: LockInputs
    packages: tuple[LockedPackage, ...]

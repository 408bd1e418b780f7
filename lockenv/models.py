"""The plain, frozen data that travels between pipeline stages (manifest → index → resolve →
lockfile → sync). Stages import these; none of them does I/O."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import overload

from packaging.utils import NormalizedName

# The file model lives in its own module (a sync imports it alone); re-exported here.
from lockenv.distfiles import SDIST_EXTENSIONS as SDIST_EXTENSIONS
from lockenv.distfiles import DistFile as DistFile
from lockenv.distfiles import PackedFile as PackedFile
from lockenv.distfiles import _parse_filename as _parse_filename
from lockenv.distfiles import filename_problem as filename_problem
from lockenv.distfiles import is_dist_filename as is_dist_filename
from lockenv.distfiles import is_sha256 as is_sha256
from lockenv.distfiles import sdist_name_ok as sdist_name_ok


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
    ignored_sources: tuple[tuple[str, str], ...] = field(default=(), compare=False)
    """(table, what it says) for sources another tool declares for a required package
    (`[tool.uv.sources]`, Poetry's dependency tables: a path, a git repository, a URL, an
    index of theirs), which lockenv does not read: `lock` warns that those packages come from
    lockenv's indexes instead, rather than silently locking another package of that name."""


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

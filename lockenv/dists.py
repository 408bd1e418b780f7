"""Distributions: a file on the index -> its core metadata, and a wanted file -> a local wheel
(uv's `DistributionDatabase`). Above the index client (which fetches) and beside build.py
(which builds): the resolver asks this layer, never the client, for what a file requires.

The metadata chain, cheapest first: the PEP 658 metadata file, range requests into the wheel,
the whole wheel, an sdist's PKG-INFO when it is static (Metadata 2.2+ with nothing dynamic),
and last a PEP 517 `prepare_metadata_for_build_wheel` in an isolated build environment. Results
are cached on disk by the file's sha256, and each file is read once per process however many
threads ask.
"""

from __future__ import annotations

from typing import Protocol

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

from lockenv import build
from lockenv.build import BuildContext
from lockenv.cache import Cache
from lockenv.errors import BrokenDistributionError, BuildError, PackageIndexError
from lockenv.index.metadata import (
    MetadataProblem,
    check_matches,
    parse_metadata,
    pyproject_metadata,
    read_sdist_top_files,
    read_wheel_metadata,
    static_sdist_metadata,
)
from lockenv.models import CoreMetadata, DistFile, ProjectFiles
from lockenv.once import OnceMap
from lockenv.ui import NullReporter, Progress, Reporter
from lockenv.urls import redact_url


METADATA_WORKERS = 16
"""Threads reading metadata ahead of the resolver: they wait on the network (one request per
wheel, usually)."""


class PackageIndex(Protocol):
    """What this layer needs of the index: an `IndexClient`, or an `IndexRouter` over several
    (each file then fetched from the index it came from)."""

    @property
    def index_url(self) -> str: ...
    @property
    def simple_index_url(self) -> str: ...
    def project(self, name: str) -> ProjectFiles: ...
    def prefetch(self, names: Iterable[str]) -> None: ...
    def ensure_size(self, file: DistFile) -> DistFile: ...
    def download(self, file: DistFile, *,
                 on_bytes: Callable[[int], None] | None = None) -> Path: ...
    def download_many(self, files: Sequence[DistFile],
                      progress: Progress | None = None) -> dict[str, Path]: ...
    def metadata_file(self, file: DistFile) -> bytes | None: ...
    def range_metadata(self, file: DistFile) -> bytes | None: ...
    def probe_metadata_first(self, file: DistFile) -> bool: ...


class Distributions:
    """Core metadata and local wheels for the files of one index. Thread-safe; close it (or use
    it as a context manager) to stop the background metadata reads.

    `build_context` makes, from this object, the `BuildContext` a PEP 517 build uses to resolve
    and install its requirements (`ops/dispatch.BuildDispatch`): resolving a build's
    requirements asks this object for metadata again. Without one, a file whose metadata only
    a build can tell is an error."""

    def __init__(
        self,
        client: PackageIndex,
        *,
        cache: Cache,
        reporter: Reporter | None = None,
        build_context: Callable[[Distributions], BuildContext] | None = None,
    ) -> None:
        self.client = client
        self.cache = cache
        self.reporter: Reporter = reporter if reporter is not None else NullReporter()
        self._context = build_context(self) if build_context is not None else None
        self._metas: OnceMap[str, CoreMetadata] = OnceMap()
        self._pool = ThreadPoolExecutor(METADATA_WORKERS, thread_name_prefix="lockenv-metadata")

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> Distributions:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- what the resolver asks of its package source, forwarded to the index ----------------
    @property
    def index_url(self) -> str:
        return self.client.index_url

    @property
    def simple_index_url(self) -> str:
        return self.client.simple_index_url

    def project(self, name: str) -> ProjectFiles:
        return self.client.project(name)

    def prefetch(self, names: Iterable[str]) -> None:
        self.client.prefetch(names)

    def ensure_size(self, file: DistFile) -> DistFile:
        return self.client.ensure_size(file)

    def download(self, file: DistFile) -> Path:
        """The file's verified path in the cache (downloaded when missing)."""
        return self.client.download(file)

    # -- core metadata -----------------------------------------------------------------------
    def metadata(self, file: DistFile) -> CoreMetadata:
        """The core metadata of one file (see the module docstring for the chain)."""
        if not file.is_wheel:
            # An sdist this thread is building already: asking for its metadata again would
            # build it again (and wait for itself): say which chain of builds led here.
            build.check_not_building(str(file.project_name), file.filename)
        return self._metas.get(_key(file), lambda: self._load(file))

    def prefetch_metadata(self, files: Iterable[DistFile]) -> None:
        """Start reading these files' metadata in the background; returns at once."""
        for file in files:
            self._metas.submit(_key(file), partial(self._load, file), self._pool)

    def metadata_cached(self, file: DistFile) -> bool:
        """Is the file's metadata in the cache (one stat, nothing read)?"""
        return self.cache.metadata_path(_key(file)).is_file()

    def _load(self, file: DistFile) -> CoreMetadata:
        key = _key(file)
        cached = self.cache.read_metadata(key)
        if cached is not None:
            try:
                return CoreMetadata(
                    name=cached["name"], version=cached["version"],
                    requires_dist=tuple(cached["requires_dist"]),
                    requires_python=cached["requires_python"],
                    provides_extra=tuple(cached["provides_extra"]), source=cached["source"],
                )
            except (KeyError, TypeError):
                pass
        try:
            meta = self._chain(file)
            check_matches(meta, file)
        except MetadataProblem as exc:
            raise BrokenDistributionError(
                f"cannot use the metadata of {file.filename}: {exc}",
                hint="the file on the index is broken; pin another version of "
                     f"{file.project_name}",
                context={"url": redact_url(file.url), "package": file.project_name},
            ) from None
        self.cache.write_metadata(key, {
            "name": meta.name, "version": meta.version,
            "requires_dist": list(meta.requires_dist), "requires_python": meta.requires_python,
            "provides_extra": list(meta.provides_extra), "source": meta.source,
        })
        return meta

    def _parse(self, text: bytes | str, source: str) -> tuple[CoreMetadata, set[str], str | None]:
        return parse_metadata(text, source, self.reporter.debug)

    def _chain(self, file: DistFile) -> CoreMetadata:
        if file.is_wheel:
            return self._wheel_chain(file)
        path = self.client.download(file)
        try:
            top = read_sdist_top_files(path, ("PKG-INFO", "pyproject.toml"))
        except MetadataProblem:
            top = {}  # the build says what is wrong with it
        try:
            meta, dynamic, version = self._parse(top["PKG-INFO"], "sdist")
        except (KeyError, MetadataProblem):
            meta, dynamic, version = None, set(), None
        if meta is not None and static_sdist_metadata(dynamic, version):
            self.reporter.debug(f"{file.filename}: static metadata from PKG-INFO")
            return meta
        text = pyproject_metadata(top.get("pyproject.toml", b""), str(file.version))
        if text is not None:
            self.reporter.debug(f"{file.filename}: static metadata from pyproject.toml")
            return self._parse(text, "pyproject")[0]
        self.reporter.debug(f"{file.filename}: building metadata (PEP 517)")
        self.reporter.activity(f"Building {file.filename} to read its metadata")
        text = build.prepare_metadata(path, context=self.build_context, cache=self.cache)
        return self._parse(text, "build")[0]

    def _pep658(self, file: DistFile) -> CoreMetadata | None:
        """The PEP 658 metadata file, parsed and matching the file name; None when absent or
        unusable (then the wheel's own METADATA is read: the index's copy may be the broken
        one)."""
        text = self.client.metadata_file(file)
        if text is None:
            return None
        try:
            meta = self._parse(text, "pep658")[0]
            check_matches(meta, file)
        except MetadataProblem as exc:
            self.reporter.debug(f"{file.filename}: ignoring the index's metadata file ({exc}); "
                                "reading the wheel's own")
            return None
        return meta

    def _wheel_chain(self, file: DistFile) -> CoreMetadata:
        """PEP 658 file, then range requests (the other way round for an unadvertised file on a
        host whose first probe 404'd: some mirrors 404 them all, slowly), then the whole
        wheel."""
        first = file.metadata is True or (file.metadata is None
                                          and self.client.probe_metadata_first(file))
        if first:
            meta = self._pep658(file)
            if meta is not None:
                return meta
        text = self.client.range_metadata(file)
        if text is not None:
            return self._parse(text, "range")[0]
        if file.metadata is None and not first and not self._downloaded(file):
            meta = self._pep658(file)
            if meta is not None:
                return meta
        path = self.client.download(file)
        self.reporter.debug(f"{file.filename}: metadata from the whole wheel")
        return self._parse(read_wheel_metadata(path, file), "wheel")[0]

    def _downloaded(self, file: DistFile) -> bool:
        """Is the whole file cached (a server that ignores Range sent it all)? Then reading it
        beats probing for a `.metadata` file."""
        return self.cache.artifact_path(file.sha256 or file.url, file.filename).exists()

    @property
    def build_context(self) -> BuildContext:
        """How builds for these files resolve and install their requirements."""
        if self._context is None:
            raise BuildError("a PEP 517 build is needed, and builds are not available here")
        return self._context

    # -- wanted file -> local wheel ----------------------------------------------------------
    def local_wheel(self, source: Path, *, python: Path, label: str,
                    editable: bool = False) -> Path:
        """A wheel for `source` built for the interpreter `python`: `source` is an sdist or
        archive already fetched and verified (its wheel comes from the built-wheel cache when an
        earlier build made it), or a source tree (built each time; `editable` for PEP 660)."""
        return local_wheel(source, python=python, label=label, editable=editable,
                           cache=self.cache, reporter=self.reporter,
                           context=lambda: self.build_context)


def local_wheel(source: Path, *, python: Path, label: str, editable: bool, cache: Cache,
                reporter: Reporter, context: Callable[[], BuildContext]) -> Path:
    """`Distributions.local_wheel` for a caller that has no `Distributions` yet: `context` is
    asked only when a build must run, so a sync that reuses built wheels opens no index."""
    if source.is_file():
        cached = build.cached_wheel(source, python, cache)
        if cached is not None:
            reporter.debug(f"using the wheel built earlier from {source.name}: {cached}")
            return cached
        reporter.status(f"Building {label} from {source.name}")
        return build.build_wheel(source, context=context(), cache=cache, python=python)
    reporter.status(f"Building {label}")
    if editable:
        return build.build_editable(source, context=context(), cache=cache, python=python)
    return build.build_wheel(source, context=context(), cache=cache, python=python)


def _key(file: DistFile) -> str:
    return file.sha256 or file.url

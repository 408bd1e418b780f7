"""Which index serves which package name, and several indexes behind one client interface.

The rule (dependency-confusion safe, as uv's): a name pinned in `[tool.lockenv.sources]` comes
from its index only, wherever it appears in the graph; any other name comes from the first
index in the search order that has it, and later indexes are never asked for it (so no
versions are mixed across indexes, and a public index never even hears a private name it does
not need to). Metadata and downloads go to the client of the index a file came from, with that
index's own credentials.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.utils import canonicalize_name

from lockenv.cache import Cache
from lockenv.errors import OfflineError, PackageNotFoundError
from lockenv.index.client import IndexClient, simple_url_of
from lockenv.index.http import offline_error
from lockenv.once import OnceMap
from lockenv.models import DistFile, IndexConfig, IndexSettings, ProjectFiles
from lockenv.ui import Progress, Reporter
from lockenv.urls import redact_url

if TYPE_CHECKING:
    import httpx


class Routes:
    """The routing rule alone (no I/O): the indexes to ask for a name, in order."""

    def __init__(self, settings: IndexSettings) -> None:
        self.settings = settings

    def candidates(self, name: str) -> tuple[IndexConfig, ...]:
        """The one pinned index, or the search order (stop at the first that has the name)."""
        pinned = self.settings.sources.get(canonicalize_name(name))
        if pinned is not None:
            config = self.settings.by_name(pinned)
            if config is not None:
                return (config,)
        return self.settings.search


class IndexRouter:
    """Several indexes behind `IndexClient`'s interface (what `lockenv.dists`, and through it
    the resolver and builds, and sync use). Clients are made on first use, so an index nobody needs is never contacted (nor
    warned about)."""

    def __init__(self, settings: IndexSettings, *, cache: Cache,
                 exclude_newer: datetime | None = None, refresh: bool = False,
                 reporter: Reporter | None = None,
                 transport: httpx.BaseTransport | None = None, offline: bool = False,
                 follow_requires: bool = False) -> None:
        """`follow_requires`: fetch the pages of what each fetched JSON API page's newest release
        requires (`hint`: routed as any prefetch), for a lock's resolution."""
        self.routes = Routes(settings)
        self.offline = offline
        self.settings = settings
        self.cache = cache
        self.reporter = reporter
        self._options = {"exclude_newer": exclude_newer, "refresh": refresh,
                         "reporter": reporter, "transport": transport, "offline": offline,
                         "on_requires": self.hint if follow_requires else None}
        self._lock = threading.Lock()
        self._clients: dict[str, IndexClient] = {}
        """Redacted simple-API URL → the client of that index."""
        self._by_simple = {simple_url_of(redact_url(c.url)): c
                           for c in (*settings.named, *settings.search)}
        self._pages: OnceMap[str, ProjectFiles] = OnceMap()

    # -- the IndexClient interface ----------------------------------------------------------
    @property
    def index_url(self) -> str:
        """The default index (build environments are keyed by it)."""
        return self.client(self.settings.default).index_url

    @property
    def simple_index_url(self) -> str:
        return simple_url_of(redact_url(self.settings.default.url))

    def project(self, name: str) -> ProjectFiles:
        key = canonicalize_name(name)
        return self._pages.get(key, lambda: self._find(key))

    def prefetch(self, names: Iterable[str]) -> None:
        for name in names:
            candidates = self.routes.candidates(name)
            # Only the first candidate may be asked before the answer is known.
            self.client(candidates[0]).prefetch([name])

    def hint(self, names: Iterable[str]) -> None:
        """`prefetch` for names only likely to be needed (`IndexClient.hint`), routed alike."""
        for name in names:
            self.client(self.routes.candidates(name)[0]).hint([name])

    def metadata_file(self, file: DistFile) -> bytes | None:
        return self.client_for(file).metadata_file(file)

    def range_metadata(self, file: DistFile) -> bytes | None:
        return self.client_for(file).range_metadata(file)

    def probe_metadata_first(self, file: DistFile) -> bool:
        return self.client_for(file).probe_metadata_first(file)

    def download(self, file: DistFile, *, on_bytes: Callable[[int], None] | None = None) -> Path:
        return self.client_for(file).download(file, on_bytes=on_bytes)

    def download_many(self, files: Sequence[DistFile], progress: Progress | None = None
                      ) -> dict[str, Path]:
        groups: dict[int, tuple[IndexClient, list[DistFile]]] = {}
        for file in files:
            client = self.client_for(file)
            groups.setdefault(id(client), (client, []))[1].append(file)
        out: dict[str, Path] = {}
        for client, group in groups.values():
            out.update(client.download_many(group, progress))
        return out

    def require_cached(self, files: Iterable[DistFile]) -> None:
        """Under `offline`: fail before any work naming every one of `files` (of any index)
        that the cache lacks."""
        if not self.offline:
            return
        for file in files:
            try:
                self.client_for(file).require_cached([file])
            except OfflineError:
                pass  # recorded by that client; all of them are named below
        if self.missing:
            raise self.offline_error()

    @property
    def missing(self) -> list[str]:
        with self._lock:
            clients = list(self._clients.values())
        return [m for c in clients for m in c.missing]

    def offline_error(self) -> OfflineError:
        """Under `offline`: one error naming every page and file any index was asked for and
        the cache lacks."""
        return offline_error(self.missing or ["(nothing recorded)"])

    def ensure_size(self, file: DistFile) -> DistFile:
        return self.client_for(file).ensure_size(file)

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()

    def __enter__(self) -> IndexRouter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- routing ----------------------------------------------------------------------------
    def _find(self, name: str) -> ProjectFiles:
        candidates = self.routes.candidates(name)
        pinned = name in self.settings.sources
        for config in candidates:
            try:
                return self.client(config).project(name)
            except PackageNotFoundError as exc:
                if pinned:
                    raise PackageNotFoundError(
                        f"`{name}` was not found on {self.client(config).label}, the only index "
                        "it may come from ([tool.lockenv.sources])",
                        hint="check the package name, and the index it is pinned to in "
                             "[tool.lockenv.sources]",
                        context=exc.context,
                    ) from None
        looked = ", ".join(self.client(c).label for c in candidates)
        raise PackageNotFoundError(
            f"`{name}` was not found on any index (looked in: {looked})",
            hint="check the spelling of the package name, and the indexes in [tool.lockenv]",
            context={"package": name},
        )

    def client(self, config: IndexConfig) -> IndexClient:
        """The client of one configured index (made on first use)."""
        key = simple_url_of(redact_url(config.url))
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = self._clients[key] = IndexClient(
                    config.url, cache=self.cache, name=config.name,
                    keyring=self.settings.keyring_provider == "subprocess",
                    allow_insecure_hosts=self.settings.allow_insecure_hosts,
                    **self._options,  # type: ignore[arg-type]
                )
            return client

    def client_for(self, file: DistFile) -> IndexClient:
        """The client of the index `file` came from (the lock's `index`), so it is fetched
        with that index's credentials; an index the settings do not know gets a client of its
        own (no name: netrc and keyring may still apply), the default when none is given."""
        if not file.index:
            return self.client(self.settings.default)
        config = self._by_simple.get(file.index)
        if config is None:
            config = IndexConfig(name=None, url=file.index)
        return self.client(config)


def single(url: str) -> IndexSettings:
    """Settings for code that only has a URL: that index alone, as the default."""
    return IndexSettings(search=(IndexConfig(name=None, url=url),))


def with_default(settings: IndexSettings | None, url: str) -> IndexSettings:
    """`settings` with `url` as the default index (unless it already is, credentials and
    name kept): sync takes the default from the lock, which may predate pyproject.toml's."""
    if settings is None:
        return single(url)
    if redact_url(settings.default.url) == redact_url(url):
        return settings
    return replace(settings, search=(*settings.search[:-1], IndexConfig(name=None, url=url)))


"""`IndexClient`: project pages, core metadata and verified downloads from one package index,
fetched concurrently through one pooled connection set and cached on disk."""

from __future__ import annotations

import hashlib
import mmap
import os
import re
import struct
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import partial
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from packaging.utils import canonicalize_name

from lockenv.cache import (
    Cache,
    file_sha256,
    mismatch_details,
    refuse_damaged,
    remove_stale,
    write_atomic,
)
from lockenv.errors import (
    IntegrityError,
    LockenvError,
    OfflineError,
    PackageIndexError,
    PackageNotFoundError,
)
from lockenv.index import pages
from lockenv.index.auth import CredentialLookup, split_credentials
from lockenv.index.http import (
    RETRY_STATUSES,
    Http,
    IndexAuth,
    RetryableStatus,
    failure,
    offline_error,
    redact_url,
    status_error,
    unusable,
)
from lockenv.index.metadata import (
    MetadataProblem,
    RangeFile,
    wheel_metadata_fast,
    wheel_metadata_text,
)
from lockenv.models import DistFile, PackedFile, ProjectFiles, VersionFiles
from lockenv.once import OnceMap
from lockenv.ui import Progress, Reporter

if TYPE_CHECKING:
    import httpx
else:
    from lockenv.index.http import httpx  # imported on first use


SIMPLE_ACCEPT = ("application/vnd.pypi.simple.v1+json, "
                 "application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01")
RANGE_TAIL = 64 * 1024
"""Bytes fetched from a wheel's end: enough for the central directory of most wheels; also
the least a later range read fetches (a METADATA elsewhere in the zip then takes one)."""
WORKERS = 16
PAGE_WORKERS = 8
HINT_WORKERS = 3
"""Threads fetching the pages `on_requires` hints at (`hint`), beside the page workers: a hint
never queues in front of a page the resolver or the crawler asked for."""
PROBE_TRIES = 3
"""Unadvertised `.metadata` misses on a host, none found, after which it is not asked first."""
MAX_DOWNLOAD = 8 << 30
"""The most a download of unknown size may write (8 GiB): a body that never ends stops there."""


class IndexClient:
    """One package index. Thread-safe; use as a context manager (or call `close()`).

    `project()` and `download()` block; `prefetch()` starts pages in the background, and a later
    blocking call waits for the in-flight request instead of sending a second one. Core
    metadata (the chain of PEP 658 file, range reads, whole wheel, sdist, build) is
    `lockenv.dists`'s: this class fetches, it never builds."""

    def __init__(
        self,
        index_url: str,
        *,
        cache: Cache,
        exclude_newer: datetime | None = None,
        refresh: bool = False,
        reporter: Reporter | None = None,
        transport: httpx.BaseTransport | None = None,
        name: str | None = None,
        keyring: bool = False,
        allow_insecure_hosts: tuple[str, ...] = (),
        offline: bool = False,
        on_requires: Callable[[list[str]], None] | None = None,
    ) -> None:
        """`transport` replaces the network (tests). `name` is the index's name in
        `[[tool.lockenv.index]]` (None for the default index): messages and the
        `LOCKENV_INDEX_<NAME>_*` credential variables use it. Each index has its own client,
        so its credentials never go with another index's requests. `offline` answers from the
        cache alone (index pages of any age); what it lacks fails at once, named (see
        `offline_error()`). `on_requires` is told, for each JSON API page fetched, the names its
        newest release requires (`pages.requires_names`): a lock starts their pages then,
        a round trip before that release's metadata would name them."""
        self.offline = offline
        self.on_requires = on_requires
        self.cache = cache
        if exclude_newer is not None and exclude_newer.tzinfo is None:
            exclude_newer = exclude_newer.replace(tzinfo=timezone.utc)
        self.exclude_newer = exclude_newer
        self.refresh = refresh
        self.reporter = reporter
        _check_index_url(index_url.strip())
        lookup = CredentialLookup(index_url.strip(), name=name, keyring=keyring,
                                  allow_insecure_hosts=allow_insecure_hosts)
        self.name = name
        self.label = lookup.label
        """How messages name this index: "index `internal` (https://host/simple/)"."""
        if lookup.insecure and not lookup.insecure_allowed and reporter is not None:
            warn_insecure(lookup.label, lookup.origin[1], reporter)
        self._auth = IndexAuth(lookup)
        self.index_url = str(lookup.url).rstrip("/")
        """The index URL without credentials and trailing slash."""
        self.is_simple = not self.index_url.endswith("/pypi")
        """PyPI's JSON API lives at `<base>/pypi`; every other index (`/simple/`, devpi's
        `/+simple/`, a wheel index such as `/whl/cpu`) speaks the simple API."""
        self._http = Http(self._auth, transport=transport, log=self._debug,
                          notice=reporter.warn if reporter is not None else None, offline=offline)
        self._pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="lockenv-index")
        # Pages have their own workers: a resolver waits on a page before anything else, and
        # must not queue behind hundreds of speculative metadata reads.
        self._page_pool = ThreadPoolExecutor(PAGE_WORKERS, thread_name_prefix="lockenv-pages")
        self._hint_pool: ThreadPoolExecutor | None = None
        self._hinted: set[str] = set()
        self._closed = False
        self._lock = threading.Lock()
        self._pages: OnceMap[str, ProjectFiles] = OnceMap()
        self._downloads: OnceMap[str, Path] = OnceMap()
        self._metadata_sha: dict[str, str] = {}
        self._probed: dict[str, tuple[int, int]] = {}
        """origin → (found, missing) counts of `.metadata` files asked for unadvertised."""
        self._probing: set[str] = set()
        """Origins where a deciding probe (see `probe_metadata_first`) is under way."""
        self._probe_answered = threading.Condition(self._lock)

    # -- lifecycle --------------------------------------------------------------------------
    def close(self) -> None:
        with self._lock:
            self._closed = True
            hints, self._hint_pool = self._hint_pool, None
        if hints is not None:
            hints.shutdown(wait=True, cancel_futures=True)
        self._page_pool.shutdown(wait=True, cancel_futures=True)
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._http.close()

    def __enter__(self) -> IndexClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def simple_index_url(self) -> str:
        """The simple-API base URL (redacted, ending in `/`), written to the lock's `index`."""
        return simple_url_of(self.index_url)

    @property
    def missing(self) -> list[str]:
        """Under `offline`: the pages and files asked for and not cached, so far."""
        return self._http.missing

    def offline_error(self) -> OfflineError:
        """Under `offline`: one error naming every page and file asked for and not cached."""
        return offline_error(self.missing or ["(nothing recorded)"])

    def _debug(self, message: str) -> None:
        if self.reporter is not None:
            self.reporter.debug(message)

    def _activity(self, message: str) -> None:
        """The live line on a terminal (issue 9, point 3); nothing when piped."""
        if self.reporter is not None:
            self.reporter.activity(message)

    # -- project pages ----------------------------------------------------------------------
    def project(self, name: str) -> ProjectFiles:
        """Every file the index lists for `name` (exclude-newer applied; yanked files kept)."""
        key = canonicalize_name(name)
        return self._pages.get(key, lambda: self._load_project(key))

    def prefetch(self, names: Iterable[str]) -> None:
        """Start fetching these projects' pages in the background; returns at once. Under
        `offline` the cache is looked at here (nothing to wait for): each page it lacks is
        recorded before the resolver's first miss ends the lock, so the error names all of
        them, not only those a page thread happened to look at by then."""
        for name in names:
            key = canonicalize_name(name)
            if not self.offline:
                self._pages.submit(key, partial(self._load_project, key), self._page_pool)
                continue
            try:
                self.project(key)
            except LockenvError:
                pass  # kept: the resolver meets it if it asks (a miss is in `missing` already)

    def hint(self, names: Iterable[str]) -> None:
        """Fetch these pages in the background when there is room (`HINT_WORKERS`): likely
        needed, not asked for yet. A page asked for meanwhile is fetched as usual, and the
        hint then waits for it; a failure is kept for whoever asks (`project`)."""
        with self._lock:
            if self._closed:
                return
            keys = [k for k in map(canonicalize_name, names) if k not in self._hinted]
            self._hinted.update(keys)
            if keys and self._hint_pool is None:
                self._hint_pool = ThreadPoolExecutor(HINT_WORKERS, thread_name_prefix="lockenv-hints")
            pool = self._hint_pool
        try:
            for key in keys:
                if pool is not None:
                    pool.submit(self._take_hint, key)
        except RuntimeError:
            pass  # closed meanwhile: the lock is done

    def _take_hint(self, key: str) -> None:
        try:
            self.project(key)
        except LockenvError:
            pass  # kept by `project`: the resolver meets it if it asks

    def page_url(self, name: str) -> str:
        if self.is_simple:
            return f"{self.index_url}/{name}/"
        return f"{self.index_url}/{name}/json"

    def _load_project(self, name: str) -> ProjectFiles:
        page = self._cached_page(name)
        from_cache = page is not None
        if page is not None:
            self._debug(f"{name}: index page from the cache")
        else:
            stale = None if self.refresh else self._stale_page(name)
            page = self._fetch_page(name, stale)
            from_cache = page is stale
            if from_cache:
                self.cache.touch_page(self.index_url, name)
            else:
                self.cache.write_page(self.index_url, name, pages.encode_chunks(page))
        for note in page.skipped:
            self._debug(f"{name}: skipped {note}")
        maker = _FileMaker(self, name, page)
        verbose = self.reporter is not None and self.reporter.verbose
        if self.exclude_newer is None and not (verbose and page.raw):
            versions = tuple(VersionFiles(v.text, v.all_yanked, partial(maker.make, v))
                             for v in page.versions if v.usable)
        elif not verbose:
            # Each version listed only if a file passes the checks and predates the cut-off,
            # decided from the records' times (a check or two per version); its files are still
            # made only when the lock looks at it. Making them all up front doubled the pages'
            # CPU of a lock with --exclude-newer.
            versions = tuple(vf for v in page.versions if v.usable and (vf := maker.cut(v)) is not None)
        else:
            # Which versions are left depends on every file's upload time; under -v, every
            # file a raw page skips is named: make them all.
            made = [(v.text, maker.make(v)) for v in page.versions]
            versions = tuple(VersionFiles(text, all(f.yanked for f in files), files=files)
                             for text, files in made if files)
            if maker.undated:
                self._debug(f"{name}: dropped {maker.undated} file(s) without an upload time "
                            "(exclude-newer is set)")
        return ProjectFiles(name=canonicalize_name(name), versions=versions,
                            index_url=redact_url(page.url), from_cache=from_cache)

    def _cached_page(self, name: str) -> pages.CachedPage | None:
        """The cached page if usable; under `offline` one of any age (the user asked for no
        network) or a refusal naming the page."""
        if self.offline:
            page = _decoded(self.cache.read_page(self.index_url, name, max_age=float("inf")))
            if page is None:
                url = self.page_url(name)
                raise self._http.refuse(url, f"the index page of `{name}` ({redact_url(url)})")
            return page
        if self.refresh:
            return None
        return _decoded(self.cache.read_page(self.index_url, name))

    def _stale_page(self, name: str) -> pages.CachedPage | None:
        """The cached page past its TTL, when the index gave validators for it (a page without
        them is fetched whole, as before)."""
        page = _decoded(self.cache.read_page(self.index_url, name, max_age=float("inf")))
        return page if page is not None and (page.etag or page.last_modified) else None

    def _fetch_page(self, name: str, stale: pages.CachedPage | None = None) -> pages.CachedPage:
        """The page from the index; `stale` itself when the index says it is unchanged (304 to
        a conditional GET with its validators, as uv and pip revalidate their caches)."""
        url = self.page_url(name)
        self._activity(f"Fetching {name}")
        headers = {"Accept": SIMPLE_ACCEPT} if self.is_simple else {"Accept": "application/json"}
        if stale is not None:
            headers.update(_conditional(stale))
        started = time.perf_counter()
        response, spool = self._page_body(url, headers)
        if spool is _NOT_MODIFIED and stale is not None:
            self._debug(f"{name}: index page unchanged ({redact_url(str(response.url))} answered "
                        f"304 in {time.perf_counter() - started:.2f}s)")
            return stale
        if spool is None:
            raise PackageNotFoundError(
                f"`{name}` was not found on the index {redact_url(self.index_url)}",
                hint="check the spelling of the package name, and that the index URL is right"
                     + ("" if not self.is_simple or self.index_url.endswith("simple") else
                        " (a JSON API index URL ends in /pypi; any other is read as a simple"
                        " index)"),
                context={"package": name, "url": redact_url(url)},
            )
        final = str(response.url)
        requires: list[str] = []
        with spool, _mapped(spool) as body:
            size = len(body)
            page, count = self._parse_page(name, final, response, body, requires)
        page.etag, page.last_modified = _validators(response)
        if requires and self.on_requires is not None:
            try:
                self.on_requires(requires)
            except Exception as exc:  # a hint: never the page's failure (a pool shut down, ...)
                self._debug(f"{name}: not starting the pages it names ({type(exc).__name__})")
        self._debug(f"{name}: fetched {redact_url(final)} ({size} bytes, "
                    f"{count} files) in {time.perf_counter() - started:.2f}s")
        return page

    def _page_body(self, url: str, headers: dict[str, str]
                   ) -> tuple[httpx.Response, Any]:
        """GET a project page, its body streamed into an anonymous temporary file (None for a
        404/410). A page is parsed from a map of that file: a multi-MB body is never one
        malloc'd buffer, which glibc would keep (its mmap threshold rises to the largest
        freed buffer, and later pages then fragment the heap: ~30 MiB of a cold lock's RSS).
        Retries transient failures like `Http.request`."""
        last: Exception | None = None
        for attempt in range(self._http.retries + 1):
            if attempt:
                self._http.backoff(attempt - 1, last, url)
            try:
                with self._http.stream(url, headers=headers) as resp:
                    status = resp.status_code
                    if status in (404, 410):
                        return resp, None
                    if status == 304 and ("If-None-Match" in headers or "If-Modified-Since" in headers):
                        return resp, _NOT_MODIFIED
                    if status in RETRY_STATUSES:
                        resp.read()
                        last = RetryableStatus(resp)
                        continue
                    if status != 200:
                        resp.read()
                        raise status_error(resp, url)
                    return resp, _spooled(resp)
            except httpx.TransportError as exc:
                self._http.log(f"GET {redact_url(url)}: {type(exc).__name__}")
                last = exc
                if isinstance(exc, httpx.TimeoutException) and attempt < self._http.retries:
                    self._http.notice(f"{redact_url(url)} did not answer within "
                                      f"{self._http.read_timeout:.0f}s; retrying "
                                      f"({attempt + 1}/{self._http.retries})")
                continue
            except (httpx.RequestError, httpx.InvalidURL) as exc:
                raise unusable(exc, url) from None
        raise failure(last, url)

    def _parse_page(self, name: str, final: str, response: httpx.Response,
                    body: Any, requires: list[str] | None = None) -> tuple[pages.CachedPage, int]:
        skipped: list[str] = []
        if not self.is_simple and not (self.reporter is not None and self.reporter.verbose):
            raw = pages.json_api_raw(body, requires)  # checked version by version (under -v: at once)
            if raw is not None:
                return pages.raw_page(redact_url(final), name, raw, skipped), len(raw)
        try:
            if not self.is_simple:
                records = pages.parse_json_api(body, final, skipped)
            else:
                kind = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
                if "json" in kind:
                    records = pages.parse_simple_json(body, final, skipped)
                elif "html" in kind or not kind:
                    records = pages.parse_simple_html(body, final, skipped)
                else:
                    raise pages.PageError(f"unexpected content type {kind!r}")
        except pages.PageError as exc:
            raise PackageIndexError(
                f"the index page {redact_url(final)} is not usable: {exc}",
                hint="check that the index URL points at a package index (a JSON API base "
                     "such as .../pypi, or a simple index ending in /simple/); if it does, "
                     "the index is broken: try again later",
                context={"url": redact_url(final), "package": name},
            ) from None
        mine: list[pages.CachedRecord] = []
        to_datetime = pages.to_datetime
        project_of = pages.project_of
        for rec in records:
            if "@" in rec[1].split("/")[2]:
                rec[1] = split_credentials(rec[1])[0]  # keep credentials out of DistFile
            if project_of(rec[0]) != name:
                skipped.append(f"{rec[0]}: a file of another project")
                continue
            rec[4] = to_datetime(rec[4])  # cached as a msgpack timestamp: decoded in C
            mine.append(tuple(rec))
        del records
        return pages.cached_page(redact_url(final), mine, skipped), len(mine)

    # -- metadata files and range reads (dists.py chains them) -------------------------------
    def metadata_file(self, file: DistFile) -> bytes | None:
        """The PEP 658 `<url>.metadata` of a wheel (checked against the index's hash), also
        tried when not advertised (see `probe_metadata_first`; never when the index says there
        is none). None when missing (and always under `offline`: the chain then reads a cached
        wheel instead)."""
        if file.metadata is False or self.offline:
            return None
        url = file.url + ".metadata"
        ok: tuple[int, ...] = (200, 404, 410)
        if file.metadata is None:
            ok += (403,)  # object stores answer 403 for a missing key
        found = False
        try:
            response = self._http.request("GET", url, ok=ok)
            found = response.status_code == 200
        finally:
            if file.metadata is None:
                self._learn_host(file.url, found)
        if not found:
            return None
        body = response.content
        expected = self._metadata_sha.get(file.url)
        if expected:
            actual = hashlib.sha256(body).hexdigest()
            if actual != expected:
                raise IntegrityError(
                    f"the metadata file of {file.filename} does not match the index's hash",
                    hint="the index is inconsistent; try again later or report it to the "
                         "index's maintainers",
                    context={"url": redact_url(url)},
                    details=(f"expected sha256: {expected}", f"actual sha256:   {actual}"),
                )
        self._debug(f"{file.filename}: metadata from {redact_url(url)}")
        return body

    def probe_metadata_first(self, file: DistFile) -> bool:
        """Should the chain ask for this unadvertised wheel's `.metadata` before reading the
        wheel by range requests? Yes on a host that serves (nearly) all of them: PyPI's file
        host does (one request, where a big wheel's range reads take two or three). No where
        many 404: on the mirror here a 404 takes ~95 ms, a range request ~3 ms. Until a host
        has served one (or missed PROBE_TRIES), one caller at a time probes and the others
        wait for its answer, instead of all probing at once (on the cold `data` lock that
        first wave was 92 404s, on the crawl's critical path)."""
        if self.offline:
            return False
        host = _origin_of(file.url)
        deadline = time.monotonic() + (self._http.read_timeout or 20.0)
        with self._probe_answered:
            while True:
                found, missing = self._probed.get(host, (0, 0))
                if found or missing >= PROBE_TRIES:
                    return found > 0 and missing * 4 <= found
                if host not in self._probing:
                    self._probing.add(host)
                    return True  # this caller's probe decides (it reports in metadata_file)
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._probe_answered.wait(left)

    def _learn_host(self, url: str, found: bool) -> None:
        """Count an unadvertised probe's answer (`probe_metadata_first` decides from them)."""
        host = _origin_of(url)
        with self._probe_answered:
            hits, misses = self._probed.get(host, (0, 0))
            self._probed[host] = (hits + found, misses + (not found))
            self._probing.discard(host)
            self._probe_answered.notify_all()
        if hits + misses == 0:
            self._debug(f"{host}: first unadvertised .metadata probe: "
                        + ("found" if found else "missing"))

    def range_metadata(self, file: DistFile) -> bytes | None:
        """A wheel's METADATA through range requests: its tail, then the central directory and
        METADATA. None when that does not work; a server that ignores Range gets its 200 body
        saved as the downloaded wheel (so a `download` that follows sends no request).
        Under `offline`: None at once (the whole wheel may be in the cache)."""
        if self.offline:
            return None
        try:
            with self._http.stream(file.url, headers={"Range": f"bytes=-{RANGE_TAIL}"}) as resp:
                if resp.status_code == 200:
                    self._debug(f"{file.filename}: the server ignores Range; downloading it")
                    self._download(file, response=resp)
                    return None
                if resp.status_code != 206:
                    if resp.status_code in (401, 403):
                        raise status_error(resp, file.url)
                    return None
                tail = resp.read()
                first, total = _content_range(resp.headers.get("Content-Range", ""))
        except (httpx.RequestError, httpx.InvalidURL) as exc:
            self._debug(f"{file.filename}: range request failed ({type(exc).__name__})")
            return None
        if total is None or len(tail) > total or first != total - len(tail):
            self._debug(f"{file.filename}: unusable range answer; downloading it")
            return None
        if len(tail) == total:  # the whole (small) wheel came back
            self._store_small(file, tail)
        remote = RangeFile(total, lambda a, b: self._fetch_range(file.url, a, b), tail=tail,
                           min_fetch=RANGE_TAIL)
        try:
            start, cd_size = _central_directory(tail, total)
            if start is not None and start < total - len(tail):
                # A central directory longer than the tail: fetch the rest of it together
                # with the bytes before it, where .dist-info (written last) usually sits:
                # RECORD (about as long as the central directory), then METADATA. Measured
                # on the cold `data` lock's wheels: METADATA starts within 2x the central
                # directory's length from the end, where the dist-info is last.
                remote.seek(max(0, start - (total - start) - RANGE_TAIL // 2))
                remote.read(total - len(tail) - remote.tell())
            text = None if start is None else wheel_metadata_fast(remote.read_at, start,
                                                                  cd_size, file)
            if text is None:
                with zipfile.ZipFile(remote) as zf:
                    text = wheel_metadata_text(zf, file)
        except (zipfile.BadZipFile, MetadataProblem, PackageIndexError, EOFError) as exc:
            self._debug(f"{file.filename}: range reading failed ({exc}); downloading it")
            return None
        self._debug(f"{file.filename}: metadata by range requests "
                    f"({remote.fetches + 1} requests)")
        return text

    def _fetch_range(self, url: str, start: int, end: int) -> bytes:
        response = self._http.request("GET", url, headers={"Range": f"bytes={start}-{end - 1}"},
                                      ok=(206,))
        return response.content

    def _store_small(self, file: DistFile, data: bytes) -> None:
        if file.sha256 and hashlib.sha256(data).hexdigest() == file.sha256:
            dest = self.cache.artifact_path(file.sha256, file.filename)
            if not dest.exists():
                write_atomic(dest, data)

    # -- downloads --------------------------------------------------------------------------
    def download(self, file: DistFile, *, on_bytes: Callable[[int], None] | None = None) -> Path:
        """The file's verified path in the cache (sha256 and size checked, cache hits too)."""
        key = file.sha256 or file.url
        return self._downloads.get(key, lambda: self._download(file, on_bytes=on_bytes))

    def download_many(self, files: Sequence[DistFile], progress: Progress | None = None
                      ) -> dict[str, Path]:
        """Download in parallel; `progress` is advanced by bytes (give it the total size).
        Raises the first error after the other downloads finish or are cancelled."""
        lock = threading.Lock()

        def advance(n: int) -> None:
            if progress is not None:
                with lock:
                    progress.advance(n)

        by_name = {f.filename: f for f in files}
        self.require_cached(files)
        futures = {name: self._pool.submit(self.download, f, on_bytes=advance)
                   for name, f in by_name.items()}
        result: dict[str, Path] = {}
        error: BaseException | None = None
        for filename, future in futures.items():
            try:
                if error is None and future.cancel():
                    # Still queued (the pool may be busy with our caller): do it here.
                    result[filename] = self.download(by_name[filename], on_bytes=advance)
                else:
                    result[filename] = future.result()
            except BaseException as exc:
                if error is None:
                    error = exc
                    for other in futures.values():
                        other.cancel()
        if error is not None:
            raise error
        return result

    def ensure_size(self, file: DistFile) -> DistFile:
        """`file` with its size and sha256 known, as the lock records them (simple HTML
        indexes do not list sizes; some mirrors list no hashes): from the cache when
        downloaded, else from a HEAD request's Content-Length, else by downloading; a file
        without a sha256 is downloaded and hashed (as pip and uv do)."""
        if file.sha256 is None:
            path = self.download(file)
            digest = file_sha256(path)
            self._debug(f"{file.filename}: the index lists no sha256; hashed the download")
            return replace(file, sha256=digest, size=path.stat().st_size)
        if file.size is not None:
            return file
        if file.sha256:
            cached = self.cache.artifact_path(file.sha256, file.filename)
            if cached.exists():
                return replace(file, size=cached.stat().st_size)
        response = self._http.request("HEAD", file.url, ok=(200,))
        length = response.headers.get("Content-Length")
        if length is not None and length.isdigit():
            return replace(file, size=int(length))
        return replace(file, size=self.download(file).stat().st_size)

    def _download(self, file: DistFile, *, on_bytes: Callable[[int], None] | None = None,
                  response: httpx.Response | None = None) -> Path:
        dest = self.cache.artifact_path(file.sha256 or file.url, file.filename)
        if dest.exists():
            self.cache.verified_artifact(dest, sha256=file.sha256, size=file.size)
            if on_bytes is not None:
                on_bytes(dest.stat().st_size)
            return dest
        if self.offline:
            raise self._refuse_file(file)
        with self.cache.lock(dest):
            if dest.exists():  # another process finished it meanwhile
                self.cache.verified_artifact(dest, sha256=file.sha256, size=file.size)
                return dest
            self._fetch_to(file, dest, on_bytes, response)
        self._debug(f"downloaded {file.filename}")
        return dest

    def require_cached(self, files: Iterable[DistFile]) -> None:
        """Under `offline`, fail before any work naming every one of `files` not in the cache
        (a sync must not change the venv and then find the third file missing)."""
        if not self.offline:
            return
        absent = [f for f in files
                  if not self.cache.artifact_path(f.sha256 or f.url, f.filename).exists()]
        for f in absent:
            self._refuse_file(f)
        if absent:
            raise self.offline_error()

    def _refuse_file(self, file: DistFile) -> OfflineError:
        return self._http.refuse(file.url, f"{file.filename} ({redact_url(file.url)})")

    def _fetch_to(self, file: DistFile, dest: Path, on_bytes: Callable[[int], None] | None,
                  response: httpx.Response | None) -> None:
        """Stream into a temporary file beside `dest`, hashing as it comes; retry transient
        failures from the start; rename into place only once sha256 and size match."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        remove_stale(dest.parent, STALE_DOWNLOAD, prefix=".download-", suffix=".tmp")
        last: Exception | None = None
        for attempt in range(self._http.retries + 1):
            if attempt:
                try:
                    self._http.backoff(attempt - 1, last, file.url)
                except PackageIndexError:  # asked to wait longer than lockenv does
                    _remove_empty(dest.parent)
                    raise
            fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=".download-",
                                            suffix=".tmp")
            tmp = Path(tmp_name)
            digest = hashlib.sha256()
            written = 0
            try:
                with os.fdopen(fd, "wb") as out:
                    if response is not None and attempt == 0:
                        written = self._consume(response, file, out, digest, on_bytes)
                    else:
                        with self._http.stream(file.url) as resp:
                            written = self._consume(resp, file, out, digest, on_bytes)
            except (httpx.TransportError, RetryableStatus) as exc:
                tmp.unlink(missing_ok=True)
                last = exc
                continue
            except (httpx.RequestError, httpx.InvalidURL) as exc:
                tmp.unlink(missing_ok=True)
                _remove_empty(dest.parent)
                raise unusable(exc, file.url) from None
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            actual = digest.hexdigest()
            if (file.sha256 and actual != file.sha256) or (
                    file.size is not None and written != file.size):
                tmp.unlink(missing_ok=True)
                _remove_empty(dest.parent)
                details = mismatch_details(file.sha256, actual, file.size, written)
                raise IntegrityError(
                    f"{file.filename} downloaded from {redact_url(file.url)} does not match "
                    "the hash the index gave",
                    hint="the file was not kept; try again, and if it persists the index or a "
                         "proxy is serving a different file than it lists",
                    context={"url": redact_url(file.url)},
                    details=details,
                )
            if file.sha256 is None:
                self._debug(f"{file.filename}: the index gives no sha256; computed {actual}")
            os.replace(tmp, dest)
            return
        _remove_empty(dest.parent)
        raise failure(last, file.url)

    def _consume(self, resp: httpx.Response, file: DistFile, out: Any, digest: Any,
                 on_bytes: Callable[[int], None] | None) -> int:
        if resp.status_code in RETRY_STATUSES:
            resp.read()
            raise RetryableStatus(resp)
        if resp.status_code != 200:
            resp.read()
            if resp.status_code in (404, 410):
                raise PackageIndexError(
                    f"{file.filename} is listed by the index but {redact_url(file.url)} "
                    f"answers HTTP {resp.status_code}",
                    hint="the index may have removed the file; lock again with --refresh",
                    context={"url": redact_url(file.url)},
                )
            raise status_error(resp, file.url)
        # Never more than the locked size (one byte more proves it wrong; the caller reports
        # the mismatch), or MAX_DOWNLOAD when the size is unknown: counted after decoding, so
        # an endless body or a gzip bomb stops there too.
        limit = file.size if file.size is not None else MAX_DOWNLOAD
        written = 0
        for chunk in resp.iter_bytes(1 << 16):
            if written + len(chunk) > limit:
                chunk = chunk[: limit + 1 - written]
            out.write(chunk)
            digest.update(chunk)
            written += len(chunk)
            if on_bytes is not None:
                on_bytes(len(chunk))
            if written > limit:
                if file.size is None:
                    raise IntegrityError(
                        f"{file.filename} from {redact_url(file.url)} is larger than "
                        f"{MAX_DOWNLOAD >> 30} GiB; refused",
                        context={"url": redact_url(file.url)},
                        hint="the index lists no size for it; the server may be broken")
                return written
        expected = resp.headers.get("Content-Length")
        if (expected is not None and expected.isdigit() and int(expected) != written
                and resp.headers.get("Content-Encoding", "identity") == "identity"):
            raise httpx.RemoteProtocolError("short body", request=resp.request)
        return written


def simple_url_of(index_url: str) -> str:
    """The simple-API base URL of an index URL (ending in `/`), as the lock's `index` records
    it: for a JSON API base `<base>/pypi`, its sibling `<base>/simple/`; any other URL is a
    simple index already. Pass it redacted."""
    url = index_url.rstrip("/")
    if url.endswith("/pypi"):
        return url[: -len("/pypi")] + "/simple/"
    return url + "/"


_warned: set[str] = set()
_warned_lock = threading.Lock()


def warn_insecure(label: str, host: str, reporter: Reporter) -> None:
    """Once per index per run: plain http to another machine can be read and changed."""
    with _warned_lock:
        if label in _warned:
            return
        _warned.add(label)
    reporter.warn(f"{label} is plain http: what it serves can be read and altered on the way "
                  "(hashes in the lock still protect later installs)",
                  hint=f"use https, or add \"{host}\" to `allow-insecure-host` in "
                       "[tool.lockenv] if the network is trusted")


def _spooled(resp: httpx.Response) -> Any:
    """The (decoded) body of `resp` in an anonymous temporary file, 64 KiB at a time; a
    body shorter than its Content-Length is a truncated transfer (retried)."""
    spool = tempfile.TemporaryFile()
    try:
        written = 0
        for chunk in _body_of(resp):
            spool.write(chunk)
            written += len(chunk)
        expected = resp.headers.get("Content-Length")
        if (expected is not None and expected.isdigit() and int(expected) != written
                and resp.headers.get("Content-Encoding", "identity") == "identity"):
            raise httpx.RemoteProtocolError(
                f"body has {written} bytes, Content-Length says {expected}",
                request=resp.request)
        spool.flush()
    except BaseException:
        spool.close()
        raise
    return spool


_GZIP_PIECE = 1 << 20
"""Most bytes one inflate call of `_body_of` makes: a gzip bomb is never one buffer."""


def _body_of(resp: httpx.Response) -> Iterator[bytes]:
    """The body as `iter_bytes` decodes it, but a gzip-encoded one (PyPI's JSON API pages:
    44 MB inflated on a cold lock of web) inflated by `inflater` (isal: 0.09 s of CPU there,
    under the GIL, against 0.17 s through httpx's zlib decoder and its re-chunking). A gzip
    stream that ends before its end marker is a truncated transfer, retried (httpx's decoder
    passes it on as a shorter body); bytes after the end marker are ignored, as httpx does."""
    if resp.headers.get("Content-Encoding", "").strip().lower() != "gzip":
        yield from resp.iter_bytes(1 << 16)
        return
    from lockenv.inflate import inflater

    decompressobj, inflate_error = inflater()
    inflate = decompressobj(31)
    try:
        for data in resp.iter_raw():
            while data and not inflate.eof:
                out = inflate.decompress(data, _GZIP_PIECE)
                if out:
                    yield out
                data = inflate.unconsumed_tail
    except inflate_error as exc:
        raise httpx.DecodingError(f"the gzip-encoded body does not inflate: {exc}",
                                  request=resp.request) from None
    if not inflate.eof:
        raise httpx.RemoteProtocolError("the gzip-encoded body ends early", request=resp.request)


@contextmanager
def _mapped(spool: Any) -> Iterator[Any]:
    """A read-only map of a spooled body (an empty body is b"": it cannot be mapped)."""
    size = os.fstat(spool.fileno()).st_size
    if not size:
        yield b""
        return
    with mmap.mmap(spool.fileno(), 0, access=mmap.ACCESS_READ) as view:
        yield view


class _FileMaker:
    """Makes the files of one version of one page, when the lock first looks at it: the
    records checked again (the cache is untrusted: a damaged entry is refused, named, and
    removed), exclude-newer applied, and packed (`PackedFile`) with the strings a page
    shares."""

    def __init__(self, client: IndexClient, name: str, page: pages.CachedPage) -> None:
        self.client = client
        self.name = name
        self.page = page
        self.index = client.simple_index_url
        self.shared: dict[str, str] = {}  # one string per distinct requires-python (a few dozen)
        self.bases: dict[str, str] = {}  # one string per file host (one per page, as a rule)
        self.undated = 0

    def cut(self, version: pages.CachedVersion) -> VersionFiles | None:
        """`version` as exclude-newer leaves it, its files made later (None: none is left):
        listed when a file passes `check_raw` and was uploaded by the cut-off, `all_yanked`
        over those files, exactly as `make`'s files would say. Records it cannot read, and
        versions with build tags (`latest_builds` picks among them), are made at once, so a
        damaged entry is refused by `make` as before. (Not under -v, which names every file
        dropped: `_load_project` makes them all there.)"""
        cutoff = self.client.exclude_newer
        assert cutoff is not None
        page, when, parse = self.page, pages.to_datetime, pages.parse_time
        try:
            records = pages.version_records(page, version)
        except pages.PageError:
            records = None
        if records is None or any(rec[0].count("-") == 5 for rec in records):
            files = self.make(version)
            return VersionFiles(version.text, all(f.yanked for f in files), files=files) if files else None
        listed = False
        for rec in records:
            moment: datetime | None = when(parse(rec[4])) if page.raw else rec[4]  # type: ignore[assignment]
            if moment is None or moment > cutoff:
                continue
            if page.raw and pages.check_raw(rec, page.url, self.name, None) is None:  # type: ignore[arg-type]  # a RawRecord there
                continue
            listed = True
            if not rec[6]:  # a file that is not yanked: the version is not all yanked
                return VersionFiles(version.text, False, partial(self.make, version))
        return VersionFiles(version.text, True, partial(self.make, version)) if listed else None

    def make(self, version: pages.CachedVersion) -> tuple[DistFile, ...]:
        client = self.client
        notes: list[str] = []
        try:
            records = pages.decode_version(self.page, version, self.name, notes)
        except pages.PageError as exc:
            raise refuse_damaged(client.cache.page_path(client.index_url, self.name),
                                 [f"the cached index page of `{self.name}`: {exc}"]) from None
        for note in notes:
            client._debug(f"{self.name}: skipped {note}")
        exclude_newer = client.exclude_newer
        index, shared, bases = self.index, self.shared, self.bases
        make = PackedFile.make
        files: list[DistFile] = []
        builds = False
        for (filename, url, sha, size, moment, requires_python, yanked, reason, meta,
             meta_sha) in records:
            if exclude_newer is not None:
                if moment is None:
                    self.undated += 1
                    continue
                if moment > exclude_newer:
                    continue
            if meta_sha:
                client._metadata_sha[url] = meta_sha
            if requires_python is not None:
                requires_python = shared.setdefault(requires_python, requires_python)
            if filename.count("-") == 5:  # rare: a wheel with a build tag (latest_builds ignores the rest)
                builds = True
            files.append(make(filename, url, sha, size, moment, requires_python, yanked, reason,
                              meta, index, bases))
        return tuple(pages.latest_builds(files) if builds else files)


_NOT_MODIFIED: Any = object()
"""`_page_body`'s answer for a 304 to a conditional GET."""
_VALIDATOR = re.compile(r'[\x21-\x7e][\x20-\x7e]{0,254}')
"""An ETag or Last-Modified value kept and sent back: printable ASCII, at most 255 characters
(the index's headers are untrusted input; anything else is dropped, and the page is then
fetched whole next time)."""


def _validators(response: httpx.Response) -> tuple[str, str]:
    etag, modified = response.headers.get("ETag", ""), response.headers.get("Last-Modified", "")
    return (etag if _VALIDATOR.fullmatch(etag) else "",
            modified if _VALIDATOR.fullmatch(modified) else "")


def _conditional(page: pages.CachedPage) -> dict[str, str]:
    headers = {}
    if page.etag:
        headers["If-None-Match"] = page.etag
    if page.last_modified:
        headers["If-Modified-Since"] = page.last_modified
    return headers


def _decoded(data: Any) -> pages.CachedPage | None:
    return None if data is None else pages.decode_cached(data)


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _check_index_url(url: str) -> None:
    try:
        parts = urlsplit(url)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        ok = False
    if not ok:
        shown = redact_url(url)
        raise PackageIndexError(
            f"the index URL {shown!r} is not an http:// or https:// URL",
            hint="set index-url in [tool.lockenv] or LOCKENV_INDEX_URL to an index such as "
                 "https://host/simple/ (simple API) or https://host/pypi (JSON API)",
            context={"url": shown},
        )


def _central_directory(tail: bytes, total: int) -> tuple[int | None, int]:
    """The central directory's (offset, size) from the end-of-central-directory record in
    `tail` (offset None for zip64 or when the record is not there)."""
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < 22:
        return None, 0
    size, offset = struct.unpack_from("<LL", tail, at + 12)
    if offset == 0xFFFFFFFF or offset + size > total:
        return None, 0
    return offset, size


def _content_range(value: str) -> tuple[int | None, int | None]:
    """(first byte, total size) from `bytes 10-99/1234`; None for what is absent or `*`."""
    match = re.fullmatch(r"\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*", value)
    if not match:
        return None, None
    total = match.group(3)
    return int(match.group(1)), (int(total) if total != "*" else None)


def _remove_empty(directory: Path) -> None:
    try:
        directory.rmdir()
    except OSError:
        pass


STALE_DOWNLOAD = 600.0
"""Seconds without a write after which a `.download-*.tmp` is a killed run's (a live download
writes every few milliseconds, or times out long before)."""

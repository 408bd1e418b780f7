"""Crawling ahead of the resolver (uv's batch prefetch).

Resolution is a chain of round trips (a page, then a version's metadata, then its dependencies'
pages…). To overlap them, every dependency seen starts a background task that fetches its page
and then the metadata of the version the resolver will most likely pick, for the file each
target would install (so per-platform metadata is known early). Speculation only: errors are
dropped, the resolver asks again and reports them itself.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from packaging.tags import Tag
from packaging.version import Version

from lockenv.models import DistFile
from lockenv.resolve.requirements import Candidate, Req, applies, dependency_reqs
from lockenv.resolve.source import IndexSource, all_yanked, best_file, stand_in
from lockenv.resolve.targets import Target

__all__ = ["Prefetcher"]


class Resolved(Protocol):
    """One target's resolution (`single.TargetResult`)."""

    @property
    def target(self) -> Target: ...
    @property
    def pins(self) -> Mapping[Any, Candidate]: ...


LOOK_BACK = 30
"""Older versions the crawl tries when the newest allowed one has no file for an environment
(numpy's newest needs a newer Python than the oldest target's): the resolver picks the newest
one that has, and the targets reusing the first one's pins read its metadata one at a time
unless the crawl started it early (data: ~0.5 s of a cold lock's wall)."""


class Prefetcher:
    """The crawler of one resolution; `close()` stops it."""

    def __init__(self, source: IndexSource) -> None:
        self.source = source
        self._lock = threading.Lock()
        self._seen: set[str] = set()
        self._crawled: set[str] = set()
        """`identifier:specifier` of every requirement crawled, for any environment."""
        self._live: dict[str, tuple[dict[Version, Sequence[DistFile]], list[Version]]] = {}
        self._what: dict[int, tuple[Req, str]] = {}
        """id(Req) -> (it, kept alive so the id stays its own; `identifier:specifier`): each
        target's provider passes the same (shared) Reqs of every pin it reuses."""
        self._pool: ThreadPoolExecutor | None = None
        self._closed = False
        self._paged: set[str] = set()
        """Names handed to `pages.prefetch` already: the resolver passes every dependency of
        every pin it reuses, for each target (data: ~4,500 calls), and a page asked for once
        is in flight or done."""

    def speculate(
        self, reqs: Iterable[Req], environment: Mapping[str, str], tag_priority: Mapping[Tag, int],
        *, new_only: bool = False,
    ) -> None:
        """Crawl ahead of the resolver in the background: for each requirement, its page, the
        newest allowed version's metadata, then the same for that version's dependencies. The
        resolver's critical path (page, metadata, next page…) then mostly hits finished work.
        `new_only`: only requirements not yet crawled for any environment (the resolver's own
        calls: walking a known subtree again for each of 30 targets fetched nothing new and
        cost a warm lock of `data` ~25% of its CPU in GIL contention)."""
        todo = []
        names: set[str] = set()
        if self._closed:
            return
        with self._lock:
            env_key = f"{environment['python_full_version']}/{environment['sys_platform']}/{environment['platform_machine']}"
            for r in reqs:
                names.add(r.name)
                known = self._what.get(id(r))
                if known is None or known[0] is not r:
                    known = self._what[id(r)] = (r, f"{r.identifier}:{r.specifier}")
                what = known[1]
                if new_only and what in self._crawled:
                    continue
                key = f"{env_key}|{what}"
                if key not in self._seen:
                    self._seen.add(key)
                    self._crawled.add(what)
                    todo.append(r)
            names -= self._paged
            self._paged |= names
            if todo and self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="lockenv-speculate")
            pool = self._pool
        # Every page asked for here, crawled before or not (once a run): the thread that crawled
        # it may not have started its page yet (it waits for the interpreter behind dozens of
        # threads), and the resolver, finding no request in flight, would fetch the pages it
        # needs one by one.
        if names:
            self.source.pages.prefetch(names)
        if not todo or pool is None:
            return
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
            newest: Sequence[DistFile] | None = None
            files: Sequence[DistFile] = ()
            mine = None
            for tried, version in enumerate(req.specifier.filter(newest_first)):
                files = versions[version]
                if newest is None:
                    newest = files
                mine = best_file(files, tag_priority, python_full)
                if mine is not None or tried >= LOOK_BACK:
                    break
            if newest is None or self._warm(req.name, mine):
                return
            self.prefetch_version(newest, tag_priority, python_full)
            if mine is not None and files is not newest:
                self.prefetch_version(files, tag_priority, python_full)
            if mine is None or not mine.is_wheel or self._closed:
                return
            deps: list[Req] = []
            for dep in self.source.requirements(mine):
                if applies(dep, environment, None) or (req.extra and applies(dep, environment, req.extra)):
                    deps.extend(dependency_reqs(dep))
            self.speculate(deps, environment, tag_priority)
        except Exception:
            return  # speculation only: the resolver will ask again and report errors itself

    def _warm(self, name: str, mine: DistFile | None) -> bool:
        """Are the page and the metadata of the file this environment would install cached
        (a warm lock)? Then there is nothing to hide: the resolver reads them itself, and
        crawling on would only redo its work next to it, under the same GIL (web: ~0.07 s of
        CPU). The crawl resumes below the first project that is not cached, as the resolver
        passes each candidate's dependencies to `speculate`."""
        if not self.source.page_from_cache(name):
            return False
        if mine is None or not mine.is_wheel:
            return True  # nothing to speculate on (the crawl never builds an sdist)
        return self.source.has_requirements(mine) or self.source.metadata.metadata_cached(mine)

    def _live_versions(self, name: str) -> tuple[dict[Version, Sequence[DistFile]], list[Version]]:
        """Non-yanked versions of a project, newest first (memoised: speculation asks often)."""
        with self._lock:
            cached = self._live.get(name)
        if cached is not None:
            return cached
        versions = {v: fs for v, fs in self.source.versions(name).items() if not all_yanked(fs)}
        result = (versions, [v for v in reversed(self.source.sorted_versions(name)) if v in versions])
        with self._lock:
            self._live[name] = result
        return result

    def prefetch_version(self, files: Sequence[DistFile], tag_priority: Mapping[Tag, int], python_full: str) -> None:
        """Prefetch the metadata of the file each target (or this environment) would install."""
        if not files or self._closed:
            return
        key = f"version:{files[0].url}"
        with self._lock:
            if key in self._seen:
                return
            self._seen.add(key)
        chosen: dict[str, DistFile] = {}
        if self.source.targets:
            for newest, oldest in self.source.representatives(files).values():
                chosen[newest.filename] = newest
                chosen[oldest.filename] = oldest
        else:
            f = best_file(files, tag_priority, python_full)
            if f is not None and f.is_wheel:  # never speculate an sdist: it may need a build
                chosen[f.filename] = f
        todo = [f for f in chosen.values() if not self.source.has_requirements(f)]
        if todo:
            self.source.metadata.prefetch_metadata(todo)

    def read_ahead(self, versions: Sequence[tuple[Sequence[DistFile], DistFile]], environment: Mapping[str, str]) -> None:
        """Start reading what this environment reads of each of these versions (all its files,
        the wheel it installs): the resolver is walking down them, a read at a time. The other
        targets' wheels are read only once a version is pinned."""
        if self._closed:
            return
        todo: dict[str, DistFile] = {}
        for files, own in versions:
            for f in self.source.files_read_for(files, own, environment):
                if not self.source.has_requirements(f):
                    todo.setdefault(f.filename, f)
        if todo:
            self.source.metadata.prefetch_metadata(todo.values())

    def prefetch_targets(self, results: Sequence[Resolved], targets: Sequence[Target]) -> None:
        """Start the metadata `targets` will read reusing these results' pins: targets derived
        from the graph (emscripten, ppc64le...) have no representative wheels, so each pin they
        reuse reads its own file, and the main thread did that one read at a time with the
        metadata threads idle (data: ~10 reads a target, 0.2 s of wall); on a platform that
        has representative wheels they are read instead, prefetched already. Per target, the pins
        `_reuse` tries first: the latest result on the same or a newer Python, counting the
        targets before it in `targets` as having taken theirs (each derived target tries the one
        before it first); then, where that fails, those of the latest result for its Python, its
        platform's first (what resolvelib's preferences lead to). Predicting only the second left
        web's ppc64le targets reading greenlet and websockets for four Pythons one at a time
        (0.3 s of wall); predicting the latest result whatever its Python read 9 wheels for
        nothing once `_reuse` skipped older Pythons. Projects whose page came from the cache are
        left out (a warm lock: ~25 ms of best_file on the main thread for nothing)."""
        if self._closed or not results:
            return
        todo: dict[str, DistFile] = {}
        taken: list[tuple[tuple[int, int], Mapping[Any, Candidate]]] = [(r.target.python, r.pins) for r in results]
        for target in targets:
            same = [r for r in results if r.target.python_full == target.python_full] or list(results)
            prev = next((r for r in reversed(same) if r.target.platform == target.platform), same[-1])
            first = next((pins for python, pins in reversed(taken) if python >= target.python), prev.pins)
            taken.append((target.python, first))
            seen: set[str] = set()
            platform = (target.environment["sys_platform"], target.environment["platform_machine"])
            for candidate in [*first.values(), *([] if first is prev.pins else prev.pins.values())]:
                files = candidate.files
                if not files or files[0].url in seen or self.source.page_from_cache(candidate.name):
                    continue
                seen.add(files[0].url)
                if platform in self.source.representatives(files):
                    continue  # read from the platform's representative wheels (prefetched)
                f = best_file(files, target.tag_priority, target.python_full)
                if f is not None and not f.is_wheel:  # as `metadata_file`: a wheel stands in
                    f = stand_in(files, target.tag_priority)
                if f is not None and not self.source.has_requirements(f):
                    todo.setdefault(f.filename, f)
        if todo:
            self.source.metadata.prefetch_metadata(todo.values())

    def close(self) -> None:
        """Stop crawling: queued work is dropped, running work stops at its next step (it would
        otherwise compete with writing the lock for the interpreter)."""
        self._closed = True
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

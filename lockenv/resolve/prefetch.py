"""Crawling ahead of the resolver (uv's batch prefetch).

Resolution is a chain of round trips (a page, then a version's metadata, then its dependencies'
pages…). To overlap them, every dependency seen starts a background task that fetches its page
and then the metadata of the version the resolver will most likely pick, for the file each
target would install (so per-platform metadata is known early). Speculation only: errors are
dropped, the resolver asks again and reports them itself.

One task per requirement serves all the environments it is crawled for (the ~10 far-apart
targets of the crawl ahead): the page once, each environment's file, each distinct file's
requirements read once, and each dependency crawled on for the environments it applies to.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from packaging.requirements import Requirement
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


@dataclass(frozen=True, eq=False)
class _Env:
    """One environment the crawl follows requirements for (a target's, or a build env's)."""

    key: tuple[str, str, str]
    """(python_full_version, sys_platform, platform_machine): what a crawl is done once for."""
    environment: Mapping[str, str]
    tag_priority: Mapping[Tag, int]
    python_full: str
    target: Target | None
    """The resolution's target with this tag list, when it is one: its files are ranked once
    for all targets (`IndexSource.best_for`)."""
    markers: int
    """Which distinct marker environment (for the memo of marker answers)."""


T = TypeVar("T")


class _Lazy(Generic[T]):
    """An iterator's items, taken as far as asked for (the versions a specifier allows, newest
    first: most environments stop at the first, some look back a few)."""

    def __init__(self, items: Iterable[T]) -> None:
        self._items: Iterator[T] = iter(items)
        self._got: list[T] = []

    def has(self, i: int) -> bool:
        while len(self._got) <= i:
            nxt = next(self._items, _END)
            if nxt is _END:
                return False
            self._got.append(nxt)  # type: ignore[arg-type]
        return True

    def __getitem__(self, i: int) -> T:
        return self._got[i]


_END = object()


class Prefetcher:
    """The crawler of one resolution; `close()` stops it."""

    def __init__(self, source: IndexSource) -> None:
        self.source = source
        self._lock = threading.Lock()
        self._seen: set[tuple[tuple[str, str, str], str] | str] = set()
        """(environment key, `identifier:specifier`) of every requirement crawled there, and
        `version:<url>` of every version whose metadata was started."""
        self._crawled: set[str] = set()
        """`identifier:specifier` of every requirement crawled, for any environment."""
        self._live: dict[str, tuple[dict[Version, Sequence[DistFile]], list[Version]]] = {}
        self._what: dict[int, tuple[Req, str]] = {}
        """id(Req) -> (it, kept alive so the id stays its own; `identifier:specifier`): each
        target's provider passes the same (shared) Reqs of every pin it reuses."""
        self._envs: dict[tuple[int, tuple[str, str, str]], _Env] = {}
        """(id(tag priority), key) -> the environment (which keeps the tag priority alive)."""
        self._marker_envs: dict[tuple[tuple[str, str], ...], int] = {}
        self._target_of = {id(t.tag_priority): t for t in source.targets}
        self._holds: dict[tuple[str, int, str | None], bool] = {}
        """(marker text, marker environment, extra) -> does a requirement with it apply?"""
        self._marker_text: dict[int, tuple[Requirement, str | None]] = {}
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
        if self._closed:
            return
        env = self._env(environment, tag_priority)
        self._submit([(r, (env,)) for r in reqs], new_only=new_only)

    def speculate_targets(self, wanted: Iterable[tuple[Req, Sequence[Target]]]) -> None:
        """`speculate` for several targets at once: each requirement is crawled by one task
        for all the targets that need it (its page once, each distinct file's metadata once),
        where a task per target had ~10 of them wait on the same page and metadata."""
        if self._closed:
            return
        self._submit([(r, tuple(self._env(t.environment, t.tag_priority) for t in targets))
                      for r, targets in wanted])

    def _env(self, environment: Mapping[str, str], tag_priority: Mapping[Tag, int]) -> _Env:
        key = (environment["python_full_version"], environment["sys_platform"], environment["platform_machine"])
        with self._lock:
            env = self._envs.get((id(tag_priority), key))
            if env is None or env.tag_priority is not tag_priority or env.environment != environment:
                values = tuple(sorted(environment.items()))
                markers = self._marker_envs.setdefault(values, len(self._marker_envs))
                env = self._envs[(id(tag_priority), key)] = _Env(
                    key, dict(environment), tag_priority, key[0], self._target_of.get(id(tag_priority)), markers)
        return env

    def _submit(self, wanted: Sequence[tuple[Req, Sequence[_Env]]], *, new_only: bool = False) -> None:
        """Start a task per requirement (`identifier:specifier`) with the environments it is not
        crawled for yet; hand every name to the page prefetch."""
        todo: dict[str, tuple[Req, list[_Env]]] = {}
        names: set[str] = set()
        with self._lock:
            for r, envs in wanted:
                names.add(r.name)
                known = self._what.get(id(r))
                if known is None or known[0] is not r:
                    known = self._what[id(r)] = (r, f"{r.identifier}:{r.specifier}")
                what = known[1]
                if new_only and what in self._crawled:
                    continue
                for env in envs:
                    if (env.key, what) not in self._seen:
                        self._seen.add((env.key, what))
                        self._crawled.add(what)
                        todo.setdefault(what, (r, []))[1].append(env)
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
        for r, envs in todo.values():
            try:
                pool.submit(self._crawl, r, tuple(envs))
            except RuntimeError:
                return  # shut down: the resolution is over

    def _crawl(self, req: Req, envs: Sequence[_Env]) -> None:
        """One requirement for these environments: the file each installs of the newest
        version that has one, each distinct version's metadata started, then the dependencies
        of each distinct file, each crawled for the environments it applies to."""
        if self._closed:
            return
        try:
            versions, newest_first = self._live_versions(req.name)
            allowed = _Lazy(req.specifier.filter(newest_first))
            if not allowed.has(0):
                return
            newest = versions[allowed[0]]
            cached_page = self.source.page_from_cache(req.name)
            warm: dict[str, bool] = {}
            live: list[tuple[_Env, Sequence[DistFile], DistFile | None]] = []
            for env in envs:
                files, own = self._choose(versions, allowed, env)
                if cached_page and (own is None or warm.setdefault(own.filename, self._warm(own))):
                    continue
                live.append((env, files, own))
            if not live:
                return
            if self.source.targets:
                self._prefetch_picked(versions, allowed)
            else:
                self.prefetch_version(newest, live[0][0].tag_priority, live[0][0].python_full)
            mine: dict[str, tuple[Sequence[DistFile], DistFile, list[_Env]]] = {}
            for env, files, own in live:
                if own is None:
                    continue
                if files is not newest and not self.source.targets:
                    self.prefetch_version(files, env.tag_priority, env.python_full)
                if own.is_wheel:
                    mine.setdefault(own.filename, (files, own, []))[2].append(env)
            if mine and not self._closed:
                self._follow(req, list(mine.values()))
        except Exception:
            return  # speculation only: the resolver will ask again and report errors itself

    def _prefetch_picked(self, versions: Mapping[Version, Sequence[DistFile]], allowed: _Lazy[Version]) -> None:
        """Start what the resolution's targets read of the versions they would take under this
        requirement (each target the newest allowed version with a file for it): for each, the
        wheels `requirements_for` reads. All the targets, not only those crawled: the middle
        Pythons take versions the far-apart ones do not. Where a target takes another version
        (a conflict, a preference), `pinning` starts its reads then."""
        left = list(range(len(self.source.targets)))
        tried = 0
        while left and tried <= LOOK_BACK and allowed.has(tried):
            files = versions[allowed[tried]]
            # The newest version is ranked for all targets (`representatives` needs it); an
            # older one only for the targets still looking, unless one of them takes it (an old
            # Python walking back 30 versions ranked each for 40 targets: extlib38, +0.2 s).
            best = self.source.best_all(files) if tried == 0 else self.source.best_of(files, left)
            takers = [i for i in left if best[i] is not None]
            if takers:
                left = [i for i in left if best[i] is None]
                self._start(self.source.reads_to_start(files, takers))
            tried += 1

    def _start(self, files: Sequence[DistFile]) -> None:
        if files and not self._closed:
            self.source.metadata.prefetch_metadata(files)

    def _choose(self, versions: Mapping[Version, Sequence[DistFile]], allowed: _Lazy,
                env: _Env) -> tuple[Sequence[DistFile], DistFile | None]:
        """The files of the newest allowed version with a file for `env` (back at most
        `LOOK_BACK` more), and that file."""
        files: Sequence[DistFile] = ()
        own = None
        tried = 0
        while allowed.has(tried):
            files = versions[allowed[tried]]
            if tried == 0 and env.target is not None:
                own = self.source.best_for(files, env.target)  # ranked once for all targets
            else:
                own = best_file(files, env.tag_priority, env.python_full)
            if own is not None or tried >= LOOK_BACK:
                break
            tried += 1
        return files, own

    def _follow(self, req: Req, chosen: Sequence[tuple[Sequence[DistFile], DistFile, list[_Env]]]) -> None:
        """Read each chosen wheel's requirements (as the resolver will: `requirements_for`),
        and crawl each dependency for the environments it applies to."""
        deps: dict[int, tuple[Req, list[_Env]]] = {}
        for files, own, envs in chosen:
            if self._closed:
                return
            for env in envs:
                for dep in self.source.requirements_for(files, own, env.environment):
                    if self._applies(dep, env, None) or (req.extra and self._applies(dep, env, req.extra)):
                        for r in dependency_reqs(dep):
                            entry = deps.get(id(r))
                            if entry is None:
                                deps[id(r)] = (r, [env])
                            elif entry[1][-1] is not env:
                                entry[1].append(env)
        if deps:
            self._submit(list(deps.values()))

    def _applies(self, dep: Requirement, env: _Env, extra: str | None) -> bool:
        """`applies`, answered once per marker text, marker environment and extra."""
        known = self._marker_text.get(id(dep))
        if known is None or known[0] is not dep:
            known = self._marker_text[id(dep)] = (dep, None if dep.marker is None else str(dep.marker))
        text = known[1]
        if text is None:
            return extra is None
        key = (text, env.markers, extra)
        holds = self._holds.get(key)
        if holds is None:
            holds = self._holds[key] = applies(dep, env.environment, extra)
        return holds

    def _warm(self, mine: DistFile) -> bool:
        """Is the metadata of the file an environment would install cached (a warm lock, its
        page cached too)? Then there is nothing to hide: the resolver reads them itself, and
        crawling on would only redo its work next to it, under the same GIL (web: ~0.07 s of
        CPU). The crawl resumes below the first project that is not cached, as the resolver
        passes each candidate's dependencies to `speculate`. An sdist: nothing to speculate on
        (the crawl never builds one)."""
        return not mine.is_wheel or self.source.has_requirements(mine) or self.source.metadata.metadata_cached(mine)

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
        """A version is pinned on this Python: start what each target that may reuse the pin
        reads of it (the targets on this Python or an older one: `_reuse` never takes a pin from
        an older Python), or this environment's file when the resolution has no targets. The
        newest Python's wheel of an older numpy, which only the oldest Python takes, is no
        longer read for nothing (data: 47 of 423 reads were)."""
        if not files or self._closed:
            return
        try:
            python = tuple(int(p) for p in python_full.split(".")[:2])
        except ValueError:
            python = (99, 99)  # a Python that cannot be read: every target's reads, as before
        key = f"version:{files[0].url}:{python}"
        with self._lock:
            if key in self._seen:
                return
            self._seen.add(key)
        if self.source.targets:
            best = self.source.best_all(files)
            self._start(self.source.reads_to_start(
                files, [i for i, t in enumerate(self.source.targets) if t.python <= python and best[i] is not None]))
            return
        f = best_file(files, tag_priority, python_full)
        if f is not None and f.is_wheel and not self.source.has_requirements(f):  # never an sdist: it may need a build
            self.source.metadata.prefetch_metadata([f])

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
        has representative wheels those are read instead (a PyPy wheel of numpy 2.2.6 on Linux:
        the platform's cp313 and cp310 wheels, which only the pins' own targets may not have
        needed, as `prefetch_version` now starts no more than they need). Per target, the pins
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
            for candidate in [*first.values(), *([] if first is prev.pins else prev.pins.values())]:
                files = candidate.files
                if not files or files[0].url in seen or self.source.page_from_cache(candidate.name):
                    continue
                seen.add(files[0].url)
                f = best_file(files, target.tag_priority, target.python_full)
                if f is not None and not f.is_wheel:  # as `metadata_file`: a wheel stands in
                    f = stand_in(files, target.tag_priority)
                if f is None:
                    continue
                for read in self.source.files_read_for(files, f, target.environment):
                    if not self.source.has_requirements(read):
                        todo.setdefault(read.filename, read)
        if todo:
            self.source.metadata.prefetch_metadata(todo.values())

    def close(self) -> None:
        """Stop crawling: queued work is dropped, running work stops at its next step (it would
        otherwise compete with writing the lock for the interpreter)."""
        self._closed = True
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

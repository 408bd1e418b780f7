"""`apply()`: carry out a SyncPlan. Everything that can fail without touching the venv happens
first (downloads, sha256 checks, builds, wheel validation); then the journal is written, old
distributions are moved aside, new wheels installed, and the stash committed.

`LOCKENV_TEST_CRASH_AFTER=N` (tests only) kills the process with SIGKILL after N wheel
installs (N=0: after the removals, before any install), to test that the next sync repairs an
interrupted one.
"""

from __future__ import annotations

import heapq
import itertools
import os
import signal
import stat
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from lockenv.environment import Probe
from lockenv.errors import IntegrityError, SyncError
from lockenv.distfiles import DistFile
from lockenv.sync import state
from lockenv.sync.install.remove import Stash, delete_paths, keep_dirs, remove_distribution, stash_kept, undo_failed
from lockenv.sync.install.tree import Tree
from lockenv.sync.install.wheel import Applied, FreshInstall, WheelInfo, install_wheel, scheme_for, validate_wheel
from lockenv.sync.plan import Action, SyncPlan
from lockenv.sync.selection import Wanted

if TYPE_CHECKING:
    from lockenv.cache import Cache
    from lockenv.sync.journal import Journal
    from lockenv.sync.install.unpacker import Unpackers
    from lockenv.ui import Reporter


class Downloader(Protocol):
    """What fetch needs of the index client: a download verified against the file's hashes."""

    def download(self, file: DistFile, *, on_bytes: Callable[[int], None] | None = None) -> Path: ...

SMALL_FILE = 1 << 20
"""Files up to this size (of a known size) download on `SMALL_DOWNLOAD_WORKERS` threads of their
own: what they cost is round trips (~55-70 ms a request through the mirror measured, ~2 ms of
CPU per MB). On one pool of four threads for every file (eight when unpacking on threads), web's
33 small wheels (5 MB) waited in turns behind each other and the big ones until 0.88 s. Cold
syncs on tmpfs, interleaved, medians of 5 (3 for data), one pool of 4 -> 12 small + 2 big: web
0.93 -> 0.66-0.70 s, data 2.41 -> 1.90 s, markers 0.68 -> 0.54 s, small (one pool of 8, on
threads) 0.34 -> 0.33 s. A 256 kB bound: web 0.87 s; 4 MB: as 1 MB."""
SMALL_DOWNLOAD_WORKERS = 12
BIG_DOWNLOAD_WORKERS = 2
"""Threads for the files over `SMALL_FILE`, the biggest first: bound by bandwidth and this
process's CPU, not round trips. Two at a time get the biggest wheels (the longest to unpack)
in sooner: beside the 12 small-file threads, web's mypy (15 MB) arrived at 0.47 s among four
big-file threads, and was unpacked until 0.67 s. Web, same runs as `SMALL_FILE`: 1 thread
0.88 s, 2 0.66-0.70 s, 3 0.73 s, 4 0.73-0.75 s, 8 0.75 s; data 1.90 s with 2, 1.95 s with 4.
Earlier, with one pool for all files, eight threads fought over the GIL beside the unpacking
processes: data's downloads took 1.02-1.32 s of CPU, 0.66-1.00 s on four."""
UNPACK_WORKERS = 2
"""Threads unpacking downloaded wheels into the cache: on the 2-core machine measured, unpacking
web's 40 wheels alone took 1.49 s on 1 thread, 0.85 s on 2, 0.99 s on 4 and 1.66 s on 8; a
cold sync of web, median of 8: 2.39 s unpacking on the 8 download threads, 2.19 s with 2."""
LINK_WORKERS = max(2, min(4, os.cpu_count() or 2))
"""Threads installing (mostly mkdir + link, kernel time that releases the GIL): one per core, 2
to 4. On the 2-core machine measured (web, warm, install phase, medians): 1 thread 0.34-0.46 s,
2 threads 0.24 s, 4 threads 0.23-0.29 s, 8 threads 0.29 s."""


@dataclass(frozen=True)
class Prepared:
    """A validated wheel ready to install for one action."""

    action: Action
    wheel: WheelInfo
    scheme: dict[str, str]
    direct_url: dict | None


@dataclass(frozen=True)
class Fetched:
    """What `fetch` found for a plan: every archive, and the checks it left until one is read."""

    paths: dict[str, Path]
    """Every archive the plan installs, keyed by `file_key`."""
    unread: dict[str, UnreadWheel]
    """By `file_key`, the sha256 check of a cached wheel not hashed yet."""


def fetch(plan: SyncPlan, *, cache: Cache, lock_path: Path, client_factory: Callable[[], Downloader],
          reporter: Reporter, probe: Probe | None = None) -> Fetched:
    """Every archive the plan installs, verified by sha256 and size before it is read, keyed by
    `file_key` (its sha256: two archives may share a file name, F6). Local files are hashed
    here, cache hits too except wheels (`UnreadWheel`: their check waits until the archive is
    read, which a sealed tree never does), with no HTTP client (a warm sync does not even import
    one); the rest is downloaded by the index client. A file that does not match its sha256 is
    refused as the lock's (`lock_path`) mismatch. With the venv's `probe`, each downloaded
    wheel's install into it is recorded while it is unpacked (see `unpack_and_plan`)."""
    remote: list[Wanted] = []
    checks: list[_Check] = []
    unread: dict[str, UnreadWheel] = {}
    for action in plan.changes:
        want = action.wanted
        if want is None or want.file is None:
            continue
        if want.local_path:
            path = Path(want.local_path)
            if not path.is_file():
                raise SyncError(f"{want.name}: the lock names {path}, which does not exist")
            checks.append(_Check(path, want, cached=False))
            continue
        cached = cache.artifact_path(want.file.sha256 or want.file.url, want.file.filename)
        size = _size_of(cached) if want.file.sha256 else None
        if size is None:
            remote.append(want)
        elif _installs_from_tree(want) and want.file.size in (None, size):
            unread[file_key(want.file)] = UnreadWheel(_Check(cached, want, cached=True), lock_path)
        else:
            checks.append(_Check(cached, want, cached=True))
    _check_files(checks, lock_path)
    local = {file_key(check.file): check.path for check in checks}
    local.update((key, check.path) for key, check in unread.items())
    if remote:
        local.update(_download(remote, cache=cache, lock_path=lock_path,
                               client=client_factory(), reporter=reporter, probe=probe))
    return Fetched(local, unread)


def _size_of(path: Path) -> int | None:
    """The size of a regular file at `path`; None when there is none (one stat)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size if stat.S_ISREG(st.st_mode) else None


def _installs_from_tree(want: Wanted) -> bool:
    """Whether `prepare` installs `want`'s archive from the tree keyed by the lock's sha256 of
    it: a wheel (by kind or, for a URL archive, by name), whose sha256 is the file's."""
    file = want.file
    return file is not None and file.is_wheel and bool(want.sha256) \
        and want.sha256 == file.sha256 and want.kind in ("wheel", "sdist", "archive")


class UnreadWheel:
    """A cached wheel's sha256 and size check, run the first time the archive is read (by
    `tree.unpack`: to unpack it, or to check an unsealed tree against its RECORD), once, on any
    thread; a failure is raised again to every later caller.

    Why a cached wheel is not hashed up front: what a sync installs of it comes from its
    unpacked tree, and a tree whose seal holds (HMAC with the user's key over the wheel's sha256
    and the manifest) was written only by an unpack of an archive whose sha256 had been
    checked against that same value, every member checked against RECORD while it was
    written; each file is checked again (size and mtime, F8) before it is linked. Re-hashing
    the archive (143 MB, ~0.1 s of CPU per warm sync of data) verified bytes that nothing
    then read. The archive is hashed before it is read: to unpack it (no tree, a tree refused
    or found changed) or to check an unsealed tree. A damaged cached wheel whose tree is sealed
    is therefore refused (and removed) only when it is next needed."""

    def __init__(self, check: _Check, lock_path: Path) -> None:
        self.path = check.path
        self._check = check
        self._lock_path = lock_path
        self._mutex = threading.Lock()
        self._outcome: BaseException | bool = False

    def __call__(self) -> None:
        with self._mutex:
            if self._outcome is False:
                try:
                    _check_file(self._check, self._lock_path)
                except BaseException as exc:
                    self._outcome = exc
                    raise
                self._outcome = True
            elif isinstance(self._outcome, BaseException):
                raise self._outcome


def file_key(file: DistFile) -> str:
    """What `fetch` keys a file by: its sha256 (the URL when it has none), never its name:
    GitHub's archives of two projects are both `main.tar.gz` (F6)."""
    return file.sha256 or file.url


def _download(remote: Sequence[Wanted], *, cache: Cache, lock_path: Path, client: Downloader,
              reporter: Reporter, probe: Probe | None = None) -> dict[str, Path]:
    """Download `remote` (verified by the client against the lock's hashes) and unpack each
    wheel into the cache as soon as it arrives."""
    total = sum(w.file.size or 0 for w in remote if w.file)
    lock = threading.Lock()
    local: dict[str, Path] = {}
    with reporter.progress(f"Downloading {len(remote)} files", total=total or None) as bar:
        def advance(n: int) -> None:
            with lock:
                bar.advance(n)

        def one(want: Wanted) -> tuple[Wanted, Path]:
            assert want.file is not None
            try:
                return want, client.download(want.file, on_bytes=advance)
            except IntegrityError as exc:
                if exc.context.url is None:  # a damaged cache entry: the cache's fault
                    raise
                raise lock_mismatch(want, lock_path, exc.details,
                                    url=exc.context.url) from None

        # Unpack each wheel as soon as it arrives (overlapping downloads with unpacking;
        # prepare() then finds the validated tree in the cache), on fewer threads than the
        # downloads: unpacking is inode creation and CPU, which more threads only slow down.
        big, small = _download_order(remote)
        processes = _unpackers(remote)
        waiting = _Costliest(cache, probe, processes)
        with ThreadPoolExecutor(BIG_DOWNLOAD_WORKERS) as pool, \
                ThreadPoolExecutor(SMALL_DOWNLOAD_WORKERS) as small_pool, \
                ThreadPoolExecutor(UNPACK_WORKERS) as unpacking:
            futures = [small_pool.submit(one, w) for w in small] + [pool.submit(one, w) for w in big]
            unpacks: list[Future[None]] = []
            try:
                for future in as_completed(futures):
                    want, path = future.result()
                    file = want.file
                    assert file is not None
                    local[file_key(file)] = path
                    if file.is_wheel and file.sha256:
                        waiting.add(path, file.sha256, want)
                        unpacks.append(unpacking.submit(waiting.unpack_one))
                for done in unpacks:
                    done.result()
            except BaseException:
                for pending in futures:
                    pending.cancel()
                for unpacking_one in unpacks:
                    unpacking_one.cancel()
                if processes is not None:  # not waited for: their wheels are not needed now
                    processes.close(kill=True)
                raise
            finally:
                if processes is not None:
                    processes.close()
    return local


UNPACK_PROCESSES_FROM = 20_000_000
"""Bytes of wheels to download from which they are unpacked in worker processes (`Unpackers`,
each its own GIL) instead of threads. Cold syncs on tmpfs, own autogroup at nice -20 (the other
load kept off), 3 interleaved runs: data (147 MB) 4.27-4.43 s -> 2.70-3.14 s, web (45 MB)
1.39-1.48 -> 1.20-1.24 s; small (3 MB) 0.47-0.53 s either way and +0.15 s of CPU (starting a
worker costs ~0.1 s of CPU, on the other core behind the first downloads)."""


def _unpackers(remote: Sequence[Wanted]) -> Unpackers | None:
    """Worker processes to unpack `remote`'s wheels in, when there are enough bytes to unpack
    for them to pay (`LOCKENV_UNPACK_PROCESSES=1`/`0`: always/never); None: threads."""
    forced = os.environ.get("LOCKENV_UNPACK_PROCESSES", "")
    size = sum(w.file.size or 0 for w in remote if w.file is not None and w.file.is_wheel)
    if forced == "0" or (forced != "1" and size < UNPACK_PROCESSES_FROM) or not sys.executable:
        return None
    from lockenv.sync.install.unpacker import Unpackers

    try:
        return Unpackers(UNPACK_WORKERS)
    except OSError:  # no process to be had: the threads unpack
        return None


def _download_order(remote: Sequence[Wanted]) -> tuple[list[Wanted], list[Wanted]]:
    """The big files and the small ones (`SMALL_FILE`; a file of unknown size is big), each the
    biggest first: the biggest do not then finish last on their own."""
    by_size = sorted(remote, key=lambda w: -((w.file.size if w.file else 0) or 0))
    big: list[Wanted] = []
    small: list[Wanted] = []
    for want in by_size:
        size = want.file.size if want.file is not None else None
        (small if size is not None and size <= SMALL_FILE else big).append(want)
    return big, small


class _Costliest:
    """Downloaded wheels waiting to be unpacked, the costliest first. Unpacking falls behind
    the downloads (on data every file had arrived at 2.2 s and unpacking went on to 22.9 s,
    load 13): taken in arrival order, scipy waited behind 90 small wheels, then unpacked alone
    for 2.6 s at the end while the other thread had nothing left. Each task `unpack_one`
    takes the costliest wheel waiting when it starts (one task is submitted per `add`)."""

    def __init__(self, cache: Cache, probe: Probe | None, processes: Unpackers | None) -> None:
        self._cache = cache
        self._probe = probe
        self._processes = processes
        self._heap: list[tuple[int, int, Path, str, Wanted]] = []
        self._arrived = itertools.count()  # ties: the first to arrive first
        self._lock = threading.Lock()

    def add(self, wheel: Path, sha256: str, want: Wanted) -> None:
        cost = _unpack_cost(wheel)
        with self._lock:
            heapq.heappush(self._heap, (-cost, next(self._arrived), wheel, sha256, want))

    def unpack_one(self) -> None:
        with self._lock:
            _, _, wheel, sha256, want = heapq.heappop(self._heap)
        assert want.file is not None
        from lockenv.sync.install.unpacker import unpack_and_plan

        unpack = self._processes.run if self._processes is not None else unpack_and_plan
        unpack(wheel, sha256, name=want.name, source_sha256=want.sha256,
               source_name=want.file.filename, cache=self._cache, probe=self._probe)


def _unpack_cost(wheel: Path) -> int:
    """About what unpacking `wheel` costs: its members (each a file created, most of the cost:
    on data jedi's 5,626 members took 12 s, scipy's 1,425 members and 35 MB 2.6 s) plus its
    size in 20 kB units. The member count is read from the zip's end record (22 bytes); a zip
    with a comment or zip64 counts by size alone. Only an order: untrusted, never used else."""
    try:
        size = wheel.stat().st_size
        with open(wheel, "rb") as fh:
            fh.seek(max(0, size - 22))
            end = fh.read(22)
    except OSError:
        return 0
    members = int.from_bytes(end[10:12], "little") if end[:4] == b"PK\x05\x06" else 0
    return members + size // 20_000


def lock_mismatch(want: Wanted, lock_path: Path, details: Sequence[str], *,
                  url: str | None = None, what: str = "sha256") -> IntegrityError:
    """A file that does not match its sha256 in the lock, told as such: the expected hash comes
    from the lock (edited by hand, or the index serves another file), not from the index."""
    assert want.file is not None
    return IntegrityError(
        f"{want.file.filename} ({want.name} {want.version}) does not match its {what} "
        f"in {lock_path}; nothing was changed",
        details=details,
        context={"file": str(lock_path), "package": want.name, **({"url": url} if url else {})},
        hint=f"if {lock_path.name} was edited by hand, run `lockenv lock` again; "
             "otherwise the index (or a proxy) serves a different file than the one locked",
    )


@dataclass(frozen=True)
class _Check:
    """A local file or a cache hit to verify against the lock's hash and size."""

    path: Path
    want: Wanted
    cached: bool

    @property
    def file(self) -> DistFile:
        assert self.want.file is not None
        return self.want.file


HASH_WORKERS = 2
"""Threads hashing local archives: hashlib releases the GIL, so two cores hash twice as fast."""


def _check_files(checks: Sequence[_Check], lock_path: Path) -> None:
    """`_check_file` for each check, in parallel; the first failure (in order) is raised after
    all have been checked."""
    def one(check: _Check) -> None:
        _check_file(check, lock_path)

    if len(checks) < 2:
        for check in checks:
            one(check)
        return
    # Biggest first, so one large wheel does not finish last on its own.
    order = sorted(checks, key=lambda c: -(c.file.size or 0))
    with ThreadPoolExecutor(HASH_WORKERS) as pool:
        futures = {id(c): pool.submit(one, c) for c in order}
    for check in checks:
        futures[id(check)].result()


def _check_file(check: _Check, lock_path: Path) -> None:
    """sha256 and size as the lock says; a damaged cache entry is removed (the next sync
    downloads it afresh). A file with the locked sha256 but another size is the lock's fault
    (its size is wrong): the good file is kept (F28)."""
    from lockenv.cache import file_sha256, refuse_damaged

    path, sha256, size = check.path, check.file.sha256, check.file.size
    actual_size = path.stat().st_size
    actual = file_sha256(path)
    if actual == sha256 and (size is None or size == actual_size):
        return
    details = [f"expected sha256: {sha256}", f"actual sha256:   {actual}"]
    if size is not None and size != actual_size:
        details += [f"expected size: {size}", f"actual size:   {actual_size}"]
    if not check.cached or actual == sha256:
        raise lock_mismatch(check.want, lock_path, details,
                            what="size" if actual == sha256 else "sha256")
    raise refuse_damaged(path, details)


def prepare(plan: SyncPlan, fetched: Fetched, *, probe: Probe, venv: Path, cache: Cache,
            builder: Callable[[Wanted, Path | None], Path]) -> list[Prepared]:
    """Build what needs building and validate (unpack) every wheel, before the venv changes.
    Builds run one at a time; unpacking runs in parallel (zlib and hashing release the GIL).
    A wheel whose check `fetch` left (`fetched.unread`) is checked when it is read."""
    files, unread = fetched.paths, fetched.unread
    jobs: list[tuple[Action, Path, str | None, dict | None]] = []
    for action in plan.changes:
        want = action.wanted
        if want is None:
            continue
        direct_url = None
        sha = None
        if want.kind == "wheel":
            assert want.file is not None
            wheel = files[file_key(want.file)]
            sha = want.sha256
        elif want.kind in ("sdist", "archive"):
            assert want.file is not None
            archive = files[file_key(want.file)]
            if archive.name.endswith(".whl"):
                wheel, sha = archive, want.sha256
            else:
                wheel = builder(want, archive)
        elif want.kind == "directory":
            wheel = builder(want, None)
            direct_url = {"url": Path(want.local_path or "").as_uri(),
                          "dir_info": {"editable": True} if want.editable else {}}
        else:
            raise SyncError(f"{want.name}: cannot install a `{want.kind}` entry")
        jobs.append((action, wheel, sha, direct_url))

    def one(job: tuple[Action, Path, str | None, dict | None]) -> Prepared:
        action, wheel, sha, direct_url = job
        want = action.wanted
        assert want is not None
        scheme = scheme_for(probe.paths, probe.version, want.name)
        verify = unread.get(file_key(want.file)) if want.file is not None and sha else None
        info = validate_wheel(wheel, name=want.name, scheme=scheme, venv=venv, cache=cache,
                              sha256=sha, version=None if want.kind == "directory" else want.version,
                              verify=verify)
        return Prepared(action, info, scheme, direct_url)

    if len(jobs) < 3:
        return [one(j) for j in jobs]
    with ThreadPoolExecutor(UNPACK_WORKERS) as pool:
        return list(pool.map(one, jobs))


def apply(plan: SyncPlan, prepared: Sequence[Prepared], *, probe: Probe, venv: Path, cache: Cache,
          reporter: Reporter, fresh: FreshInstall | None = None,
          applied: list[tuple[Prepared, Applied | None]] | None = None) -> None:
    """Change the venv: journal, move the old distributions aside, install, commit. On an error
    the new files are removed and the old ones put back; if the process dies instead, the
    journal lets the next sync repair the venv. `fresh` installs what was never installed
    before (installer; tests hand in one that fails). `applied` receives what each install
    did (for the sync's sealed plan, `whole`)."""
    touched = [a.name for a in plan.changes]
    removing = [a.name for a in plan.of_kind("remove")]
    targets = [t for p in prepared for t in p.wheel.targets]
    state.clear_state(venv)
    state.write_journal(venv, touched, targets, removing)
    stash = Stash(venv)
    dirs = keep_dirs(probe.paths, venv)
    try:
        for action in plan.changes:
            for dist in action.installed:
                remove_distribution(Path(dist.dist_info), venv=venv, stash=stash, keep_dirs=dirs,
                                    warn=reporter.warn)
        stash_kept(targets, stash)
        if os.environ.get("LOCKENV_TEST_CRASH_AFTER") == "0":  # tests: die between the phases
            os.kill(os.getpid(), signal.SIGKILL)
        _install_all(prepared, probe=probe, cache=cache, fresh=fresh, warn=reporter.warn,
                     applied=applied)
    except BaseException as exc:
        error = undo_failed(exc, targets, venv=venv, keep=dirs, stash=stash, warn=reporter.warn)
        if error is exc:
            raise
        raise error from exc
    stash.commit()
    state.clear_journal(venv)


def _install_all(prepared: Sequence[Prepared], *, probe: Probe, cache: Cache,
                 fresh: FreshInstall | None, warn: Callable[[str, str | None], None],
                 applied: list[tuple[Prepared, Applied | None]] | None = None) -> None:
    crash_after = int(os.environ.get("LOCKENV_TEST_CRASH_AFTER", "-1") or "-1")
    counter = [0]
    lock = threading.Lock()
    made: set[str] = set()  # directories made or found, shared: installs share parents

    def install(p: Prepared, warn: Callable[[str, str | None], None]) -> Applied | None:
        want = p.action.wanted
        assert want is not None
        return install_wheel(p.wheel, scheme=p.scheme, python=probe.python, cache=cache,
                             source_sha256=want.sha256,
                             source_name=want.file.filename if want.file else None,
                             direct_url=p.direct_url, fresh=fresh, warn=warn, made=made)

    def one(p: Prepared) -> None:
        done = install(p, warn)
        if applied is not None:
            applied.append((p, done))  # list.append: atomic, the install threads share it
        if crash_after >= 0:
            with lock:
                counter[0] += 1
                if counter[0] >= crash_after:
                    os.kill(os.getpid(), signal.SIGKILL)

    deps = [p for p in prepared if not (p.action.wanted and p.action.wanted.is_project)]
    projects = [p for p in prepared if p not in deps]
    if crash_after >= 0 or len(deps) < 3:
        for p in deps:
            one(p)
    else:
        # Most files first: a big install (jedi: 5,600 files of data's 18,000) started late
        # would finish alone on one thread.
        ordered = sorted(deps, key=lambda p: -len(p.wheel.targets))
        if not _in_two_processes(ordered, one, install, applied, warn):
            with ThreadPoolExecutor(LINK_WORKERS) as pool:
                list(pool.map(one, ordered))
    for p in projects:  # the project itself, after its dependencies
        one(p)


def _in_two_processes(ordered: Sequence[Prepared], one: Callable[[Prepared], None],
                      install: Callable[[Prepared, Callable[[str, str | None], None]], Applied | None],
                      applied: list[tuple[Prepared, Applied | None]] | None,
                      warn: Callable[[str, str | None], None]) -> bool:
    """`one` of each install, in this process and a child forked from it (`forks.share`);
    False when it cannot fork (nothing done: the caller uses threads).

    Why: an install is links and mkdirs of microseconds, and two threads spent more time
    handing the GIL over than linking. A child has its own GIL, and where file creation is
    slow in the kernel both still create files at once. The link stage of a cold sync of
    data, two threads / one thread / two processes: tmpfs 0.20 / 0.14 / 0.12 s; ext4
    0.30-0.35 / 0.27 / 0.18-0.23 s; ext4 without a journal just after a large deletion
    (kernel-bound) 0.30-0.46 / 0.67 / 0.23-0.66 s, as noisy as that state is.

    The child's installs (`install`) hand back what they did (`Applied`, pickled: the sealed
    plan is made from them) and the warnings they gave, told here afterwards (but those of
    an install that failed there: its second try here tells its own). An install
    that fails in the child is not reported from there: the child does no more, and this
    process then does that install and each one the child left itself, so its error is
    raised here as it always was (an install replaces what one cut short left behind:
    `Linker.place_all`, `write_replacing`). When that install fails here too, the child's
    error is the one raised: the first cause, whose own consequences may be what failed the
    second try (a damaged cached wheel, refused and removed by the child, is then missing)."""
    import pickle

    from lockenv.sync.install import forks

    parent = os.getpid()
    mine: set[int] = set()
    done: dict[int, Applied | None] = {}
    left: list[int] = []
    failed: dict[int, Exception] = {}
    told: list[tuple[int, str, str | None]] = []

    def do(i: int) -> None:
        if os.getpid() == parent:
            mine.add(i)
            one(ordered[i])
        elif left:  # (one failed here: the parent does the rest)
            left.append(i)
        else:
            try:
                done[i] = install(ordered[i], lambda message, hint: told.append((i, message, hint)))
            except Exception as exc:  # noqa: BLE001 - done again by the parent, which reports it
                left.append(i)
                failed[i] = forks.portable(exc)

    try:
        forked, theirs = forks.share(len(ordered), do, lambda: pickle.dumps((done, left, failed, told)))
    except forks.Lost:  # killed: every install it took is done here again
        redo = [i for i in range(len(ordered)) if i not in mine]
        forked, theirs = True, pickle.dumps(({}, redo, {}, []))
    if not forked:
        return False
    their_done, their_left, their_failed, their_told = pickle.loads(theirs)
    for i, message, hint in their_told:
        if i not in their_failed:  # (done again below, which tells its own)
            warn(message, hint)
    if applied is not None:
        applied.extend((ordered[i], d) for i, d in their_done.items())
    for i in their_left:
        try:
            one(ordered[i])
        except Exception:
            if i not in their_failed:
                raise
            raise their_failed[i] from None  # (the redo's error came of it)
    return True


def repair(venv: Path, journal: Journal, *, probe: Probe, reporter: Reporter) -> set[str]:
    """Undo what an interrupted sync may have left: files its installs wrote (they are written
    again), and its stash. Returns the names it was changing: the plan then reinstalls or
    removes them."""
    names = set(journal.names)
    reporter.warn(
        f"the previous sync of {venv} did not finish; repairing "
        + (", ".join(sorted(names)) if names else "the environment")
    )
    delete_paths(journal.paths, venv=venv, keep_dirs=keep_dirs(probe.paths, venv))
    import shutil

    for entry in venv.iterdir():
        if entry.name.startswith(".lockenv-stash-"):
            shutil.rmtree(entry, ignore_errors=True)
    return names

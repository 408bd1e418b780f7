"""The `sync` use case: make the project's venv match the lock.

Lock freshness by default: a missing lock is an error (hint: `lockenv lock`); a stale one is
relocked first (as `uv sync` does), `--locked` fails with the typed reasons instead, `--frozen`
skips the check. A lock given with `--lockfile` that lockenv did not write (uv's, pip's) is
used as it is.

The no-op path (fingerprint unchanged) imports only the standard library and this module's
small helpers: no httpx, resolvelib, installer or rich.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lockenv.cache import Bucket
from lockenv.errors import BuildError, LockfileError, StaleLockError, SyncError
from lockenv.ops.wanted import Selection, own_runtime, python_request, record_selection, select_all
from lockenv.ops.wanted import lock_path as _lock_path
from lockenv.project import LOCK_NAME, foreign_virtual_env_warning
from lockenv.ui import counted

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from filelock import BaseFileLock
    from packaging.pylock import Pylock

    from lockenv.cache import Cache
    from lockenv.environment import Probe, ProbeAhead, VenvPlan
    from lockenv.models import ProjectSpec
    from lockenv.ops import reports
    from lockenv.sync.plan import SyncPlan
    from lockenv.sync.scan import Installed
    from lockenv.sync.selection import LockSource, Wanted
    from lockenv.ui import Reporter


@dataclass(frozen=True)
class SyncOptions(Selection):
    """What to select (shared with verify) and how to sync it."""

    python: str | None = None
    inexact: bool = False
    dry_run: bool = False
    locked: bool = False
    frozen: bool = False
    find_links: Path | None = None
    """Install from this directory alone (what `lockenv fetch` wrote), every file checked
    against the lock; no index is asked for a file."""
    offline: bool = False
    """No network: files (and a relock's pages) come from the cache or the sync fails naming them."""


def _fresh_state(options: SyncOptions) -> dict[str, Any] | None:
    from lockenv import __version__
    from lockenv.project import venv_path
    from lockenv.sync import state

    inputs = state.inputs_digest(_lock_path(options), state.options_key(options, __version__),
                                 options.project)
    return state.fresh_for(venv_path(options.project), inputs, options.frozen)


def is_noop(project: Path) -> bool:
    """True when a plain `lockenv sync` in `project` has nothing to do: lock, pyproject.toml,
    interpreter and every file of the venv as the last sync left them (`add` and `remove` ask
    it before and after their edit; the entry point asks the same of the options as parsed,
    `fastpath._noop_question`)."""
    try:
        return _fresh_state(SyncOptions(project=project)) is not None
    except Exception:
        return False


# -- sync -------------------------------------------------------------------------------------
def sync(options: SyncOptions, *, reporter: Reporter,
         on_result: Callable[[reports.SyncDryRun], None] | None = None,
         probing: ProbeAhead | None = None) -> int:
    """Make the venv hold exactly what the lock selects; returns the exit code. `on_result`
    receives a dry run's plan as data (`ops.reports.SyncDryRun`, for --json). `probing`: the
    venv's probe the caller started (`environment.ProbeAhead`), waited for before this returns
    (no interpreter is left running)."""
    try:
        return _sync(options, reporter=reporter, on_result=on_result, probing=probing)
    finally:
        if probing is not None:
            probing.take(None)


def _sync(options: SyncOptions, *, reporter: Reporter,
          on_result: Callable[[reports.SyncDryRun], None] | None, probing: ProbeAhead | None) -> int:
    started = time.perf_counter()
    if options.only_groups and (options.extras or options.all_extras):
        raise SyncError("--only-group leaves out the project's dependencies, and with them its "
                        "extras: --extra/--all-extras would do nothing",
                        hint="pass either --only-group or the extras")
    if options.locked and options.frozen:
        raise SyncError("--locked and --frozen contradict each other",
                        hint="--locked checks that the lock is up to date with pyproject.toml; "
                             "--frozen uses it without checking: pass one of them")
    foreign = foreign_virtual_env_warning(options.project, "syncing")
    if foreign:
        reporter.warn(foreign)
    if not options.dry_run:
        fresh = _fresh_state(options)
        if fresh is not None:
            reporter.status(f"Environment is up to date ({counted(fresh.get('packages', 0), 'package')}) "
                            f"in {time.perf_counter() - started:.2f}s")
            return 0
    from lockenv.cache import Cache
    from lockenv.project import venv_path

    cache = Cache()  # the one cache of this run, handed to every stage
    venv_dir = venv_path(options.project)
    lock_file = _lock_venv(cache, venv_dir, reporter)
    try:
        return _sync_locked(options, cache=cache, reporter=reporter, started=started,
                            on_result=on_result, probing=probing)
    finally:
        lock_file.release()


def _lock_venv(cache: Cache, venv_dir: Path, reporter: Reporter) -> BaseFileLock:
    """Hold the inter-process lock of one venv (filelock); the caller releases it. Only a sync
    with work to do gets here, so filelock's import (~10 ms) does not touch the no-op path."""
    from lockenv.sync.state import venv_lock_name

    lock_file = cache.lock(cache.bucket(Bucket.VENV_LOCKS) / venv_lock_name(venv_dir))
    try:
        lock_file.acquire(timeout=0.2)
    except Exception:
        reporter.status(f"Waiting for another lockenv process using {venv_dir}")
        lock_file.acquire()
    return lock_file


LOCK_HEADING = f"Changes to {LOCK_NAME}:"
PLAN_HEADING = "Changes to the environment:"
"""When sync locks first, the lock's changes and the install plan are told under these."""


@dataclass(frozen=True)
class _Checked:
    """The lock check's outcome: the project (None when there is no pyproject.toml, or the lock
    is foreign and not checked) and whether the lock was (or, in a dry run, would be) relocked."""

    spec: ProjectSpec | None
    relocked: bool = False
    preview: Pylock | None = None
    """A dry run's relocked lock, in memory only: the plan is made against it."""
    later: bool = False
    """The lock was found fresh before for this exact pyproject.toml (its marker): the project is
    read only when a step needs it (`spec` is None until then)."""


def _check_lock(options: SyncOptions, cache: Cache, reporter: Reporter,
                before_relock: Callable[[ProjectSpec], None] | None = None) -> _Checked:
    """Freshness per the options. `before_relock(spec)` runs before a stale lock is locked
    again, to fail first on what would fail after; a dry run shows the relock, writing nothing.
    The lockfile package is imported only where the lock is checked: a lock found fresh before
    (its marker) is not read here, nor is pyproject.toml parsed (manifest.load succeeded on these
    bytes when the marker was written; LOCKENV_KEYRING_PROVIDER, the one other input it reads and
    the marker does not record, keeps the eager read when set)."""
    lock_path = _lock_path(options)
    pyproject = options.project / "pyproject.toml"
    if options.lockfile is not None:
        from lockenv import manifest

        spec = manifest.load(options.project) if pyproject.exists() else None
        if options.locked and spec is not None:
            from lockenv.lockfile import read_inputs

            if read_inputs(lock_path) is not None:
                _fail_if_stale(spec, lock_path)
        return _Checked(spec)
    fresh_marker = None if options.frozen else _fresh_marker(options, cache, lock_path)
    if fresh_marker is not None and fresh_marker.exists() \
            and not os.environ.get("LOCKENV_KEYRING_PROVIDER", "").strip():
        return _Checked(None, later=True)
    from lockenv import manifest

    spec = manifest.load(options.project)
    if not lock_path.exists():
        if options.locked:
            raise StaleLockError(f"no {LOCK_NAME} in {options.project} (--locked)",
                                 hint="run `lockenv lock` to create it")
        if options.frozen:
            raise LockfileError(f"no {LOCK_NAME} in {options.project}",
                                hint="run `lockenv lock` to create it")
        if options.dry_run:
            return _preview_relock(options, spec, reporter, f"no {LOCK_NAME} yet; a sync would lock first")
        return _Checked(_relock(options, spec, reporter, f"no {LOCK_NAME} yet; locking first", before_relock),
                        relocked=True)
    if options.frozen:
        return _Checked(spec)
    if fresh_marker is not None and fresh_marker.exists():
        return _Checked(spec)
    from lockenv import lockfile

    reasons = lockfile.stale_reasons(spec, lock_path)
    if any(r.kind in ("edited", "invalid") for r in reasons):
        _refuse_edited(lock_path)
    if not reasons:
        if fresh_marker is not None:
            from lockenv.cache import write_atomic

            write_atomic(fresh_marker, b"fresh\n")
        return _Checked(spec)
    if options.locked:
        _fail_if_stale(spec, lock_path)
    if options.dry_run:  # a dry run writes nothing, not even the lock
        return _preview_relock(options, spec, reporter, f"{LOCK_NAME} is out of date "
                               f"({'; '.join(map(str, reasons))}); a sync would lock again first")
    return _Checked(_relock(options, spec, reporter,
                            f"{LOCK_NAME} is out of date ({'; '.join(map(str, reasons))}); locking again",
                            before_relock), relocked=True)


def _fresh_marker(options: SyncOptions, cache: Cache, lock_path: Path) -> Path | None:
    from lockenv import __version__
    from lockenv.sync.state import fresh_marker

    return fresh_marker(cache, options.project, lock_path, __version__)


def _spec_of(checked: _Checked, project: Path) -> Callable[[], ProjectSpec | None]:
    """The project, as `_check_lock` read it or (`later`) read on first use."""
    if not checked.later:
        return lambda: checked.spec
    memo: list[ProjectSpec] = []

    def read() -> ProjectSpec:
        if not memo:
            from lockenv import manifest

            memo.append(manifest.load(project))
        return memo[0]
    return read


def _preview_relock(options: SyncOptions, spec: ProjectSpec, reporter: Reporter, why: str) -> _Checked:
    """A dry run on a stale (or missing) lock: what the relock would change, and the relocked
    lock in memory for the plan. Nothing is written: not the lock, not the venv."""
    from lockenv.lockfile import to_pylock
    from lockenv.models import Resolution
    from lockenv.ops.lock import LockOptions, lock

    reporter.status(why + " (dry run: nothing is written)")
    kept: list[Resolution] = []
    code = lock(LockOptions(project=options.project, offline=options.offline, dry_run=True),
                reporter=reporter, on_resolution=kept.append, heading=LOCK_HEADING)
    if code:
        raise SyncError(f"locking {options.project} failed; nothing was planned")
    if not kept:  # another lockenv wrote a fresh lock meanwhile: plan against it
        return _Checked(spec)
    return _Checked(spec, relocked=True, preview=to_pylock(kept[0]))


def _relock(options: SyncOptions, spec: ProjectSpec, reporter: Reporter, why: str,
            before_relock: Callable[[ProjectSpec], None] | None) -> ProjectSpec:
    """Lock (pyproject.toml changed, or there is no lock yet), saying why; the new ProjectSpec."""
    from lockenv import manifest
    from lockenv.ops.lock import LockOptions, lock

    if before_relock is not None:
        before_relock(spec)
    reporter.status(why)
    code = lock(LockOptions(project=options.project, offline=options.offline), reporter=reporter,
                heading=LOCK_HEADING)
    if code:
        raise SyncError(f"locking {options.project} failed; nothing was synced")
    return manifest.load(options.project)


def _refuse_edited(lock_path: Path) -> None:
    """The committed lock is the team's: one edited by hand, not TOML, of another lock-version
    or badly structured is refused (the project unchanged), never silently relocked; the error
    names the file and the line or package entry."""
    from lockenv import lockfile

    lockfile.load(lock_path)  # the precise error when it is not a valid pylock file
    line = lockfile.edited_line(lock_path)
    where = f"{lock_path}:{line}" if line else str(lock_path)
    detail = ("its packages-sha256 does not match the file's contents" if line else
              "its packages-sha256 line is missing")
    raise LockfileError(
        f"{where}: {lock_path.name} was changed by hand since lockenv wrote it ({detail}); "
        "nothing was synced",
        hint="`git diff` shows the edit; run `lockenv lock` to regenerate the lock from "
             "pyproject.toml (it keeps the pins it can), then sync",
        context={"file": str(lock_path), "line": line},
    )


def _fail_if_stale(spec: ProjectSpec, lock_path: Path) -> None:
    from lockenv import lockfile

    reasons = lockfile.stale_reasons(spec, lock_path)
    if reasons:
        raise StaleLockError(
            f"{lock_path.name} is out of date with pyproject.toml",
            details=[str(r) for r in reasons],
            hint="run `lockenv lock` to update it",
            context={"file": str(lock_path)},
        )


def _preflight_venv(options: SyncOptions, requires_python: str | None, reporter: Reporter) -> None:
    """Everything about the venv that can fail (no interpreter for the request, a venv path that
    is a file, a foreign venv that does not fit), checked before the lock is rewritten; nothing
    changes here. `requires_python` is what the relocked lock will say (pyproject.toml's)."""
    from lockenv.environment import plan_venv

    request, source = python_request(options.python)
    plan_venv(options.project, request=request, requires_python=requires_python,
              reporter=reporter, source=source)


@dataclass(frozen=True)
class _Target:
    """The venv a sync changes and its interpreter, with what an interrupted sync left."""

    path: Path
    """Where the venv is (or would be made)."""
    venv_dir: Path | None
    """None on a dry run that would create the venv: the plan is for `probe`'s interpreter."""
    probe: Probe
    suspects: frozenset[str] = frozenset()
    """Distributions an interrupted sync was changing (reinstalled, or removed)."""
    removing: frozenset[str] = frozenset()
    """Distributions an interrupted sync was removing (removed even with --inexact)."""
    made: tuple[str, str, str] | None = None
    """The interpreter (path, version, implementation) this sync made the venv with, when there
    was none."""


@dataclass(frozen=True)
class _Planned:
    """Step 3's result: what the lock selects, what is installed, and the plan between them.
    (A dataclass without a docstring has one made from `inspect.signature` at import.)"""

    wanted: list[Wanted]
    installed: list[Installed]
    plan: SyncPlan


def _sync_locked(options: SyncOptions, *, cache: Cache, reporter: Reporter, started: float,
                 on_result: Callable[[reports.SyncDryRun], None] | None = None,
                 probing: ProbeAhead | None = None) -> int:
    """The sync under the venv's lock, in five steps that each return data: the checked lock,
    the venv (made or repaired), the plan, the plan told, and the plan carried out."""
    if not options.dry_run:  # another process may have synced while we waited for the lock
        fresh = _fresh_state(options)
        if fresh is not None:
            reporter.status(f"Environment is up to date ({counted(fresh.get('packages', 0), 'package')})")
            return 0
    from lockenv import __version__
    from lockenv.sync import state

    pyproject = state.read_pyproject(options.project)  # before the lock is checked against it
    spec, lock, lock_bytes, relocked = _read_lock(options, cache, reporter)
    inputs = state.inputs_digest_of(lock_bytes, state.options_key(options, __version__), pyproject)
    target = _open_venv(options, spec, lock, cache, reporter, probing)
    planned = _plan(options, spec, lock, target)
    _tell_plan(options, planned.plan, reporter, relocked)
    if options.dry_run:
        if on_result is not None:
            from lockenv.ops import reports  # only a dry run with --json (not the no-op path)

            on_result(reports.sync_dry_run(_lock_path(options), target.path,
                                           target.venv_dir is None, planned.plan))
        return 0
    return _carry_out(options, planned, target, spec=spec, lock=lock, inputs=inputs,
                      cache=cache, reporter=reporter, started=started, relocked=relocked)


def _read_lock(options: SyncOptions, cache: Cache,
               reporter: Reporter) -> tuple[Callable[[], ProjectSpec | None], LockSource, bytes, bool]:
    """Step 1: the lock, checked for freshness (relocked when stale; a dry run's relock only
    in memory), the project, the lock's bytes as read (read once: what is installed is what
    the fingerprint records), and whether it was relocked. The lock is parsed by the first step
    that needs more than its cached selection (`LockSource`): on a cache miss, step 2's first
    question, before anything changes, so its errors come where they came before. The project
    comes as a function: read on first use when the lock was found fresh for it before."""
    from lockenv.sync.selection import LockSource

    checked = _check_lock(options, cache, reporter, before_relock=lambda spec: _preflight_venv(
        options, spec.requires_python or None, reporter))
    path = _lock_path(options)
    if checked.preview is not None:
        return _spec_of(checked, options.project), LockSource(path, None, parsed=checked.preview), b"", \
            checked.relocked
    try:
        data = path.read_bytes()
    except OSError:
        data = None  # load_lock says what is wrong
    return _spec_of(checked, options.project), LockSource(path, cache, data=data), data or b"", \
        checked.relocked


def _open_venv(options: SyncOptions, spec: Callable[[], ProjectSpec | None], lock: LockSource, cache: Cache,
               reporter: Reporter, probing: ProbeAhead | None = None) -> _Target:
    """Step 2: the venv, created (or recreated) for the interpreter asked for, or as it is;
    repaired when a sync was interrupted. A dry run changes nothing. The venv's interpreter is
    probed meanwhile, in a process of its own (`probing`, when the fast path started it)."""
    from lockenv.environment import ProbeAhead, plan_venv, realize_venv, venv_path
    from lockenv.environment import probe as probe_interp

    probing = probing or ProbeAhead(venv_path(options.project), cache, request=options.python)
    probed = probing.take
    # No selection cached for this lock: a new lock or an empty cache, whose files are likely
    # to be downloaded too (a cached selection: likely a warm sync, which needs no HTTP client).
    uncached = lock.may_select_ahead()
    readied = not options.dry_run and _select_ahead(options, spec, lock, probing, reporter)
    try:
        requires_python = lock.requires_python()  # parses the lock unless its selection is cached
        request, source = python_request(options.python)
        venv_plan = plan_venv(options.project, request=request, requires_python=requires_python,
                              reporter=reporter, source=source, cache=cache)
    except BaseException:
        probed(None)  # no interpreter left running when the sync stops here
        raise
    with _client_readied(venv_plan.current is None and not options.dry_run and uncached
                         and not readied):
        if venv_plan.current is None:
            # Select for the interpreter the venv will be made with before making it: a lock
            # that cannot serve this machine fails with the project unchanged.
            assert venv_plan.interpreter is not None
            base = Path(venv_plan.interpreter.path)
            probe = probing.take_base(base) or probe_interp(base, reporter, cache=cache)
            probed(None)  # the venv may be recreated: not while its interpreter runs
            _require_cached(select_all(options, spec, lock, probe), lock, spec, options, cache,
                            reporter)
            if options.dry_run:  # no usable venv yet: plan for the interpreter we would use
                _tell_would_create(venv_plan, reporter)
                return _Target(venv_plan.path, None, probe)
        venv = realize_venv(venv_plan, reporter)
        target = _repair(options, venv.path,
                         probed(venv.python) or probe_interp(venv.python, reporter, cache=cache), reporter)
    made = venv_plan.interpreter if venv_plan.current is None and venv_plan.problem is None else None
    if made is None:
        return target
    return replace(target, made=(made.path, made.version, made.implementation))


@contextmanager
def _client_readied(active: bool) -> Iterator[None]:
    """The HTTP client's imports and CA store readied on a thread (`active`) while the body
    waits on the interpreter a new venv is made with (its probe, ~0.05 s of a subprocess on a
    cold sync with no venv yet), when `_select_ahead` did not ready them already (no child was
    forked). Not for a lock whose selection is cached: likely a warm sync, which downloads
    nothing (the thread's imports held its main thread up ~0.06 s at the join). Joined when the
    body ends: the unpacking workers are forked later, only from a process running no other
    thread."""
    if not active:
        yield
        return
    import threading

    thread = threading.Thread(target=_ready_client_quietly, name="lockenv-ready", daemon=True)
    thread.start()
    try:
        yield
    finally:
        thread.join()


def _ready_client() -> None:
    """The index client's modules imported and the CA store loaded, ahead of the client."""
    from lockenv.index import routing  # noqa: F401
    from lockenv.index.http import ready_client_imports

    ready_client_imports()


def _ready_client_quietly() -> None:
    try:
        _ready_client()
    except Exception:  # noqa: BLE001 - met again, and reported, where the client is made
        pass


def _select_ahead(options: SyncOptions, spec: Callable[[], ProjectSpec | None], lock: LockSource,
                  probing: ProbeAhead, reporter: Reporter) -> bool:
    """Parse and select from a lock with no selection cached yet in a forked child, while this
    process imports and readies its HTTP client: both are ~0.1 s of CPU on the way to the first
    download, on two cores instead of one. The child only writes the selection entry (sealed,
    as this process would: `LockSource.select`); this process then reads it, or, if the child
    failed or selected for another interpreter (the venv is to be recreated, or with no venv
    requires-python picks another than `ProbeAhead`'s likely one), parses and selects itself as
    before, and reports what it meets. Whether a child was forked (the HTTP client is then
    readied, and the unpacking module the downloads need next imported): after the fork,
    beside the child's work (imported before it, as when the fork helper lived there, the
    child started 0.007-0.018 s later: web, tmpfs, 5 pairs)."""
    if os.environ.get("LOCKENV_SELECT_AHEAD", "") == "0" or not lock.may_select_ahead():
        return False
    probe = probing.peek()
    if probe is None:
        return False
    from lockenv.sync.install.forks import Ahead

    started = time.monotonic()

    def select() -> None:
        if os.environ.get("LOCKENV_TEST_KILL_AHEAD"):  # tests: a child that dies
            import signal

            os.kill(os.getpid(), signal.SIGKILL)
        lock.requires_python()
        select_all(options, spec, lock, probe)

    ahead = Ahead.start(select)
    if ahead is None:
        return False
    try:
        from lockenv.sync.install import unpacker  # noqa: F401 - see the docstring

        _ready_client()
    except BaseException:
        ahead.kill()
        raise
    ended = ahead.wait(SELECT_AHEAD_TIMEOUT)
    took = f"{time.monotonic() - started:.2f} s"
    if lock.read_again():
        reporter.debug(f"selected from the lock in a child process: {took}")
    else:
        reporter.debug(f"the child process selecting from the lock left no selection ({took}"
                       + ("" if ended else ", stopped: taking too long") + "); selecting here")
    return True


SELECT_AHEAD_TIMEOUT = 20.0
"""Seconds `_select_ahead`'s child may take: parsing data's 1 MB lock and selecting takes
~0.3 s; one stuck longer is killed and this process parses and selects itself."""


def _require_cached(wanted: Sequence[Wanted], lock: LockSource, spec_of: Callable[[], ProjectSpec | None],
                    options: SyncOptions, cache: Cache, reporter: Reporter) -> None:
    """Under --offline (not a dry run): fail before the venv is even made when the cache lacks
    a file the new venv needs, naming them all."""
    if not options.offline or options.dry_run or options.find_links is not None:
        return
    from lockenv.index.routing import IndexRouter, with_default

    spec = spec_of()
    settings = with_default(getattr(spec, "indexes", None), _index_url(lock, spec, _lock_path(options)))
    with IndexRouter(settings, cache=cache, reporter=reporter, offline=True) as client:
        client.require_cached(w.file for w in wanted if w.file is not None and not w.local_path)


def _tell_would_create(venv_plan: VenvPlan, reporter: Reporter) -> None:
    assert venv_plan.interpreter is not None
    if venv_plan.problem is not None:
        reporter.status(f"Would recreate {venv_plan.path}: {venv_plan.problem}")
    else:
        reporter.status(f"Would create {venv_plan.path} with Python {venv_plan.interpreter.version}")


def _repair(options: SyncOptions, venv_dir: Path, probe: Probe, reporter: Reporter) -> _Target:
    """What an interrupted sync left (its journal): undone now, or, on a dry run, only told."""
    from lockenv.sync.journal import read_journal

    journal = read_journal(venv_dir)
    if journal is None:
        return _Target(venv_dir, venv_dir, probe)
    if options.dry_run:
        reporter.warn(f"the previous sync of {venv_dir} did not finish; a sync repairs it")
        suspects = set(journal.names)
    else:
        from lockenv.sync.apply import repair

        suspects = repair(venv_dir, journal, probe=probe, reporter=reporter)
    return _Target(venv_dir, venv_dir, probe, frozenset(suspects), frozenset(journal.removing))


def _plan(options: SyncOptions, spec: Callable[[], ProjectSpec | None], lock: LockSource,
          target: _Target) -> _Planned:
    """Step 3: what the lock selects, what is installed, and the plan between them."""
    from lockenv.sync.plan import Action, SyncPlan, plan
    from lockenv.sync.scan import scan

    installed = [] if target.venv_dir is None else \
        scan(target.probe.site_dirs, check=True, suspect=target.suspects)
    wanted = select_all(options, spec, lock, target.probe)
    installed = _mark_stale_editable(installed, wanted)
    protected = own_runtime(target.venv_dir) if target.venv_dir else set()
    sync_plan = plan(wanted, installed, exact=not options.inexact, protected=protected)
    if target.removing and options.inexact:  # finish removals an interrupted sync started
        sync_plan = SyncPlan(tuple(
            Action("remove", a.name, "removal interrupted earlier", None, a.installed)
            if a.kind == "keep" and a.wanted is None and a.name in target.removing else a
            for a in sync_plan.actions))
    return _Planned(wanted, installed, sync_plan)


def _show_plan(sync_plan: SyncPlan, reporter: Reporter, heading: bool = False) -> None:
    """The plan's lines; under their heading when the lock's changes were told just before."""
    lines = sync_plan.lines(with_reason=reporter.verbose)
    for line in ([PLAN_HEADING] if heading and lines else []) + lines:
        reporter.data(line)


def _tell_plan(options: SyncOptions, sync_plan: SyncPlan, reporter: Reporter,
               relocked: bool = False) -> None:
    """Step 4: the plan, when there is nothing to carry out (a real sync shows it once all it
    needs is fetched and verified), what --inexact keeps, and a dry run's summary."""
    if options.dry_run or sync_plan.is_empty:
        _show_plan(sync_plan, reporter, relocked)
    kept_extra = [a for a in sync_plan.of_kind("keep")
                  if a.wanted is None and a.installed and not a.is_seed_kept]
    if kept_extra and options.inexact:
        reporter.status("Kept (not in the lock): " + ", ".join(a.installed[0].label for a in kept_extra))
    if options.dry_run:
        reporter.status("Would " + (_summary(sync_plan.summary_counts()) or "change nothing")
                        + " (dry run)")


def _carry_out(options: SyncOptions, planned: _Planned, target: _Target, *,
               spec: Callable[[], ProjectSpec | None], lock: LockSource, inputs: str, cache: Cache,
               reporter: Reporter, started: float, relocked: bool = False) -> int:
    """Step 5: the plan carried out, and the fingerprint of the result kept for the no-op
    (`inputs`: of the bytes this sync read, F5)."""
    from lockenv.sync import state

    venv_dir, sync_plan = target.venv_dir, planned.plan
    assert venv_dir is not None
    if sync_plan.is_empty:
        state.clear_journal(venv_dir)  # a repair that found nothing left to do
        record_selection(venv_dir, options)
        state.write_state(venv_dir, inputs, len(planned.wanted), lock_checked=not options.frozen)
        reporter.status(f"Checked {counted(len(planned.installed), 'package')} in "
                        f"{time.perf_counter() - started:.2f}s; the environment matches the lock")
        return 0
    # The plan is shown once everything it needs is downloaded, verified and built: a refused
    # sync prints the error, not a plan it did not carry out.
    shown: list[bool] = []

    def show() -> None:
        if not shown:
            shown.append(True)
            _show_plan(sync_plan, reporter, relocked)

    key = _whole_key(options, planned, target)
    walked: dict[str, dict[str, list[Any]]] = {}  # the no-op's shape, listed as the plan placed it
    planned_whole = key is not None and _install_whole(key, sync_plan, target, cache, reporter, show, walked)
    if not planned_whole:
        applied: list[Any] | None = None if key is None else []
        _apply(sync_plan, options=options, spec_of=spec, probe=target.probe, venv_dir=venv_dir,
               lock=lock, cache=cache, reporter=reporter, before_changes=show, applied=applied)
        if key is not None and applied is not None:
            planned_whole = _keep_whole(key, sync_plan, applied, target.probe, cache)
    record_selection(venv_dir, options)
    state.write_state(venv_dir, inputs, len(planned.wanted), lock_checked=not options.frozen,
                      walked=walked if planned_whole else None)
    if planned_whole and key is not None and not relocked:
        _remember_warm(options, planned, target, key, inputs, cache)
    reporter.status(_summary(sync_plan.summary_counts(), past=True).capitalize()
                    + f" in {time.perf_counter() - started:.2f}s")
    return 0


def _whole_key(options: SyncOptions, planned: _Planned, target: _Target) -> str | None:
    """The key of the sync's sealed install plan (`sync.install.whole`); None when a plan does
    not cover it (something installed, anything but wheels, --find-links)."""
    if options.find_links is not None:
        return None
    from lockenv.sync.install.whole import key_for

    return key_for(planned.plan, planned.installed, probe=target.probe)


def _install_whole(key: str, sync_plan: SyncPlan, target: _Target, cache: Cache, reporter: Reporter,
                   before_changes: Callable[[], None], walked: dict[str, dict[str, list[Any]]]) -> bool:
    """The whole install from the sealed plan kept for `key`; False when there is none, or it
    does not fit (nothing of it is left: the caller installs wheel by wheel). `walked`:
    `whole.install`'s."""
    from lockenv.sync.install import whole

    assert target.venv_dir is not None
    if not whole.archives_cached(sync_plan, cache):
        return False
    kept = whole.load(cache, key)
    return kept is not None and whole.install(kept, venv=target.venv_dir, paths=target.probe.paths,
                                              python=target.probe.python, before_changes=before_changes,
                                              warn=reporter.warn, walked=walked)


def _remember_warm(options: SyncOptions, planned: _Planned, target: _Target, key: str, inputs: str,
                   cache: Cache) -> None:
    """Keep what the next warm sync into an empty venv of this shape needs to be served from
    `fastpath` alone (`sync.warm`): the sealed plan's `key` and what this sync told and wrote."""
    if options.lockfile is not None or options.find_links is not None or target.venv_dir is None:
        return
    from lockenv.ops.wanted import selection_bytes
    from lockenv.sync import warm

    request = python_request(options.python)[0]
    warm_key = warm.key_for(target.venv_dir, inputs, request)
    archives = [(a.wanted.file.sha256, a.wanted.file.filename, a.wanted.file.size)
                for a in planned.plan.changes if a.wanted is not None and a.wanted.file is not None
                and a.wanted.file.sha256]
    if warm_key is None or len(archives) != len(planned.plan.changes):
        return
    entry = warm.entry_for(warm_key, key, packages=len(planned.wanted),
                           lines=planned.plan.lines(with_reason=False),
                           summary=_summary(planned.plan.summary_counts(), past=True).capitalize(),
                           selection=selection_bytes(options), archives=archives,
                           paths=target.probe.paths, python=target.probe.python)
    if entry is None:
        return
    warm.remember(cache, entry)
    if target.made is not None:
        warm.remember_made(cache, target.venv_dir, inputs, request, warm_key, target.made)


def _keep_whole(key: str, sync_plan: SyncPlan, applied: Sequence[Any], probe: Probe,
                cache: Cache) -> bool:
    """Seal what this sync's installs did as the plan for `key`, when every install said;
    whether it was kept."""
    from lockenv.sync.install import whole

    if len(applied) != len(sync_plan.changes) or any(done is None for _, done in applied):
        whole.forget(cache, key)
        return False
    targets = [t for prepared, _ in applied for t in prepared.wheel.targets]
    try:
        plan = whole.assemble(key, (a.name for a in sync_plan.changes), targets,
                              [done for _, done in applied], probe.paths, probe.python)
    except whole.Unusable:  # a tree without a sealed manifest, copies: wheel by wheel each time
        whole.forget(cache, key)  # an older plan for this key would be tried (and fail) again
        return False
    return whole.save(cache, plan)


def _mark_stale_editable(installed: list[Installed], wanted: Sequence[Wanted]) -> list[Installed]:
    """An editable project installed before its pyproject.toml last changed is reinstalled."""
    projects = {w.name: w for w in wanted if w.is_project}
    out = []
    for dist in installed:
        want = projects.get(dist.name)
        if want is not None and want.local_path and dist.editable_url:
            try:
                newer = (Path(want.local_path) / "pyproject.toml").stat().st_mtime_ns > \
                    (Path(dist.dist_info) / "RECORD").stat().st_mtime_ns
            except OSError:
                newer = False
            if newer:
                dist = replace(dist, problems=(*dist.problems, "pyproject.toml changed since it was installed"))
        out.append(dist)
    return out


def _summary(counts: dict[str, int], past: bool = False) -> str:
    words = [("install", "installed"), ("upgrade", "upgraded"), ("downgrade", "downgraded"),
             ("reinstall", "reinstalled"), ("remove", "removed")]
    parts = []
    for kind, done in words:
        n = counts.get(kind, 0)
        if n:
            parts.append(f"{done if past else kind} {n}")
    return ", ".join(parts)


def _index_url(lock: LockSource, spec: ProjectSpec | None, lock_path: Path) -> str:
    """The index downloads and build requirements come from: LOCKENV_INDEX_URL when set, else
    the one the lock names (`[tool.lockenv] index-url`, else its packages' `index`), else the
    project's setting, else the default. pyproject.toml's URL is preferred when it is the lock's
    one unredacted (credentials are never written to the lock)."""
    from_env = os.environ.get("LOCKENV_INDEX_URL", "").strip()
    if from_env:
        return from_env
    from lockenv.urls import DEFAULT_INDEX_URL
    from lockenv.lockfile import read_inputs
    from lockenv.urls import redact_url

    configured = spec.index_url if spec is not None else None
    named = None
    try:
        inputs = read_inputs(lock_path)
    except Exception:  # a foreign or odd lock: its packages still name their index
        inputs = None
    if inputs is not None and inputs.index_url:
        named = inputs.index_url
    if named is None:
        named = next((p.index for p in lock.pylock.packages if p.index), None)
    if named is not None:
        if configured and redact_url(configured) == named:
            return configured
        return named
    return configured or DEFAULT_INDEX_URL


def _apply(sync_plan: SyncPlan, *, options: SyncOptions, spec_of: Callable[[], ProjectSpec | None],
           probe: Probe, venv_dir: Path, lock: LockSource, cache: Cache, reporter: Reporter,
           before_changes: Callable[[], None] | None = None, applied: list[Any] | None = None) -> None:
    """Fetch, build and validate everything, then change the venv. The index client (for
    downloads and build requirements) is created only when needed. `applied` receives what
    each install did (see `sync.apply.apply`)."""
    from lockenv.sync.apply import apply, fetch, prepare
    from lockenv.sync.install.tree import handing_over

    clients: list[Any] = []

    def client() -> Any:
        if not clients and options.find_links is not None:
            from lockenv.index.findlinks import FindLinks

            clients.append(FindLinks(options.find_links, cache=cache))
        if not clients:
            from lockenv.index.routing import IndexRouter, with_default

            # Every file is fetched through the client of the index the lock says it came
            # from, with that index's credentials only; build requirements come from the
            # lock's default index.
            spec = spec_of()
            settings = with_default(getattr(spec, "indexes", None),
                                    _index_url(lock, spec, _lock_path(options)))
            clients.append(IndexRouter(settings, cache=cache, reporter=reporter,
                                       offline=options.offline))
        return clients[0]

    def build_context() -> Any:
        if len(clients) < 2:
            from lockenv.ops.dispatch import distributions

            clients.append(distributions(client(), cache=cache, reporter=reporter))
        return clients[1].build_context

    def builder(want: Wanted, archive: Path | None) -> Path:
        from lockenv.dists import local_wheel

        editable = archive is None and want.editable
        try:
            return local_wheel(archive or Path(want.local_path or ""), python=Path(probe.python),
                               label=want.label, editable=editable, cache=cache,
                               reporter=reporter, context=build_context)
        except BuildError as exc:
            if editable and want.is_project:
                raise exc.with_hint(
                    "fix the project's build, or pass `--no-install-project` to sync only its "
                    "dependencies") from None
            raise

    try:
        if options.find_links is not None or options.offline:  # every file there, before anything changes
            client().require_cached(a.wanted.file for a in sync_plan.changes
                                    if a.wanted is not None and a.wanted.file is not None
                                    and not a.wanted.local_path)
        with handing_over():  # what fetch writes into the cache reaches prepare and apply in memory
            files = fetch(sync_plan, cache=cache, lock_path=_lock_path(options), client_factory=client,
                          reporter=reporter, probe=probe)
            prepared = prepare(sync_plan, files, probe=probe, venv=venv_dir, cache=cache,
                               builder=builder)
            if before_changes is not None:
                before_changes()
            apply(sync_plan, prepared, probe=probe, venv=venv_dir, cache=cache, reporter=reporter,
                  applied=applied)
    finally:
        for c in reversed(clients):
            c.close()


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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from lockenv.cache import Bucket
from lockenv.project import LOCK_NAME
from lockenv.errors import BuildError, IntegrityError, LockfileError, StaleLockError, SyncError
from lockenv.ops import reports
from lockenv.ops.wanted import Selection, own_runtime, python_request, select_all
from lockenv.ops.wanted import lock_path as _lock_path



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


def _options_key(options: SyncOptions) -> str:
    from lockenv import __version__

    fields = (
        __version__, options.python or os.environ.get("LOCKENV_PYTHON", ""),
        sorted(options.extras), options.all_extras, sorted(options.groups),
        sorted(options.only_groups), options.no_default_groups, options.all_groups,
        options.inexact, str(options.lockfile or ""), options.install_project,
        os.environ.get("LOCKENV_INDEX_URL", ""), os.environ.get("LOCKENV_VENV", ""),
    )
    return repr(fields)


def _fresh_state(options: SyncOptions) -> dict | None:
    from lockenv.project import venv_path
    from lockenv.sync import state

    venv = venv_path(options.project)
    inputs = state.inputs_digest(_lock_path(options), _options_key(options), options.project)
    fresh = state.is_fresh(venv, inputs)
    if fresh is not None and not options.frozen and not fresh.get("lock_checked"):
        return None  # the last sync was --frozen: this one must check the lock first
    return fresh


def is_noop(project: Path, options: SyncOptions | None = None) -> bool:
    """True when `lockenv sync` (plain, or with `options`) in `project` has nothing to do: lock,
    options, pyproject.toml, interpreter and every file of the venv as the last sync left
    them. Imports only the standard library (the CLI's fast path calls it before typer)."""
    try:
        opts = options or SyncOptions(project=project)
        if opts.locked and opts.frozen:
            return False  # an error, reported by sync()
        return not opts.dry_run and _fresh_state(opts) is not None
    except Exception:
        return False


# -- sync -------------------------------------------------------------------------------------
def sync(options: SyncOptions, *, reporter: Any, on_result: Any = None) -> int:
    """Make the venv hold exactly what the lock selects; returns the exit code. `on_result`
    receives a dry run's plan as data (`ops.reports.SyncDryRun`, for --json)."""
    started = time.perf_counter()
    if options.only_groups and (options.extras or options.all_extras):
        raise SyncError("--only-group leaves out the project's dependencies, and with them its "
                        "extras: --extra/--all-extras would do nothing",
                        hint="pass either --only-group or the extras")
    if options.locked and options.frozen:
        raise SyncError("--locked and --frozen contradict each other",
                        hint="--locked checks that the lock is up to date with pyproject.toml; "
                             "--frozen uses it without checking: pass one of them")
    if not options.dry_run:
        fresh = _fresh_state(options)
        if fresh is not None:
            reporter.status(f"Environment is up to date ({fresh.get('packages', 0)} packages) "
                            f"in {time.perf_counter() - started:.2f}s")
            return 0
    from lockenv.cache import Cache
    from lockenv.project import venv_path

    venv_dir = venv_path(options.project)
    release = _lock_venv(Cache().bucket(Bucket.VENV_LOCKS) / _path_key(venv_dir), venv_dir, reporter)
    try:
        return _sync_locked(options, reporter=reporter, started=started, on_result=on_result)
    finally:
        release()


def _lock_venv(key: Path, venv_dir: Path, reporter: Any) -> Any:
    """Hold the inter-process lock of one venv (filelock); returns the function that releases
    it. Only a sync with work to do gets here, so filelock's import (~10 ms) does not touch the
    no-op path."""
    from lockenv.cache import Cache

    lock_file = Cache().lock(key)
    try:
        lock_file.acquire(timeout=0.2)
    except Exception:
        reporter.status(f"Waiting for another lockenv process using {venv_dir}")
        lock_file.acquire()
    return lock_file.release


def _path_key(path: Path) -> str:
    import hashlib

    return hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:32]


def _check_lock(options: SyncOptions, reporter: Any, before_relock: Any = None) -> Any:
    """Freshness per the options; returns the ProjectSpec (None when there is no pyproject.toml
    or the lock is foreign and not checked). `before_relock(spec)` runs before a stale lock is
    locked again, to fail first on what would fail after."""
    from lockenv import lockfile, manifest

    lock_path = _lock_path(options)
    pyproject = options.project / "pyproject.toml"
    if options.lockfile is not None:
        spec = manifest.load(options.project) if pyproject.exists() else None
        if options.locked and spec is not None and lockfile.read_inputs(lock_path) is not None:
            _fail_if_stale(spec, lock_path)
        return spec
    spec = manifest.load(options.project)
    if not lock_path.exists():
        raise LockfileError(f"no {LOCK_NAME} in {options.project}",
                            hint="run `lockenv lock` to create it")
    if options.frozen:
        return spec
    fresh_marker = _fresh_marker(options.project, lock_path)
    if fresh_marker is not None and fresh_marker.exists():
        return spec
    reasons = lockfile.stale_reasons(spec, lock_path)
    if not reasons:
        if fresh_marker is not None:
            from lockenv.cache import write_atomic

            write_atomic(fresh_marker, b"fresh\n")
        return spec
    if options.locked:
        _fail_if_stale(spec, lock_path)
    if options.dry_run:  # a dry run writes nothing, not even the lock
        reporter.warn(f"{LOCK_NAME} is out of date ({'; '.join(map(str, reasons))}); a sync would "
                      "lock again first. The plan below is for the lock as it is")
        return spec
    if before_relock is not None:
        before_relock(spec)
    reporter.status(f"{LOCK_NAME} is out of date ({'; '.join(map(str, reasons))}); locking again")
    from lockenv.ops.lock import LockOptions, lock

    code = lock(LockOptions(project=options.project), reporter=reporter)
    if code:
        raise SyncError(f"locking {options.project} failed; nothing was synced")
    return manifest.load(options.project)


def _fresh_marker(project: Path, lock_path: Path) -> Path | None:
    """A cache file that exists when this exact lock was found fresh for this exact
    pyproject.toml (and index URL setting): freshness is a function of those bytes alone, and
    checking it parses the whole lock."""
    import hashlib

    from lockenv import __version__
    from lockenv.cache import Cache

    try:
        h = hashlib.sha256(lock_path.read_bytes())
        h.update(b"\0" + (project / "pyproject.toml").read_bytes())
    except OSError:
        return None
    h.update(f"\0{os.environ.get('LOCKENV_INDEX_URL', '')}\0{__version__}".encode())
    return Cache().root / Bucket.FRESH_LOCKS.value / h.hexdigest()


def _fail_if_stale(spec: Any, lock_path: Path) -> None:
    from lockenv import lockfile

    reasons = lockfile.stale_reasons(spec, lock_path)
    if reasons:
        raise StaleLockError(
            f"{lock_path.name} is out of date with pyproject.toml",
            details=[str(r) for r in reasons],
            hint="run `lockenv lock` to update it",
            context={"file": str(lock_path)},
        )


def _preflight_venv(options: SyncOptions, requires_python: str | None, reporter: Any) -> None:
    """Everything about the venv that can fail (no interpreter for the request, a venv path that
    is a file, a foreign venv that does not fit), checked before the lock is rewritten; nothing
    changes here. `requires_python` is what the relocked lock will say (pyproject.toml's)."""
    from lockenv.environment import plan_venv

    request, source = python_request(options.python)
    plan_venv(options.project, request=request, requires_python=requires_python,
              reporter=reporter, source=source)


def _sync_locked(options: SyncOptions, *, reporter: Any, started: float, on_result: Any = None) -> int:
    from lockenv.environment import plan_venv, realize_venv
    from lockenv.environment import probe as probe_interp
    from lockenv.sync import state
    from lockenv.sync.plan import plan
    from lockenv.sync.scan import scan
    from lockenv.sync.selection import load_lock

    if not options.dry_run:  # another process may have synced while we waited for the lock
        fresh = _fresh_state(options)
        if fresh is not None:
            reporter.status(f"Environment is up to date ({fresh.get('packages', 0)} packages)")
            return 0
    spec = _check_lock(options, reporter, before_relock=lambda spec: _preflight_venv(
        options, spec.requires_python or None, reporter))
    lock_path = _lock_path(options)
    lock = load_lock(lock_path)
    requires_python = str(lock.requires_python) if lock.requires_python else None
    request, source = python_request(options.python)
    venv_plan = plan_venv(options.project, request=request, requires_python=requires_python,
                          reporter=reporter, source=source)
    if venv_plan.current is None:
        # Select for the interpreter the venv will be made with before making it: a lock that
        # cannot serve this machine fails with the project unchanged.
        assert venv_plan.interpreter is not None
        probe = probe_interp(Path(venv_plan.interpreter.path), reporter)
        select_all(options, spec, lock, probe)
        if options.dry_run:
            if venv_plan.problem is not None:
                reporter.status(f"Would recreate {venv_plan.path}: {venv_plan.problem}")
            else:
                reporter.status(f"Would create {venv_plan.path} with Python "
                                f"{venv_plan.interpreter.version}")
    venv = None if options.dry_run and venv_plan.current is None else realize_venv(venv_plan, reporter)
    if venv is None:  # dry run, no usable venv yet: plan for the interpreter we would use
        installed: list = []
        venv_dir = None
        suspects: set[str] = set()
        removing: set[str] = set()
    else:
        venv_dir = venv.path
        probe = probe_interp(venv.python, reporter)
        journal = state.read_journal(venv_dir)
        suspects = set()
        removing = set()
        if journal is not None:
            if options.dry_run:
                reporter.warn(f"the previous sync of {venv_dir} did not finish; a sync repairs it")
                suspects = set(journal.get("names", []))
            else:
                from lockenv.sync.apply import repair

                suspects = repair(venv_dir, journal, probe=probe, reporter=reporter)
            removing = set(journal.get("removing", []))
        installed = scan(probe.site_dirs, check=True, suspect=suspects)
    wanted = select_all(options, spec, lock, probe)
    installed = _mark_stale_editable(installed, wanted)
    protected = own_runtime(venv_dir) if venv_dir else set()
    sync_plan = plan(wanted, installed, exact=not options.inexact, protected=protected)
    if removing and options.inexact:  # finish removals an interrupted sync started
        from lockenv.sync.plan import Action, SyncPlan

        sync_plan = SyncPlan(tuple(
            Action("remove", a.name, "removal interrupted earlier", None, a.installed)
            if a.kind == "keep" and a.wanted is None and a.name in removing else a
            for a in sync_plan.actions))
    def show_plan() -> None:
        for line in sync_plan.lines(with_reason=reporter.verbose):
            reporter.data(line)

    if options.dry_run or sync_plan.is_empty:
        show_plan()
    kept_extra = [a for a in sync_plan.of_kind("keep")
                  if a.wanted is None and a.installed and not a.is_seed_kept]
    if kept_extra and options.inexact:
        reporter.status("Kept (not in the lock): " + ", ".join(a.installed[0].label for a in kept_extra))
    counts = sync_plan.summary_counts()
    if options.dry_run:
        if on_result is not None:
            on_result(reports.sync_dry_run(lock_path, venv_plan.path, venv is None, sync_plan))
        reporter.status("Would " + (_summary(counts) or "change nothing") + " (dry run)")
        return 0
    assert venv_dir is not None
    inputs = state.inputs_digest(lock_path, _options_key(options), options.project)
    n_packages = len(wanted)
    if sync_plan.is_empty:
        state.clear_journal(venv_dir)  # a repair that found nothing left to do
        state.write_state(venv_dir, inputs, n_packages, lock_checked=not options.frozen)
        reporter.status(f"Checked {len(installed)} packages in {time.perf_counter() - started:.2f}s; "
                        "the environment matches the lock")
        return 0
    # The plan is shown once everything it needs is downloaded, verified and built: a refused
    # sync prints the error, not a plan it did not carry out.
    _apply(sync_plan, options=options, spec=spec, probe=probe, venv_dir=venv_dir, lock=lock,
           reporter=reporter, before_changes=show_plan)
    state.write_state(venv_dir, inputs, n_packages, lock_checked=not options.frozen)
    reporter.status(_summary(counts, past=True).capitalize()
                    + f" in {time.perf_counter() - started:.2f}s")
    return 0


def _mark_stale_editable(installed: list, wanted: list) -> list:
    """An editable project installed before its pyproject.toml last changed is reinstalled."""
    projects = {w.name: w for w in wanted if w.is_project}
    out = []
    for dist in installed:
        want = projects.get(dist.name)
        if want is not None and dist.editable_url:
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


def _index_url(lock: Any, spec: Any, lock_path: Path) -> str:
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

    configured = getattr(spec, "index_url", None) if spec is not None else None
    named = None
    try:
        inputs = read_inputs(lock_path)
    except Exception:  # a foreign or odd lock: its packages still name their index
        inputs = None
    if inputs is not None and inputs.index_url:
        named = inputs.index_url
    if named is None:
        named = next((p.index for p in lock.packages if p.index), None)
    if named is not None:
        if configured and redact_url(configured) == named:
            return configured
        return named
    return configured or DEFAULT_INDEX_URL


def _blame_lock(exc: IntegrityError, sync_plan: Any, lock_path: Path) -> IntegrityError:
    """A file that does not match its sha256 in the lock, told as such: the expected hash comes
    from the lock (edited by hand, or the index serves another file), not from the index."""
    from lockenv.urls import redact_url

    url, file = exc.context.get("url"), exc.context.get("file")
    for action in sync_plan.changes:
        want = action.wanted
        if want is None or want.file is None:
            continue
        if (url and redact_url(want.file.url) == url) or (file and want.local_path == file):
            return IntegrityError(
                f"{want.file.filename} ({want.name} {want.version}) does not match its sha256 "
                f"in {lock_path}; nothing was changed",
                details=exc.details,
                context={"file": str(lock_path), "package": want.name,
                         **({"url": url} if url else {})},
                hint=f"if {lock_path.name} was edited by hand, run `lockenv lock` again; "
                     "otherwise the index (or a proxy) serves a different file than the one locked",
            )
    return exc


def _apply(sync_plan: Any, *, options: SyncOptions, spec: Any, probe: Any, venv_dir: Path,
           lock: Any, reporter: Any, before_changes: Any = None) -> None:
    """Fetch, build and validate everything, then change the venv. The index client (for
    downloads and build requirements) is created only when needed."""
    from lockenv.cache import Cache
    from lockenv.sync.apply import apply, fetch, prepare

    clients: list[Any] = []
    cache = Cache()

    def client() -> Any:
        if not clients and options.find_links is not None:
            from lockenv.index.findlinks import FindLinks

            clients.append(FindLinks(options.find_links, cache=cache))
        if not clients:
            from lockenv.index.routing import IndexRouter, with_default

            # Every file is fetched through the client of the index the lock says it came
            # from, with that index's credentials only; build requirements come from the
            # lock's default index.
            settings = with_default(getattr(spec, "indexes", None),
                                    _index_url(lock, spec, _lock_path(options)))
            clients.append(IndexRouter(settings, cache=cache, reporter=reporter))
        return clients[0]

    def build_context() -> Any:
        if len(clients) < 2:
            from lockenv.ops.dispatch import distributions

            clients.append(distributions(client(), cache=cache, reporter=reporter))
        return clients[1].build_context

    def builder(want: Any, archive: Path | None) -> Path:
        from lockenv.dists import local_wheel

        editable = archive is None and want.editable
        try:
            return local_wheel(archive or Path(want.local_path), python=Path(probe.python),
                               label=want.label, editable=editable, cache=cache,
                               reporter=reporter, context=build_context)
        except BuildError as exc:
            if editable and want.is_project:
                raise exc.with_hint(
                    "fix the project's build, or pass `--no-install-project` to sync only its "
                    "dependencies") from None
            raise

    try:
        try:
            files = fetch(sync_plan, client_factory=client, reporter=reporter)
        except IntegrityError as exc:
            raise _blame_lock(exc, sync_plan, _lock_path(options)) from None
        prepared = prepare(sync_plan, files, probe=probe, venv=venv_dir, builder=builder)
        if before_changes is not None:
            before_changes()
        apply(sync_plan, prepared, probe=probe, venv=venv_dir, reporter=reporter)
    finally:
        for c in reversed(clients):
            c.close()


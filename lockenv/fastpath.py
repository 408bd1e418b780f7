"""The no-op answer for `lockenv lock` / `lockenv sync` / `lockenv run`, given before the CLI
framework loads.

CI runs these thousands of times a day with nothing to do; importing typer (and the pydantic it
brings) alone costs ~0.15 s. So the entry point first parses the few argument shapes a no-op can
have and asks the use case whether there is anything to do; any other shape, or any doubt, falls
through to the full CLI, which decides again.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from lockenv.project import find_project, lock_noop_marker

TYPE_CHECKING = False
"""`typing.TYPE_CHECKING` (mypy takes any `TYPE_CHECKING` as true), without importing `typing`:
~2.5 ms, 5% of a warm sync of web and a tenth of a no-op. No module the no-op and warm paths
import (this one, `project`, `cache`, `errors`, `ui`, `sync.state`, `sync.warm`,
`sync.install.{fs,whole,remove,forks}`) imports typing at run time; the warm test checks."""

if TYPE_CHECKING:
    from lockenv.environment import ProbeAhead
    from lockenv.ops.sync import SyncOptions


_SYNC_FLAGS = {
    "--all-extras": "all_extras", "--no-default-groups": "no_default_groups",
    "--all-groups": "all_groups", "--inexact": "inexact", "--locked": "locked",
    "--frozen": "frozen",
}
_SYNC_LISTS = {"--extra": "extras", "--group": "groups", "--only-group": "only_groups"}


def _parse(argv: list[str]) -> tuple[str, Path, bool, dict[str, object]] | None:
    """(command, project, quiet, options) for the shapes a no-op can have, else None."""
    project: Path | None = None
    quiet = False
    command: str | None = None
    options: dict[str, object] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        value = argv[i + 1] if i + 1 < len(argv) else None
        if "=" in arg and arg.startswith("--"):
            arg, value = arg.split("=", 1)
            step = 1
        else:
            step = 2
        if arg in ("-q", "--quiet"):
            quiet, step = True, 1
        elif arg in ("-C", "--project") and value is not None:
            project = Path(value)
        elif command is None and arg in ("lock", "sync"):
            command, step = arg, 1
        elif command in ("lock", "sync") and arg == "--offline":
            step = 1  # a no-op uses no network anyway
            options["offline"] = True  # the SyncOptions the CLI would make
        elif command == "lock" and arg == "--check":
            options["check"], step = True, 1
        elif command == "sync" and arg in _SYNC_FLAGS:
            options[_SYNC_FLAGS[arg]], step = True, 1
        elif command == "sync" and arg in _SYNC_LISTS and value is not None:
            key = _SYNC_LISTS[arg]
            options[key] = (*options.get(key, ()), value)  # type: ignore[misc]
        elif command == "sync" and arg == "--python" and value is not None:
            options["python"] = value
        elif command == "sync" and arg == "--lockfile" and value is not None:
            options["lockfile"] = Path(value).resolve()
        elif command == "sync" and arg == "--no-install-project":
            options["install_project"], step = False, 1
        else:
            return None
        i += step
    if command is None:
        return None
    if project is None:
        return command, find_project(Path.cwd()), quiet, options
    return command, project.resolve(), quiet, options


def try_noop(argv: list[str]) -> int | None:
    """The exit code when the command had nothing to do (and said so), or was a sync this
    module runs itself (see `_sync`); None to run the full CLI."""
    return _try_noop(_parse(argv))


def _try_noop(parsed: tuple[str, Path, bool, dict[str, object]] | None) -> int | None:
    if parsed is None:
        return None
    command, project, quiet, options = parsed
    if command == "lock":
        marker = lock_noop_marker(project)
        if marker is None or not marker.exists():
            _fewer_collections()
            from lockenv.ops.lock import is_noop

            if not is_noop(project):
                return None if options else _lock(project, quiet)
        message = "pylock.toml is up to date"
    else:
        _fewer_collections()
        code = _sync_here(project, quiet, options)
        if code is not None:
            return code
        probing = _probe_ahead(project, options)  # before ops.sync's imports, which it overlaps
        from lockenv.ops.sync import SyncOptions

        return _sync(SyncOptions(project=project, **options), quiet, probing)  # type: ignore[arg-type]
    if not quiet:
        print(message, file=sys.stderr)
    return 0


def _sync_here(project: Path, quiet: bool, options: dict[str, object]) -> int | None:
    """A sync with nothing to do (the no-op: `ops.sync.is_noop`'s question, asked of the
    options as parsed, without importing ops.sync), or a warm sync into an empty venv served
    from its sealed entry (`sync.warm`); None for the full sync."""
    import time

    started = time.perf_counter()
    asked = _noop_question(project, options)
    if asked is None:
        return None
    fresh, venv, lock, pyproject, inputs = asked
    if fresh:
        _warn_foreign_venv(project, "syncing", quiet)
        if not quiet:
            print("Environment is up to date", file=sys.stderr)
        return 0
    return _warm(project, venv, quiet, options, lock=lock, pyproject=pyproject, inputs=inputs,
                 started=started)


def _noop_question(project: Path, options: dict[str, object]
                   ) -> tuple[bool, Path, bytes, bytes | None, str] | None:
    """`ops.sync.is_noop`'s question of the options as parsed (sync's and run's), without
    importing ops.sync: (nothing to do?, the venv, the lock's and pyproject.toml's bytes, the
    inputs digest); None when in doubt (the full sync decides, and reports)."""
    from lockenv import __version__
    from lockenv.project import LOCK_NAME, venv_path
    from lockenv.sync import state

    if options.get("locked") and options.get("frozen"):
        return None  # an error, reported by the full sync
    lock_path = options.get("lockfile") or project / LOCK_NAME
    try:
        lock = Path(str(lock_path)).read_bytes()
        pyproject = state.read_pyproject(project)
        inputs = state.inputs_digest_of(lock, state.options_key_of(options, __version__), pyproject)
        venv = venv_path(project)
        fresh = state.fresh_for(venv, inputs, bool(options.get("frozen")))
    except Exception:  # noqa: BLE001 - any doubt: the full sync decides (and reports)
        return None
    return fresh is not None, venv, lock, pyproject, inputs


def _warm(project: Path, venv: Path, quiet: bool, options: dict[str, object], *, lock: bytes,
          pyproject: bytes | None, inputs: str, started: float) -> int | None:
    """`sync.warm.serve`, told as the full sync tells it (its reporter, its errors)."""
    from lockenv import __version__
    from lockenv.ops.in_use import hold_in_use
    from lockenv.sync import warm
    from lockenv.ui import TerminalReporter, run_use_case

    hold_in_use()  # before the first cache entry is read, as the full sync
    reporter = TerminalReporter(quiet=quiet)
    said = warm.Said(reporter, lambda: _warn_foreign_venv(project, "syncing", quiet))
    served: list[int | None] = []

    def serve() -> int:
        served.append(warm.serve(venv, options, lock=lock, pyproject=pyproject, inputs=inputs,
                                 version=__version__, said=said, started=started))
        return served[0] or 0

    code = run_use_case(reporter, serve)
    return code if not served or served[0] is not None else None


def _probe_ahead(project: Path, options: dict[str, object]) -> ProbeAhead | None:
    """The probe of the project's venv interpreter (or, with no venv yet, of the one it will
    likely be made with), started as a process read when first needed (`ProbeAhead`); None
    when it cannot start here (the sync then probes as it always did, and reports)."""
    from lockenv.ops.in_use import hold_in_use

    hold_in_use()  # before the probe's cache entry is read or written, as the full sync
    try:
        from lockenv.environment import ProbeAhead
        from lockenv.project import venv_path

        python = options.get("python")
        return ProbeAhead(venv_path(project), request=python if isinstance(python, str) else None)
    except Exception:  # noqa: BLE001 - the full sync meets it again, and reports it
        return None


def _sync(options: SyncOptions, quiet: bool, probing: ProbeAhead | None = None) -> int:
    """A sync with work to do, in this shape, runs here too: the CLI framework (typer, click:
    ~50 ms to import) adds nothing to it. Errors are told as the CLI tells them."""
    from lockenv.ops.in_use import hold_in_use
    from lockenv.ops.sync import sync
    from lockenv.ui import TerminalReporter, run_use_case

    reporter = TerminalReporter(quiet=quiet)
    hold_in_use()  # `cache clean/prune` leave alone what a running lockenv may be using
    return run_use_case(reporter, lambda: sync(options, reporter=reporter, probing=probing))


SYNC_GC_THRESHOLD = 50_000
"""Allocations between young-generation collections during a sync, and a lock's start-up
(CPython's default: 700)."""


def _fewer_collections() -> None:
    """A sync (its imports included) allocates many short-lived, acyclic objects: modules,
    tree manifests, targets, the lock. At CPython's default threshold a warm sync ran ~72
    collections on web and ~140 on data (0.007-0.009 s, 0.018-0.13 s of CPU, freeing next to
    nothing); cycles are still collected, only less often. A lock's imports and set-up before it
    resolves ran 36 collections on web (11 at this threshold); resolving sets its own
    (`ops.lock._few_collections`)."""
    import gc

    gc.set_threshold(SYNC_GC_THRESHOLD, *gc.get_threshold()[1:])


def _lock(project: Path, quiet: bool) -> int:
    """A plain `lockenv [-q] [-C DIR] lock` with work to do runs here too, as `_sync` does: the
    CLI framework (typer, click: ~50-90 ms to import, measured with -X importtime) would be
    most of a cold lock's start-up."""
    from lockenv.ops.in_use import hold_in_use
    from lockenv.ops.lock import LockOptions, lock
    from lockenv.ui import TerminalReporter, run_use_case

    reporter = TerminalReporter(quiet=quiet)
    hold_in_use()
    return run_use_case(reporter, lambda: lock(LockOptions(project=project), reporter=reporter))


def _warn_foreign_venv(project: Path, doing: str, quiet: bool) -> None:
    from lockenv.project import foreign_virtual_env_warning

    warning = foreign_virtual_env_warning(project, doing)
    if warning and not quiet:
        print(f"warning: {warning}", file=sys.stderr)


def _parse_run(argv: list[str]) -> tuple[Path, bool, dict[str, object], bool, list[str]] | None:
    """(project, quiet, sync options, --no-sync, command) for `lockenv [-q] [-C DIR] run
    [selection flags] CMD [ARGS...]`, else None (the full CLI handles every other shape)."""
    project: Path | None = None
    quiet = no_sync = False
    options: dict[str, object] = {}
    i = 0
    while i < len(argv) and argv[i] != "run":  # the global options before `run`
        if argv[i] in ("-q", "--quiet"):
            quiet, i = True, i + 1
        elif argv[i] in ("-C", "--project") and i + 1 < len(argv):
            project, i = Path(argv[i + 1]), i + 2
        else:
            return None
    i += 1
    while i < len(argv):
        arg = argv[i]
        if arg == "--" or not arg.startswith("-"):
            command = argv[i + 1:] if arg == "--" else argv[i:]
            break
        if arg in _SYNC_FLAGS and arg != "--inexact":
            options[_SYNC_FLAGS[arg]] = True
        elif arg in _SYNC_LISTS and i + 1 < len(argv):
            key = _SYNC_LISTS[arg]
            options[key] = (*options.get(key, ()), argv[i + 1])  # type: ignore[misc]
            i += 1
        elif arg == "--no-sync":
            no_sync = True
        elif arg in ("-q", "--quiet"):
            quiet = True
        elif arg == "--offline":
            options["offline"] = True
        else:
            return None
        i += 1
    else:
        return None
    if not command:
        return None
    where = project.resolve() if project is not None else find_project(Path.cwd())
    return where, quiet, options, no_sync, command


def try_run(argv: list[str]) -> None:
    """`lockenv run` with nothing to sync (or --no-sync): exec the command now, without the
    CLI framework. Returns (to let the full CLI sync and report) in every other case."""
    parsed = _parse_run(argv)
    if parsed is None:
        return
    project, quiet, options, no_sync, command = parsed
    from lockenv.project import PYPROJECT

    if not (project / PYPROJECT).is_file():
        return
    if not no_sync:
        asked = _noop_question(project, options)
        if asked is None or not asked[0]:
            return
    import shutil

    from lockenv.errors import LockenvError
    from lockenv.ops.run import command_env, exec_command
    from lockenv.project import venv_path

    venv = venv_path(project)
    if not venv.is_dir() or not shutil.which(command[0], path=command_env(venv)["PATH"]):
        return  # the full CLI says what is wrong, once
    _warn_foreign_venv(project, "running in", quiet)
    try:
        exec_command(project, command)
    except LockenvError:
        return  # said by the full CLI, which finds the same problem


def _exit_now(code: int) -> None:
    """End a command's process without the interpreter's teardown: output flushed and exit
    handlers run (atexit, so weakref finalizers and filelock's too), then `os._exit`. The
    teardown frees every module and object one by one and collects them: on a warm sync of
    web that was ~25 ms of CPU (and more wall) after the sync had finished, a sixth of the
    whole process; after a cold lock, which leaves its pages, files and resolutions behind,
    0.10-0.12 s of wall on web and 0.15-0.16 s on data. Only when no other thread runs (else
    the normal exit joins them, as always), and not when flushing fails (a closed pipe: the
    normal exit reports it)."""
    import threading

    if threading.active_count() != 1:
        return
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:  # noqa: BLE001 - the normal exit says what is wrong, with its code
        return
    import atexit

    atexit._run_exitfuncs()  # once: returning now would run them again at the normal exit
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:  # noqa: BLE001 - a closed pipe: 120, as the interpreter's own exit says
        os._exit(code or 120)
    os._exit(code)


def main() -> None:
    """Console-script entry point. Ctrl-C before a use case runs (while this imports, checks
    the no-op or loads the CLI) ends as it does inside one (`ui.run_use_case`): a line, 130,
    never a traceback."""
    try:
        _main()
    except KeyboardInterrupt:
        try:
            sys.stderr.write("error: interrupted\n")
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        raise SystemExit(130) from None


def _main() -> None:
    try:
        os.getcwd()
    except OSError:  # F25: run from a directory deleted under it (no project can be found)
        sys.stderr.write("error: the current directory no longer exists\n\n"
                         "hint: cd into the project again (it may have been removed or recreated)\n")
        raise SystemExit(2) from None
    parsed = _parse(sys.argv[1:])
    code = _try_noop(parsed)
    if code is not None:
        if parsed is not None:  # a sync or a lock, done
            _exit_now(code)
        raise SystemExit(code)
    try_run(sys.argv[1:])
    from lockenv.cli import app

    try:
        app()
    except SystemExit as done:  # the CLI framework always ends so
        if done.code is None or isinstance(done.code, int):
            _exit_now(done.code or 0)  # e.g. `lock --upgrade`: no teardown either
        raise

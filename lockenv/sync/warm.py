"""A warm sync into an empty venv, answered from one sealed entry before anything else a sync
imports (`fastpath` calls `serve` right after the no-op check finds work to do).

A sync into an empty venv whose wheels are all in the cache installs from its sealed plan
(`install.whole`). Getting there, the full path imports ops.sync, the selection, environment,
scan and plan modules (with their dataclasses: ~150 M instructions on web, a third of the
whole sync) and recomputes what is a function of the no-op's inputs: the lock checked fresh,
the venv's interpreter admitted, probed, the lock's selection for it, nothing installed, the
plan's key. Once such a sync has succeeded, `remember` keeps its outcome under a key of
exactly those inputs (`key_for`), sealed with the user's key like the plan it names; the next
sync with that key into an empty venv (`serve`) reads it, takes the venv's lock and installs
the plan with the same `whole.install`.

Why a matching key implies every check the full path makes (any doubt: None, the full path):
- the lock's bytes, pyproject.toml's, every option and KEY_ENVIRONMENT are in the key (the
  no-op's `inputs` digest): the selection, requires-python and the options' meaning are the
  ones the full path computed. Its freshness is checked as the full path checks it: the lock's
  fresh marker must exist (unless --frozen); with LOCKENV_KEYRING_PROVIDER set, --lockfile,
  or --locked with --frozen, nothing is served here;
- the venv's interpreter: its real file, mtime and size (the no-op's python stamp: the probe
  cache's key, with packaging's version) and every pyvenv.cfg entry but `command`: the
  version that requires-python admitted, so the probe, the markers and tags selected for,
  and the scheme directories (kept relative to the venv's root) are the full path's. An
  interpreter asked for (--python, LOCKENV_PYTHON, in the key) is served only when it is a
  version (a function of that version) or a path to the venv's own interpreter file (checked
  each time); a command name is looked up on PATH by the full path only;
- nothing installed: the venv's site directories must be empty, with no journal (an
  interrupted sync) and no state (another sync's venv), checked again under the venv's lock;
- lockenv's and installer's versions, the interpreter lockenv runs on and the platform, as
  the plan's key has them; the venv's root must be its real path (the probe's relocation
  condition), and links (not copies) must be the link mode.
The plan is then loaded by the key the full path made (its own seal and key line), and
installed exactly as the full path installs it (journal first, F8 check per linked file,
stash, undo); every archive it came from must still be in the cache at its locked size.

With no venv at all (a fresh checkout), the full path finds an interpreter and makes the venv
first. A second entry (`made_key`: the same inputs and the interpreter file, lockenv's own
or an absolute one asked for) keeps which interpreter it made it with and the key of the
entry of the venv it made; the next such sync checks everything above but the venv, makes
the venv the same way under the venv's lock (`environment.create_venv`), and goes on only if
that venv has the key the entry was kept for.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from lockenv.cache import Bucket, Cache
from lockenv.project import is_version_request, read_pyvenv_cfg
from lockenv.sync import state
from lockenv.sync.install.fs import VENV, installer_version, relative_to

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing: see `lockenv.fastpath`
if TYPE_CHECKING:
    from typing import Any

    from lockenv.ui import Reporter

FORMAT = 1
"""Bumped when what an entry holds or means changes."""

Archive = tuple[str, str, "int | None"]
"""(sha256, file name, size) of a wheel the plan installs, as the lock gives it."""
Entry = tuple[str, str, int, list[str], str, bytes, list[Archive], dict[str, str], str]
"""(key, the sealed plan's key, packages, the plan's lines, the summary ("Installed 3
packages"), the selection file's bytes, archives, the interpreter's scheme directories and
the interpreter itself (relative to the venv root, as `fs.relative_to` writes them))."""


def key_for(venv: Path, inputs: str, request: str | None) -> str | None:
    """The key of a warm sync into the venv at `venv` with the no-op's `inputs` digest and the
    interpreter `request` (see the module docstring); None when this shape is never served."""
    if os.name != "posix" or os.environ.get("LOCKENV_LINK_MODE", "hardlink") == "copy" \
            or os.environ.get("LOCKENV_KEYRING_PROVIDER", "").strip():
        return None
    if not venv.is_absolute() or os.path.realpath(venv) != str(venv):
        return None
    cfg = read_pyvenv_cfg(venv)
    if cfg is None:
        return None
    python = state.python_stamp(venv)
    if python == "missing":
        return None
    if request:
        if os.sep in request:
            if os.path.realpath(request) != os.path.realpath(venv / "bin" / "python"):
                return None
        elif not is_version_request(request):
            return None
    import packaging

    parts = [f"warm-{FORMAT}", inputs, python, repr(sorted((k, v) for k, v in cfg.items() if k != "command")),
             str(getattr(packaging, "__version__", "?")), installer_version(), os.name, sys.platform,
             sys.version]
    return hashlib.sha256("\0".join(parts).encode("utf-8", "surrogateescape")).hexdigest()


def entry_path(cache: Cache, key: str, kind: str = "warm") -> Path:
    return cache.root / Bucket.INSTALLS.value / kind / key[:2] / key


def load(cache: Cache, key: str) -> Entry | None:
    """The entry kept for `key`, if this user's lockenv sealed it for that key."""
    entry = _load(cache, "warm", key)
    return entry if entry is not None and len(entry) == 9 else None


def _load(cache: Cache, kind: str, key: str) -> tuple[Any, ...] | None:
    try:
        blob = entry_path(cache, key, kind).read_bytes()
    except OSError:
        return None
    data = cache.unseal(blob)
    head = key.encode("ascii") + b"\n"
    if data is None or not data.startswith(head):
        return None  # forged, damaged, another user's, or sealed for another key
    try:
        entry = marshal.loads(memoryview(data)[len(head):])
    except (ValueError, EOFError, TypeError):
        return None
    return entry if isinstance(entry, tuple) and entry and entry[0] == key else None


def remember(cache: Cache, entry: Entry) -> None:
    """Keep `entry` (only a cache: a failed write is dropped)."""
    _save(cache, "warm", entry)


def _save(cache: Cache, kind: str, entry: tuple[Any, ...]) -> None:
    from lockenv.cache import write_atomic
    from lockenv.sync.install.whole import keep_newest

    key = entry[0]
    sealed = cache.seal(key.encode("ascii") + b"\n" + marshal.dumps(entry))
    if sealed is None:
        return
    try:
        write_atomic(entry_path(cache, key, kind), sealed)
    except OSError:
        return
    keep_newest(entry_path(cache, key, kind).parent.parent, MAX_ENTRIES)


MAX_ENTRIES = 64
"""Entries of each kind kept in a cache, the newest (each names a plan: a cache keeps the
newest 32)."""


def entry_for(key: str, plan_key: str, *, packages: int, lines: list[str], summary: str,
              selection: bytes, archives: Iterable[Archive], paths: Mapping[str, str],
              python: str) -> Entry | None:
    """The entry of a sync into the venv whose interpreter is `python` with scheme `paths`;
    None when they are not under the venv's root (`paths["data"]`)."""
    root = paths["data"]
    rel = {k: relative_to(v, root) for k, v in paths.items() if isinstance(v, str)}
    if not all(rel[k].startswith(VENV + os.sep) for k in ("purelib", "platlib", "scripts")) \
            or not relative_to(python, root).startswith(VENV + os.sep):
        return None
    return (key, plan_key, packages, list(lines), summary, selection, list(archives), rel,
            relative_to(python, root))


def _absolute(path: str, root: str) -> str:
    return root + path[len(VENV):] if path == VENV or path.startswith(VENV + os.sep) else path


def empty(venv: Path, paths: Mapping[str, str]) -> bool:
    """Whether a sync finds nothing installed in the venv: no journal, no state, and its site
    directories empty (as `python -m venv --without-pip` leaves them)."""
    if (venv / state.JOURNAL).exists() or (venv / state.STATE).exists():
        return False
    try:
        return not any(os.listdir(d) for d in {paths["purelib"], paths["platlib"]})
    except OSError:
        return False


def _archives_cached(cache: Cache, archives: Iterable[Archive]) -> bool:
    """`whole.archives_cached` of the entry's archives."""
    import stat

    for sha256, filename, size in archives:
        try:
            st = os.stat(cache.artifact_path(sha256, filename))
        except OSError:
            return False
        if not stat.S_ISREG(st.st_mode) or size not in (None, st.st_size):
            return False
    return True


class Said:
    """What `serve` tells the user: the caller's reporter, and `before`, called once before
    the first thing told (the foreign-venv warning the full path gives first)."""

    def __init__(self, reporter: Reporter, before: Callable[[], None]) -> None:
        self.reporter, self._before = reporter, [before]

    def before(self) -> None:
        while self._before:
            self._before.pop()()


def serve(venv: Path, values: Mapping[str, object], *, lock: bytes, pyproject: bytes | None,
          inputs: str, version: str, said: Said, started: float) -> int | None:
    """Install the selection of a warm sync into the empty (or missing) venv at `venv`
    (options `values`, as `fastpath` parsed them; `inputs`: the no-op's digest of the `lock`
    and `pyproject` bytes read once) from its sealed plan; 0 when done, None when this sync is
    not one served here (nothing changed: the full path runs). Errors of the install are
    raised as the full path raises them (after the same undo)."""
    if values.get("lockfile") is not None or (values.get("locked") and values.get("frozen")) \
            or pyproject is None:
        return None
    request = values.get("python") or os.environ.get("LOCKENV_PYTHON") or None
    request = str(request) if request else None
    cache = Cache()
    made = None if os.path.lexists(venv) else _made(cache, inputs, request)
    key = key_for(venv, inputs, request) if made is None else made[1]
    if key is None:
        return None
    if not values.get("frozen") and not state.fresh_marker_of(cache.root, lock, pyproject, version).exists():
        return None  # the full path checks the lock against pyproject.toml (and relocks)
    entry = load(cache, key)
    if entry is None:
        return None
    paths = {k: _absolute(v, str(venv)) for k, v in entry[7].items()}
    if (made is None and not empty(venv, paths)) or not _archives_cached(cache, entry[6]):
        return None
    from lockenv.sync.install import whole

    plan = whole.load(cache, entry[1])
    if plan is None:
        return None
    held = _hold(cache.lock_path(cache.bucket(Bucket.VENV_LOCKS) / state.venv_lock_name(venv)), venv, said)
    if held is None:
        return None
    try:
        if made is not None and not _create(venv, made, inputs, request, said):
            return None
        if not empty(venv, paths):
            return None  # another sync got there first: the full path says what it finds
        walked: dict[str, dict[str, list[Any]]] = {}
        if not whole.install(plan, venv=venv, paths=paths, python=_absolute(entry[8], str(venv)),
                             warn=said.reporter.warn, walked=walked):
            return None  # nothing of it is left: the full path installs wheel by wheel
        state.write_selection(venv, entry[5])
        state.write_state(venv, inputs, entry[2], lock_checked=not values.get("frozen"), walked=walked)
    finally:
        os.close(held)  # (releases the flock)
    _tell(entry, said, started)
    return 0


def _hold(path: Path, venv: Path, said: Said) -> int | None:
    """The venv's inter-process lock, taken as the full path's filelock takes it: flock(2),
    exclusive, on the same lock file, so either path waits for the other; its descriptor, whose
    close releases it. Not through filelock: importing it (with the logging, platform and
    random modules it brings) is 15-25 ms, ~12% of a warm sync of web. After 0.2 s of waiting
    the sync says so, as the full path does. None when this file system has no flock(2) (the
    full path then locks as filelock does there)."""
    import fcntl
    import time

    deadline, told = time.monotonic() + 0.2, False
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            return None  # the full path says what is wrong with the cache
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() < deadline:
                        time.sleep(0.01)
                        continue
                    if not told:  # (once, however often the file is found removed)
                        said.before()
                        said.reporter.status(f"Waiting for another lockenv process using {venv}")
                        told = True
                    fcntl.flock(fd, fcntl.LOCK_EX)
                    break
            if os.fstat(fd).st_nlink:
                return fd
        except OSError:  # no flock here (ENOSYS, EOPNOTSUPP...): filelock's fallback decides
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # removed (`cache clean`) between the open and the lock: a new file


def _tell(entry: Entry, said: Said, started: float) -> None:
    """The plan's lines once it is carried out (the full path shows them just before: a plan
    that does not fit falls back to it, which then shows them, once), then the summary."""
    import time

    said.before()
    for line in entry[3]:
        said.reporter.data(line)
    said.reporter.status(f"{entry[4]} in {time.perf_counter() - started:.2f}s")


# -- a venv that does not exist yet -------------------------------------------------------------
Made = tuple[str, str, str, str, str]
"""(key, the key of the entry of the venv once made, the interpreter's path, version and
implementation, as the full path found it)."""


def made_key(inputs: str, request: str | None) -> str | None:
    """The key of a warm sync that makes the venv first: the no-op's `inputs` and the
    interpreter the full path makes it with, when that is a function of them: the one lockenv
    runs on (no request: it is chosen when the lock's requires-python, in `inputs`, admits it)
    or the file an absolute path asks for (its real file, mtime and size). A version or a
    command name is looked up among the machine's interpreters by the full path only."""
    if os.name != "posix" or os.environ.get("LOCKENV_LINK_MODE", "hardlink") == "copy" \
            or os.environ.get("LOCKENV_KEYRING_PROVIDER", "").strip():
        return None
    if request is not None and not os.path.isabs(request):
        return None
    try:
        real = os.path.realpath(request or sys.executable)
        st = os.stat(real)
    except OSError:
        return None
    parts = [f"made-{FORMAT}", inputs, str(request), f"{real}:{st.st_mtime_ns}:{st.st_size}",
             sys.executable, sys.version, os.name, sys.platform]
    return hashlib.sha256("\0".join(parts).encode("utf-8", "surrogateescape")).hexdigest()


def _made(cache: Cache, inputs: str, request: str | None) -> Made | None:
    key = made_key(inputs, request)
    found = _load(cache, "made", key) if key is not None else None
    return found if found is not None and len(found) == 5 else None


def remember_made(cache: Cache, venv: Path, inputs: str, request: str | None, entry_key: str,
                  interpreter: tuple[str, str, str]) -> None:
    """After the full path made the venv at `venv` with `interpreter` (path, version,
    implementation) and kept the entry `entry_key` of it: what the next such sync needs to make
    it alike. Only when the venv's interpreter is the very file asked for (or lockenv's own,
    without a request): a command that picks an interpreter as it runs (a pyenv shim) is run
    by the full path each time."""
    key = made_key(inputs, request)
    chosen = request or sys.executable
    if key is None or interpreter[0] != chosen \
            or os.path.realpath(chosen) != os.path.realpath(venv / "bin" / "python"):
        return
    _save(cache, "made", (key, entry_key, *interpreter))


def _create(venv: Path, made: Made, inputs: str, request: str | None, said: Said) -> bool:
    """Make the venv as the full path makes it (`environment.create_venv`, under the venv's
    lock); False when it is there meanwhile, or is not the one the entry was kept for."""
    if os.path.lexists(venv):
        return False
    from lockenv.environment import Interpreter, create_venv

    said.before()
    create_venv(venv, Interpreter(made[2], made[3], made[4]), said.reporter)
    return key_for(venv, inputs, request) == made[1]


def plans_named(root: Path, kind: str = "warm") -> dict[str, list[Path]]:
    """The entries of `kind` kept under the cache at `root`, by the key they name (a warm
    entry: its sealed plan's; a made one: its warm entry's). Read without the seal: for `cache
    prune`/`clean` only, which remove, never install."""
    out: dict[str, list[Path]] = {}
    base = root / Bucket.INSTALLS.value / kind
    from lockenv.cache import SEAL

    for path in base.glob("*/*"):
        head = path.name.encode("ascii", "replace") + b"\n"
        try:
            data = path.read_bytes()[len(SEAL) + 32:]
            entry: Any = marshal.loads(data[len(head):]) if data.startswith(head) else None
            plan_key = entry[1] if isinstance(entry, tuple) and len(entry) > 1 else None
        except (OSError, ValueError, EOFError, TypeError):
            plan_key = None
        out.setdefault(plan_key if isinstance(plan_key, str) else "", []).append(path)
    return out

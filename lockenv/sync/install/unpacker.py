"""Unpacking a downloaded wheel into the cache and recording its install, in this process or in
worker processes (`Unpackers`).

Why processes: a cold sync is bound by CPU under one GIL. Unpacking (inflate, a sha256 of every
member against RECORD, one file per member) and installer's record pass are most of a cold sync
of data's CPU (~2.2 s of ~2.7 s user), and their Python holds the GIL against the downloads and
each other: two threads could not use the second core (py-spy: the GIL held 2.7 s of a 4.3 s
run). A worker process has its own GIL. It runs the very same `unpack_and_plan` (the same
checks, the same per-tree lock of the cache, the same atomic publication) and sends back what
the sync hands on in memory (`tree.handing_over`: the tree, its replay record, its planned
targets), exactly the objects it wrote into the cache.

On Linux, when the sync runs no other thread (it has not started its downloads yet), a worker
is forked from it (`_Forked`): it has every module already, and starts in a millisecond instead
of an interpreter's start-up and imports (~0.1 s of CPU each, on the first unpack's path); it
keeps none of the descriptors it inherits but its two pipes and stderr. Otherwise a worker is
`python -c` on the main process's `sys.path`. Either reads pickled jobs on one pipe and answers
on another; it ends when its jobs pipe closes, so it never outlives the sync (a main process
killed by SIGKILL closes it too; the worker finishes its current wheel and exits). It ignores
SIGINT: Ctrl-C reaches the main process, which kills the workers. A killed worker is the same as
a killed sync for the cache (the tree's lock is released with the process; its temporary
directory is swept by the next unpack of that tree).
"""

from __future__ import annotations

import gc
import json
import os
import pickle
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

from lockenv.errors import SyncError
from lockenv.sync.install.forks import flush_std, let_go, may_fork, portable
from lockenv.sync.install.tree import Tree, hand_over, handing_over, unpack
from lockenv.sync.install.wheel import install_metadata, planned_targets, record_install, scheme_for

if TYPE_CHECKING:
    from collections.abc import Callable

    from lockenv.cache import Cache
    from lockenv.environment import Probe


def unpack_and_plan(wheel: Path, sha256: str, *, name: str, source_sha256: str | None,
                    source_name: str, cache: Cache, probe: Probe | None) -> Tree:
    """Unpack a downloaded wheel and plan its install while the other files download: with the
    venv's `probe`, installer's one pass over it records the install (replayed by the link
    stage) and its targets; without, a dry run plans the targets. prepare() then finds them
    in the cache (`source_sha256`/`source_name`: the lock's sha256 and file name of the wheel,
    recorded in the install)."""
    tree = unpack(wheel, sha256, name=name, cache=cache)
    if probe is None:
        planned_targets(tree, cache)
        return tree
    record_install(tree, scheme=scheme_for(probe.paths, probe.version, name),
                   python=probe.python, cache=cache,
                   metadata=install_metadata(source_sha256, source_name))
    return tree


_BOOT = ("import sys, json; sys.path[:] = json.loads(sys.argv[1]); "
         "from lockenv.sync.install.unpacker import serve; serve()")


class Unpackers:
    """Worker processes running `unpack_and_plan`, one job each at a time: `run` blocks its
    (main process) thread until its worker answers, without the GIL."""

    def __init__(self, count: int) -> None:
        self._all: list[_Worker] = []
        self._free: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
        fork = _can_fork()
        # While forked workers share this process's pages, its garbage collector leaves the
        # objects it has now alone (a collection writes to every object it visits, and each
        # page written is copied): until `close`.
        self._frozen = fork
        if fork:
            gc.freeze()
        try:
            for _ in range(count):
                proc: _Worker = _Forked() if fork else subprocess.Popen(
                    [sys.executable, "-c", _BOOT, json.dumps(sys.path)],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE)
                self._all.append(proc)
                self._free.put(proc)
        except BaseException:
            self.close(kill=True)
            raise

    def run(self, wheel: Path, sha256: str, *, name: str, source_sha256: str | None,
            source_name: str, cache: Cache, probe: Probe | None) -> None:
        """`unpack_and_plan` in a worker; what it wrote into the cache is handed over here as
        if this process had written it. Its error is raised here as it was raised there; a
        worker that dies is a SyncError (the sync stops before the venv changes)."""
        proc = self._free.get()
        try:
            assert proc.stdin is not None and proc.stdout is not None
            try:
                pickle.dump((wheel, sha256, name, source_sha256, source_name, cache.root, probe),
                            proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
                proc.stdin.flush()
                ok, value = pickle.load(proc.stdout)
            except (OSError, EOFError, pickle.UnpicklingError):
                raise _died(proc, wheel) from None
        finally:
            self._free.put(proc)
        if not ok:
            raise value
        for (kind, path), handed in value.items():
            hand_over(kind, Path(path), handed)

    def close(self, *, kill: bool = False) -> None:
        """End the workers: their stdin closed (they exit), or killed (an error or Ctrl-C: a
        worker is not waited for to finish its wheel)."""
        for proc in self._all:
            if kill:
                proc.kill()
            try:
                if proc.stdin is not None:
                    proc.stdin.close()
            except OSError:
                pass
        for proc in self._all:
            try:
                if proc.stdout is not None:
                    proc.stdout.close()
            except OSError:
                pass
            proc.wait()
        if self._frozen:
            self._frozen = False
            gc.unfreeze()


def _died(proc: _Worker, wheel: Path) -> SyncError:
    try:
        code = proc.wait(timeout=5)
    except subprocess.TimeoutExpired:  # alive but answering nonsense: not used again
        proc.kill()
        code = proc.wait()
    how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
    return SyncError(f"unpacking {wheel.name} into the cache failed: its worker process {how}; "
                     "nothing was changed",
                     hint="run `lockenv sync` again (a wheel cut short in the cache is unpacked "
                          "afresh)")


def serve() -> None:
    """A spawned worker's loop: a job from stdin, its outcome to stdout, until stdin closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    answers: IO[bytes] = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print must not end up in the answers
    _serve(sys.stdin.buffer, answers)


def _serve(jobs: IO[bytes], answers: IO[bytes]) -> None:
    """A worker's loop: a job from `jobs`, its outcome to `answers`, until `jobs` ends."""
    from lockenv.cache import Cache

    caches: dict[Path, Cache] = {}
    while True:
        try:
            wheel, sha256, name, source_sha256, source_name, root, probe = pickle.load(jobs)
        except (EOFError, OSError):
            return
        if os.environ.get("LOCKENV_TEST_KILL_UNPACKER"):  # tests: a worker that dies
            os.kill(os.getpid(), signal.SIGKILL)
        cache = caches.setdefault(root, Cache(root))
        answer: tuple[bool, Any]
        try:
            with handing_over() as handed:
                unpack_and_plan(wheel, sha256, name=name, source_sha256=source_sha256,
                                source_name=source_name, cache=cache, probe=probe)
                answer = (True, handed)
        except Exception as exc:  # noqa: BLE001 - raised again in the main process
            answer = (False, portable(exc))
        try:
            pickle.dump(answer, answers, protocol=pickle.HIGHEST_PROTOCOL)
            answers.flush()
        except OSError:
            return


class _Worker(Protocol):
    """What `Unpackers` uses of a worker: `subprocess.Popen`'s few members (`_Forked` has them)."""

    stdin: IO[bytes] | None
    stdout: IO[bytes] | None

    def kill(self) -> None: ...

    def wait(self, timeout: float | None = None) -> int: ...


def _can_fork() -> bool:
    """Whether workers are forked from this process instead of started afresh
    (`forks.may_fork`); `LOCKENV_UNPACK_FORK=0` starts them afresh."""
    return os.environ.get("LOCKENV_UNPACK_FORK", "") != "0" and may_fork()


class _Forked:
    """A worker forked from this process: it has every module the sync imported, so it starts
    in a millisecond instead of an interpreter's start-up and imports (~0.1 s of CPU each, on
    the first unpack's path). It keeps only its two pipes (and stderr) of the descriptors it
    inherits, so a lock this process holds is not held by it too, and another worker's pipe is
    not kept open by it (each worker sees its own pipe close when this process ends). It never
    returns into the code that forked it: it ends with `os._exit`."""

    def __init__(self) -> None:
        jobs_read, jobs_write = os.pipe()
        answers_read, answers_write = os.pipe()
        flush_std()
        try:
            pid = os.fork()
        except OSError:
            for fd in (jobs_read, jobs_write, answers_read, answers_write):
                os.close(fd)
            raise
        if pid == 0:  # pragma: no cover - the child (its coverage is not collected)
            code = 1
            try:
                _forked_child(jobs_read, answers_write)
                code = 0
            finally:
                os._exit(code)
        os.close(jobs_read)
        os.close(answers_write)
        self.pid = pid
        self.returncode: int | None = None
        self._reaping = threading.Lock()
        self.stdin: IO[bytes] | None = os.fdopen(jobs_write, "wb")
        self.stdout: IO[bytes] | None = os.fdopen(answers_read, "rb")
        if self.stdout.read(1) != _READY:  # it has let go of what it inherited
            self.kill()
            self.wait()
            raise OSError("a forked unpacking worker did not start")

    def kill(self) -> None:
        if self.returncode is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def wait(self, timeout: float | None = None) -> int:
        """Its exit status as `Popen.returncode` gives it (-N: killed by signal N). Two threads
        may wait at once (as `Popen.wait` allows): an unpacking thread whose worker's pipe broke
        (`_died`) and the main thread ending the workers after an error. One reaps it under
        `_reaping`; the other then finds its status (two waitpid calls on one child: the second
        failed with ECHILD, and that error replaced the sync's own)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.returncode is None:
            if deadline is None:
                with self._reaping:
                    if self.returncode is None:
                        self.returncode = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
                continue
            if not self._reaping.acquire(timeout=max(0.0, deadline - time.monotonic())):
                raise subprocess.TimeoutExpired(f"worker {self.pid}", timeout or 0)
            try:
                if self.returncode is None:
                    pid, status = os.waitpid(self.pid, os.WNOHANG)
                    if pid == self.pid:
                        self.returncode = os.waitstatus_to_exitcode(status)
            finally:
                self._reaping.release()
            if self.returncode is None:
                if time.monotonic() >= deadline:
                    raise subprocess.TimeoutExpired(f"worker {self.pid}", timeout or 0)
                time.sleep(0.01)
        return self.returncode


def _forked_child(jobs: int, answers: int) -> None:  # pragma: no cover - runs in the child
    """The forked worker: let go of what it inherited (`forks.let_go`), then the loop."""
    let_go(jobs, answers)
    answering = os.fdopen(answers, "wb")
    answering.write(_READY)
    answering.flush()
    _serve(os.fdopen(jobs, "rb"), answering)


_READY = b"R"
"""What a forked worker says first, once it holds only its own descriptors."""

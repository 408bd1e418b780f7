"""Children forked from this process to do part of a sync's work with their own GIL.

A fork has every module this process imported, so a child starts in a millisecond instead of
an interpreter's start-up and imports. It is only safe while this process runs no other
thread: a fork copies only the calling thread, and a lock another thread held would stay
locked in the child (`may_fork`)."""

from __future__ import annotations

import gc
import marshal
import os
import signal
import sys
import threading
import time
from collections.abc import Callable

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing: see `lockenv.fastpath`
if TYPE_CHECKING:
    from typing import Any


def portable(exc: Exception) -> Exception:
    """`exc` if it survives pickling (a child's error handed to its parent), else a SyncError
    saying what it was."""
    import pickle

    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:  # noqa: BLE001
        from lockenv.errors import SyncError

        return SyncError(f"{type(exc).__name__}: {exc}")
    return exc


def may_fork() -> bool:
    """On Linux, when this process runs no other thread, Python's or a library's (the
    kernel's count). A thread just joined (the HTTP client's readying threads, `lockenv-ready`
    and `lockenv-tls`, right before the unpacking workers are forked) has ended its Python but
    may not have left the kernel's count yet: that count is read again for up to 0.02 s before
    the answer is no (under load the first read saw 2, after the probe's thread of then)."""
    if sys.platform != "linux" or not hasattr(os, "fork") or threading.active_count() != 1:
        return False
    for _ in range(10):
        if threads() == 1:
            return True
        time.sleep(0.002)
    return False


def threads() -> int:
    """This process's threads as the kernel counts them (0: unknown)."""
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"Threads:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def flush_std() -> None:
    """Before a fork: what stdout and stderr buffer here is not written twice (by the child)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass


def quiet_child() -> None:  # pragma: no cover - runs in a forked child
    """A forked child's first step: SIGINT ignored (Ctrl-C is the parent's to handle: it kills
    the child), SIGTERM's default action, and the inherited objects left out of its garbage
    collections (their pages stay shared)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    gc.freeze()


def let_go(*keep: int) -> None:  # pragma: no cover - runs in a forked child
    """`quiet_child`, then stdin from /dev/null and stdout to stderr (a stray print must not
    reach the parent's output), and every inherited descriptor but stderr and `keep` closed (a
    lock the parent holds is then not held by the child too)."""
    quiet_child()
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(2, 1)
    kept = {0, 1, 2, *keep}
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd not in kept:
            try:
                os.close(fd)
            except OSError:
                pass


class Ahead:
    """Work done in a child forked from this process while this process does other work, for
    what it leaves in the cache only: nothing of how it went comes back (whatever it was to
    leave there, the caller finds, or computes as if it had not run). On Linux, when this
    process runs no other thread (`may_fork`); `start` gives None elsewhere. The child lets go
    of what it inherited as an unpacking worker does (`let_go`) and ends with `os._exit`."""

    def __init__(self, pid: int) -> None:
        self._pid: int | None = pid

    @classmethod
    def start(cls, work: Callable[[], object]) -> Ahead | None:
        if not may_fork():
            return None
        flush_std()
        try:
            pid = os.fork()
        except OSError:
            return None
        if pid == 0:  # pragma: no cover - the child (its coverage is not collected)
            try:
                let_go()
                work()
            finally:
                os._exit(0)
        return cls(pid)

    def wait(self, timeout: float) -> bool:
        """Until the child has ended, or killed after `timeout` seconds (a child stuck on
        something must not hold the caller up: it computes what the child did not leave);
        whether it ended by itself. Ctrl-C here kills it first."""
        if self._pid is None:
            return False
        deadline = time.monotonic() + timeout
        try:
            while True:
                pid, _ = os.waitpid(self._pid, os.WNOHANG)
                if pid == self._pid:
                    self._pid = None
                    return True
                if time.monotonic() >= deadline:
                    self.kill()
                    return False
                time.sleep(0.002)
        except ChildProcessError:
            self._pid = None
            return False
        except BaseException:
            self.kill()
            raise

    def kill(self) -> None:
        if self._pid is None:
            return
        try:
            os.kill(self._pid, signal.SIGKILL)
            os.waitpid(self._pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        self._pid = None


class Lost(Exception):
    """The child ended without saying how its share went (killed, out of memory)."""


MAX_SHARED = 1024
"""Items `share` deals out at once: 4 bytes each, in a pipe's smallest buffer (a page)."""


def share(count: int, do: Callable[[int], None], collect: Callable[[], Any], *,
          known: tuple[type[Exception], ...] = ()) -> tuple[bool, Any]:
    """`do(i)` for each i in range(count), in this process and a child forked from it, each
    taking the next index from a pipe (`may_fork`); (True, what `collect()` gave in the child
    once it had no more to take: marshal-able) once both have stopped, or (False, None) when
    it could not fork (nothing done: the caller does it another way).

    The first error is raised once both have stopped: this process's (the child is killed at
    once), else the child's as it raised it: an OSError with its errno and file names, an
    exception of a class in `known` (built from its message), `Lost` when it said nothing,
    else a RuntimeError naming it.

    Why: work made of system calls of a few microseconds (stat, link, mkdir, a directory
    listing) releases the GIL at each call, so two threads hand it over at every call, each
    hand-over a wake-up across cores, and were slower than one (tmpfs: 3,300 stats and links
    took 33-44 ms on two threads, 19-28 ms on one; listing data's venv, 64-73 ms on two
    threads, 33-37 ms on one). A child has its own GIL.
    It keeps every descriptor it inherits (a lock this process holds stays held until it ends)
    and ignores SIGINT: Ctrl-C reaches this process, which kills it."""
    if count < 2 or count > MAX_SHARED or not may_fork():
        return False, None
    queue_read, queue_write = os.pipe()
    indexes = b"".join(i.to_bytes(4, "little") for i in range(count))
    try:
        os.set_blocking(queue_write, False)  # (a full pipe must not block: nobody reads it yet)
        queued = os.write(queue_write, indexes)
    except OSError:
        queued = 0
    finally:
        os.close(queue_write)  # (once drained, both see its end)
    if queued != len(indexes):
        os.close(queue_read)
        return False, None
    answer_read, answer_write = os.pipe()
    flush_std()
    try:
        pid = os.fork()
    except OSError:
        for fd in (queue_read, answer_read, answer_write):
            os.close(fd)
        return False, None
    if pid == 0:  # pragma: no cover - the child (its coverage is not collected)
        try:
            os.close(answer_read)
            quiet_child()
            _child(queue_read, do, collect, known, answer_write)
        finally:
            os._exit(0)
    os.close(answer_write)
    failed: BaseException | None = None
    try:
        _take(queue_read, do)
    except BaseException as exc:  # noqa: BLE001 - raised once the child has stopped
        failed = exc
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    finally:
        os.close(queue_read)
    try:
        with os.fdopen(answer_read, "rb") as answer:
            said = answer.read()
    finally:
        os.waitpid(pid, 0)
    if failed is not None:
        raise failed
    return True, _outcome(said, known)


def _take(queue: int, do: Callable[[int], None]) -> None:
    """`do` of each index this process reads from the `queue` pipe first (a read of 4 bytes
    from a pipe is atomic), until the pipe is drained."""
    while True:
        got = os.read(queue, 4)
        if len(got) < 4:
            return
        do(int.from_bytes(got, "little"))


def _child(queue: int, do: Callable[[int], None], collect: Callable[[], Any],
           known: tuple[type[Exception], ...], answer: int) -> None:  # pragma: no cover - a child
    """The forked child's share (`_take`), then what came of it, marshalled, to `answer`."""
    said: tuple[Any, ...]
    try:
        _take(queue, do)
        said = ("ok", collect())
    except OSError as exc:
        said = ("os", exc.errno, exc.strerror if exc.errno is not None else str(exc), exc.filename,
                exc.filename2)
    except BaseException as exc:  # noqa: BLE001 - told to the parent, which raises it
        said = ("known", known.index(type(exc)), str(exc)) if type(exc) in known \
            else ("error", f"{type(exc).__name__}: {exc}")
    with os.fdopen(answer, "wb") as out:
        out.write(marshal.dumps(said))


def _outcome(said: bytes, known: tuple[type[Exception], ...]) -> Any:
    """What the child collected; its error raised."""
    try:
        outcome = marshal.loads(said)
    except (ValueError, EOFError, TypeError):
        raise Lost("a process forked to share the work ended without saying how it went") from None
    if outcome[0] == "ok":
        return outcome[1]
    if outcome[0] == "os":
        if outcome[1] is None:
            raise OSError(outcome[2])
        raise OSError(outcome[1], outcome[2], outcome[3], None, outcome[4])
    if outcome[0] == "known":
        raise known[outcome[1]](outcome[2])
    raise RuntimeError(f"a process forked to share the work failed: {outcome[1]}")

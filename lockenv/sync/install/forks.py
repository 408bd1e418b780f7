"""Children forked from this process to do part of a sync's work with their own GIL.

A fork has every module this process imported, so a child starts in a millisecond instead of
an interpreter's start-up and imports. It is only safe while this process runs no other
thread: a fork copies only the calling thread, and a lock another thread held would stay
locked in the child (`may_fork`)."""

from __future__ import annotations

import gc
import os
import signal
import sys
import threading


def may_fork() -> bool:
    """On Linux, when this process runs no other thread, Python's or a library's (the
    kernel's count)."""
    return (sys.platform == "linux" and hasattr(os, "fork") and threading.active_count() == 1
            and threads() == 1)


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

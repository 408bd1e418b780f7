"""The in-use lock of the cache: every command that may use the cache holds a *shared* lock on
`locks/in-use.lock` for its lifetime (`hold_in_use`), so that `cache clean` (exclusive) never
pulls an entry from under a running sync and `cache prune` knows what it may remove (see
`ops.cache`). Its own module: every sync and lock takes it first thing, and `ops.cache` (prune,
clean: shutil, json, its reports' dataclasses) is ~2-4 ms of imports they never use.
"""

from __future__ import annotations

import os
from pathlib import Path

from lockenv.cache import Bucket, Cache

IN_USE = "in-use.lock"


class Flock:
    """A POSIX advisory lock on one file (shared or exclusive), released when closed or when the
    process dies. Elsewhere (no fcntl) it always succeeds, and prune falls back to ages."""

    def __init__(self, path: Path) -> None:
        self.fd: int | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError:
            self.fd = None

    def take(self, exclusive: bool, wait: bool) -> bool:
        if self.fd is None:
            return not exclusive
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            return True
        flags = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | (0 if wait else fcntl.LOCK_NB)
        try:
            fcntl.flock(self.fd, flags)
        except OSError:
            return False
        return True

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


_held: list[Flock] = []


def hold_in_use(root: Path | None = None) -> None:
    """Mark this process as a cache user until it exits (shared: any number of users)."""
    if _held:
        return
    try:
        base = Path(root) if root is not None else Cache().root
    except Exception:  # an unusable cache is reported by the command that uses it
        return
    if base.exists() and not base.is_dir():
        return
    lock = Flock(base / Bucket.LOCKS.value / IN_USE)
    if lock.take(exclusive=False, wait=True):
        _held.append(lock)
    else:
        lock.close()


def release_in_use() -> None:
    """Stop marking this process as a cache user: for `run`, before it hands over to a command
    that may run for hours, so `cache clean` need not wait for it."""
    while _held:
        _held.pop().close()



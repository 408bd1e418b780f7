"""`OnceMap`: run a keyed job once while every other caller waits for its result (uv's
`uv-once-map`). The index client keys pages, metadata and downloads by it, so two threads that
want the same file send one request.

A job may be started in the background (`submit`, on a pool) or on demand (`get`). A job still
queued on a busy pool is run by the first caller that needs it instead of waited for: a caller
that is itself a pool worker must never wait on a job stuck in the queue behind it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from concurrent.futures import Executor, Future
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class ReentrantJob(RuntimeError):
    """A job waited (directly or through a chain of calls) for its own result: waiting would
    never end. Callers that can recurse (builds) check their own stack first and say why."""


class _Slot(Generic[V]):
    """One key: its result (a future every caller waits on) and the thread running the job."""

    __slots__ = ("future", "owner")

    def __init__(self) -> None:
        self.future: Future[V] = Future()
        self.owner: int | None = None
        """The thread running the job, once one has claimed it."""


class OnceMap(Generic[K, V]):
    """Results by key, each computed once. Errors are results too: every waiter gets the
    exception, and a later `get` raises it again (a failed page is not fetched twice)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._slots: dict[K, _Slot[V]] = {}

    def get(self, key: K, work: Callable[[], V]) -> V:
        """The result for `key`: run `work` here when nobody has started it (also when it is
        only queued on a pool), else wait for the thread running it."""
        with self._lock:
            slot = self._slots.get(key)
            if slot is None:
                slot = self._slots[key] = _Slot()
            mine = slot.owner is None
            if mine:
                slot.owner = threading.get_ident()
            elif slot.owner == threading.get_ident() and not slot.future.done():
                raise ReentrantJob(f"the job for {key!r} waits for itself")
        if mine:
            _run(slot, work)
        return slot.future.result()

    def submit(self, key: K, work: Callable[[], V], pool: Executor) -> None:
        """Start `work` for `key` on `pool` unless it is known already; returns at once."""
        with self._lock:
            if key in self._slots:
                return
            slot: _Slot[V] = _Slot()
            self._slots[key] = slot
        pool.submit(self._claim, slot, work)

    def _claim(self, slot: _Slot[V], work: Callable[[], V]) -> None:
        with self._lock:
            if slot.owner is not None:  # a caller ran it meanwhile
                return
            slot.owner = threading.get_ident()
        _run(slot, work)


def _run(slot: _Slot[V], work: Callable[[], V]) -> None:
    try:
        slot.future.set_result(work())
    except BaseException as exc:
        slot.future.set_exception(exc)
        if not isinstance(exc, Exception):  # KeyboardInterrupt, SystemExit: also stop here
            raise

"""once.py: a keyed job runs once; everyone else waits for its result or its error."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from lockenv.once import OnceMap, ReentrantJob


def test_concurrent_callers_share_one_run() -> None:
    once: OnceMap[str, int] = OnceMap()
    started, release = threading.Event(), threading.Event()
    runs = []

    def work() -> int:
        runs.append(1)
        started.set()
        release.wait()
        return 42

    with ThreadPoolExecutor(4) as pool:
        first = pool.submit(once.get, "k", work)
        started.wait()
        others = [pool.submit(once.get, "k", work) for _ in range(3)]
        release.set()
        assert [f.result() for f in (first, *others)] == [42] * 4
    assert len(runs) == 1
    assert once.get("k", lambda: 0) == 42


def test_an_error_reaches_every_waiter_and_is_not_retried() -> None:
    once: OnceMap[str, int] = OnceMap()
    calls = []

    def fail() -> int:
        calls.append(1)
        raise ValueError("broken page")

    for _ in range(2):
        with pytest.raises(ValueError, match="broken page"):
            once.get("k", fail)
    assert len(calls) == 1


def test_a_job_queued_behind_a_busy_pool_runs_in_the_caller() -> None:
    once: OnceMap[str, str] = OnceMap()
    release = threading.Event()
    with ThreadPoolExecutor(1) as pool:
        pool.submit(release.wait)  # the only worker is busy
        once.submit("k", lambda: "from the pool", pool)
        assert once.get("k", lambda: "here") == "here"
        release.set()
    assert once.get("k", lambda: "again") == "here"


def test_a_job_that_waits_for_itself_fails_instead_of_hanging() -> None:
    once: OnceMap[str, int] = OnceMap()

    def work() -> int:
        return once.get("k", work)

    with pytest.raises(ReentrantJob):
        once.get("k", work)

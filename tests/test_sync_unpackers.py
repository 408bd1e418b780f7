"""A cold sync that unpacks its downloads in worker processes (big syncs do: sync/install/
unpacker.py; `LOCKENV_UNPACK_PROCESSES=1` forces it here) installs the same venv and fails
the same way as one that unpacks on threads: the same error for a bad wheel, the venv left
unchanged, and a worker that dies is an error, not a hang."""

from __future__ import annotations

import functools
import hashlib
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler
from pathlib import Path

import pytest
from fixtures.builder import write_wheel
from fixtures.index import LocalServer
from helpers import CliResult, installed, run_lockenv, site_packages, snapshot


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A directory served over HTTP on 127.0.0.1, and its URL."""
    root = tmp_path / "served"
    root.mkdir()

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = LocalServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _url_lock(project: Path, url: str, wheels: list[Path]) -> Path:
    """A lock installing `wheels` (each its own package), downloaded from `url`."""
    lines = ['lock-version = "1.0"', 'created-by = "hand"', 'requires-python = ">=3.8"', ""]
    for wheel in wheels:
        name, version = wheel.name.split("-")[:2]
        data = wheel.read_bytes()
        lines += ["[[packages]]", f'name = "{name}"', f'version = "{version}"',
                  f'wheels = [{{ name = "{wheel.name}", url = "{url}/{wheel.name}", size = {len(data)}, '
                  f'hashes = {{ sha256 = "{hashlib.sha256(data).hexdigest()}" }} }}]', ""]
    path = project / "pylock.toml"
    path.write_text("\n".join(lines))
    return path


def _sync(project: Path, cache: Path, **env: str) -> CliResult:
    # A timeout fails the test instead of hanging it (a dead worker must not be waited for).
    return run_lockenv("sync", "--lockfile", project / "pylock.toml", cwd=project, timeout=120,
                       env={"LOCKENV_CACHE_DIR": str(cache), **env})


def test_worker_processes_install_what_threads_install(project: Path, tmp_path: Path,
                                                      served: tuple[Path, str]) -> None:
    root, url = served
    wheels = [write_wheel(root, name, modules=40) for name in ("alpha", "beta", "gamma")]
    _url_lock(project, url, wheels)
    venvs = {}
    # threads; worker processes forked from the sync (Linux); worker processes started afresh
    for processes, fork in (("0", ""), ("1", ""), ("1", "0")):
        result = _sync(project, tmp_path / f"cache-{processes}{fork}",
                       LOCKENV_UNPACK_PROCESSES=processes, LOCKENV_UNPACK_FORK=fork)
        assert result.code == 0, result.output
        venvs[processes + fork] = snapshot(project / ".venv")
        del venvs[processes + fork][".lockenv-state.json"]  # directory mtimes
        assert installed(project / ".venv") == {"alpha": "1.0", "beta": "1.0", "gamma": "1.0"}
        (project / ".venv").rename(tmp_path / f"venv-{processes}{fork}")
    assert venvs["0"] == venvs["1"] == venvs["10"]


def test_a_wheel_that_does_not_match_its_record_is_refused_as_on_threads(
        project: Path, tmp_path: Path, served: tuple[Path, str]) -> None:
    root, url = served
    good = write_wheel(root, "alpha", modules=5)
    _url_lock(project, url, [good])
    assert _sync(project, tmp_path / "cache-good").code == 0
    before = snapshot(project / ".venv")
    tampered = write_wheel(root, "tampered", {"tampered/__init__.py": b"print('hi')\n"},
                           bad_record=True)
    _url_lock(project, url, [good, write_wheel(root, "beta", modules=5), tampered])
    errors = {}
    for processes in ("0", "1"):
        result = _sync(project, tmp_path / f"cache-{processes}", LOCKENV_UNPACK_PROCESSES=processes)
        assert result.code == 2, result.output
        errors[processes] = result.stderr
        assert snapshot(project / ".venv") == before
    assert "tampered-1.0-py3-none-any.whl does not match its own RECORD" in errors["1"]
    assert "tampered/__init__.py" in errors["1"]
    assert "Traceback" not in errors["1"]
    assert errors["1"].replace("cache-1", "cache-0") == errors["0"]


def test_a_worker_that_dies_is_an_error_and_the_next_sync_repairs(
        project: Path, tmp_path: Path, served: tuple[Path, str]) -> None:
    root, url = served
    _url_lock(project, url, [write_wheel(root, "alpha", modules=5)])
    cache = tmp_path / "cache"
    assert _sync(project, cache).code == 0
    before = snapshot(project / ".venv")
    _url_lock(project, url, [write_wheel(root, "alpha", modules=5),
                             write_wheel(root, "beta", modules=5)])
    result = _sync(project, cache, LOCKENV_UNPACK_PROCESSES="1", LOCKENV_TEST_KILL_UNPACKER="1")
    assert result.code == 2, result.output
    stderr = result.stderr
    assert "beta-1.0-py3-none-any.whl" in stderr and "worker process was killed" in stderr
    assert "Traceback" not in stderr
    assert snapshot(project / ".venv") == before
    result = _sync(project, cache, LOCKENV_UNPACK_PROCESSES="1")
    assert result.code == 0, result.output
    assert installed(project / ".venv") == {"alpha": "1.0", "beta": "1.0"}
    assert (site_packages(project / ".venv") / "beta" / "__init__.py").exists()


_WORKER_PROBE = """
import fcntl, gc, json, os, sys, threading
from lockenv.sync.install.unpacker import Unpackers
held = open(sys.argv[1], "w")  # a lock the sync holds (the venv's), as filelock holds one
fcntl.flock(held, fcntl.LOCK_EX)
release = threading.Event()
if sys.argv[2] == "threaded":  # another thread running, as downloads would be
    threading.Thread(target=release.wait).start()
workers = Unpackers(1)
pid = workers._all[0].pid
fds = {fd: os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
forked = open(f"/proc/{pid}/cmdline", "rb").read() == open("/proc/self/cmdline", "rb").read()
frozen = gc.get_freeze_count()
workers.close()
release.set()
print(json.dumps({"forked": forked, "fds": fds, "stderr": os.readlink("/proc/self/fd/2"),
                  "alive": os.path.exists(f"/proc/{pid}"), "frozen": [frozen, gc.get_freeze_count()]}))
"""


@pytest.mark.skipif(sys.platform != "linux", reason="workers are forked on Linux only")
@pytest.mark.parametrize("threads", ["single", "threaded"])
def test_workers_are_forked_only_from_a_single_thread_and_keep_none_of_its_files(
        tmp_path: Path, threads: str) -> None:
    """A worker forked from the sync starts without an interpreter's start-up, but a fork copies
    only the calling thread (a lock another thread held would stay locked in the child): with
    another thread running, workers are started afresh. A forked worker keeps none of the
    descriptors it inherits but its pipes and stderr: not the venv's lock, which would
    otherwise stay held while a worker outlives a killed sync. While forked workers run, the
    sync's garbage collector leaves the objects they share alone (no page copied for it)."""
    lock = tmp_path / "venv.lock"
    out = subprocess.run([sys.executable, "-c", _WORKER_PROBE, str(lock), threads],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout)
    assert seen["forked"] is (threads == "single")
    assert str(lock) not in seen["fds"].values()
    assert not seen["alive"]  # closed and reaped
    # while forked workers share its pages, the sync's GC leaves its objects alone; then again not
    assert (seen["frozen"][0] > 0) is (threads == "single") and seen["frozen"][1] == 0
    if threads == "single":
        fds = seen["fds"]
        assert fds.pop("0") == "/dev/null" and fds.pop("1") == fds.pop("2") == seen["stderr"]
        assert len(fds) == 2 and all(t.startswith("pipe:") for t in fds.values())  # jobs, answers


_TWO_WAITERS = """
import json, sys, threading, time
from lockenv.sync.install.unpacker import _Forked
codes, errors = [], []
for _ in range(5):
    proc = _Forked()
    def waiter(timeout):
        try:
            codes.append(proc.wait(timeout))
        except Exception as exc:
            errors.append(repr(exc))
    threads = [threading.Thread(target=waiter, args=(t,)) for t in (None, None, 5.0)]
    for thread in threads:
        thread.start()
    time.sleep(0.1)  # every thread waiting on it
    proc.kill()
    for thread in threads:
        thread.join()
print(json.dumps({"codes": codes, "errors": errors}))
"""


@pytest.mark.skipif(sys.platform != "linux", reason="workers are forked on Linux only")
def test_a_forked_worker_can_be_waited_for_by_two_threads_at_once() -> None:
    """An unpacking thread whose worker's pipe broke waits for the worker while the main thread,
    ending the workers after an error, waits for it too: both get its exit status (the second
    waitpid of one child failed with ECHILD, which replaced the sync's own error: "internal
    error: ChildProcessError" instead of the wheel refused)."""
    out = subprocess.run([sys.executable, "-c", _TWO_WAITERS], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout)
    assert seen["errors"] == [] and seen["codes"] == [-9] * 15


_LINK_IN_TWO = """
import json, os, sys, time
from lockenv.errors import IntegrityError
from lockenv.sync import apply
marks = sys.argv[1]
parent = os.getpid()
ordered = [f"w{i}" for i in range(8)]
applied, warned, ones = [], [], []
def install(p, warn):
    open(os.path.join(marks, f"{p}.{os.getpid()}"), "w").close()
    deadline, mine = time.monotonic() + 10, f".{os.getpid()}"
    while time.monotonic() < deadline and all(m.endswith(mine) for m in os.listdir(marks)):
        time.sleep(0.005)  # until the other has taken one too (the child however slow to
        # start, the parent however slow to take its first under load)
    if os.getpid() != parent:
        warn(f"{p} warned in the child", "a hint")
        if FAIL == "refused":  # (and the archive removed: the parent's try finds it missing)
            raise IntegrityError(f"the cached copy of {p} is damaged and was refused", hint="sync again")
        if FAIL:
            raise OSError(28, "No space left on device", p)
    elif FAIL == "refused" and p in TOOK:
        raise FileNotFoundError(2, "No such file or directory", p)
    elif FAIL and p in TOOK:
        raise OSError(28, "No space left on device", p)
    return (p, os.getpid())
def one(p):
    ones.append(p)
    applied.append((p, install(p, lambda m, h: warned.append((m, h)))))
out = {}
FAIL, TOOK = False, set()
out["forked"] = apply._in_two_processes(ordered, one, install, applied, lambda m, h: warned.append([m, h]))
out["applied"] = sorted([p, pid == parent] for p, (_, pid) in applied)
out["warned"] = sorted(map(list, warned))
out["ones"] = sorted(ones)
for name in os.listdir(marks):
    os.unlink(os.path.join(marks, name))
applied.clear(); ones.clear()
FAIL, TOOK = True, set()
class Took(set):
    def __contains__(self, p):  # the parent fails what the child failed: the same disk
        return any(m.startswith(p + ".") and not m.endswith(f".{parent}") for m in os.listdir(marks))
TOOK = Took()
try:
    apply._in_two_processes(ordered, one, install, applied, lambda m, h: None)
except OSError as exc:
    out["error"] = [exc.errno, exc.filename, exc.filename in ones]
for name in os.listdir(marks):
    os.unlink(os.path.join(marks, name))
applied.clear(); ones.clear(); warned.clear()
FAIL = "refused"
try:
    apply._in_two_processes(ordered, one, install, applied, lambda m, h: warned.append([m, h]))
except Exception as exc:
    out["refused"] = [type(exc).__name__, exc.message, exc.hint, exc.__suppress_context__,
                      any(exc.message == f"the cached copy of {p} is damaged and was refused" for p in ones)]
out["refused_warned"] = warned
print(json.dumps(out))
"""


def test_a_sync_links_in_two_processes_and_an_install_failing_in_the_child_fails_here(tmp_path: Path) -> None:
    """The link stage shares the installs with a child forked from the sync: what the
    child's installs did comes back for the sealed plan (each install once, by one of the
    two), their warnings are told by the sync (but a failed one's: its second try tells its
    own), and an install that fails in the child is done again by the sync itself. When that fails too, the child's error is the one
    reported, as it was raised: the second failure may be its consequence (a damaged cached
    wheel refused and removed by the child is missing when the sync tries again)."""
    import json

    marks = tmp_path / "marks"
    marks.mkdir()
    result = subprocess.run([sys.executable, "-c", _LINK_IN_TWO, str(marks)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["forked"] is True
    by_parent = dict(out["applied"])
    assert sorted(by_parent) == [f"w{i}" for i in range(8)] and len(out["applied"]) == 8
    assert True in by_parent.values() and False in by_parent.values()  # both took some
    assert out["ones"] == sorted(p for p, here in by_parent.items() if here)
    assert out["warned"] == sorted([f"{p} warned in the child", "a hint"]
                                   for p, here in by_parent.items() if not here)
    assert out["error"][0] == 28 and out["error"][2] is True  # the install the parent did again
    assert out["refused"][:4] == ["IntegrityError", out["refused"][1], "sync again", True]
    assert out["refused"][1].endswith(" is damaged and was refused") and out["refused"][4] is True
    assert out["refused_warned"] == []  # the failed install's warning: told by its second try only

"""A warm sync into an empty venv is answered by the entry point from one sealed entry, keyed
by what the no-op check computes: neither ops.sync nor the selection, environment, scan or plan
modules are imported, and the venv is the one the full sync makes, byte for byte. The entry is
trusted as the plan it names: a forged one is refused, a stale lock is still checked, a venv
that is not empty, or one another sync holds, is handled as before."""

from __future__ import annotations

import marshal
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import env_for, installed, lock, run_lockenv, snapshot, spy_venv_shape, write_project

FULL_SYNC = {"lockenv.ops.sync", "lockenv.sync.selection", "lockenv.environment", "lockenv.sync.scan",
             "lockenv.sync.plan"}
NEVER = {"typer", "httpx", "resolvelib", "installer", "rich", "filelock", "dataclasses", "typing"}
"""Never imported by a warm sync (dataclasses: ~10% of its instructions, with inspect and ast;
typing: ~2.5 ms of ~55 on web), nor by a no-op."""


def _cache() -> Path:
    return Path(os.environ["LOCKENV_CACHE_DIR"])


def _entries() -> list[Path]:
    return sorted(p for p in (_cache() / "installs-v1" / "warm").rglob("*") if p.is_file())


def _empty_venv(project: Path) -> Path:
    """A fresh venv as `python -m venv --without-pip` leaves it (what CI and the bench make)."""
    venv = project / ".venv"
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    return venv


def _sync(project: Path, srv: Any, *args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """`lockenv sync` as a user runs it, with the modules it imported (-X importtime)."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "lockenv", "sync", *args],
                          cwd=project, env={**os.environ, **env_for(srv)}, capture_output=True, text=True)
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if "import time:" in line}
    proc.stderr = "\n".join(line for line in proc.stderr.splitlines() if "import time:" not in line)
    return proc, imported


def _files(venv: Path) -> dict[str, tuple[int, bytes]]:
    files = snapshot(venv)
    files.pop(".lockenv-state.json")
    return files


def _first_sync(project: Path, srv: Any, deps: list[str]) -> tuple[list[str], dict[str, tuple[int, bytes]]]:
    write_project(project, deps)
    lock(project, srv)
    _empty_venv(project)
    proc, imported = _sync(project, srv)
    assert proc.returncode == 0, proc.stderr
    assert imported & FULL_SYNC == FULL_SYNC  # the first one: the full sync, which keeps the entry
    assert len(_entries()) == 1
    return proc.stdout.splitlines(), _files(project / ".venv")


def _verified(project: Path, srv: Any) -> None:
    result = run_lockenv("verify", cwd=project, env=env_for(srv))
    assert result.code == 0, result.output


def test_a_warm_sync_into_an_empty_venv_never_imports_the_full_sync(project: Path, index_server: Any) -> None:
    """The second sync into an empty venv imports none of ops.sync, selection, environment, scan
    or plan (nor typer, httpx, resolvelib, installer, rich), tells the same plan, and makes
    the same venv, byte for byte; the next sync is a no-op and verify agrees."""
    lines, before = _first_sync(project, index_server, ["alpha", "feat[fast]"])
    _empty_venv(project)
    proc, imported = _sync(project, index_server)
    assert proc.returncode == 0, proc.stderr
    assert not imported & (FULL_SYNC | NEVER), imported & (FULL_SYNC | NEVER)
    assert proc.stdout.splitlines() == lines == ["+ alpha==2.0", "+ beta==2.0", "+ feat==1.0", "+ gamma==1.2"]
    assert proc.stderr.startswith("Installed 4 in "), proc.stderr
    assert _files(project / ".venv") == before
    _verified(project, index_server)
    proc, imported = _sync(project, index_server)
    assert proc.stderr.startswith("Environment is up to date") and not imported & (FULL_SYNC | NEVER)


def test_a_copy_of_the_project_at_a_new_path_is_served_at_once(tmp_path: Path, index_server: Any) -> None:
    """The entry and its plan are venv-relative: a copy of the project elsewhere (a CI runner's
    new checkout) is served by the entry point too, its scripts naming its own interpreter."""
    first = tmp_path / "a"
    _, before = _first_sync(first, index_server, ["alpha"])
    second = tmp_path / "elsewhere" / "b"
    shutil.copytree(first, second, ignore=shutil.ignore_patterns(".venv"))
    _empty_venv(second)
    proc, imported = _sync(second, index_server)
    assert proc.returncode == 0, proc.stderr
    assert not imported & FULL_SYNC
    script = (second / ".venv" / "bin" / "alpha-cli").read_bytes()
    assert script.startswith(f"#!{second / '.venv' / 'bin' / 'python'}\n".encode())
    assert set(_files(second / ".venv")) == set(before)
    _verified(second, index_server)


def test_a_forged_entry_is_refused(project: Path, index_server: Any) -> None:
    """F4: an entry rewritten (its seal kept) to tell other lines and write other selection
    bytes is not used: the full sync runs and installs what the lock says."""
    lines, before = _first_sync(project, index_server, ["alpha"])
    (path,) = _entries()
    blob = path.read_bytes()
    start = blob.index(path.name.encode()) + len(path.name) + 1
    entry = marshal.loads(blob[start:])
    forged = (*entry[:3], ["+ evil==6.6.6"], entry[4], b'{"owned": true}', *entry[6:])
    path.write_bytes(blob[:start] + marshal.dumps(forged))
    _empty_venv(project)
    proc, imported = _sync(project, index_server)
    assert proc.returncode == 0, proc.stderr
    assert imported & FULL_SYNC == FULL_SYNC
    assert proc.stdout.splitlines() == lines
    assert _files(project / ".venv") == before
    assert b"owned" not in path.read_bytes()  # the full sync sealed its own entry again
    _verified(project, index_server)


def test_an_entry_under_another_key_is_refused(project: Path, index_server: Any) -> None:
    """A real entry of another selection (an extra) copied under this selection's key is
    sealed, but for another key: refused, and the full sync installs this selection."""
    write_project(project, ["alpha"], extras={"fast": ["feat[fast]"]})
    lock(project, index_server)
    _empty_venv(project)
    assert _sync(project, index_server, "--extra", "fast")[0].returncode == 0
    _empty_venv(project)
    assert _sync(project, index_server)[0].returncode == 0
    assert len(_entries()) == 2
    plain = installed(project / ".venv")
    assert "feat" not in plain
    mine = max(_entries(), key=lambda p: p.stat().st_mtime_ns)
    other = next(p for p in _entries() if p != mine)
    shutil.copyfile(other, mine)
    _empty_venv(project)
    proc, imported = _sync(project, index_server)
    assert proc.returncode == 0, proc.stderr
    assert imported & FULL_SYNC == FULL_SYNC
    assert installed(project / ".venv") == plain
    _verified(project, index_server)


def test_the_lock_is_still_checked_against_pyproject(project: Path, index_server: Any) -> None:
    """The entry is keyed by the lock's and pyproject.toml's bytes; whether that lock is fresh
    for that pyproject.toml is still the fresh marker's answer: without it, the full sync
    checks the lock (here: fresh, so it installs the same)."""
    lines, before = _first_sync(project, index_server, ["alpha"])
    shutil.rmtree(_cache() / "fresh-locks-v1")
    _empty_venv(project)
    proc, imported = _sync(project, index_server, "--locked")
    assert proc.returncode == 0, proc.stderr
    assert "lockenv.lockfile" in imported and imported & FULL_SYNC == FULL_SYNC
    assert _files(project / ".venv") == before
    # A pyproject.toml changed since: another key; --locked fails as it always did.
    write_project(project, ["alpha", "gamma"])
    _empty_venv(project)
    proc, _ = _sync(project, index_server, "--locked")
    assert proc.returncode == 1 and "out of date" in proc.stderr, proc.stderr
    assert not any((project / ".venv").glob("lib/python3.*/site-packages/*"))


def test_a_venv_that_is_not_empty_gets_the_full_sync(project: Path, index_server: Any) -> None:
    """Anything in the venv's site-packages (another tool's install, a half-made venv): the
    full sync, which scans it and plans around it."""
    _first_sync(project, index_server, ["alpha"])
    venv = _empty_venv(project)
    (site,) = venv.glob("lib/python3.*/site-packages")
    (site / "stray.pth").write_text("")
    proc, imported = _sync(project, index_server)
    assert proc.returncode == 0, proc.stderr
    assert imported & FULL_SYNC == FULL_SYNC
    assert (site / "stray.pth").exists() and "alpha" in installed(venv)


def test_a_warm_sync_waits_for_the_venv_lock(project: Path, index_server: Any) -> None:
    """The entry point takes the venv's lock as the full sync does: while another process holds
    it, the warm sync says it is waiting and changes nothing; then it installs."""
    from lockenv.cache import Cache
    from lockenv.sync.state import venv_lock_name

    _first_sync(project, index_server, ["alpha"])
    venv = _empty_venv(project)
    held = Cache().lock(Cache().bucket("venv-locks-v1") / venv_lock_name(venv.resolve()))
    held.acquire()
    err: list[str] = []
    try:
        proc = subprocess.Popen([sys.executable, "-X", "importtime", "-m", "lockenv", "sync"], cwd=project,
                                env={**os.environ, **env_for(index_server)}, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        reader = threading.Thread(target=lambda: err.extend(proc.stderr), daemon=True)  # type: ignore[arg-type]
        reader.start()
        deadline = time.monotonic() + 300
        while not any("Waiting for another lockenv process" in line for line in err):
            assert proc.poll() is None, "".join(err)
            assert time.monotonic() < deadline, "the sync never said it was waiting"
            time.sleep(0.05)
        assert not any(venv.glob("lib/python3.*/site-packages/*"))
    finally:
        held.release()
    assert proc.wait(timeout=300) == 0, "".join(err)
    reader.join(timeout=60)
    assert not any(line.rsplit("|", 1)[-1].strip() in FULL_SYNC for line in err if "import time:" in line)
    assert "alpha" in installed(venv)


@pytest.mark.parametrize("values", [
    {}, {"extras": ("b", "a")}, {"all_extras": True, "groups": ("dev",)}, {"only_groups": ("docs",)},
    {"no_default_groups": True, "all_groups": True}, {"inexact": True, "offline": True},
    {"python": "3.12", "locked": True}, {"frozen": True, "install_project": False},
    {"lockfile": Path("/somewhere/pylock.toml")},
])
def test_the_entry_points_options_key_is_the_full_syncs(values: dict[str, Any], tmp_path: Path) -> None:
    """The no-op and the warm sync key the options as parsed (no SyncOptions: that is ops.sync);
    the key must be the one the full sync records, for every field (a new field of SyncOptions
    must be added to OPTION_FIELDS, or this fails)."""
    import dataclasses

    from lockenv import __version__
    from lockenv.ops.sync import SyncOptions
    from lockenv.sync import state

    fields = [(f.name, f.default) for f in dataclasses.fields(SyncOptions)]
    assert fields[0][0] == "project" and fields[1:] == list(state.OPTION_FIELDS)
    assert state.options_key_of(values, __version__) == \
        state.options_key(SyncOptions(project=tmp_path, **values), __version__)


def test_a_missing_venv_is_made_and_served_too(project: Path, index_server: Any) -> None:
    """A fresh checkout (no venv at all): once one sync has made the venv and installed the
    same selection, the next makes the venv as the full sync does (the interpreter lockenv runs
    on, as requires-python admits it) and installs from the plan without the full sync's
    modules; the venv is the first one's, byte for byte (pyvenv.cfg included)."""
    write_project(project, ["alpha", "feat[fast]"])
    lock(project, index_server)
    proc, imported = _sync(project, index_server)
    assert proc.returncode == 0 and imported & FULL_SYNC == FULL_SYNC, proc.stderr
    before = _files(project / ".venv")
    shutil.rmtree(project / ".venv")
    proc, imported = _sync(project, index_server)
    assert proc.returncode == 0, proc.stderr
    # making the venv takes lockenv.environment, and its dataclasses
    assert not imported & (FULL_SYNC - {"lockenv.environment"}) and not imported & (NEVER - {"dataclasses"})
    assert proc.stderr.startswith("Creating virtual environment at "), proc.stderr
    assert proc.stdout.splitlines() == ["+ alpha==2.0", "+ beta==2.0", "+ feat==1.0", "+ gamma==1.2"]
    assert _files(project / ".venv") == before
    _verified(project, index_server)
    # A venv path that is a file: the full sync says what is wrong, as before.
    shutil.rmtree(project / ".venv")
    (project / ".venv").write_text("")
    proc, _ = _sync(project, index_server)
    assert proc.returncode == 2 and "is a file, not a directory" in proc.stderr, proc.stderr


def test_a_copy_of_a_project_selects_from_the_cache_and_installs_itself_from_its_own_path(
        tmp_path: Path, index_server: Any) -> None:
    """The lock's cached selection is not keyed by the project's path: a copy of a project with
    a build system (installed editable, so never from a plan) at a new path selects without
    parsing the lock again, and installs the project from its own directory."""
    first = write_project(tmp_path / "a", ["alpha"], build_system=True)
    lock(first, index_server)
    proc, imported = _sync(first, index_server)
    assert proc.returncode == 0, proc.stderr
    assert "packaging.pylock" in imported  # the first sync parses the lock
    second = tmp_path / "elsewhere" / "b"
    shutil.copytree(first, second, ignore=shutil.ignore_patterns(".venv"))
    proc, imported = _sync(second, index_server)
    assert proc.returncode == 0, proc.stderr
    assert "packaging.pylock" not in imported
    assert "demo" in installed(second / ".venv")
    site = next((second / ".venv").glob("lib/python3.*/site-packages"))
    texts = [p.read_bytes() for p in site.rglob("*") if p.is_file() and p.suffix in (".pth", ".json")]
    assert any(str(second).encode() in t for t in texts)
    assert not any(str(first).encode() in t for t in texts)
    _verified(second, index_server)


def test_the_shape_kept_is_a_full_walks_though_subtrees_are_listed_while_linking(
        project: Path, index_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each subtree that one wheel alone makes is listed for the no-op's shape by the thread
    that linked it, once its last file is there, and not walked again at the end: the shape a
    warm sync keeps is exactly what a full walk of the venv finds afterwards, and the next sync
    is a no-op."""
    import gc

    from lockenv import cache, fastpath
    from lockenv.sync import state

    monkeypatch.setattr(cache, "_USER_KEY", [])  # this test's user key, not an earlier test's
    _first_sync(project, index_server, ["alpha", "feat[fast]"])
    venv = _empty_venv(project)
    given, full_walk = spy_venv_shape(monkeypatch)
    monkeypatch.chdir(project)
    for name, value in env_for(index_server).items():
        monkeypatch.setenv(name, value)
    threshold = gc.get_threshold()
    try:
        assert fastpath.try_noop(["-q", "sync"]) == 0
    finally:
        gc.set_threshold(*threshold)
    assert given and given[0] > 0  # the wheels' own subtrees, listed as they were finished
    kept = state.read_state(venv)
    assert kept is not None and kept["shape"] == full_walk(venv)
    assert len(kept["shape"]) > given[0]
    monkeypatch.undo()
    assert run_lockenv("sync", cwd=project, env=env_for(index_server)).stderr.startswith(
        "Environment is up to date")


def test_the_warm_paths_venv_lock_and_filelocks_exclude_each_other(tmp_path: Path) -> None:
    """The warm path takes the venv's lock without filelock (its import is ~12% of a warm
    sync): the same flock(2) on the same file, so a full sync holding it with filelock makes
    the warm one wait (and say so), and a warm sync holding it keeps filelock out; a lock file
    removed while it was waited for (`cache clean`) is not the one held."""
    import filelock

    from lockenv.sync import warm

    told: list[str] = []
    reporter = type("R", (), {"status": lambda self, text: told.append(text)})()
    said = warm.Said(reporter, lambda: None)  # type: ignore[arg-type]
    path = tmp_path / "locks" / "venv.lock"
    path.parent.mkdir()
    held = warm._hold(path, tmp_path / "venv", said)
    assert held is not None
    try:
        with pytest.raises(filelock.Timeout):
            filelock.FileLock(str(path)).acquire(timeout=0.3)
    finally:
        os.close(held)
    full = filelock.FileLock(str(path))
    full.acquire()
    got: list[int | None] = []
    waiter = threading.Thread(target=lambda: got.append(warm._hold(path, tmp_path / "venv", said)))
    waiter.start()
    deadline = time.monotonic() + 60
    while not told:
        assert time.monotonic() < deadline, "the warm path never said it was waiting"
        time.sleep(0.02)
    assert not got and told == [f"Waiting for another lockenv process using {tmp_path / 'venv'}"]
    path.unlink()  # removed while held: the waiter must not keep the old file's lock
    full.release()
    waiter.join(timeout=60)
    assert got and got[0] is not None
    try:
        assert os.fstat(got[0]).st_nlink == 1 and path.exists()
        with pytest.raises(filelock.Timeout):
            filelock.FileLock(str(path)).acquire(timeout=0.3)
    finally:
        os.close(got[0])
    assert told == [f"Waiting for another lockenv process using {tmp_path / 'venv'}"]


def test_a_full_sync_with_no_venv_and_its_files_cached_never_imports_the_http_client(
        project: Path, index_server: Any) -> None:
    """No venv and no entry to serve it (this project's first sync from this cache with no
    venv), but the lock's selection and files in the cache: the full sync makes the venv and
    installs without importing httpx (it used to ready the client on a thread meanwhile, and
    wait for it)."""
    write_project(project, ["alpha", "feat[fast]"])
    lock(project, index_server)
    proc, imported = _sync(project, index_server)
    assert proc.returncode == 0 and "httpx" in imported, proc.stderr  # the first one downloads
    before = _files(project / ".venv")
    shutil.rmtree(project / ".venv")
    shutil.rmtree(_cache() / "installs-v1" / "made", ignore_errors=True)
    proc, imported = _sync(project, index_server)
    assert proc.returncode == 0, proc.stderr
    assert imported & FULL_SYNC == FULL_SYNC and "httpx" not in imported
    assert proc.stderr.startswith("Creating virtual environment at "), proc.stderr
    assert _files(project / ".venv") == before

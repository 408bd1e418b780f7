"""`lockenv cache dir | clean | prune` through the CLI: prune after a sync killed mid-download,
prune beside another running lockenv process, unpacked trees linked from a venv kept, clean of
one package or of everything."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fixtures.index import IndexServer
from helpers import env_for, installed, lock, run_lockenv, sync, write_project
from lockenv.cache import Bucket


def cache_root() -> Path:
    return Path(os.environ["LOCKENV_CACHE_DIR"])


def _downloading() -> bool:
    """Whether a download of the running sync is under way (its temporary file in the cache):
    listed while the sync writes the cache, so a directory it renames or removes meanwhile (an
    unpacking's temporary tree) is not an error."""
    try:
        return any(cache_root().rglob(".download-*.tmp"))
    except FileNotFoundError:
        return False


def trees() -> set[str]:
    return {p.name for p in (cache_root() / "unpacked-v1").glob("*/*") if not p.name.startswith(".")}


def synced(path: Path, srv: IndexServer, deps: list[str]) -> Path:
    project = write_project(path, deps)
    lock(project, srv)
    r = sync(project, srv)
    assert r.code == 0, r.output
    return project


def test_cache_dir_prints_the_cache_directory(tmp_path: Path) -> None:
    r = run_lockenv("cache", "dir", cwd=tmp_path)
    assert r.code == 0, r.output
    assert r.stdout == f"{cache_root()}\n"


def test_prune_after_a_killed_sync_then_sync_works(tmp_path: Path, index_server: IndexServer) -> None:
    kept = synced(tmp_path / "kept", index_server, ["alpha"])
    kept_trees = trees()
    dropped = synced(tmp_path / "dropped", index_server, ["werky"])
    shutil.rmtree(dropped / ".venv")  # werky's tree is now linked from no venv
    assert trees() > kept_trees

    victim = write_project(tmp_path / "victim", ["marked", "timely"])
    lock(victim, index_server)
    index_server.inject("timely", "slow", delay=60)
    proc = subprocess.Popen([sys.executable, "-m", "lockenv", "sync"], cwd=victim,
                            env={**os.environ, **env_for(index_server)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not _downloading() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _downloading(), "the sync never started its download"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    index_server.clear_faults()
    (cache_root() / "pages-v0").mkdir()  # a bucket of an older lockenv
    (cache_root() / "wheels-built-v1").mkdir()  # a name an older lockenv used
    (cache_root() / "pages-v99").mkdir()  # a newer lockenv's, sharing the cache
    foreign = cache_root() / "notes"  # not lockenv's: the directory is shared
    foreign.mkdir()
    (foreign / ".draft.tmp").write_text("mine")

    r = run_lockenv("cache", "prune", "-v", cwd=tmp_path)
    assert r.code == 0, r.output
    assert "left by a process that did not finish" in r.stderr
    assert "a bucket no lockenv version reads any more" in r.stderr
    assert "Pruned " in r.stderr and "freed" in r.stderr
    assert not list(cache_root().rglob(".download-*.tmp"))
    assert not (cache_root() / "pages-v0").exists()
    assert not (cache_root() / "wheels-built-v1").exists()
    assert (cache_root() / "pages-v99").is_dir(), "a newer lockenv's bucket is not ours to remove"
    assert (foreign / ".draft.tmp").read_text() == "mine", "prune touched a file that is not lockenv's"
    assert trees() == kept_trees, "only the tree no venv links to goes"

    assert run_lockenv("verify", cwd=kept, env=env_for(index_server)).code == 0
    r = sync(victim, index_server)
    assert r.code == 0, r.output
    assert {"marked", "timely"} <= set(installed(victim / ".venv"))
    r = sync(dropped, index_server)
    assert r.code == 0, r.output


def test_prune_beside_another_lockenv_process(tmp_path: Path, index_server: IndexServer) -> None:
    project = synced(tmp_path / "p", index_server, ["werky"])
    shutil.rmtree(project / ".venv")
    unlinked = trees()
    files = cache_root() / "files-v1"
    fresh, old = files / ".download-fresh.tmp", files / ".download-old.tmp"
    fresh.write_bytes(b"being written")
    old.write_bytes(b"left an hour ago")
    os.utime(old, (time.time() - 3600, time.time() - 3600))

    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from lockenv.ops.cache import hold_in_use; hold_in_use(); "
                               "print('holding', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "holding\n"
        r = run_lockenv("cache", "prune", cwd=tmp_path)
        assert r.code == 0, r.output
        assert "another lockenv process may be using" in r.stderr
        assert fresh.exists() and not old.exists()
        assert trees() == unlinked
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait()
    r = run_lockenv("cache", "prune", cwd=tmp_path)
    assert r.code == 0, r.output
    assert "another lockenv process" not in r.stderr
    assert not fresh.exists() and trees() == set()


def test_clean_one_package_then_everything(tmp_path: Path, index_server: IndexServer) -> None:
    project = synced(tmp_path / "p", index_server, ["alpha"])
    pages = cache_root() / Bucket.PAGES.value
    assert {p.stem for p in pages.glob("*/*.msgpack")} >= {"alpha", "beta", "gamma"}
    r = run_lockenv("cache", "clean", "Gamma", cwd=tmp_path)
    assert r.code == 0, r.output
    assert "Removed " in r.stderr
    names = {p.stem for p in pages.glob("*/*.msgpack")}
    assert "gamma" not in names and {"alpha", "beta"} <= names
    left = [f.name for f in (cache_root() / "files-v1").glob("*/*/*")]
    assert left and not any(n.startswith("gamma") for n in left)
    assert any(n.startswith("alpha") for n in left)

    r = run_lockenv("cache", "clean", cwd=tmp_path)
    assert r.code == 0, r.output
    assert [p.name for p in cache_root().iterdir()] == ["locks"]
    # the venv's files are its own hard links: it still verifies, and syncs again from nothing
    assert run_lockenv("verify", cwd=project, env=env_for(index_server)).code == 0


def _plans() -> dict[Path, list[str]]:
    """The sealed install plans kept (`installs-v1/whole/`), with the distributions each installs."""
    from lockenv.sync.install.whole import kept

    return {path: names for path, names, _ in kept(cache_root())}


def _warm_entries() -> list[Path]:
    return sorted(p for p in (cache_root() / "installs-v1" / "warm").glob("*/*") if p.is_file())


def test_clean_name_and_prune_remove_the_plans_that_cannot_serve(tmp_path: Path, index_server: IndexServer) -> None:
    """`cache clean NAME` removes the sealed plans that install NAME (and the warm entries
    naming them); `cache prune` removes the plans whose trees it removed (no venv links to
    them any more), and keeps the others; the next sync still works."""
    first = synced(tmp_path / "a", index_server, ["alpha"])
    second = synced(tmp_path / "b", index_server, ["gamma"])
    plans = _plans()
    assert sorted(map(sorted, plans.values())) == [["alpha", "beta", "gamma"], ["gamma"]]
    assert len(_warm_entries()) == 2
    assert len(list((cache_root() / "installs-v1" / "made").glob("*/*"))) == 2  # both venvs made
    r = run_lockenv("cache", "clean", "beta", cwd=tmp_path)
    assert r.code == 0, r.output
    assert sorted(_plans().values()) == [["gamma"]]  # alpha's plan installs beta: removed
    assert len(_warm_entries()) == 1
    for project in (first, second):  # gamma's tree is linked from no venv now: prune removes it
        shutil.rmtree(project / ".venv")
    r = run_lockenv("cache", "prune", cwd=tmp_path)
    assert r.code == 0, r.output
    assert not _plans() and not _warm_entries()
    assert not list((cache_root() / "installs-v1" / "made").glob("*/*"))
    for project in (first, second):
        shutil.rmtree(project / ".venv", ignore_errors=True)
        r = sync(project, index_server)
        assert r.code == 0, r.output
        assert run_lockenv("verify", cwd=project, env=env_for(index_server)).code == 0
    assert len(_plans()) == 2


def test_prune_keeps_the_newest_plans(tmp_path: Path, index_server: IndexServer,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Plans beyond the limit (lowered since they were saved) are pruned, the newest kept."""
    from lockenv.ops.cache import CacheOptions, prune
    from lockenv.sync.install import whole

    for i, deps in enumerate([["alpha"], ["gamma"], ["beta"]]):
        synced(tmp_path / f"p{i}", index_server, deps)
    assert len(_plans()) == 3
    newest = max(_plans(), key=lambda p: p.stat().st_mtime_ns)
    monkeypatch.setattr(whole, "MAX_PLANS", 1)
    report = prune(CacheOptions(root=cache_root()), reporter=None)
    assert list(_plans()) == [newest]
    assert any("beyond the newest 1 plans" in r.why for r in report.removed)

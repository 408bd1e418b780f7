"""The security review's cache and install findings (issue 10; `reviews/security-2026-12.md`):
the cache is untrusted input, damaged entries heal, and concurrent runs share it. Each test's
docstring starts with the finding it covers, and drives the real CLI (or the public sync API)
against the fixture index."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fixtures.builder import write_wheel
from helpers import env_for, handmade_lock, installed, run_lockenv, site_packages, write_project


def _cache() -> Path:
    return Path(os.environ["LOCKENV_CACHE_DIR"])


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_f6_two_archives_named_alike_each_install_their_own(project: Path, index_server: Any) -> None:
    """F6: two archive entries whose files share a name (GitHub's `main.tar.gz`) are fetched
    and built each from its own archive (downloads are keyed by sha256, not by file name)."""
    entries = []
    for sub, name in (("a", "alpha"), ("b", "cee")):
        data = index_server.file(name, f"{name}-2.0.tar.gz")
        (project / sub).mkdir()
        (project / sub / "main.tar.gz").write_bytes(data)
        entries += ["[[packages]]", f'name = "{name}"', 'version = "2.0"',
                    f'archive = {{ path = "{sub}/main.tar.gz", hashes = {{ sha256 = "{_sha(data)}" }} }}', ""]
    lockfile = project / "pylock.toml"
    lockfile.write_text("\n".join(['lock-version = "1.0"', 'created-by = "hand"',
                                   'requires-python = ">=3.10"', "", *entries]))
    result = run_lockenv("sync", "--lockfile", lockfile, cwd=project, env=env_for(index_server))
    assert result.code == 0, result.output
    assert installed(project / ".venv") == {"alpha": "2.0", "cee": "2.0"}
    result = run_lockenv("verify", "--lockfile", lockfile, cwd=project, env=env_for(index_server))
    assert result.code == 0, result.output


def _forge_wheel(lockfile: Path, name: str, version: str, *, url: str, sha256: str, size: int) -> None:
    """Point `name version`'s wheel entry of a handmade lock at another file."""
    lines = lockfile.read_text().splitlines()
    start = lines.index(f'name = "{name}"')
    assert lines[start + 1] == f'version = "{version}"'
    at = next(i for i in range(start, len(lines)) if lines[i].startswith("wheels = "))
    lines[at] = (f'wheels = [{{ name = "{name}-{version}-py3-none-any.whl", url = "{url}", '
                 f'size = {size}, hashes = {{ sha256 = "{sha256}" }} }}]')
    lockfile.write_text("\n".join(lines) + "\n")


def test_f7_a_cached_tree_is_never_installed_for_another_distribution(tmp_path: Path, index_server: Any) -> None:
    """F7: a lock entry for gamma 1.2 carrying the sha256 of cee 1.0's wheel, whose tree is
    already unpacked in the cache, is refused (it names both), never installed as gamma."""
    other = tmp_path / "other"
    other.mkdir()
    handmade_lock(other / "pylock.toml", index_server, {"cee": "1.0"}, kinds={"cee": "wheel"})
    result = run_lockenv("sync", "--lockfile", other / "pylock.toml", cwd=other, env=env_for(index_server))
    assert result.code == 0, result.output  # cee 1.0 is now unpacked in the cache
    project = tmp_path / "proj"
    project.mkdir()
    lockfile = handmade_lock(project / "pylock.toml", index_server, {"gamma": "1.2"}, kinds={"gamma": "wheel"})
    cee = "cee-1.0-py3-none-any.whl"
    data = index_server.file("cee", cee)
    _forge_wheel(lockfile, "gamma", "1.2", url=index_server.file_url("cee", cee), sha256=_sha(data),
                 size=len(data))
    for _ in range(2):  # the second run must not find it "up to date"
        result = run_lockenv("sync", "--lockfile", lockfile, cwd=project, env=env_for(index_server))
        assert result.code == 2, result.output
        assert "holds cee 1.0, not gamma 1.2" in result.stderr
        assert "internal error" not in result.stderr
        assert installed(project / ".venv") == {}


def test_f28_a_wrong_size_in_the_lock_is_the_locks_fault_and_the_cached_file_stays(
        project: Path, index_server: Any) -> None:
    """F28: a lock with the right sha256 but a wrong size blames the lock (naming its size),
    and the good cached file is kept."""
    lockfile = handmade_lock(project / "pylock.toml", index_server, {"cee": "1.0"}, kinds={"cee": "wheel"})
    result = run_lockenv("sync", "--lockfile", lockfile, cwd=project, env=env_for(index_server))
    assert result.code == 0, result.output
    cached = list(_cache().glob("files-v1/*/*/cee-1.0-py3-none-any.whl"))
    assert len(cached) == 1
    text = lockfile.read_text()
    size = index_server.files("cee")
    real = next(s for f, _sha256, s in size if f == "cee-1.0-py3-none-any.whl")
    lockfile.write_text(text.replace(f"size = {real},", f"size = {real + 1},"))
    shutil.rmtree(project / ".venv")
    result = run_lockenv("sync", "--lockfile", lockfile, cwd=project, env=env_for(index_server))
    assert result.code == 2, result.output
    assert "does not match its size in" in result.stderr
    assert f"expected size: {real + 1}" in result.stderr
    assert "damaged" not in result.stderr
    assert cached[0].is_file()


def test_f29_a_cache_bucket_that_is_a_file_is_a_clear_error(project: Path, index_server: Any) -> None:
    """F29: `files-v1` being a file (not a directory) gives the cache's clear message naming
    it, never an internal error."""
    lockfile = handmade_lock(project / "pylock.toml", index_server, {"cee": "1.0"}, kinds={"cee": "wheel"})
    _cache().mkdir(parents=True, exist_ok=True)
    (_cache() / "files-v1").write_text("x")
    result = run_lockenv("sync", "--lockfile", lockfile, cwd=project, env=env_for(index_server))
    assert result.code == 2, result.output
    assert "internal error" not in result.stderr
    assert "files-v1 is a file, not a directory" in result.stderr


def test_f29_an_ill_typed_sync_journal_is_repaired(project: Path, index_server: Any) -> None:
    """F29: a sync journal with the wrong JSON types counts as an interrupted sync and is
    repaired, never an internal error."""
    write_project(project, ["cee==1.0"])
    assert run_lockenv("lock", cwd=project, env=env_for(index_server)).code == 0
    assert run_lockenv("sync", cwd=project, env=env_for(index_server)).code == 0
    journal = project / ".venv" / ".lockenv-sync.json"
    journal.write_text(json.dumps({"names": "cee", "paths": 5, "removing": {"x": 1}, "pid": "no"}))
    result = run_lockenv("sync", cwd=project, env=env_for(index_server))
    assert result.code == 0, result.output
    assert "internal error" not in result.stderr
    assert not journal.exists()
    assert installed(project / ".venv") == {"cee": "1.0"}
    assert (site_packages(project / ".venv") / "cee" / "__init__.py").is_file()


def _path_lock(directory: Path, wheel: Path) -> Path:
    """A lock (of another tool) installing one local wheel."""
    name = wheel.name.split("-")[0]
    text = (f'lock-version = "1.0"\ncreated-by = "hand"\n\n[[packages]]\nname = "{name}"\n'
            f'version = "1.0"\nwheels = [{{ path = "{wheel}", hashes = {{ sha256 = "{_sha(wheel.read_bytes())}" }} }}]\n')
    (directory / "hand.toml").write_text(text)
    return directory / "hand.toml"


def _synced(project: Path, srv: Any, deps: list[str]) -> None:
    write_project(project, deps)
    for command in ("lock", "sync"):
        result = run_lockenv(command, cwd=project, env=env_for(srv))
        assert result.code == 0, result.output


def _python(project: Path, code: str) -> str:
    proc = subprocess.run([str(project / ".venv" / "bin" / "python"), "-c", code],
                          capture_output=True, text=True, cwd="/")
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _b64sha(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def test_f4_a_forged_parsed_lock_in_the_cache_is_never_used(project: Path, index_server: Any) -> None:
    """F4: a parsed-lock pickle put into the cache under the lock's key, holding another lock
    (gamma 1.0 where the lock says 1.2), is not what sync installs, nor what verify checks."""
    import dataclasses
    import pickle

    import packaging
    from packaging.version import Version

    from lockenv.lockfile import load

    write_project(project, ["alpha"])
    assert run_lockenv("lock", cwd=project, env=env_for(index_server)).code == 0
    lock_path = project / "pylock.toml"
    lock, packages = load(lock_path), []
    for pkg in lock.packages:
        if pkg.name == "gamma":
            wheel = "gamma-1.0-py3-none-any.whl"
            data = index_server.file("gamma", wheel)
            entry = dataclasses.replace(pkg.wheels[0], name=wheel, url=index_server.file_url("gamma", wheel),
                                        size=len(data), hashes={"sha256": _sha(data)})
            pkg = dataclasses.replace(pkg, version=Version("1.0"), wheels=[entry], sdist=None)
        packages.append(pkg)
    key = _sha(lock_path.read_bytes() + b"\0" + packaging.__version__.encode())
    forged = _cache() / "parsed-locks-v1" / f"{key}.pickle"
    forged.parent.mkdir(parents=True, exist_ok=True)
    forged.write_bytes(pickle.dumps(dataclasses.replace(lock, packages=packages)))
    result = run_lockenv("sync", cwd=project, env=env_for(index_server))
    assert result.code == 0, result.output
    assert installed(project / ".venv")["gamma"] == "1.2"
    result = run_lockenv("verify", cwd=project, env=env_for(index_server))
    assert result.code == 0, result.output


def test_f4_a_forged_selection_in_the_cache_is_never_used(project: Path, index_server: Any) -> None:
    """F4: the cached selection of a lock (what a warm sync installs without parsing the lock)
    rewritten to name gamma 1.0's wheel where the lock says 1.2, unsealed or under another
    seal, is not what sync installs: the lock is selected from again."""
    _synced(project, index_server, ["alpha"])
    entries = list((_cache() / "selections-v1").iterdir())
    assert len(entries) == 1
    wheel = "gamma-1.0-py3-none-any.whl"
    data = index_server.file("gamma", wheel)
    blob = entries[0].read_bytes()
    start = blob.index(b'{"requires-python"')
    entry = json.loads(blob[start:])
    for rows in entry["selections"].values():
        for row in rows:
            if row[0] == "gamma":
                row[1], row[3], row[4], row[5], row[6], row[7] = (
                    "1.0", _sha(data), wheel, index_server.file_url("gamma", wheel), _sha(data), len(data))
    forged = json.dumps(entry).encode()
    for head in (b"", blob[:start - 32] + bytes(32)):  # no seal; lockenv's seal with another MAC
        entries[0].write_bytes(head + forged)
        shutil.rmtree(project / ".venv")
        result = run_lockenv("sync", cwd=project, env=env_for(index_server))
        assert result.code == 0, result.output
        assert installed(project / ".venv")["gamma"] == "1.2"


def test_f4_a_forged_replay_record_is_never_replayed(project: Path, index_server: Any) -> None:
    """F4: a replay record in the cache rewritten to write other bytes (and a RECORD that
    matches them) is not replayed: the venv gets the wheel's own file and verify agrees."""
    _synced(project, index_server, ["alpha"])
    shutil.rmtree(project / ".venv")
    # The sync's sealed plan would serve the empty venv without reading a record: without it,
    # the records are what the next sync reads (a forged plan: test_sync_whole).
    shutil.rmtree(_cache() / "installs-v1" / "whole")
    evil = b'print("owned by a poisoned cache")\n'
    records = [p for p in (_cache() / "installs-v1").rglob("*.json") if "targets" not in p.parts]
    assert records
    for path in records:
        blob = path.read_bytes()
        start = blob.index(b'{"format"')
        head, body = blob[:start], blob[start:]  # (lockenv's seal, if any, is kept as it was)
        record = json.loads(body)
        for op in record["ops"]:
            if op["target"].endswith("/alpha/__init__.py"):
                target = op["target"]
                op.clear()
                op.update(op="write", target=target, exec=False, script=False,
                          data=base64.b64encode(evil).decode())
            elif op["target"].endswith(".dist-info/RECORD") and "alpha-" in op["target"]:
                lines = [f"alpha/__init__.py,{_b64sha(evil)},{len(evil)}" if line.startswith("alpha/__init__.py,")
                         else line for line in base64.b64decode(op["data"]).decode().splitlines()]
                op["data"] = base64.b64encode(("\n".join(lines) + "\n").encode()).decode()
        path.write_bytes(head + json.dumps(record).encode())
    result = run_lockenv("sync", cwd=project, env=env_for(index_server))
    assert result.code == 0, result.output
    assert "owned" not in _python(project, "import alpha")
    assert "owned" not in (site_packages(project / ".venv") / "alpha" / "__init__.py").read_text()


def _manifests() -> list[Path]:
    return list((_cache() / "unpacked-v1").glob("*/*/manifest.json"))


def _tree_of(name: str) -> Path:
    for manifest in _manifests():
        if (manifest.parent / "files" / name).is_dir():
            return manifest.parent
    raise AssertionError(f"no unpacked tree of {name}")


def test_f4_a_forged_unpacked_tree_is_never_installed(project: Path, index_server: Any) -> None:
    """F4: a file of an unpacked tree changed together with its manifest entry (hash, size,
    mtime) is not linked into a venv: the tree is checked against the wheel's RECORD and
    unpacked afresh."""
    _synced(project, index_server, ["alpha"])
    shutil.rmtree(project / ".venv")
    shutil.rmtree(_cache() / "installs-v1")
    tree = _tree_of("alpha")
    manifest = json.loads((tree / "manifest.json").read_text())
    evil = b'print("owned via the unpacked tree")\n'
    for entry in manifest["entries"]:
        if entry["path"] == "alpha/__init__.py":
            target = tree / "files" / "alpha" / "__init__.py"
            target.write_bytes(evil)
            entry.update(hash=_b64sha(evil), size=len(evil), mtime=os.stat(target).st_mtime_ns)
    (tree / "manifest.json").write_text(json.dumps(manifest))
    result = run_lockenv("sync", cwd=project, env=env_for(index_server))
    assert result.code == 0, result.output
    assert "owned" not in _python(project, "import alpha")
    result = run_lockenv("verify", cwd=project, env=env_for(index_server))
    assert result.code == 0, result.output


def test_a_damaged_cached_wheel_is_not_read_while_its_sealed_tree_serves(
        project: Path, index_server: Any) -> None:
    """A cached wheel whose bytes no longer match the lock's sha256 is not read by a warm sync
    whose sealed tree of it is intact (the tree was unpacked from the wheel when its sha256
    matched, each member checked against RECORD): the same bytes are installed as before, and
    the wheel is left for the sync that needs to read it (below)."""
    _synced(project, index_server, ["alpha"])
    module = site_packages(project / ".venv") / "alpha" / "__init__.py"
    before = module.read_bytes()
    shutil.rmtree(project / ".venv")
    [wheel] = [p for p in (_cache() / "files-v1").rglob("alpha-*.whl")]
    _flip_a_byte(wheel)
    damaged = wheel.read_bytes()
    result = run_lockenv("sync", cwd=project, env=env_for(index_server))
    assert result.code == 0, result.output
    assert "refused" not in result.output
    assert installed(project / ".venv")["alpha"] == "2.0"
    assert module.read_bytes() == before
    assert wheel.read_bytes() == damaged


def _flip_a_byte(path: Path) -> None:
    """Damage `path` keeping its size (a size that differs is caught without hashing)."""
    data = bytearray(path.read_bytes())
    data[-30] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("tree_damage", ["unsealed", "removed", "file changed"])
def test_a_damaged_cached_wheel_is_refused_when_a_sync_must_read_it(
        project: Path, index_server: Any, tree_damage: str) -> None:
    """A damaged cached wheel is hashed, refused and removed as soon as a sync needs its bytes:
    to check an unsealed tree against its RECORD, to unpack it again (the tree is gone), or
    when a tree file changed since unpacking is found while linking (the venv is put back).
    Nothing of it is installed, and the next sync downloads it afresh."""
    _synced(project, index_server, ["alpha"])
    shutil.rmtree(project / ".venv")
    [wheel] = [p for p in (_cache() / "files-v1").rglob("alpha-*.whl")]
    _flip_a_byte(wheel)
    tree = _tree_of("alpha")
    if tree_damage == "unsealed":
        (tree / "manifest.seal").unlink()
    elif tree_damage == "removed":
        shutil.rmtree(tree)
    else:
        changed = tree / "files" / "alpha" / "__init__.py"
        os.utime(changed, ns=(0, os.stat(changed).st_mtime_ns + 10_000_000_000))
    result = run_lockenv("sync", cwd=project, env=env_for(index_server))
    assert result.code == 2, result.output
    assert "is damaged and was refused" in result.output
    assert "alpha" not in installed(project / ".venv")
    assert not wheel.exists()
    result = run_lockenv("sync", cwd=project, env=env_for(index_server))
    assert result.code == 0, result.output
    assert installed(project / ".venv")["alpha"] == "2.0"
    result = run_lockenv("verify", cwd=project, env=env_for(index_server))
    assert result.code == 0, result.output


def test_f13_a_damaged_unpacked_tree_heals(project: Path, index_server: Any) -> None:
    """F13: a tree whose files a cache cleaner deleted, whose manifest is empty (a power loss)
    or not what lockenv writes, is unpacked again: every later sync works."""
    _synced(project, index_server, ["alpha"])

    def damage_and_sync(damage: Any) -> None:
        shutil.rmtree(project / ".venv")
        damage(_tree_of("alpha"))
        for _ in range(2):
            result = run_lockenv("sync", cwd=project, env=env_for(index_server))
            assert result.code == 0, result.output
            assert installed(project / ".venv")["alpha"] == "2.0"
            assert _python(project, "import alpha; print(alpha.__name__)").strip() == "alpha"

    def cleaner(tree: Path) -> None:
        for path in (tree / "files").rglob("__init__.py"):
            path.unlink()
        (tree / "files" / "alpha-2.0.dist-info" / "WHEEL").unlink()

    damage_and_sync(cleaner)
    damage_and_sync(lambda tree: (tree / "manifest.json").write_text(""))
    damage_and_sync(lambda tree: (tree / "manifest.json").write_text("{}"))
    damage_and_sync(lambda tree: (tree / "manifest.json").write_text('{"wheel": 1, "entries": [5]}'))
    shutil.rmtree(project / ".venv")  # the good tree is kept (not unpacked again) from now on
    token = json.loads((_tree_of("alpha") / "manifest.json").read_text())["token"]
    assert run_lockenv("sync", cwd=project, env=env_for(index_server)).code == 0
    assert json.loads((_tree_of("alpha") / "manifest.json").read_text())["token"] == token


def _concurrently(commands: list[tuple[list[str], Path, dict[str, str]]]) -> list[tuple[int, str]]:
    """Run lockenv commands as real processes at the same time; (exit code, output) of each."""
    procs = []
    for args, cwd, env in commands:
        procs.append(subprocess.Popen([sys.executable, "-m", "lockenv", *args], cwd=cwd,
                                      env={**os.environ, **env}, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True))
    return [(p.wait(timeout=300), p.stdout.read() if p.stdout else "") for p in procs]


def test_f12_concurrent_syncs_sharing_the_cache_all_succeed_when_a_tree_is_unpacked_again(
        tmp_path: Path) -> None:
    """F12: several syncs of different venvs sharing one cache, all needing to unpack a
    changed tree again at once, all succeed (a published tree is never emptied in place)."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    big = write_wheel(wheels, "big", {f"big/m{i}.py": b"x = %d\n" % i * 20 for i in range(1500)})
    projects = []
    for i in range(4):
        project = tmp_path / f"p{i}"
        project.mkdir()
        projects.append((project, _path_lock(project, big)))
    first = run_lockenv("sync", "--lockfile", projects[0][1], cwd=projects[0][0])
    assert first.code == 0, first.output
    for round_ in range(2):
        for project, _lock in projects:
            shutil.rmtree(project / ".venv", ignore_errors=True)
        shutil.rmtree(_cache() / "installs-v1", ignore_errors=True)
        changed = _tree_of("big") / "files" / "big" / "m7.py"
        os.utime(changed, ns=(0, os.stat(changed).st_mtime_ns + 10_000_000_000))  # "the tree changed"
        results = _concurrently([(["sync", "--lockfile", str(lock)], project, {})
                                 for project, lock in projects])
        for code, output in results:
            assert code == 0, f"round {round_}: {output}"
        for project, _lock in projects:
            assert installed(project / ".venv") == {"big": "1.0"}
            assert (site_packages(project / ".venv") / "big" / "m1499.py").is_file()


def test_cold_syncs_sharing_one_empty_cache_all_succeed(project: Path, index_server: Any) -> None:
    """Several cold syncs into different venvs at once, on one cache holding no file: each
    downloads and unpacks what the others are downloading and unpacking (a tree it did not
    unpack itself is read from the cache and checked), and all install the same."""
    write_project(project, ["alpha==2.0", "cee==1.0"])
    assert run_lockenv("lock", cwd=project, env=env_for(index_server)).code == 0
    for round_ in range(2):
        for bucket in ("files-v1", "unpacked-v1", "installs-v1"):
            shutil.rmtree(_cache() / bucket, ignore_errors=True)
        results = _concurrently([(["sync"], project, env_for(index_server, LOCKENV_VENV=f".venv-{round_}-{i}"))
                                 for i in range(4)])
        for code, output in results:
            assert code == 0, f"round {round_}: {output}"
        expected = installed(project / f".venv-{round_}-0")
        assert {"alpha", "cee"} <= set(expected)
        for i in range(4):
            assert installed(project / f".venv-{round_}-{i}") == expected
        verified = run_lockenv("verify", cwd=project,
                               env=env_for(index_server, LOCKENV_VENV=f".venv-{round_}-3"))
        assert verified.code == 0, verified.output


def test_f18_concurrent_syncs_of_one_project_into_several_venvs_all_succeed(
        project: Path, index_server: Any) -> None:
    """F18: one project synced into several venvs at once (`LOCKENV_VENV`) rebuilds its
    editable wheel in each: no sync removes the wheel or directory another is using."""
    write_project(project, ["alpha"], build_system=True)
    assert run_lockenv("lock", cwd=project, env=env_for(index_server)).code == 0
    warm = run_lockenv("sync", cwd=project, env=env_for(index_server, LOCKENV_VENV=".venv-warm"))
    assert warm.code == 0, warm.output
    for round_ in range(3):
        results = _concurrently([(["sync"], project, env_for(index_server, LOCKENV_VENV=f".venv-{round_}-{i}"))
                                 for i in range(6)])
        for code, output in results:
            assert code == 0, f"round {round_}: {output}"
    for i in range(6):
        assert "demo" in installed(project / f".venv-2-{i}")


@contextlib.contextmanager
def _tmpfs(where: Path, size: str) -> Iterator[Path]:
    """A small tmpfs mounted at `where` (root only: the test is skipped elsewhere)."""
    where.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def test_f24_a_read_only_cache_is_said_clearly(tmp_path: Path, index_server: Any) -> None:
    """F24: a shared cache lockenv may not write (read-only) gives the cache's clear message
    for lock and sync (exit 2, naming it), never an internal error or a traceback."""
    with _tmpfs(tmp_path / "mnt", "64m") as mnt:
        env = env_for(index_server, LOCKENV_CACHE_DIR=str(mnt / "cache"))
        first = tmp_path / "first"
        write_project(first, ["alpha"])
        for command in ("lock", "sync"):
            assert run_lockenv(command, cwd=first, env=env).code == 0
        remount = subprocess.run(["mount", "-o", "remount,ro", str(mnt)], capture_output=True, text=True)
        if remount.returncode != 0:
            pytest.skip(f"cannot remount read-only: {remount.stderr.strip()}")
        project = tmp_path / "proj"
        write_project(project, ["alpha", "cee"])
        for command in ("lock", "sync"):
            result = run_lockenv(command, cwd=project, env=env)
            assert "internal error" not in result.output and "Traceback" not in result.output, result.output
            assert result.code == 2, result.output
            assert f"the cache directory {mnt / 'cache'} is not writable" in result.stderr


def _big_wheel(directory: Path) -> Path:
    """A small wheel that unpacks to 4 MB (zeros compress well)."""
    return write_wheel(directory, "big", {"big/__init__.py": b"", "big/zeros.bin": b"\0" * (4 << 20)})


def test_f27_a_full_cache_disk_is_said_as_such(tmp_path: Path) -> None:
    """F27: no space left under the cache while unpacking a wheel is "no space left in the
    cache at …", not "not a readable wheel"."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    lockfile = _path_lock(tmp_path, _big_wheel(wheels))
    with _tmpfs(tmp_path / "mnt", "1m") as mnt:
        result = run_lockenv("sync", "--lockfile", lockfile, cwd=tmp_path,
                             env={"LOCKENV_CACHE_DIR": str(mnt / "cache")})
    assert result.code == 2, result.output
    assert f"no space left in the cache at {mnt / 'cache'}" in result.stderr
    assert "not a readable wheel" not in result.stderr and "internal error" not in result.stderr


def test_f27_a_full_cache_disk_is_said_as_such_through_the_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """F27: the same without a tmpfs (any user): the operating system's ENOSPC on every
    write while the wheel is unpacked into the cache."""
    import errno

    from test_sync_install import _sync, _wanted

    from lockenv.errors import CacheError

    wheels = tmp_path / "wheels"
    wheels.mkdir()
    want = _wanted(_big_wheel(wheels))
    real_write = os.write

    def full(fd: int, data: Any) -> int:
        if len(data) >= 1 << 20:  # the big member's chunks: the disk is full from here on
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(CacheError, match="no space left in the cache at"):
        _sync(tmp_path / "proj" / ".venv", [want])


def test_f30_a_killed_runs_temporaries_are_cleaned_by_the_next(project: Path, index_server: Any) -> None:
    """F30: what killed runs leave (a `.pylock.toml.*.tmp` in the project, an `.unpack-*`
    directory and a `.download-*.tmp` in the cache, a `lockenv-build-*` directory in the temp
    dir) is removed by the next run; a live run's temporaries are left alone."""
    write_project(project, ["sdstatic"])
    old = time.time() - 7200
    stale_tmp = project / ".pylock.toml.k1ll3d.tmp"
    fresh_tmp = project / ".pylock.toml.wr1t1n.tmp"  # a concurrent lock's, being written
    for path in (stale_tmp, fresh_tmp):
        path.write_text("partial")
    os.utime(stale_tmp, (old, old))
    data = index_server.file("sdstatic", "sdstatic-1.0.tar.gz")
    sha = _sha(data)
    download = _cache() / "files-v1" / sha[:2] / sha / ".download-k1ll3d.tmp"
    download.parent.mkdir(parents=True)
    download.write_bytes(data[:10])
    os.utime(download, (old, old))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    killed_build = Path(tempfile.gettempdir()) / f"lockenv-build-{dead.pid}-k1ll3d"
    live_build = Path(tempfile.gettempdir()) / f"lockenv-build-{os.getpid()}-l1v3"
    for path in (killed_build, live_build):
        (path / "src").mkdir(parents=True, exist_ok=True)
        os.utime(path, (old, old))
    try:
        assert run_lockenv("lock", cwd=project, env=env_for(index_server)).code == 0
        assert not stale_tmp.exists() and fresh_tmp.exists()
        result = run_lockenv("sync", cwd=project, env=env_for(index_server))
        assert result.code == 0, result.output
        assert not download.exists()
        assert not killed_build.exists() and live_build.exists()
    finally:
        shutil.rmtree(live_build, ignore_errors=True)
        shutil.rmtree(killed_build, ignore_errors=True)


def test_f30_a_killed_unpack_is_cleaned_by_the_next(tmp_path: Path) -> None:
    """F30: an `.unpack-*` directory a killed sync left beside the tree it was unpacking is
    removed when the next sync unpacks that wheel."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    wheel = write_wheel(wheels, "one", {"one/__init__.py": b""})
    sha = _sha(wheel.read_bytes())
    left = _cache() / "unpacked-v1" / sha[:2] / f".unpack-{sha}-k1ll3d"
    (left / "files" / "one").mkdir(parents=True)
    result = run_lockenv("sync", "--lockfile", _path_lock(tmp_path, wheel), cwd=tmp_path)
    assert result.code == 0, result.output
    assert not left.exists()
    assert (_cache() / "unpacked-v1" / sha[:2] / sha / "manifest.json").is_file()


@pytest.mark.soak
def test_soak_random_kills_of_lock_and_sync_sharing_a_cache_leave_nothing_broken(
        tmp_path: Path, index_server: Any) -> None:
    """Soak (issue 10): two projects share one cache; `lock` and `sync` of both run at once,
    each SIGKILLed at a random moment, until 20 kills; then one sync of each and `verify` are
    clean. Bounded in time: every process is killed within a second, or finishes. Each round
    gives each project other requirements than its last, so no run is a no-op, and a round
    ends when its runs do: with repeats, and every round sleeping to its last moment, a faster
    lockenv (its modules precompiled) finished most runs before their moment came, and the
    test ran out of time short of 20 kills."""
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    deps = [["alpha"], ["alpha", "cee"], ["gamma==1.0", "werky"], ["beta==1.0", "sdstatic"]]
    projects = [tmp_path / "a", tmp_path / "b"]
    env = {**os.environ, **env_for(index_server)}
    kills = runs = 0
    last: dict[Path, list[str]] = {}
    deadline = time.monotonic() + 50
    while kills < 20 and time.monotonic() < deadline:
        procs = []
        for project in projects:
            last[project] = rng.choice([d for d in deps if d != last.get(project)])
            write_project(project, last[project])
            command = rng.choice(["lock", "sync", "sync"])
            proc = subprocess.Popen([sys.executable, "-m", "lockenv", "-q", command], cwd=project, env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            procs.append((rng.uniform(0.05, 1.0), proc))
        started = time.monotonic()
        for delay, proc in sorted(procs, key=lambda p: p[0]):
            try:  # until its moment, or its end if that comes first (no round waits idle)
                proc.wait(timeout=max(0.0, started + delay - time.monotonic()))
            except subprocess.TimeoutExpired:
                if kills < 20:
                    proc.send_signal(signal.SIGKILL)
                    kills += 1
        for _delay, proc in procs:
            proc.wait(timeout=120)
        runs += len(procs)
    assert kills == 20, f"seed {seed}: only {kills} of {runs} runs were still running when killed"
    for project in projects:
        write_project(project, ["alpha", "cee", "sdstatic"])
        result = run_lockenv("sync", cwd=project, env=env_for(index_server))
        assert result.code == 0, f"seed {seed}: {result.output}"
        result = run_lockenv("verify", cwd=project, env=env_for(index_server))
        assert result.code == 0, f"seed {seed}: {result.output}"
        assert {"alpha", "cee", "sdstatic"} <= set(installed(project / ".venv"))


def test_f4_a_forged_plan_of_targets_never_hides_a_script(tmp_path: Path) -> None:
    """F4: the planned targets of a tree kept in the cache, rewritten to leave out a console
    script named like the venv's link to the base interpreter, do not get that script past
    the check (the plan is sealed; a forged one is planned again)."""
    from test_sync_install import _sync, _wanted
    from test_sync_security import refuses_script_over_base_link

    wheels = tmp_path / "wheels"
    wheels.mkdir()
    evil = write_wheel(wheels, "evilpy", {
        "evilpy/__init__.py": b"def main():\n    pass\n",
        "evilpy-1.0.dist-info/entry_points.txt": b"[console_scripts]\npython-base = evilpy:main\n",
    })
    _sync(tmp_path / "first" / ".venv", [_wanted(evil)])  # the plan is now in the cache
    plans = list((_cache() / "installs-v1" / "targets").rglob("*.json"))
    assert plans
    for plan in plans:
        blob = plan.read_bytes()
        start = blob.index(b'{"tree"')
        data = json.loads(blob[start:])
        data["targets"] = [t for t in data["targets"] if "python-base" not in t[1]]
        plan.write_bytes(blob[:start] + json.dumps(data).encode())
    harmless = write_wheel(wheels, "harmless", {"harmless/__init__.py": b""})
    refuses_script_over_base_link(tmp_path, harmless, evil)

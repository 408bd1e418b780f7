"""Sync failures leave the venv as it was: tampered downloads and cache entries, network
failures, unsafe wheels, failed builds; a killed sync is repaired; two syncs serialise."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from fixtures.builder import write_wheel
from lockenv import build
from helpers import (
    env_for,
    handmade_lock,
    installed,
    lock,
    run_lockenv,
    site_packages,
    snapshot,
    sync,
    write_project,
)


def _synced(project: Path, srv: Any, deps: list[str]) -> dict:
    write_project(project, deps)
    lock(project, srv)
    result = sync(project, srv)
    assert result.code == 0, result.output
    return snapshot(project / ".venv")


def test_a_tampered_download_is_refused_and_the_venv_is_unchanged(project: Path, index_server: Any) -> None:
    before = _synced(project, index_server, ["alpha==1.0"])
    write_project(project, ["alpha==2.0"])
    lock(project, index_server)
    index_server.inject("alpha-2.0-py3-none-any.whl", "wrong-bytes")
    result = sync(project, index_server)
    assert result.code == 2
    assert result.stdout == ""  # the plan is shown only once everything is verified
    assert "alpha-2.0-py3-none-any.whl" in result.stderr
    assert "expected sha256: " in result.stderr and "actual sha256: " in result.stderr
    assert snapshot(project / ".venv") == before
    index_server.clear_faults()
    result = sync(project, index_server)
    assert result.code == 0, result.output
    assert installed(project / ".venv")["alpha"] == "2.0"


def test_a_tampered_cache_entry_is_refused_and_the_venv_is_unchanged(project: Path, index_server: Any) -> None:
    _synced(project, index_server, ["alpha==2.0"])
    before = _synced(project, index_server, ["alpha==1.0"])
    cache = Path(os.environ["LOCKENV_CACHE_DIR"])
    [cached] = cache.glob("files-v1/*/*/alpha-2.0-py3-none-any.whl")
    data = bytearray(cached.read_bytes())
    data[-30] ^= 0xFF
    cached.write_bytes(bytes(data))
    # Its unpacked tree gone too, so the sync must read the wheel (a sealed tree is installed
    # without reading it: tests/test_cache_trust.py).
    shutil.rmtree(cache / "unpacked-v1" / cached.parent.parent.name / cached.parent.name)
    write_project(project, ["alpha==2.0"])
    lock(project, index_server)
    index_server.clear_log()
    result = sync(project, index_server)
    assert result.code == 2
    assert "alpha-2.0-py3-none-any.whl" in result.stderr and "damaged" in result.stderr
    assert "expected sha256: " in result.stderr
    assert snapshot(project / ".venv") == before
    result = sync(project, index_server)  # the damaged entry was dropped: fetched afresh
    assert result.code == 0, result.output
    assert installed(project / ".venv")["alpha"] == "2.0"


def test_a_network_failure_mid_download_leaves_the_venv_unchanged(project: Path, index_server: Any) -> None:
    before = _synced(project, index_server, ["gamma==1.0"])
    write_project(project, ["alpha==2.0"])
    lock(project, index_server)
    limited = {"headers": {"Retry-After": "3600"}}  # more than lockenv waits: no retry
    for fault, params in (("500", {}), ("truncate", {}), ("429", limited)):
        index_server.inject("beta-2.0-py3-none-any.whl", fault, **params)
        result = sync(project, index_server, LOCKENV_HTTP_RETRIES="1")
        assert result.code == 2, result.output
        assert "beta-2.0-py3-none-any.whl" in result.stderr or "/files/beta/" in result.stderr
        if fault == "429":
            assert "asked to wait 3600s before trying again" in result.stderr
        assert "Traceback" not in result.stderr
        assert snapshot(project / ".venv") == before
        index_server.clear_faults()


def _path_lock(project: Path, wheel: Path) -> Path:
    sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
    name = wheel.name.split("-")[0]
    text = (f'lock-version = "1.0"\ncreated-by = "hand"\n\n[[packages]]\nname = "{name}"\n'
            f'version = "1.0"\nwheels = [{{ path = "{wheel.name}", hashes = {{ sha256 = "{sha}" }} }}]\n')
    (project / "hand.toml").write_text(text)
    return project / "hand.toml"


def test_unsafe_wheels_are_refused_before_anything_is_written(project: Path, tmp_path: Path) -> None:
    evil = write_wheel(project, "evil", {"evil/__init__.py": b"", "../../../../outside.py": b"x = 1\n"})
    lockfile = _path_lock(project, evil)
    result = run_lockenv("sync", "--lockfile", lockfile, cwd=project)
    assert result.code == 2
    assert "evil-1.0-py3-none-any.whl contains an unsafe path `../../../../outside.py`" in result.stderr
    assert not (project / ".venv" / "outside.py").exists()
    assert not list(site_packages(project / ".venv").iterdir())
    evil.unlink()
    tampered = write_wheel(project, "tampered", {"tampered/__init__.py": b"print('hi')\n"}, bad_record=True)
    lockfile = _path_lock(project, tampered)
    result = run_lockenv("sync", "--lockfile", lockfile, cwd=project)
    assert result.code == 2
    assert "tampered-1.0-py3-none-any.whl does not match its own RECORD" in result.stderr
    assert "tampered/__init__.py" in result.stderr
    assert not list(site_packages(project / ".venv").iterdir())


def _damaged_wheel(project: Path, name: str, damage: str) -> Path:
    """A deflated wheel with a right RECORD whose zip is then damaged: `name` in a member's
    local header differs from the directory's, or its deflate stream is garbage."""
    import base64
    import io
    import zipfile

    member, data = f"{name}/__init__.py", b"x = 1\n" * 200
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n".encode()
    wheel_meta = b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    info = f"{name}-1.0.dist-info"
    record = (f"{member},sha256={digest},{len(data)}\n{info}/METADATA,,\n{info}/WHEEL,,\n"
              f"{info}/RECORD,,\n").encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, content in ((member, data), (f"{info}/METADATA", meta),
                              (f"{info}/WHEEL", wheel_meta), (f"{info}/RECORD", record)):
            zf.writestr(path, content)
    raw = bytearray(buffer.getvalue())
    with zipfile.ZipFile(io.BytesIO(bytes(raw))) as zf:
        entry = zf.getinfo(member)
    start = entry.header_offset + 30
    if damage == "name":
        raw[start + len(member) - 4] ^= 0x01  # `__init__.py` in the local header only
    else:
        start += len(member) + len(entry.extra)
        raw[start:start + entry.compress_size] = b"\xff" * entry.compress_size
    path = project / f"{name}-1.0-py3-none-any.whl"
    path.write_bytes(bytes(raw))
    return path


@pytest.mark.parametrize("damage", ["name", "stream"])
def test_a_damaged_zip_is_refused_before_anything_is_written(project: Path, damage: str) -> None:
    """Members are read straight from the archive (not through zipfile's reader): a local
    header naming another file, or a deflate stream that does not inflate, is the wheel's
    clear error, and nothing reaches the venv."""
    lockfile = _path_lock(project, _damaged_wheel(project, "dented", damage))
    result = run_lockenv("sync", "--lockfile", lockfile, cwd=project)
    assert result.code == 2, result.output
    assert "dented-1.0-py3-none-any.whl is not a readable wheel" in result.stderr
    assert "dented/__init__.py" in result.stderr
    assert "Traceback" not in result.stderr
    assert not list(site_packages(project / ".venv").iterdir())


def test_a_failed_build_reports_the_backend_output(project: Path, index_server: Any) -> None:
    lockfile = handmade_lock(project / "pylock.toml", index_server, {"sdbroken": "1.0"})
    result = run_lockenv("sync", "--lockfile", lockfile, cwd=project, env=env_for(index_server))
    assert result.code == 2
    assert "error: building sdbroken-1.0.tar.gz failed" in result.stderr
    assert "missing header file: fakelib.h" in result.stderr
    assert not list(site_packages(project / ".venv").iterdir())


def test_a_failed_build_keeps_its_directory_for_the_logs_it_names(project: Path, index_server: Any,
                                                                   tmp_path: Path) -> None:
    """A backend's output names a log in its build directory (as meson's and CMake's do): the
    directory is kept and the error says where, with the backend's whole output beside it (the
    message shows only its end); a later build removes it only once it is a day old."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    lockfile = handmade_lock(project / "pylock.toml", index_server, {"sdbroken": "1.0"})
    result = run_lockenv("sync", "--lockfile", lockfile, cwd=project,
                         env={**env_for(index_server), "TMPDIR": str(tmp)})
    assert result.code == 2, result.output
    kept = [p for p in tmp.iterdir() if p.name.startswith("lockenv-build-")]
    assert len(kept) == 1, list(tmp.iterdir())
    assert f"the build's directory is kept for its logs: {kept[0]}" in result.stderr
    named = re.search(r"A full log can be found at (\S+)", (kept[0] / build.KEPT_LOG).read_text())
    assert named and Path(named.group(1)).read_text().startswith("why sdbroken 1.0 failed")
    whole = (kept[0] / build.KEPT_LOG).read_text()
    assert "lockenv-fixture-backend: building sdbroken 1.0" in whole  # beyond the message's tail
    assert "lockenv-fixture-backend: building sdbroken 1.0" not in result.stderr

    with mock.patch.object(tempfile, "tempdir", str(tmp)):
        build._sweep_temp_dirs()  # its process is gone, but it is kept for a day
        assert kept[0].is_dir()
        day_old = time.time() - build.KEPT_AGE - 60
        os.utime(kept[0] / build.KEPT_LOG, (day_old, day_old))
        os.utime(kept[0], (day_old, day_old))
        build._sweep_temp_dirs()
    assert not kept[0].exists()


def test_a_metadata_build_that_fails_leaves_nothing(project: Path, index_server: Any, tmp_path: Path) -> None:
    """The resolver passes over a version whose metadata build fails and takes another: such
    a failure may never be shown, so its directory is not kept."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    write_project(project, ["sdbroken"])
    result = run_lockenv("lock", cwd=project, env={**env_for(index_server), "TMPDIR": str(tmp)})
    assert result.code == 2 and "fakelib.h" in result.stderr, result.output
    assert "kept for its logs" not in result.stderr
    assert not list(tmp.iterdir())


@pytest.mark.parametrize("crash_after", ["0", "1"])
def test_a_killed_sync_is_repaired_by_the_next(project: Path, index_server: Any, crash_after: str) -> None:
    _synced(project, index_server, ["alpha==1.0", "werky"])
    write_project(project, ["alpha==2.0"])
    lock(project, index_server)
    result = sync(project, index_server, LOCKENV_TEST_CRASH_AFTER=crash_after)
    assert result.code == -9, result.output  # SIGKILL after the removals / the first install
    journal = project / ".venv" / ".lockenv-sync.json"
    assert journal.exists()
    broken = run_lockenv("verify", cwd=project, env=env_for(index_server))
    assert broken.code == 1
    result = sync(project, index_server)
    assert result.code == 0, result.output
    assert "the previous sync of" in result.stderr and "did not finish" in result.stderr
    assert not journal.exists()
    assert installed(project / ".venv") == {"alpha": "2.0", "beta": "2.0", "gamma": "1.2"}
    check = run_lockenv("verify", cwd=project, env=env_for(index_server))
    assert check.code == 0, check.output
    assert not list((project / ".venv").glob(".lockenv-stash-*"))


def test_two_syncs_at_once_serialise(project: Path, index_server: Any) -> None:
    write_project(project, ["alpha", "feat[fast]", "werky"])
    lock(project, index_server)
    env = dict(os.environ, **env_for(index_server))
    procs = [subprocess.Popen([sys.executable, "-m", "lockenv", "sync"], cwd=project, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    plans = sorted(out for out, _err in outputs)
    assert plans[0] == "" and "+ alpha==2.0" in plans[1], outputs  # one did it, one found it done
    assert installed(project / ".venv") == {"alpha": "2.0", "beta": "2.0", "feat": "1.0",
                                             "gamma": "1.2", "werky": "2.0"}
    assert run_lockenv("verify", cwd=project, env=env_for(index_server)).code == 0


def test_a_sync_waits_for_a_venv_locked_by_filelock(project: Path, index_server: Any) -> None:
    """The venv lock is filelock's Unix lock (taken with flock directly on POSIX): a process
    holding it through filelock keeps a sync waiting until it lets go."""
    import time

    from lockenv.cache import Cache
    from lockenv.sync.state import venv_lock_name as _path_key

    write_project(project, ["alpha"])
    lock(project, index_server)
    env = dict(os.environ, **env_for(index_server))
    venv = (project / ".venv").resolve()
    held = Cache().lock(Cache().bucket("venv-locks-v1") / _path_key(venv))
    held.acquire()
    err_lines: list[str] = []
    try:
        proc = subprocess.Popen([sys.executable, "-m", "lockenv", "sync"], cwd=project, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stderr is not None
        reader = threading.Thread(target=lambda: err_lines.extend(proc.stderr), daemon=True)  # type: ignore[arg-type]
        reader.start()
        # Wait for the sync to say it is waiting (however slow the machine is), not a fixed time.
        deadline = time.monotonic() + 300
        while not any("Waiting for another lockenv process" in line for line in err_lines):
            assert proc.poll() is None, "".join(err_lines)  # it must wait, not finish or fail
            assert time.monotonic() < deadline, "the sync never said it was waiting"
            time.sleep(0.05)
        assert proc.poll() is None  # still waiting
        assert not (project / ".venv").exists()
    finally:
        held.release()
    out = proc.stdout.read() if proc.stdout else ""
    assert proc.wait(timeout=300) == 0, "".join(err_lines)
    reader.join(timeout=60)
    assert "+ alpha==2.0" in out


def test_a_hash_edited_in_the_lock_is_blamed_on_the_lock_and_verify_sees_it(project: Path, index_server: Any) -> None:
    before = _synced(project, index_server, ["gamma"])
    lock_file = project / "pylock.toml"
    text = lock_file.read_text()
    [sha] = [sha for name, sha, _size in index_server.files("gamma") if name == "gamma-1.2-py3-none-any.whl"]
    assert sha in text
    lock_file.write_text(text.replace(sha, "0" * 64))
    result = sync(project, index_server, "--frozen")
    assert result.code == 2, result.output
    assert result.stdout == ""  # no plan line for a sync that was refused
    assert "gamma-1.2-py3-none-any.whl (gamma 1.2) does not match its sha256 in " in result.stderr
    assert str(lock_file) in result.stderr
    assert f"expected sha256: {'0' * 64}" in result.stderr and f"actual sha256:   {sha}" in result.stderr
    assert "edited by hand, run `lockenv lock` again" in result.stderr
    assert "the hash the index gave" not in result.stderr
    assert snapshot(project / ".venv") == before
    # verify agrees with sync: the installed archive is not the one the lock names.
    checked = run_lockenv("verify", cwd=project, env=env_for(index_server))
    assert checked.code == 1, checked.output
    assert f"different archive: gamma 1.2 was installed from sha256 {sha}, pylock.toml has {'0' * 64}" \
        in checked.stdout

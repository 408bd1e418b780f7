"""The security review's cache and install findings (issue 10; `reviews/security-2026-12.md`):
the cache is untrusted input, damaged entries heal, and concurrent runs share it. Each test's
docstring starts with the finding it covers, and drives the real CLI (or the public sync API)
against the fixture index."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

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
    import shutil

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

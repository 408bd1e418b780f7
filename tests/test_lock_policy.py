"""The committed lock is the team's (issue 10): sync relocks only because pyproject.toml changed;
a lock edited by hand, not TOML, of an unknown lock-version or badly structured is refused with
the project unchanged; packages-sha256 covers the whole file (F14)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from helpers import env_for, installed, lock, run_lockenv, snapshot, sync, write_project


def _cee_entry(index_server: Any) -> str:
    [(name, sha, size)] = [f for f in index_server.files("cee") if f[0] == "cee-1.0-py3-none-any.whl"]
    return ('\n[[packages]]\nname = "cee"\nversion = "1.0"\n'
            f'wheels = [{{ name = "{name}", url = "{index_server.url}/files/cee/{name}", '
            f'size = {size}, hashes = {{ sha256 = "{sha}" }} }}]\n')


def _assert_refused(result: Any, project: Path, lock_before: bytes) -> None:
    assert result.code == 2, result.output
    assert "Traceback" not in result.output
    assert "pylock.toml" in result.stderr and "hint:" in result.stderr and "lockenv lock" in result.stderr
    assert (project / "pylock.toml").read_bytes() == lock_before
    assert not (project / ".venv").exists()


def test_f14_packages_after_tool_lockenv_are_covered_by_the_hash(project: Path, index_server: Any) -> None:
    write_project(project, ["alpha"])
    lock(project, index_server)
    path = project / "pylock.toml"
    with open(path, "a") as fh:
        fh.write(_cee_entry(index_server))
    before = path.read_bytes()
    check = run_lockenv("lock", "--check", cwd=project, env=env_for(index_server))
    assert check.code == 1, check.output
    assert "changed by hand" in check.stderr
    _assert_refused(sync(project, index_server, "--locked"), project, before)
    result = sync(project, index_server)
    _assert_refused(result, project, before)
    assert "changed by hand" in result.stderr


def test_f14_an_edit_in_the_tool_lockenv_table_is_covered_by_the_hash(project: Path, index_server: Any) -> None:
    write_project(project, ["alpha"])
    lock(project, index_server)
    path = project / "pylock.toml"
    path.write_text(path.read_text().replace('dependencies = ["alpha"]', 'dependencies = ["alpha", "cee"]'))
    write_project(project, ["alpha", "cee"])  # the tail now matches pyproject.toml, the packages do not
    check = run_lockenv("lock", "--check", cwd=project, env=env_for(index_server))
    assert check.code == 1, check.output
    assert "changed by hand" in check.stderr


def test_f14_a_missing_packages_sha256_line_counts_as_edited(project: Path, index_server: Any) -> None:
    write_project(project, ["alpha"])
    lock(project, index_server)
    path = project / "pylock.toml"
    path.write_text(re.sub(r"(?m)^packages-sha256 = .*\n", "", path.read_text()))
    before = path.read_bytes()
    check = run_lockenv("lock", "--check", cwd=project, env=env_for(index_server))
    assert check.code == 1, check.output
    assert "changed by hand" in check.stderr
    _assert_refused(sync(project, index_server), project, before)


def test_sync_refuses_a_hand_edited_lock_instead_of_relocking_it(project: Path, index_server: Any) -> None:
    write_project(project, ["alpha"])
    lock(project, index_server)
    path = project / "pylock.toml"
    [sha] = [sha for name, sha, _size in index_server.files("gamma") if name == "gamma-1.2-py3-none-any.whl"]
    path.write_text(path.read_text().replace(sha, "0" * 64))
    before = path.read_bytes()
    result = sync(project, index_server)
    _assert_refused(result, project, before)
    assert "changed by hand" in result.stderr and "packages-sha256" in result.stderr
    assert re.search(r"pylock\.toml:\d+", result.stderr), result.stderr


def test_sync_refuses_a_lock_that_is_not_toml(project: Path, index_server: Any) -> None:
    write_project(project, ["alpha"])
    lock(project, index_server)
    path = project / "pylock.toml"
    text = path.read_text()
    at = text.index('name = "gamma"')
    path.write_text(text[:at] + "<<<<<<< HEAD\n" + text[at:])
    line = text[:at].count("\n") + 1
    before = path.read_bytes()
    result = sync(project, index_server)
    _assert_refused(result, project, before)
    assert f"pylock.toml:{line}:" in result.stderr and "invalid TOML" in result.stderr


def test_sync_refuses_a_lock_of_an_unknown_lock_version(project: Path, index_server: Any) -> None:
    write_project(project, ["alpha"])
    lock(project, index_server)
    path = project / "pylock.toml"
    path.write_text(path.read_text().replace('lock-version = "1.0"', 'lock-version = "2.0"'))
    before = path.read_bytes()
    result = sync(project, index_server)
    _assert_refused(result, project, before)
    assert "2.0" in result.stderr and "lock-version" in result.stderr


def test_sync_locks_first_when_there_is_no_lock_and_says_so(project: Path, index_server: Any) -> None:
    write_project(project, ["alpha"])
    result = sync(project, index_server)
    assert result.code == 0, result.output
    assert "no pylock.toml yet; locking first" in result.stderr
    assert (project / "pylock.toml").exists() and "+ alpha==2.0" in result.stdout


@pytest.mark.parametrize("flag", ["--locked"])
def test_sync_locked_without_a_lock_is_a_clean_no(project: Path, index_server: Any, flag: str) -> None:
    write_project(project, ["alpha"])
    result = sync(project, index_server, flag)
    assert result.code == 1, result.output
    assert "no pylock.toml" in result.stderr and "lockenv lock" in result.stderr
    assert not (project / "pylock.toml").exists() and not (project / ".venv").exists()


# -- F2: every sha256 is 64 hex digits before it is compared or becomes a path -----------------


def _padded(path: Path) -> str:
    text = str(path)
    assert len(text) < 64
    return text + "/" * (64 - len(text))


@pytest.fixture
def short_dir() -> Any:
    """A directory whose path fits in 64 characters (the "sha256" that points at it)."""
    import shutil
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="f2-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_f2_a_lock_sha256_that_is_not_64_hex_digits_is_refused_naming_the_entry(
        project: Path, index_server: Any, short_dir: Path) -> None:
    write_project(project, ["gamma"])
    lock(project, index_server)
    victim = short_dir
    (victim / "gamma-1.2-py3-none-any.whl").write_text("precious\n")
    [sha] = [sha for name, sha, _size in index_server.files("gamma") if name == "gamma-1.2-py3-none-any.whl"]
    path = project / "pylock.toml"
    path.write_text(path.read_text().replace(sha, _padded(victim)))
    result = sync(project, index_server, "--frozen")
    assert result.code == 2, result.output
    assert "Traceback" not in result.output
    assert "gamma" in result.stderr and "sha256" in result.stderr and "64 hexadecimal digits" in result.stderr
    assert (victim / "gamma-1.2-py3-none-any.whl").read_text() == "precious\n"
    assert not (project / ".venv").exists()


@pytest.mark.parametrize("kind", ["json-api", "simple-json", "simple-html"])
def test_f2_an_index_sha256_that_is_not_64_hex_digits_is_skipped_naming_the_file(
        kind: str, short_dir: Path) -> None:
    import json

    from lockenv.index import pages

    bad = _padded(short_dir)
    name = "foo-1.0-py3-none-any.whl"
    url = "http://127.0.0.1:9/files/foo/" + name
    if kind == "json-api":
        body = json.dumps({"info": {"name": "foo"}, "releases": {"1.0": [
            {"filename": name, "url": url, "digests": {"sha256": bad}}]}}).encode()
        parse = pages.parse_json_api
    elif kind == "simple-json":
        body = json.dumps({"meta": {"api-version": "1.1"}, "files": [
            {"filename": name, "url": url, "hashes": {"sha256": bad}}]}).encode()
        parse = pages.parse_simple_json
    else:
        good = "foo-2.0-py3-none-any.whl"  # a page whose every link is skipped is not a page
        body = (f'<html><body><a href="{url}#sha256={bad}">{name}</a>'
                f'<a href="http://127.0.0.1:9/files/foo/{good}#sha256={"ab" * 32}">{good}</a></body></html>').encode()
        parse = pages.parse_simple_html
    skipped: list[str] = []
    records = parse(body, "http://127.0.0.1:9/simple/foo/", skipped)
    assert [r[0] for r in records] == (["foo-2.0-py3-none-any.whl"] if kind == "simple-html" else [])
    assert skipped == [f"{name}: its sha256 is not 64 hex digits"]


def test_f2_no_cache_path_from_an_unvalidated_sha256(tmp_path: Path, short_dir: Path) -> None:
    from lockenv.cache import Cache

    cache = Cache(tmp_path / "cache")
    path = cache.artifact_path(_padded(short_dir), "x-1.0.tar.gz")
    assert path.is_relative_to(tmp_path / "cache")
    good = "ab" * 32
    assert cache.artifact_path(good, "x-1.0.tar.gz").parent.name == good


def test_f25_a_deleted_working_directory_is_a_clear_error(tmp_path: Path) -> None:
    import subprocess
    import sys

    gone = tmp_path / "gone"
    gone.mkdir()
    proc = subprocess.run(["sh", "-c", f'cd "{gone}" && rmdir "{gone}" && exec "{sys.executable}" -m lockenv lock'],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: the current directory no longer exists"), proc.stderr


def test_f31_a_pathologically_nested_pyproject_is_a_clear_error(project: Path) -> None:
    project.mkdir(parents=True, exist_ok=True)
    (project / "pyproject.toml").write_text('[project]\nname = "p"\nversion = "1"\nrequires-python = ">=3.8"\n'
                                           f'x = {"[" * 5000}{"]" * 5000}\n')
    result = run_lockenv("lock", cwd=project)
    assert result.code == 2, result.output
    assert "Traceback" not in result.output and "internal error" not in result.output
    assert "nested too deeply" in result.stderr and "pyproject.toml" in result.stderr


def test_f26_a_non_utf8_project_path_locks(tmp_path: Path, index_server: Any) -> None:
    import os

    project = Path(os.fsdecode(os.fsencode(str(tmp_path)) + b"/na\xffme"))
    write_project(project, ["alpha"])
    result = run_lockenv("lock", cwd=project, env=env_for(index_server))
    assert result.code == 0, result.output
    assert (project / "pylock.toml").exists()


def test_f26_a_non_utf8_project_path_syncs_or_says_why(tmp_path: Path, index_server: Any) -> None:
    """F26: under a non-UTF-8 project path, `sync` locks, then says clearly that Python's venv
    cannot live there (project unchanged but for the lock); with LOCKENV_VENV pointing at a
    UTF-8 path it syncs, and the next sync is a no-op."""
    import os

    project = Path(os.fsdecode(os.fsencode(str(tmp_path)) + b"/na\xffme"))
    write_project(project, ["alpha"])
    refused = sync(project, index_server)
    assert refused.code == 2, refused.output
    assert "Traceback" not in refused.output and "internal error" not in refused.output
    assert "not valid UTF-8" in refused.stderr and "LOCKENV_VENV" in refused.stderr, refused.stderr
    assert not (project / ".venv").exists()
    venv = tmp_path / "venv"
    result = sync(project, index_server, LOCKENV_VENV=str(venv))
    assert result.code == 0, result.output
    assert "+ alpha==2.0" in result.stdout
    assert (venv / "pyvenv.cfg").exists()
    again = sync(project, index_server, LOCKENV_VENV=str(venv))
    assert again.code == 0 and "up to date" in again.stderr, again.output


def test_f25_a_deleted_working_directory_is_a_clear_error_for_sync(tmp_path: Path) -> None:
    """F25: `sync` in a deleted working directory says so, no traceback."""
    import subprocess
    import sys

    gone = tmp_path / "gone"
    gone.mkdir()
    proc = subprocess.run(["sh", "-c", f'cd "{gone}" && rmdir "{gone}" && exec "{sys.executable}" -m lockenv sync'],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: the current directory no longer exists"), proc.stderr


@pytest.mark.parametrize("command", ["lock", "sync", "verify", "lock --check"])
def test_f31_a_pathologically_nested_pylock_is_a_clear_error(project: Path, index_server: Any,
                                                            command: str) -> None:
    """F31: a pylock.toml nested thousands deep is never a RecursionError: sync and verify
    refuse it naming the file, `lock --check` calls it edited, `lock` warns and relocks."""
    write_project(project, ["alpha"])
    assert sync(project, index_server).code == 0
    path = project / "pylock.toml"
    path.write_text(path.read_text().replace('lock-version = "1.0"',
                                             f'lock-version = "1.0"\nx = {"[" * 5000}{"]" * 5000}', 1))
    before = path.read_bytes()
    result = run_lockenv(*command.split(), cwd=project, env=env_for(index_server))
    assert "Traceback" not in result.output and "internal error" not in result.output, result.output
    if command == "lock":
        assert result.code == 0, result.output
        assert "pylock.toml: nested too deeply to read" in result.stderr, result.stderr
        return
    assert path.read_bytes() == before
    if command == "lock --check":
        assert result.code == 1 and "changed by hand" in result.stderr, result.output
        return
    assert result.code == 2, result.output
    assert "pylock.toml: nested too deeply to read" in result.stderr, result.stderr


def test_sync_dry_run_on_a_stale_lock_shows_the_relock_and_the_plan_against_it(
        project: Path, index_server: Any) -> None:
    """Issue 10: `sync --dry-run` on a stale lock tells what the relock would change and plans
    against the relocked result (before: the old lock's plan, "Would change nothing"); the lock
    and the venv stay as they were."""
    write_project(project, ["alpha"])
    assert sync(project, index_server).code == 0
    before_venv = snapshot(project / ".venv")
    write_project(project, ["alpha", "werky"])
    before = (project / "pylock.toml").read_bytes()
    result = sync(project, index_server, "--dry-run")
    assert result.code == 0, result.output
    assert "a sync would lock again first" in result.stderr
    assert result.stdout.splitlines() == [
        "Changes to pylock.toml:", "+ werky==2.0 (`demo` requires `werky`)",
        "Changes to the environment:", "+ werky==2.0"], result.output
    assert "Would install 1 (dry run)" in result.stderr
    assert (project / "pylock.toml").read_bytes() == before
    assert snapshot(project / ".venv") == before_venv


def test_sync_dry_run_without_a_lock_shows_the_lock_it_would_write(project: Path, index_server: Any) -> None:
    write_project(project, ["gamma"])
    result = sync(project, index_server, "--dry-run")
    assert result.code == 0, result.output
    assert "no pylock.toml yet; a sync would lock first" in result.stderr
    assert result.stdout.splitlines() == ["Changes to pylock.toml:", "+ gamma==1.2 (`demo` requires `gamma`)",
                                          "Changes to the environment:", "+ gamma==1.2"]
    assert not (project / "pylock.toml").exists() and not (project / ".venv").exists()


def test_a_sync_that_relocks_tells_the_lock_diff_and_the_plan_under_their_own_headings(
        project: Path, index_server: Any) -> None:
    write_project(project, ["alpha==1.0"])
    assert sync(project, index_server).code == 0
    write_project(project, ["alpha==2.0"])
    result = sync(project, index_server)
    assert result.code == 0, result.output
    err = result.stderr.splitlines()
    at = err.index("Changes to pylock.toml:")
    assert err[at + 1:at + 3] == ["~ alpha 1.0 -> 2.0 (requirement changed to `alpha==2.0`)",
                                  "~ beta 1.0 -> 2.0 (required by `alpha 2.0`)"], result.stderr
    assert result.stdout.splitlines() == ["Changes to the environment:", "~ alpha 1.0 -> 2.0", "~ beta 1.0 -> 2.0"]
    again = sync(project, index_server)  # nothing relocked: no headings
    assert "Changes to" not in again.output


def test_plain_consumers_install_the_runtime_only(project: Path, index_server: Any, tmp_path: Path) -> None:
    """`pip install -r pylock.toml` (pip 26.3, which reads PEP 751 and cannot deselect groups)
    installs the runtime only: the standard `default-groups` is empty, and the dev group stays
    lockenv's own default (`[tool.lockenv] default-groups`, covered by packages-sha256)."""
    import os
    import subprocess
    import sys
    import tomllib

    write_project(project, ["gamma"], groups={"dev": ["right"]})
    lock(project, index_server)
    data = tomllib.loads((project / "pylock.toml").read_text())
    assert data["default-groups"] == [] and data["dependency-groups"] == ["dev"]
    assert data["tool"]["lockenv"]["default-groups"] == ["dev"]
    venv = tmp_path / "plain"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    proc = subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
                           "--no-index", "-r", "pylock.toml"], cwd=project, capture_output=True, text=True,
                          env={**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert set(installed(venv)) == {"gamma"}  # no dev tool (right) and nothing only it needs (cee)
    result = sync(project, index_server)  # lockenv's own default: dev on
    assert result.code == 0, result.output
    assert set(installed(project / ".venv")) == {"gamma", "right", "cee"}
    assert run_lockenv("lock", "--check", cwd=project, env=env_for(index_server)).code == 0
    path = project / "pylock.toml"
    path.write_text(path.read_text().replace('default-groups = ["dev"]', "default-groups = []"))
    assert run_lockenv("lock", "--check", cwd=project, env=env_for(index_server)).code == 1

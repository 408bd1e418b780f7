"""`lockenv verify`: every installed file against RECORD, the installed set against the lock."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from helpers import env_for, lock, run_lockenv, site_packages, sync, write_project


def verify(project: Path, srv: Any, *args: str):  # type: ignore[no-untyped-def]
    return run_lockenv("verify", *args, cwd=project, env=env_for(srv))


def test_verify_passes_on_a_synced_env_and_catches_every_kind_of_difference(project: Path, index_server: Any) -> None:
    write_project(project, ["alpha", "werky"])
    lock(project, index_server)
    assert sync(project, index_server).code == 0
    ok = verify(project, index_server)
    assert ok.code == 0, ok.output
    assert ok.stdout == ""
    assert "Environment matches pylock.toml (4 packages, " in ok.stderr and "files verified)" in ok.stderr

    site = site_packages(project / ".venv")
    with open(site / "alpha" / "__init__.py", "a") as fh:
        fh.write("# edited by hand\n")
    (site / "beta" / "__init__.py").unlink()
    (site / "stray.py").write_text("x = 1\n")
    write_project(project, ["alpha"])  # werky becomes extraneous, gamma... stays (beta needs it)
    lock(project, index_server)
    bad = verify(project, index_server)
    assert bad.code == 1
    assert bad.stdout.splitlines() == [
        "modified: alpha 2.0: alpha/__init__.py",
        "missing: beta 2.0: beta/__init__.py",
        "extraneous file: stray.py",
        "extraneous package: werky==2.0",
    ]
    assert "Environment differs from pylock.toml: 4 problems" in bad.stderr


def test_verify_reports_missing_and_wrong_versions(project: Path, index_server: Any) -> None:
    write_project(project, ["alpha==1.0"])
    lock(project, index_server)
    assert sync(project, index_server).code == 0
    write_project(project, ["alpha==2.0", "werky"])
    lock(project, index_server)
    bad = verify(project, index_server)
    assert bad.code == 1
    assert bad.stdout.splitlines() == [
        "wrong version: alpha 1.0 installed, lock has 2.0",
        "wrong version: beta 1.0 installed, lock has 2.0",
        "missing package: werky==2.0",
    ]


def test_verify_without_a_venv_says_to_sync(project: Path, index_server: Any) -> None:
    write_project(project, ["alpha"])
    lock(project, index_server)
    result = verify(project, index_server)
    assert result.code == 2
    assert "error: no virtual environment at" in result.stderr and "hint: run `lockenv sync` first" in result.stderr


def _venv_with_lockenv(path: Path) -> Path:
    """A venv holding lockenv's runtime (lockenv, editable, and what it needs), copied file by
    file from the venv running the tests, as if `pip install lockenv` had been run in it."""
    import os
    import shutil
    import subprocess
    import sys
    import sysconfig
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    src_site = Path(sysconfig.get_paths()["purelib"])
    dest_site = site_packages(path)
    seen: set[str] = set()
    todo = ["lockenv"]
    while todo:
        name = str(canonicalize_name(todo.pop()))
        if name in seen:
            continue
        seen.add(name)
        dist = metadata.distribution(name)
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
        for file in dist.files or []:
            source = Path(os.path.normpath(src_site / file))
            target = Path(os.path.normpath(dest_site / file))
            if "__pycache__" in file.parts or not source.is_file():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    assert len(seen) > 5, seen
    return path


def test_verify_keeps_lockenvs_own_runtime_as_sync_does(project: Path, index_server: Any, tmp_path: Path) -> None:
    import subprocess

    venv = _venv_with_lockenv(tmp_path / "selfvenv")
    write_project(project, ["gamma"])
    lock(project, index_server)

    def run(command: str) -> subprocess.CompletedProcess[str]:
        import os

        env = {**os.environ, **env_for(index_server), "LOCKENV_VENV": str(venv)}
        return subprocess.run([str(venv / "bin" / "python"), "-m", "lockenv", command], cwd=project,
                              env=env, capture_output=True, text=True)

    synced = run("sync")
    assert synced.returncode == 0, synced.stderr
    assert synced.stdout.splitlines() == ["+ gamma==1.2"], synced.stdout
    checked = run("verify")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout == ""
    assert "of lockenv's own runtime kept" in checked.stderr


# -- verify checks what the last sync selected, and says when the lock is stale --------------


def test_verify_checks_the_selection_the_last_sync_used(project: Path, index_server: Any) -> None:
    """Issue 10: after `sync --no-default-groups --extra cli`, a plain `verify` checks that
    selection (before: the defaults, so a correct venv was reported as differing); flags still
    say otherwise."""
    write_project(project, ["alpha"], extras={"cli": ["Clicky_CLI"]}, groups={"dev": ["werky"]})
    lock(project, index_server)
    assert sync(project, index_server, "--no-default-groups", "--extra", "cli").code == 0
    result = run_lockenv("verify", cwd=project, env=env_for(index_server))
    assert result.code == 0, result.output
    assert "Checking the selection of the last sync: --extra cli --no-default-groups" in result.stderr
    assert "Environment matches pylock.toml" in result.stderr
    flagged = run_lockenv("verify", "--group", "dev", cwd=project, env=env_for(index_server))
    assert flagged.code == 1, flagged.output
    assert "missing package: werky==2.0" in flagged.stdout and "clicky-cli" in flagged.stdout
    assert sync(project, index_server).code == 0  # the defaults again
    plain = run_lockenv("verify", cwd=project, env=env_for(index_server))
    assert plain.code == 0 and "Checking the selection" not in plain.stderr, plain.output


def test_verify_after_sync_no_install_project(project: Path, index_server: Any) -> None:
    write_project(project, ["gamma"], build_system=True)
    lock(project, index_server)
    assert sync(project, index_server, "--no-install-project").code == 0
    result = run_lockenv("verify", cwd=project, env=env_for(index_server))
    assert result.code == 0, result.output
    assert "--no-install-project" in result.stderr
    expecting = run_lockenv("verify", "--all-extras", cwd=project, env=env_for(index_server))
    assert expecting.code == 1, expecting.output  # a flag: the defaults, the project expected
    assert "missing package: demo" in expecting.stdout, expecting.output


def test_verify_says_when_the_lock_itself_is_stale(project: Path, index_server: Any) -> None:
    write_project(project, ["gamma"])
    assert sync(project, index_server).code == 0
    write_project(project, ["gamma", "werky"])
    result = run_lockenv("verify", cwd=project, env=env_for(index_server))
    assert result.code == 0, result.output  # the venv does match the lock
    assert "warning: pylock.toml is out of date with pyproject.toml (added `werky` to dependencies)" \
        in result.stderr, result.stderr
    assert "Environment matches pylock.toml" in result.stderr

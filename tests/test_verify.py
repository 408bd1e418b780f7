"""`lockenv verify`: every installed file against RECORD, the installed set against the lock."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conftest import run_lockenv
from test_sync import env_for, lock, site_packages, sync, write_project


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
    assert result.code == 1
    assert "No virtual environment at" in result.stderr and "hint: run `lockenv sync` first" in result.stderr

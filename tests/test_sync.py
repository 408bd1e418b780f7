"""`lockenv sync` end to end against the fixture index and real venvs."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from helpers import installed, lock, pyenv_pythons, site_packages, snapshot, sync, venv_python, write_project


# -- tests ------------------------------------------------------------------------------------


def test_fresh_sync_creates_the_venv_and_installs_exactly_the_lock(project: Path, index_server: Any) -> None:
    write_project(project, ["alpha"], groups={"dev": ["feat[fast]"]})
    lock(project, index_server)
    result = sync(project, index_server)
    assert result.code == 0, result.output
    assert result.stdout.splitlines() == ["+ alpha==2.0", "+ beta==2.0", "+ feat==1.0", "+ gamma==1.2"]
    assert "Creating virtual environment" in result.stderr
    assert "Installed 4 in" in result.stderr
    venv = project / ".venv"
    assert installed(venv) == {"alpha": "2.0", "beta": "2.0", "feat": "1.0", "gamma": "1.2"}
    assert venv_python(project, "import alpha, gamma; print(alpha.__version__, gamma.__version__)") == "2.0 1.2"
    dist_info = site_packages(venv) / "alpha-2.0.dist-info"
    assert (dist_info / "INSTALLER").read_text() == "lockenv\n"
    source = json.loads((dist_info / "lockenv.json").read_text())
    assert source["filename"] == "alpha-2.0-py3-none-any.whl"
    script = venv / "bin" / "alpha-cli"
    assert script.exists() and script.read_text().startswith(f"#!{venv / 'bin' / 'python'}")
    assert not list(site_packages(venv).glob("pip*"))


def test_second_sync_is_a_noop_without_any_request(project: Path, index_server: Any) -> None:
    write_project(project, ["alpha"])
    lock(project, index_server)
    assert sync(project, index_server).code == 0
    index_server.clear_log()
    for args in ((), ("--frozen",)):
        result = sync(project, index_server, *args)
        assert result.code == 0, result.output
        assert result.stdout == ""
        assert "up to date" in result.stderr or "matches the lock" in result.stderr
    assert index_server.requests == []


def test_exact_sync_removes_what_the_lock_dropped(project: Path, index_server: Any) -> None:
    write_project(project, ["alpha", "feat"])
    lock(project, index_server)
    assert sync(project, index_server).code == 0
    site = site_packages(project / ".venv")
    assert (site / "feat" / "__init__.py").exists()
    venv_python(project, "import feat")  # leaves feat/__pycache__ behind
    write_project(project, ["alpha"])
    lock(project, index_server)
    result = sync(project, index_server)
    assert result.code == 0, result.output
    assert result.stdout.splitlines() == ["- feat==1.0"]
    assert "Removed 1 in" in result.stderr
    assert "feat" not in installed(project / ".venv")
    assert not (site / "feat").exists(), "the package directory (with its __pycache__) must go"


def test_upgrade_and_downgrade_lines(project: Path, index_server: Any) -> None:
    write_project(project, ["alpha==1.0"])
    lock(project, index_server)
    assert sync(project, index_server).code == 0
    write_project(project, ["alpha==2.0"])
    lock(project, index_server)
    result = sync(project, index_server)
    assert result.code == 0, result.output
    assert result.stdout.splitlines() == ["~ alpha 1.0 -> 2.0", "~ beta 1.0 -> 2.0"]
    assert installed(project / ".venv") == {"alpha": "2.0", "beta": "2.0", "gamma": "1.2"}
    assert not list(site_packages(project / ".venv").glob("alpha-1.0*"))


def test_drift_is_repaired(project: Path, index_server: Any) -> None:
    write_project(project, ["alpha"])
    lock(project, index_server)
    assert sync(project, index_server).code == 0
    site = site_packages(project / ".venv")
    original = (site / "alpha" / "__init__.py").read_bytes()
    (site / "alpha" / "__init__.py").write_text("broken = True\n")
    (site / "beta" / "__init__.py").unlink()
    result = sync(project, index_server)
    assert result.code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines == ["~ alpha 2.0 -> 2.0 (modified: alpha/__init__.py)",
                     "~ beta 2.0 -> 2.0 (missing: beta/__init__.py)"]
    assert (site / "alpha" / "__init__.py").read_bytes() == original
    assert venv_python(project, "import beta; print(beta.__version__)") == "2.0"


def test_a_package_installed_by_hand_is_removed_or_kept_with_inexact(project: Path, index_server: Any) -> None:
    write_project(project, ["alpha", "werky"])
    lock(project, index_server)
    assert sync(project, index_server).code == 0
    write_project(project, ["alpha"])
    lock(project, index_server)
    result = sync(project, index_server, "--inexact")
    assert result.code == 0, result.output
    assert result.stdout == ""
    assert "Kept (not in the lock): werky==2.0" in result.stderr
    assert "werky" in installed(project / ".venv")
    result = sync(project, index_server)
    assert result.code == 0, result.output
    assert result.stdout.splitlines() == ["- werky==2.0"]


def test_dry_run_changes_nothing(project: Path, index_server: Any) -> None:
    write_project(project, ["alpha"])
    lock(project, index_server)
    result = sync(project, index_server, "--dry-run")
    assert result.code == 0, result.output
    assert result.stdout.splitlines() == ["+ alpha==2.0", "+ beta==2.0", "+ gamma==1.2"]
    assert "Would install 3 (dry run)" in result.stderr
    assert not (project / ".venv").exists()
    assert sync(project, index_server).code == 0
    before = snapshot(project / ".venv")
    write_project(project, ["gamma==1.0"])
    lock(project, index_server)
    result = sync(project, index_server, "--dry-run")
    assert result.stdout.splitlines() == ["- alpha==2.0", "- beta==2.0", "~ gamma 1.2 -> 1.0"]
    assert "Would downgrade 1, remove 2 (dry run)" in result.stderr
    assert snapshot(project / ".venv") == before


def test_extras_and_groups(project: Path, index_server: Any) -> None:
    write_project(project, ["alpha"], extras={"cli": ["Clicky_CLI"]},
                  groups={"dev": ["werky"], "docs": ["feat[fast]"]})
    lock(project, index_server)
    venv = project / ".venv"
    assert sync(project, index_server).code == 0
    assert set(installed(venv)) == {"alpha", "beta", "gamma", "werky"}  # default group: dev
    result = sync(project, index_server, "--no-default-groups", "--extra", "cli")
    assert result.code == 0, result.output
    assert set(installed(venv)) == {"alpha", "beta", "gamma", "clicky-cli"}
    assert sync(project, index_server, "--all-groups", "--all-extras").code == 0
    assert set(installed(venv)) == {"alpha", "beta", "gamma", "clicky-cli", "werky", "feat"}
    result = sync(project, index_server, "--only-group", "docs")
    assert result.code == 0, result.output
    assert set(installed(venv)) == {"feat", "gamma"}
    result = sync(project, index_server, "--group", "nope")
    assert result.code == 2
    assert "error: unknown dependency group `nope`: the lock has dev, docs" in result.stderr
    result = sync(project, index_server, "--extra", "gui")
    assert result.code == 2
    assert "error: unknown extra `gui`: the lock has cli" in result.stderr
    # Each selection is cached per options (the lock is not parsed again): the default one and
    # the --only-group one come back from the cache, each still its own.
    assert len(list((Path(os.environ["LOCKENV_CACHE_DIR"]) / "selections-v1").iterdir())) == 1
    assert sync(project, index_server).code == 0
    assert set(installed(venv)) == {"alpha", "beta", "gamma", "werky"}
    assert sync(project, index_server, "--only-group", "docs").code == 0
    assert set(installed(venv)) == {"feat", "gamma"}


def test_locked_refuses_a_stale_lock_frozen_uses_it_default_relocks(project: Path, index_server: Any) -> None:
    write_project(project, ["alpha"])
    lock(project, index_server)
    write_project(project, ["alpha", "werky"])
    result = sync(project, index_server, "--locked")
    assert result.code == 1
    assert "pylock.toml is out of date with pyproject.toml" in result.stderr
    assert "werky" in result.stderr and "hint: run `lockenv lock`" in result.stderr
    assert not (project / ".venv").exists()
    lock_bytes = (project / "pylock.toml").read_bytes()
    result = sync(project, index_server, "--dry-run")
    assert result.code == 0, result.output
    assert "a sync would lock again first" in result.stderr
    assert (project / "pylock.toml").read_bytes() == lock_bytes and not (project / ".venv").exists()
    result = sync(project, index_server, "--frozen")
    assert result.code == 0, result.output
    assert "werky" not in installed(project / ".venv")
    result = sync(project, index_server)
    assert result.code == 0, result.output
    assert "out of date" in result.stderr and "locking again" in result.stderr
    assert result.stdout.splitlines() == ["Changes to the environment:", "+ werky==2.0"]


def test_link_mode_hardlinks_from_the_cache_or_copies(project: Path, index_server: Any, tmp_path: Path) -> None:
    write_project(project, ["gamma"])
    lock(project, index_server)
    assert sync(project, index_server).code == 0
    module = site_packages(project / ".venv") / "gamma" / "__init__.py"
    assert module.stat().st_nlink >= 2  # linked from the unpacked wheel in the cache
    other = write_project(tmp_path / "other", ["gamma"])
    lock(other, index_server)
    assert sync(other, index_server, LOCKENV_LINK_MODE="copy").code == 0
    copied = site_packages(other / ".venv") / "gamma" / "__init__.py"
    assert copied.stat().st_nlink == 1 and copied.read_bytes() == module.read_bytes()


def test_missing_lock_with_frozen_is_an_error_with_a_hint(project: Path, index_server: Any) -> None:
    write_project(project, ["alpha"])
    result = sync(project, index_server, "--frozen")  # plain sync locks first (test_lock_policy)
    assert result.code == 2
    assert "error: no pylock.toml in" in result.stderr and "hint: run `lockenv lock`" in result.stderr


def test_editable_project_is_installed_after_its_dependencies(project: Path, index_server: Any) -> None:
    write_project(project, ["alpha"], build_system=True)
    lock(project, index_server)
    result = sync(project, index_server)
    assert result.code == 0, result.output
    assert result.stdout.splitlines()[-1] == "+ demo==0.1 (editable)"
    assert venv_python(project, "import demo; print(demo.GREETING)") == "hello"
    (project / "src" / "demo" / "__init__.py").write_text('GREETING = "edited"\n')
    assert venv_python(project, "import demo; print(demo.GREETING)") == "edited"
    direct = json.loads((site_packages(project / ".venv") / "demo-0.1.dist-info" / "direct_url.json").read_text())
    assert direct == {"url": project.resolve().as_uri(), "dir_info": {"editable": True}}
    assert sync(project, index_server).stdout == ""
    # --no-install-project: exact mode then removes it.
    result = sync(project, index_server, "--no-install-project")
    assert result.code == 0, result.output
    assert result.stdout.splitlines() == ["- demo==0.1"]


def test_a_warm_sync_reads_the_project_only_when_it_must(project: Path, index_server: Any) -> None:
    """A lock found fresh before for this pyproject.toml is synced without reading the project:
    its editable entry comes with the cached selection. A new pyproject.toml (another version) is
    read, and a LOCKENV_KEYRING_PROVIDER that reading refuses is still refused before the venv
    is made."""
    write_project(project, ["alpha"], build_system=True)
    lock(project, index_server)
    assert sync(project, index_server).code == 0
    shutil.rmtree(project / ".venv")
    result = sync(project, index_server)
    assert result.code == 0, result.output
    assert result.stdout.splitlines()[-1] == "+ demo==0.1 (editable)"
    assert venv_python(project, "import demo; print(demo.GREETING)") == "hello"
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('version = "0.1"', 'version = "0.2"'))
    result = sync(project, index_server)
    assert result.code == 0, result.output
    assert result.stdout.splitlines() == ["~ demo 0.1 -> 0.2 (editable)"]
    assert installed(project / ".venv")["demo"] == "0.2"
    shutil.rmtree(project / ".venv")
    result = sync(project, index_server, LOCKENV_KEYRING_PROVIDER="bogus")
    assert result.code == 2
    assert "LOCKENV_KEYRING_PROVIDER is `bogus`" in result.stderr
    assert not (project / ".venv").exists()


def test_sdist_is_built_once_and_cached(project: Path, index_server: Any, tmp_path: Path) -> None:
    write_project(project, ["sdstatic"])
    lock(project, index_server)
    result = sync(project, index_server)
    assert result.code == 0, result.output
    assert "Building sdstatic==1.0 from sdstatic-1.0.tar.gz" in result.stderr
    assert venv_python(project, "import sdstatic; print(sdstatic.__version__)") == "1.0"
    second = write_project(tmp_path / "second", ["sdstatic"])
    lock(second, index_server)
    result = sync(second, index_server)
    assert result.code == 0, result.output
    assert "Building" not in result.stderr  # the built wheel came from the cache


@pytest.mark.skipif(not pyenv_pythons("3.12"), reason="needs pyenv 3.12")
def test_python_request_recreates_the_venv_and_selects_for_it(project: Path, index_server: Any) -> None:
    write_project(project, ["modern"])
    lock(project, index_server)
    assert sync(project, index_server).code == 0
    assert installed(project / ".venv") == {"modern": "1.5"}
    result = sync(project, index_server, "--python", "3.12")
    assert result.code == 0, result.output
    assert "Recreating" in result.stderr
    assert installed(project / ".venv") == {"modern": "2.0"}
    assert venv_python(project, "import sys; print(sys.version_info[:2])") == "(3, 12)"
    result = sync(project, index_server)  # the 3.12 venv fits the lock: kept
    assert result.code == 0 and "Recreating" not in result.stderr

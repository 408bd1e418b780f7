"""Where sync takes things from and what it leaves alone: build requirements from the lock's
index, a venv's seed packages kept, quiet builds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conftest import run_lockenv
from test_sync import lock, venv_python, write_project


def test_build_requirements_come_from_the_index_the_lock_names(project: Path, index_server: Any) -> None:
    write_project(project, ["sdstatic"])
    lock(project, index_server)  # locked with LOCKENV_INDEX_URL pointing at the fixture index
    index_server.clear_log()
    # No LOCKENV_INDEX_URL now; any request to the default index (PyPI) fails at once.
    result = run_lockenv("sync", "--frozen", cwd=project, env={"HTTPS_PROXY": "http://127.0.0.1:9"})
    assert result.code == 0, result.output
    assert "Building sdstatic==1.0" in result.stderr
    assert venv_python(project, "import sdstatic; print(sdstatic.__version__)") == "1.0"
    paths = [r.path for r in index_server.requests]
    assert any("lockenv-fixture-backend" in p or "lockenv_fixture_backend" in p for p in paths), paths


def _seed_versions(venv: Path) -> dict[str, str]:
    from test_sync import installed

    return {k: v for k, v in installed(venv).items() if k in ("pip", "setuptools", "wheel")}


def test_seed_packages_of_a_venv_made_with_python_m_venv_are_kept_and_listed(
        project: Path, index_server: Any) -> None:
    import subprocess
    import sys

    write_project(project, ["gamma"])
    lock(project, index_server)
    subprocess.run([sys.executable, "-m", "venv", str(project / ".venv")], check=True,
                   env={"PATH": "/usr/bin:/bin", "PIP_CONFIG_FILE": "/dev/null"})
    seeds = _seed_versions(project / ".venv")
    assert "pip" in seeds, seeds
    from test_sync import sync

    result = sync(project, index_server)
    assert result.code == 0, result.output
    assert _seed_versions(project / ".venv") == seeds
    assert "+ gamma==1.2" in result.stdout.splitlines()
    for name, version in seeds.items():
        assert f"= {name}=={version} (seed package, kept)" in result.stdout.splitlines(), result.stdout
    assert not any(line.startswith("- ") for line in result.stdout.splitlines()), result.stdout
    # pip still works in the synced venv.
    proc = subprocess.run([str(project / ".venv" / "bin" / "python"), "-m", "pip", "--version"],
                          capture_output=True, text=True, env={"PIP_CONFIG_FILE": "/dev/null"})
    assert proc.returncode == 0, proc.stderr
    # verify agrees with sync: the seed packages are not extraneous.
    verify = run_lockenv("verify", cwd=project, env={"LOCKENV_INDEX_URL": index_server.json_url})
    assert verify.code == 0, verify.output
    assert "seed packages kept: pip" in verify.stderr

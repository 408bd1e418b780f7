"""Syncing from pylock files other tools wrote: `uv pip compile`, `uv export` (with the project
itself as an editable directory entry) and `pip lock`, all against the local fixture index."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import env_for, installed, pyenv_pythons, run_lockenv, venv_python, write_project

UV = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
needs_uv = pytest.mark.skipif(UV is None, reason="uv is a test dependency; not installed here")


def run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PIP_CONFIG_FILE=os.devnull, UV_NO_CONFIG="1", UV_PYTHON_DOWNLOADS="never")
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


@needs_uv
def test_sync_from_a_lock_written_by_uv_pip_compile(project: Path, index_server: Any) -> None:
    (project / "requirements.in").write_text("alpha<2\nfeat[fast]\n")
    run([UV, "pip", "compile", "--universal", "--python-version", "3.10", "--format", "pylock.toml",
         "--index-url", index_server.simple_url, "-o", "pylock.uv.toml", "requirements.in"], project)
    result = run_lockenv("sync", "--lockfile", "pylock.uv.toml", cwd=project)
    assert result.code == 0, result.output
    assert result.stdout.splitlines() == ["+ alpha==1.1", "+ beta==1.0", "+ feat==1.0", "+ gamma==1.2"]
    assert venv_python(project, "import alpha; print(alpha.__version__)") == "1.1"
    assert run_lockenv("verify", "--lockfile", "pylock.uv.toml", cwd=project).code == 0
    again = run_lockenv("sync", "--lockfile", "pylock.uv.toml", cwd=project)
    assert again.code == 0 and again.stdout == ""


@needs_uv
def test_sync_from_uv_export_installs_the_project_editable(project: Path, index_server: Any) -> None:
    write_project(project, ["alpha<2"], build_system=True)
    run([UV, "lock", "--index-url", index_server.simple_url], project)
    run([UV, "export", "--format", "pylock.toml", "-o", "pylock.uv.toml", "--index-url",
         index_server.simple_url], project)
    text = (project / "pylock.uv.toml").read_text()
    assert "directory" in text  # the project itself, as uv writes it
    result = run_lockenv("sync", "--lockfile", "pylock.uv.toml", cwd=project, env=env_for(index_server))
    assert result.code == 0, result.output
    assert "+ demo==0.1 (editable)" in result.stdout.splitlines()
    assert venv_python(project, "import demo, alpha; print(demo.GREETING, alpha.__version__)") == "hello 1.1"
    assert installed(project / ".venv") == {"alpha": "1.1", "beta": "1.0", "demo": "0.1", "gamma": "1.2"}


def test_sync_from_a_lock_written_by_pip(project: Path, index_server: Any) -> None:
    run([sys.executable, "-m", "pip", "lock", "--index-url", index_server.simple_url,
         "-o", "pylock.toml", "alpha<2", "werky"], project)
    result = run_lockenv("sync", "--lockfile", "pylock.toml", cwd=project)
    assert result.code == 0, result.output
    assert result.stdout.splitlines() == ["+ alpha==1.1", "+ beta==1.0", "+ gamma==1.2", "+ werky==2.0"]
    assert venv_python(project, "import werky; print(werky.__version__)") == "2.0"
    assert run_lockenv("verify", "--lockfile", "pylock.toml", cwd=project).code == 0


def test_a_tampered_parsed_lock_in_the_cache_cannot_run_code(tmp_path: Path) -> None:
    """The parsed-lock cache is untrusted: an entry that would call anything but the classes of
    a lock is refused and the lock is parsed from the file instead."""
    import hashlib
    import os
    import pickle

    import packaging

    from lockenv.cache import Cache
    from lockenv.sync.selection import PARSED_LOCKS, load_lock

    lock = tmp_path / "pylock.toml"
    lock.write_text('lock-version = "1.0"\ncreated-by = "test"\npackages = []\n')
    key = hashlib.sha256(lock.read_bytes() + b"\0" + packaging.__version__.encode()).hexdigest()
    entry = Cache().root / PARSED_LOCKS / f"{key}.pickle"
    entry.parent.mkdir(parents=True, exist_ok=True)
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (os.system, (f"touch {marker}",))

    sealed = Cache().seal(pickle.dumps(Evil()))  # even under this user's own seal
    assert sealed is not None
    entry.write_bytes(sealed)
    loaded = load_lock(lock, Cache())
    assert not marker.exists()
    assert loaded.created_by == "test" and loaded.packages == []


def test_sync_from_a_lock_written_by_pdm(project: Path, index_server: Any) -> None:
    """A pylock.toml exported by PDM 2.29.3 (`pdm export -f pylock`) for `alpha` and `marked`
    against the fixture index (its file hashes are the fixture's, which are stable), with
    PDM's own shape: every package under the `default` group marker, a duplicated wheel entry,
    dependencies under [packages.tool.pdm]."""
    data = Path(__file__).parent / "data" / "interop" / "pdm-2.29.3-pylock.toml"
    text = data.read_text().replace("http://FIXTURE_INDEX", index_server.url)
    (project / "pylock.pdm.toml").write_text(text)
    result = run_lockenv("sync", "--lockfile", "pylock.pdm.toml", cwd=project)
    assert result.code == 0, result.output
    assert result.stdout.splitlines() == ["+ alpha==2.0", "+ beta==2.0", "+ gamma==1.2", "+ marked==1.0"]
    assert venv_python(project, "import marked, alpha; print(alpha.__version__)") == "2.0"
    assert run_lockenv("verify", "--lockfile", "pylock.pdm.toml", cwd=project).code == 0


@pytest.mark.skipif(not any("/3.12." in p for p in pyenv_pythons("3.12")), reason="needs pyenv 3.12")
def test_a_pip_lock_for_another_python_names_the_tool_that_made_it(project: Path, index_server: Any) -> None:
    """`pip lock` resolves for the interpreter it runs on: its lock of a package with
    version-specific wheels has no file for another Python. The hint said the platform was
    left unserved when the lock was made and to see `lockenv lock`'s warning, which pip never
    gave; it now names pip and what to do."""
    run([sys.executable, "-m", "pip", "lock", "--index-url", index_server.simple_url,
         "-o", "pylock.pip.toml", "native"], project)
    other = pyenv_pythons("3.12")[0] if sys.version_info[:2] != (3, 12) else pyenv_pythons("3.11")[0]
    result = run_lockenv("sync", "--python", other, "--lockfile", "pylock.pip.toml", cwd=project)
    assert result.code == 2, result.output
    assert "`native 1.0` has no file for this environment" in result.stderr, result.stderr
    assert "hint: this lock was made by pip, perhaps for another environment only" in result.stderr, result.stderr
    assert "lockenv lock`'s warning" not in result.stderr and not (project / ".venv").exists()

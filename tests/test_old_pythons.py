"""Issue 9, point 11: venvs of interpreters older than lockenv's own. The probe is stdlib-only
Python 3.8 code (`lockenv/_probe.py`); lockenv orders its facts into tags with packaging. It
must give exactly what packaging's own `sys_tags()` and `default_environment()` give on every
interpreter where packaging runs, and work end to end on 3.8 and 3.9 (pyenv's)."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import packaging
import pytest

from helpers import run_lockenv, write_project
from fixtures.index import IndexServer
from lockenv.environment import probe, tags_from_facts

PYENV = os.environ.get("PYENV_ROOT") or "/root/.pyenv"
PROBE = (Path(__file__).resolve().parent.parent / "lockenv" / "_probe.py").read_text()
PACKAGING_PARENT = str(Path(packaging.__file__).resolve().parent.parent)
REFERENCE = ("import json, sys; sys.path.insert(0, sys.argv[1]); "
             "from packaging.tags import sys_tags; "
             "from packaging.markers import default_environment; "
             "print(json.dumps([[str(t) for t in sys_tags()], default_environment()]))")


def _pyenv(minor: str) -> str | None:
    found = sorted(glob.glob(f"{PYENV}/versions/{minor}.*/bin/python3"))
    return found[-1] if found else None


def _interpreters(minors: list[str]) -> list[object]:
    return [pytest.param(path, id=minor) if (path := _pyenv(minor)) else
            pytest.param(None, id=minor, marks=pytest.mark.skip(f"no Python {minor} under pyenv"))
            for minor in minors]


def _probe_facts(python: str) -> dict:
    proc = subprocess.run([python, "-I", "-c", PROBE], capture_output=True, text=True, check=True)
    return json.loads(proc.stdout)


@pytest.mark.parametrize("python", [pytest.param(sys.executable, id="running"),
                                    *_interpreters(["3.10", "3.12", "3.13"])])
def test_the_probe_agrees_with_packaging_where_packaging_runs(python: str) -> None:
    facts = _probe_facts(python)
    reference = subprocess.run([python, "-I", "-c", REFERENCE, PACKAGING_PARENT],
                               capture_output=True, text=True, check=True)
    tags, markers = json.loads(reference.stdout)
    assert tags_from_facts(facts["tag_facts"]) == tags
    assert facts["markers"] == markers


@pytest.mark.parametrize("python", _interpreters(["3.8", "3.9"]))
def test_the_probe_runs_where_packaging_cannot(python: str) -> None:
    # The premise: lockenv's packaging does not even import there.
    broken = subprocess.run([python, "-I", "-c", REFERENCE, PACKAGING_PARENT],
                            capture_output=True, text=True)
    assert broken.returncode != 0 and "SyntaxError" in broken.stderr
    result = probe(Path(python), cache=None)
    minor = result.version.rsplit(".", 1)[0]
    nodot = minor.replace(".", "")
    assert result.markers["python_version"] == minor
    assert result.markers["implementation_name"] == "cpython"
    assert result.tags[0] == f"cp{nodot}-cp{nodot}-linux_x86_64" or sys.platform != "linux"
    assert f"cp{nodot}-abi3-manylinux_2_17_x86_64" in result.tags or sys.platform != "linux"
    assert result.tags[-1] == "py30-none-any"


@pytest.mark.parametrize("python", _interpreters(["3.8", "3.9"]))
def test_sync_and_verify_a_venv_of_an_old_python(python: str, project: Path) -> None:
    """`sync --python 3.X` against the fixture index, an sdist built for that Python, then a
    clean `verify`."""
    minor = Path(python).parent.parent.name.rsplit(".", 1)[0]
    write_project(project, ["alpha", "sdstatic"], requires_python=">=3.8")
    with IndexServer("base") as srv:
        env = {"LOCKENV_INDEX_URL": srv.json_url, "PIP_CONFIG_FILE": os.devnull}
        locked = run_lockenv("lock", cwd=project, env=env)
        assert locked.code == 0, locked.output
        synced = run_lockenv("sync", "--python", minor, cwd=project, env=env)
        assert synced.code == 0, synced.output
        assert f"with Python {minor}." in synced.output
        assert "sdstatic" in synced.output
        verified = run_lockenv("verify", cwd=project, env=env)
    assert verified.code == 0, verified.output
    assert "matches pylock.toml" in verified.output
    cfg = (project / ".venv" / "pyvenv.cfg").read_text()
    assert f"version_info = {minor}." in cfg or f"version = {minor}." in cfg
    lock = tomllib.loads((project / "pylock.toml").read_text())
    assert any(p["name"] == "sdstatic" for p in lock["packages"])


@pytest.mark.parametrize("python", _interpreters(["3.9"]))
def test_sync_python_outside_requires_python_says_so(python: str, project: Path) -> None:
    write_project(project, ["alpha"], requires_python=">=3.10")
    with IndexServer("base") as srv:
        env = {"LOCKENV_INDEX_URL": srv.json_url}
        assert run_lockenv("lock", cwd=project, env=env).code == 0
        result = run_lockenv("sync", "--python", "3.9", cwd=project, env=env)
    assert result.code == 2
    assert "error: Python 3.9 (from --python) is outside requires-python `>=3.10`" in result.stderr
    assert f"found: {python} (Python 3.9." in result.stderr
    assert "not found" not in result.stderr
    assert not (project / ".venv").exists()

"""Interpreter discovery, venv creation and probing, against the machine's real interpreters."""

from __future__ import annotations

import glob
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import pyenv_pythons

from lockenv.cache import Bucket, Cache
from lockenv.environment import (
    Venv,
    existing_venv,
    find_python,
    plan_venv,
    probe,
    query_interpreter,
    realize_venv,
    venv_path,
)
from lockenv.errors import PythonNotFoundError
from lockenv.ui import TerminalReporter

RUNNING = "%d.%d.%d" % sys.version_info[:3]


def _venv(project: Path, *, request: str | None, requires_python: str | None,
          reporter: TerminalReporter) -> Venv:
    """The project's venv as sync makes it: planned (every check), then created."""
    plan = plan_venv(project, request=request, requires_python=requires_python, reporter=reporter)
    return realize_venv(plan, reporter)


def _pyenv(minor: str) -> str | None:
    found = pyenv_pythons(minor)
    return found[-1] if found else None


PY312 = _pyenv("3.12")
needs_312 = pytest.mark.skipif(PY312 is None, reason="no Python 3.12 under pyenv")


def quiet() -> TerminalReporter:
    import io

    return TerminalReporter(out=io.StringIO(), err=io.StringIO())


def test_running_interpreter_is_preferred_when_the_lock_allows_it() -> None:
    interp = find_python(None, ">=3.10", quiet())
    assert interp.path == sys.executable and interp.version == RUNNING


@needs_312
def test_a_version_request_finds_pyenv_python_even_when_the_shim_fails() -> None:
    interp = find_python("3.12", None, quiet())
    assert interp.version.startswith("3.12.")
    assert query_interpreter(interp.path) is not None


@needs_312
def test_requires_python_excluding_the_running_one_picks_another() -> None:
    minor = sys.version_info[1]
    interp = find_python(None, f">=3.{minor + 1}", quiet())
    assert tuple(map(int, interp.version.split(".")[:2])) >= (3, minor + 1)


def test_nothing_matches_lists_what_was_found() -> None:
    with pytest.raises(PythonNotFoundError) as info:
        find_python(None, ">=3.99", quiet())
    err = info.value
    assert "requires-python `>=3.99`" in err.message
    assert any(sys.executable in d and RUNNING in d for d in err.details)
    assert "--python" in (err.hint or "")


def test_a_path_request_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(PythonNotFoundError, match="no interpreter at"):
        find_python(str(tmp_path / "nope"), None, quiet())


def test_venv_is_created_without_pip_marked_and_probed(tmp_path: Path) -> None:
    venv = _venv(tmp_path, request=None, requires_python=">=3.10", reporter=quiet())
    assert venv is not None and venv.path == tmp_path / ".venv"
    assert venv.created_by_lockenv and existing_venv(venv.path).created_by_lockenv
    assert "lockenv = " in (venv.path / "pyvenv.cfg").read_text()
    site = glob.glob(str(venv.path / "lib" / "python3.*" / "site-packages"))
    assert site and not glob.glob(site[0] + "/pip*")
    cache = Cache(tmp_path / "cache")
    info = probe(venv.python, cache=cache)
    assert info.version == RUNNING
    assert info.markers["python_full_version"] == RUNNING
    assert info.markers["sys_platform"] == sys.platform
    assert info.tags[0].startswith(f"cp3{sys.version_info[1]}-")
    assert Path(info.paths["purelib"]) == Path(site[0])
    assert info.paths["scripts"] == str(venv.path / "bin")
    # Second probe comes from the cache (same result, no subprocess needed).
    assert len(list(cache.bucket(Bucket.PROBE).iterdir())) == 1
    assert probe(venv.python, cache=cache) == info


def test_a_venv_at_a_new_path_is_probed_from_the_cache_with_its_own_paths(tmp_path: Path) -> None:
    """The probe of a venv is kept by its venv-relative path: a second venv of the same
    interpreter elsewhere gets the first one's facts with its own prefix and install paths,
    exactly what running its interpreter reports."""
    cache = Cache(tmp_path / "cache")
    one = _venv(tmp_path / "one", request=None, requires_python=None, reporter=quiet())
    two = _venv(tmp_path / "second-one", request=None, requires_python=None, reporter=quiet())
    first = probe(one.python, cache=cache)
    moved = probe(two.python, cache=cache)
    assert len(list(cache.bucket(Bucket.PROBE).iterdir())) == 1
    assert moved == probe(two.python, cache=None)  # what the interpreter itself says
    assert moved.prefix == str(two.path) and first.prefix == str(one.path)
    assert moved.paths["purelib"].startswith(str(two.path) + "/")


def test_a_probe_started_ahead_serves_only_the_interpreter_it_ran(tmp_path: Path) -> None:
    """A sync starts the venv's probe before it holds the venv's lock: it is used only for the
    venv's own interpreter, still the same file (another sync may have recreated the venv
    meanwhile); voided by `take(None)`; nothing starts without a venv."""
    from lockenv.environment import ProbeAhead

    cache = Cache(tmp_path / "cache")
    venv = tmp_path / ".venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--copies", str(venv)], check=True)
    python = venv / "bin" / "python"
    expected = probe(python, cache=None)
    assert ProbeAhead(venv, cache).take(python) == expected
    assert ProbeAhead(venv, cache).take(tmp_path / "other" / "bin" / "python") is None
    assert ProbeAhead(venv, cache).take(None) is None
    ahead = ProbeAhead(venv, cache)
    stat = python.stat()
    os.utime(python, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # another interpreter file
    assert ahead.take(python) is None
    assert ProbeAhead(venv, cache).take(python) == expected  # the new one, probed afresh
    assert ProbeAhead(tmp_path / "no-venv", cache).take(tmp_path / "no-venv" / "bin" / "python") is None


def test_with_no_venv_the_interpreter_it_will_be_made_with_is_probed_ahead(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No venv yet: the interpreter asked for (a path), or the running one when none is asked
    for, is probed ahead for `take_base`, only for that interpreter, unchanged; never by
    `take`; and not for a version request (that needs a search)."""
    from lockenv.environment import ProbeAhead, likely_interpreter

    monkeypatch.delenv("LOCKENV_PYTHON", raising=False)
    cache = Cache(tmp_path / "cache")
    base = tmp_path / "base"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--copies", str(base)], check=True)
    python = base / "bin" / "python"
    expected = probe(python, cache=None)
    none = tmp_path / "project" / ".venv"
    assert likely_interpreter(None) == Path(sys.executable)
    assert likely_interpreter("3.11") is None
    assert likely_interpreter(str(tmp_path / "missing")) is None
    monkeypatch.setenv("LOCKENV_PYTHON", str(python))
    assert likely_interpreter(None) == python
    assert ProbeAhead(none, cache).take_base(python) == expected
    assert ProbeAhead(none, cache).peek() == expected  # for the selection made ahead
    assert ProbeAhead(none, cache, request=sys.executable).take_base(python) is None
    assert ProbeAhead(none, cache).take(python) is None  # not a venv's interpreter
    ahead = ProbeAhead(none, cache)
    stat = python.stat()
    os.utime(python, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # another interpreter file
    assert ahead.take_base(python) is None
    venv = tmp_path / "with-venv" / ".venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    assert ProbeAhead(venv, cache).take_base(python) is None  # the venv's own probe, not a base


def test_a_venv_of_lockenv_s_own_interpreter_is_a_standard_venv(tmp_path: Path) -> None:
    """Made in process by the standard library's venv module when the interpreter is the one
    lockenv runs on: the same files `python -m venv --without-pip` makes, pyvenv.cfg's
    `command` naming the interpreter asked for."""
    reporter = quiet()
    plan = plan_venv(tmp_path, request=sys.executable, requires_python=None, reporter=reporter)
    assert plan.interpreter is not None
    venv = realize_venv(plan, reporter)
    reference = tmp_path / "reference"
    subprocess.run([plan.interpreter.path, "-m", "venv", "--without-pip", str(reference)], check=True)

    def files(root: Path) -> set[str]:
        return {str(p.relative_to(root)) for p in root.rglob("*")} - {".gitignore"}

    assert files(venv.path) == files(reference)
    cfg = (venv.path / "pyvenv.cfg").read_text()
    assert f"command = {plan.interpreter.path} -m venv --without-pip {venv.path}\n" in cfg
    out = subprocess.run([str(venv.python), "-c", "import sys; print(sys.prefix != sys.base_prefix)"],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "True"


@needs_312
def test_lockenv_venv_is_recreated_when_python_no_longer_fits(tmp_path: Path) -> None:
    rep = quiet()
    _venv(tmp_path, request=None, requires_python=None, reporter=rep)
    venv = _venv(tmp_path, request="3.12", requires_python=None, reporter=rep)
    assert venv is not None and venv.version.startswith("3.12.")
    assert "Recreating" in rep.err.getvalue()
    assert probe(venv.python, cache=None).version.startswith("3.12.")


@needs_312
def test_foreign_venv_is_never_recreated(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / ".venv")], check=True)
    venv = _venv(tmp_path, request=None, requires_python=None, reporter=quiet())
    assert venv is not None and not venv.created_by_lockenv
    with pytest.raises(PythonNotFoundError, match="not created by lockenv"):
        _venv(tmp_path, request="3.12", requires_python=None, reporter=quiet())
    assert (tmp_path / ".venv" / "pyvenv.cfg").exists()


def test_lockenv_venv_env_var_moves_the_venv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCKENV_VENV", "envs/one")
    assert venv_path(tmp_path) == tmp_path / "envs" / "one"


def test_planning_a_venv_creates_nothing(tmp_path: Path) -> None:
    rep = quiet()
    plan = plan_venv(tmp_path, request=None, requires_python=None, reporter=rep)
    assert plan.current is None and plan.interpreter is not None and plan.problem is None
    assert not (tmp_path / ".venv").exists()
    assert rep.err.getvalue() == ""


def test_the_cache_remembers_only_which_requires_python_admits_a_venv(tmp_path: Path) -> None:
    """plan_venv keeps (in the cache) that a requires-python admits the venv's Python, so a
    warm sync need not import packaging.specifiers; another requires-python, or one that does
    not admit it, is checked as before and never taken from the marker."""
    cache = Cache(tmp_path / "cache")
    rep = quiet()
    project = tmp_path / "proj"
    project.mkdir()
    venv = realize_venv(plan_venv(project, request=sys.executable, requires_python=None,
                                  reporter=rep), rep)
    minor = "%d.%d" % sys.version_info[:2]
    for _ in range(2):  # the second answer comes from the marker the first one left
        plan = plan_venv(project, request=None, requires_python=f">={minor}", reporter=rep, cache=cache)
        assert plan.current is not None and plan.current.path == venv.path
    assert [p.name[:7] for p in (cache.root / Bucket.FRESH_LOCKS.value).iterdir()] == ["python-"]
    for _ in range(2):  # a refusal is not remembered, nor is the admission taken for it
        try:
            refused = plan_venv(project, request=None, requires_python=f">{minor}.999",
                                reporter=rep, cache=cache)
        except PythonNotFoundError:
            continue  # no interpreter on this machine fits: the venv was refused all the same
        assert refused.current is None and refused.problem is not None
        assert "does not satisfy the lock's requires-python" in refused.problem
    assert len(list((cache.root / Bucket.FRESH_LOCKS.value).iterdir())) == 1


def test_an_interpreter_that_fails_or_hangs_the_probe_is_a_clear_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A probe the interpreter cannot answer names it and what it said; one that does not
    answer in time is stopped, and the message says so (it is never waited for forever)."""
    import lockenv.environment as environment
    from lockenv.environment import probe
    from lockenv.errors import SyncError

    failing = tmp_path / "failing"
    failing.write_text("#!/bin/sh\necho 'pyenv: python3.9: command not found' >&2\nexit 127\n")
    failing.chmod(0o755)
    with pytest.raises(SyncError) as caught:
        probe(failing, cache=None)
    assert f"could not inspect the interpreter {failing}" in caught.value.message
    assert "pyenv: python3.9: command not found" in caught.value.details

    hanging = tmp_path / "hanging"
    hanging.write_text("#!/bin/sh\nexec sleep 30\n")
    hanging.chmod(0o755)
    monkeypatch.setattr(environment, "PROBE_TIMEOUT", 0.5)
    with pytest.raises(SyncError) as caught:
        probe(hanging, cache=None)
    assert f"could not inspect the interpreter {hanging}" in caught.value.message
    assert "it did not answer within 0.5 s and was stopped" in caught.value.details

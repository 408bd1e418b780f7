"""Issue 9, point 1: no target vetoes a lock. A package with no file for some targets is locked
for the others with one warning that writes out the fix (an `environments` value, or the
requires-python bound when that alone avoids them); pasting the fix gives a lock without the
warning. `required-environments` makes it an error; sync on an unserved machine refuses before
changing anything, naming the package, its version and the platform."""

from __future__ import annotations

import platform
import re
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.index import IndexServer
from helpers import env_for, run_lockenv, snapshot, sync, write_project


@pytest.fixture(scope="module")
def rough() -> Iterator[IndexServer]:
    with IndexServer("realpypi") as srv:
        yield srv


def _lock(project: Path, srv: IndexServer) -> tuple[int, str]:
    result = run_lockenv("lock", cwd=project, env=env_for(srv))
    return result.code, result.stderr


def _append(project: Path, text: str) -> None:
    with open(project / "pyproject.toml", "a") as f:
        f.write("\n" + text + "\n")


def _pasted_fix(stderr: str) -> str:
    """The indented TOML lines of the warning's hint, as a user would copy them."""
    hint = stderr.split("hint:", 1)[1]
    return "\n".join(line.strip() for line in hint.splitlines() if line.startswith("    "))


def test_platform_left_unserved_warns_once_with_an_environments_value_that_works(
        project: Path, rough: IndexServer) -> None:
    write_project(project, ["macwin", "leafy"], requires_python=">=3.11,<3.13")
    code, stderr = _lock(project, rough)
    assert code == 0, stderr
    assert stderr.count("warning:") == 1, stderr
    assert "`macwin 1.0` has no file" in stderr
    assert "linux-aarch64, linux-x86_64 (Python 3.11-3.12)" in stderr
    fix = _pasted_fix(stderr)
    assert fix == "[tool.lockenv]\nenvironments = [\"sys_platform != 'linux'\"]", fix
    lock = tomllib.loads((project / "pylock.toml").read_text())
    assert sorted(p["name"] for p in lock["packages"]) == ["leafy", "macwin"]

    _append(project, fix)  # the value is valid TOML, and it removes exactly those targets
    code, stderr = _lock(project, rough)
    assert code == 0, stderr
    assert "warning:" not in stderr, stderr


def test_pythons_without_wheels_get_a_requires_python_bound_only_when_it_avoids_them(
        project: Path, rough: IndexServer) -> None:
    # torchy 2.3 has cp310-cp313 wheels and none for macOS x86-64: with that platform left out,
    # only Python 3.14+ is unserved, and an upper bound on requires-python is the fix.
    write_project(project, ["torchy>=2.3"], requires_python=">=3.10")
    _append(project, "[tool.lockenv]\nenvironments = [\"sys_platform != 'darwin' or platform_machine != 'x86_64'\"]")
    code, stderr = _lock(project, rough)
    assert code == 0, stderr
    assert stderr.count("warning:") == 1, stderr
    assert "every platform (Python 3.14+)" in stderr
    assert "add `<3.14` to requires-python" in stderr
    fix = _pasted_fix(stderr)
    assert fix == 'requires-python = "<3.14,>=3.10"', fix
    text = (project / "pyproject.toml").read_text()
    (project / "pyproject.toml").write_text(re.sub(r'requires-python = ".*"', fix, text, count=1))
    code, stderr = _lock(project, rough)
    assert code == 0 and "warning:" not in stderr, stderr


def test_mixed_gaps_are_left_out_by_one_environments_value(project: Path, rough: IndexServer) -> None:
    write_project(project, ["torchy>=2.3"], requires_python=">=3.10")
    code, stderr = _lock(project, rough)
    assert code == 0, stderr
    assert "every platform (Python 3.14+); macos-x86_64 (Python 3.10-3.13)" in stderr
    assert "requires-python =" not in stderr  # a bound alone would not avoid macOS x86-64
    _append(project, _pasted_fix(stderr))
    code, stderr = _lock(project, rough)
    assert code == 0 and "warning:" not in stderr, stderr


def test_packages_left_out_on_the_same_targets_share_one_warning(project: Path, rough: IndexServer) -> None:
    write_project(project, ["macwin", "deskbind", "leafy"], requires_python=">=3.11,<3.13")
    code, stderr = _lock(project, rough)
    assert code == 0, stderr
    assert stderr.count("warning:") == 1 and stderr.count("hint:") == 1, stderr
    assert "`deskbind 2.1`, `macwin 1.0` have no file" in stderr
    assert _pasted_fix(stderr) == "[tool.lockenv]\nenvironments = [\"sys_platform != 'linux'\"]"


def test_packages_left_out_on_different_targets_get_one_fix_for_all(project: Path, rough: IndexServer) -> None:
    # macwin has nothing for Linux, torchy 2.3 nothing for macOS x86-64: one hint leaves out
    # both (two hints would each write an `environments` value; pasting both is invalid TOML)
    write_project(project, ["macwin", "torchy>=2.3"], requires_python=">=3.11,<3.13")
    code, stderr = _lock(project, rough)
    assert code == 0, stderr
    assert stderr.count("warning:") == 2 and stderr.count("hint:") == 1, stderr
    assert "`macwin 1.0` has no file" in stderr and "`torchy 2.3` has no file" in stderr
    assert stderr.index("hint:") > stderr.rindex("warning:")
    _append(project, _pasted_fix(stderr))
    code, stderr = _lock(project, rough)
    assert code == 0 and "warning:" not in stderr, stderr
    lock = tomllib.loads((project / "pylock.toml").read_text())
    assert sorted(p["name"] for p in lock["packages"]) == ["macwin", "torchy"]


def test_required_environments_turns_the_warning_into_an_error(project: Path, rough: IndexServer) -> None:
    write_project(project, ["macwin"], requires_python=">=3.11,<3.13")
    _append(project, "[tool.lockenv]\nrequired-environments = [\"sys_platform == 'linux' and platform_machine == 'aarch64'\"]")
    code, stderr = _lock(project, rough)
    assert code == 2, stderr
    assert "`macwin` has no file installable on Python 3.12 on linux-aarch64" in stderr
    assert "required-environments" in stderr and "hint:" in stderr
    assert not (project / "pylock.toml").exists()


def test_a_changed_required_environments_makes_the_lock_stale(project: Path, rough: IndexServer) -> None:
    write_project(project, ["leafy"], requires_python=">=3.11,<3.13")
    assert _lock(project, rough)[0] == 0
    _append(project, "[tool.lockenv]\nrequired-environments = [\"sys_platform == 'linux'\"]")
    result = run_lockenv("lock", "--check", cwd=project, env=env_for(rough))
    assert result.code == 1, result.output
    assert "required-environments" in result.output


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.machine() != "x86_64",
                    reason="the fixture package leaves Linux x86-64 unserved")
def test_sync_on_an_unserved_machine_refuses_before_changing_anything(
        project: Path, rough: IndexServer) -> None:
    write_project(project, ["leafy", "macwin"], requires_python=">=3.10")
    code, stderr = _lock(project, rough)
    assert code == 0, stderr
    result = sync(project, rough)
    assert result.code == 2, result.output
    assert "`macwin 1.0`" in result.stderr, result.stderr
    assert "linux" in result.stderr and "x86_64" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (project / ".venv").exists()

    # an existing venv is left as it was
    (project / "pyproject.toml").write_text((project / "pyproject.toml").read_text().replace('"macwin"', ""))
    assert _lock(project, rough)[0] == 0
    assert sync(project, rough).code == 0
    before = snapshot(project / ".venv")
    (project / "pyproject.toml").write_text((project / "pyproject.toml").read_text().replace(
        '"leafy", ', '"leafy", "macwin"'))
    assert _lock(project, rough)[0] == 0
    result = sync(project, rough)
    assert result.code == 2 and "`macwin 1.0`" in result.stderr, result.output
    assert snapshot(project / ".venv") == before

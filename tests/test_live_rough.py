"""Live (opt-in: `scripts/test --live`): the real-PyPI cases of issue 9, with a pinned
--exclude-newer so later releases do not change them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import run_lockenv

pytestmark = pytest.mark.live

EXCLUDE_NEWER = "2026-10-01T00:00:00Z"


def _project(path: Path, *deps: str, requires_python: str = ">=3.10") -> Path:
    (path / "pyproject.toml").write_text(
        '[project]\nname = "app"\nversion = "0.1"\n'
        f'requires-python = "{requires_python}"\ndependencies = {json.dumps(list(deps))}\n')
    return path


def test_torch_locks_with_one_warning_naming_macos_x86_64(project: Path) -> None:
    _project(project, "torch>=2.3", requires_python=">=3.10,<3.13")
    result = run_lockenv("lock", "--exclude-newer", EXCLUDE_NEWER, cwd=project, timeout=1200)
    assert result.code == 0, result.output
    assert result.stderr.count("warning:") == 1, result.stderr
    assert "has no file (no wheel for it, no sdist) installable on macos-x86_64 (Python 3.10-3.12)" in result.stderr
    assert "environments = [\"sys_platform != 'darwin' or platform_machine != 'x86_64'\"]" in result.stderr


def test_django_conflict_fails_fast_without_building_sdists(project: Path) -> None:
    _project(project, "django<4", "djangorestframework>=3.16")
    result = run_lockenv("lock", "-v", "--exclude-newer", EXCLUDE_NEWER, cwd=project, timeout=600)
    assert result.code == 1 or result.code == 2, result.output
    assert "djangorestframework" in result.stderr and "django>=4.2" in result.stderr
    assert "django<4" in result.stderr and "hint:" in result.stderr
    assert "building metadata (PEP 517)" not in result.stderr


def test_numpy_pandas_conflict_is_named_not_a_build_failure(project: Path) -> None:
    _project(project, "numpy<1.20", "pandas>=2")
    result = run_lockenv("lock", "-v", "--exclude-newer", EXCLUDE_NEWER, cwd=project, timeout=600)
    assert result.code != 0, result.output
    assert "numpy" in result.stderr and "pandas" in result.stderr and "hint:" in result.stderr
    assert "building metadata (PEP 517)" not in result.stderr
    assert "Traceback" not in result.stderr


def test_an_extra_that_older_releases_lack_resolves_to_one_of_them(project: Path) -> None:
    # fastapi[standard] pulls uvicorn>=0.12; releases before the extra existed do not: the
    # resolver backtracks to one of them (as uv does) and the lock is written. It once ended in
    # "internal error: KeyError" (an edge left by a parent version backtracked away).
    _project(project, "fastapi[standard]>=0.110", "uvicorn<0.12")
    result = run_lockenv("lock", "--exclude-newer", EXCLUDE_NEWER, cwd=project, timeout=600)
    assert result.code == 0, result.output
    lock = (project / "pylock.toml").read_text()
    assert 'name = "fastapi"\nversion = "0.110.' in lock, lock


def test_a_data_stack_for_python_3_8_locks(project: Path) -> None:
    # Python 3.8 and 3.9 get older numpy/pillow/scipy than 3.10+, and the graph names PyPy and
    # Emscripten: one version is shared by CPython 3.9 and the newest PyPy and Emscripten
    # targets. It ended in "the lock's fork conditions grew too large to write", then in "the
    # lock's markers did not settle" (dep-logic listing the same terms in another order).
    _project(project, "numpy", "pandas", "scipy", "matplotlib", "scikit-learn", requires_python=">=3.8")
    result = run_lockenv("lock", "--exclude-newer", EXCLUDE_NEWER, cwd=project, timeout=600)
    assert result.code == 0, result.output
    again = run_lockenv("lock", "--check", cwd=project)
    assert again.code == 0, again.output

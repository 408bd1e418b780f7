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
    assert "torch" in result.stderr and "x86_64" in result.stderr
    assert "environments" in result.stderr


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

"""Live conflicts against PyPI (opt-in: `scripts/test --live`): an unsatisfiable set fails with
the chain a person needs and one hint, without building an sdist (issue 9)."""

from __future__ import annotations

from pathlib import Path

import pytest
import tomlkit

from helpers import run_lockenv

pytestmark = pytest.mark.live

EXCLUDE_NEWER = "2026-10-01T00:00:00Z"


def _project(path: Path, dependencies: list[str]) -> None:
    doc = tomlkit.document()
    doc["project"] = {"name": "app", "version": "0.1", "requires-python": ">=3.10", "dependencies": dependencies}
    (path / "pyproject.toml").write_text(tomlkit.dumps(doc))


@pytest.mark.parametrize(
    ("dependencies", "fragments"),
    [
        (["django<4", "djangorestframework>=3.16"],
         ["`djangorestframework>=3.16` requires `django>=4.2`", "`app` requires `django<4`"]),
        (["numpy<1.20", "pandas>=2"],
         ["`pandas>=2` requires `numpy>=", "`app` requires `numpy<1.20`"]),
        (["flask>=3", "werkzeug<2"],
         ["`flask>=3` requires `werkzeug>=3", "`app` requires `werkzeug<2`"]),
        (["sphinx>=7", "docutils<0.17"],
         ["`sphinx>=7` requires `docutils>=0.18", "`app` requires `docutils<0.17`"]),
        # every fastapi release needs another starlette range: the report states what all need
        (["fastapi>=0.100", "starlette<0.20"],
         ["`fastapi>=0.100` requires `starlette>=0.27.0`", "`app` requires `starlette<0.20`"]),
    ],
    ids=["django", "pandas", "flask", "sphinx", "fastapi"],
)
def test_conflict_is_named_without_builds(dependencies: list[str], fragments: list[str], tmp_path: Path) -> None:
    _project(tmp_path, dependencies)
    result = run_lockenv("lock", "--exclude-newer", EXCLUDE_NEWER, cwd=tmp_path, timeout=600)
    assert result.code == 2, result.output
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr
    assert "hint: loosen" in result.stderr
    assert "build" not in result.stderr.lower(), result.stderr
    assert not (tmp_path / "pylock.toml").exists()

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

"""Hermetic test setup: no user configuration, no network but the local fixture index."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from helpers import check_snapshot, run_lockenv, scrub  # noqa: E402

pytest_plugins = ["fixtures_plugin"]

_CLEARED_PREFIXES = ("PIP_", "UV_", "LOCKENV_", "PDM_", "POETRY_", "VIRTUAL_ENV", "CONDA_")
_CLEARED = {
    "http_proxy", "https_proxy", "all_proxy", "no_proxy",
    "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY",
    "NETRC", "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYENV_VERSION",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--live", action="store_true", help="run the tests that talk to PyPI")
    parser.addoption("--update-snapshots", action="store_true",
                     help="rewrite tests/snapshots/*.txt from this run's output (then review the diff)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "soak: kills and restarts lockenv at random for a bounded "
                                       "time (runs in the normal suite)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--live"):
        return
    skip = pytest.mark.skip(reason="live test against PyPI: pass --live to run")
    for item in items:
        if "live" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def hermetic_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Clear index, proxy, credential and tool variables; HOME and the cache in a temp dir.
    SSL_CERT_FILE is kept on purpose (the machine's TLS goes through it)."""
    for key in list(os.environ):
        if key in _CLEARED or key.startswith(_CLEARED_PREFIXES):
            monkeypatch.delenv(key, raising=False)
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("LOCKENV_CACHE_DIR", str(home / "lockenv-cache"))
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    monkeypatch.setenv("UV_NO_CONFIG", "1")
    monkeypatch.setenv("UV_PYTHON_DOWNLOADS", "never")
    monkeypatch.setenv("UV_CACHE_DIR", str(home / "uv-cache"))
    monkeypatch.setenv("NO_COLOR", "1")
    # Temp files in the test's own directory: a failed build's directory is kept for a day on
    # purpose (its logs), and each run of the suite left one in the machine's temp dir.
    tmp = home / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    return home


@pytest.fixture
def cli() -> object:
    """`cli("lock", cwd=project)` → CliResult(code, stdout, stderr)."""
    return run_lockenv


@pytest.fixture
def golden(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
           hermetic_env: Path) -> Callable[..., None]:
    """`golden(name, text, project=path)`: `text`, scrubbed of temp paths (the project as
    <project>, the rest as <tmp>), ports, durations and the running Python, must equal
    tests/snapshots/<name>.txt; `--update-snapshots` rewrites the file instead."""
    update = bool(request.config.getoption("--update-snapshots"))

    def check(name: str, text: str, **paths: Path) -> None:
        replacements = {str(path): f"<{key}>" for key, path in paths.items()}
        replacements[str(tmp_path_factory.getbasetemp())] = "<tmp>"
        replacements[str(hermetic_env)] = "<home>"
        check_snapshot(name, scrub(text, replacements), update=update)

    return check


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """An empty project directory; tests write their own pyproject.toml into it."""
    path = tmp_path / "proj"
    path.mkdir()
    return path

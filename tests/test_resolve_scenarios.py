"""Resolver scenarios: each `fixtures/scenarios/*.toml` is locked through the CLI against the
fixture index and checked against its `[expect]` table (pins, markers, or an error).

Scenario keys (besides `description`, `[project]`, `[dependency-groups]`, `[tool]`):
`universe` (its own index, e.g. "realpypi"), `api = "simple"` (lock through the simple API),
`args` (more `lock` arguments), `xfail = "reason"` (strict: expected to fail today).
`[expect]`: `error` (fragments of stderr; no lock written) or `pins`, `markers`,
`marker_contains`, `version_markers`, `unconditional`, `lock_contains`, `lock_excludes`,
`absent` (names not locked), `warnings` (fragments of stderr), `files_read` (name -> {version:
how many of its wheels lockenv read, by metadata file or range request}, exactly, or
`[least, most]` for read-aheads a lock that ends first drops; other versions none);
with either, `no_builds` (no sdist was built: the fixture backend logs each hook it runs) and
`stderr_excludes`."""

from __future__ import annotations

import os
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import tomlkit
from packaging.pylock import Pylock
from packaging.utils import canonicalize_name, parse_wheel_filename

from helpers import ROOT, CliResult, run_lockenv
from fixtures.index import IndexServer

import lockenv

SCENARIOS = sorted((ROOT / "fixtures" / "scenarios").glob("*.toml"))
LOCKENV_SOURCE = os.path.dirname(lockenv.__file__) + os.sep
"""Where lockenv's modules are: a traceback through them names this folder."""


@pytest.fixture(scope="module")
def server() -> Iterator[IndexServer]:
    with IndexServer("base") as srv:
        yield srv


def _write_project(path: Path, scenario: dict) -> None:
    doc = tomlkit.document()
    project = {"name": "app", "version": "0.1", "requires-python": ">=3.10,<3.14"}
    project.update(scenario["project"])
    doc["project"] = project
    if "dependency-groups" in scenario:
        doc["dependency-groups"] = scenario["dependency-groups"]
    if "tool" in scenario:
        doc["tool"] = scenario["tool"]
    (path / "pyproject.toml").write_text(tomlkit.dumps(doc))


def _entries(lock: dict, name: str) -> list[dict]:
    return [p for p in lock.get("packages", []) if p["name"] == name]


def _files_read(requests: list, name: str) -> dict[str, int]:
    """Per version of `name`: how many distinct wheels the index was asked for (or their
    metadata files)."""
    seen: dict[str, set[str]] = {}
    for r in requests:
        filename = r.path.split("?")[0].rsplit("/", 1)[-1].removesuffix(".metadata")
        if filename.endswith(".whl"):
            project, version, _build, _tags = parse_wheel_filename(filename)
            if project == canonicalize_name(name):
                seen.setdefault(str(version), set()).add(filename)
    return {version: len(files) for version, files in seen.items()}


def _param(path: Path) -> object:
    """A scenario with `xfail = "reason"` is expected to fail today (strictly: once it passes,
    the suite fails until the mark is removed)."""
    reason = tomllib.loads(path.read_text()).get("xfail")
    marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
    return pytest.param(path, marks=marks, id=path.stem)


def _lock(scenario: dict, project: Path, srv: IndexServer) -> CliResult:
    url = srv.simple_url if scenario.get("api") == "simple" else srv.json_url
    env = {"LOCKENV_INDEX_URL": url,
           "LOCKENV_FIXTURE_BUILD_LOG": str(project.parent / "build.log")}
    return run_lockenv("lock", *scenario.get("args", []), cwd=project, env=env)


@pytest.mark.parametrize("path", [_param(p) for p in SCENARIOS])
def test_scenario(path: Path, server: IndexServer, project: Path) -> None:
    scenario = tomllib.loads(path.read_text())
    expect = scenario["expect"]
    _write_project(project, scenario)
    if "universe" in scenario:  # a scenario that brings its own index
        with IndexServer(scenario["universe"]) as own:
            result = _lock(scenario, project, own)
            requests = own.requests
    else:
        server.clear_log()
        result = _lock(scenario, project, server)
        requests = server.requests
    for name, files in expect.get("files_read", {}).items():
        read = _files_read(requests, name)
        assert set(read) == set(files) and all(
            read[v] == n if isinstance(n, int) else n[0] <= read[v] <= n[1] for v, n in files.items()
        ), f"{name}: {read}"
    lock_path = project / "pylock.toml"
    build_log = project.parent / "build.log"
    built = build_log.read_text().splitlines() if build_log.exists() else []
    if expect.get("no_builds"):
        assert built == [], f"sdists were built: {built}"
    for fragment in expect.get("stderr_excludes", []):
        assert fragment not in result.stderr, f"{fragment!r} in:\n{result.stderr}"

    if "error" in expect:
        assert result.code != 0, result.output
        # no frame of lockenv's own code (a build backend's traceback is the user's to read);
        # the source folder is found from the import, not guessed from the clone's folder name
        assert LOCKENV_SOURCE not in result.output, "a lockenv traceback leaked"
        assert "internal error" not in result.output
        for fragment in expect["error"]:
            assert fragment in result.stderr, f"{fragment!r} not in:\n{result.stderr}"
        for fragment in expect.get("error_excludes", []):
            assert fragment not in result.stderr, f"{fragment!r} in:\n{result.stderr}"
        assert not lock_path.exists()
        return

    assert result.code == 0, result.output
    for fragment in expect.get("warnings", []):
        assert fragment in result.stderr, f"{fragment!r} not in:\n{result.stderr}"
    text = lock_path.read_text()
    lock = tomllib.loads(text)
    Pylock.from_dict(lock).validate()

    for name, versions in expect.get("pins", {}).items():
        wanted = sorted([versions] if isinstance(versions, str) else versions)
        got = sorted(p["version"] for p in _entries(lock, name))
        assert got == wanted, f"{name}: {got} != {wanted}\n{text}"
    for name, marker in expect.get("markers", {}).items():
        (entry,) = _entries(lock, name)
        assert entry.get("marker") == marker, f"{name}: {entry.get('marker')!r}"
    for name, fragments in expect.get("marker_contains", {}).items():
        (entry,) = _entries(lock, name)
        for fragment in fragments:
            assert fragment in entry.get("marker", ""), f"{name}: {entry.get('marker')!r}"
    for key, marker in expect.get("version_markers", {}).items():
        name, _, version = key.partition("==")
        (entry,) = [p for p in _entries(lock, name) if p["version"] == version]
        assert entry.get("marker") == marker, f"{key}: {entry.get('marker')!r}"
    for name in expect.get("unconditional", []):
        (entry,) = _entries(lock, name)
        assert "marker" not in entry, f"{name} has marker {entry.get('marker')!r}"
    for fragment in expect.get("lock_contains", []):
        assert fragment in text
    for fragment in expect.get("lock_excludes", []):
        assert fragment not in text
    for name in expect.get("absent", []):
        assert not _entries(lock, name), f"{name} is locked"
    assert sys.version_info >= (3, 11)

"""`lockenv export`: pip installs from it, with `--require-hashes --no-deps`, exactly what
`lockenv sync` installs on this machine; on every other target the lock covers, the lines'
markers select what `packaging.pylock`'s `select()` selects there; no credentials; stable bytes."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from helpers import run_lockenv
from fixtures.index import IndexServer

PYPROJECT = """\
[project]
name = "app"
version = "0.1"
requires-python = ">=3.10,<3.14"
dependencies = ["alpha", "marked", "native", "modern", "feat[cli]; python_version >= '3.11'"]

[project.optional-dependencies]
feat = ["feat[all]"]
extra2 = ["sddynamic[more]"]

[dependency-groups]
dev = ["diamond", "flasky"]
lint = ["timely", "werky<2; sys_platform == 'win32'"]
"""


@pytest.fixture
def project(tmp_path: Path, index_server: IndexServer) -> Path:
    project = tmp_path / "app"
    project.mkdir()
    (project / "pyproject.toml").write_text(PYPROJECT)
    r = run_lockenv("lock", cwd=project, env={"LOCKENV_INDEX_URL": index_server.json_url})
    assert r.code == 0, r.output
    return project


def export(project: Path, *args: str) -> str:
    r = run_lockenv("export", *args, cwd=project, env={"LOCKENV_INDEX_URL": "http://127.0.0.1:9/pypi"})
    assert r.code == 0, r.output
    return r.stdout


def parse(text: str) -> list[tuple[Requirement, list[str]]]:
    """(requirement, hashes) per package line of a requirements file."""
    joined = text.replace("\\\n", " ")
    out = []
    for line in joined.splitlines():
        if not line or line.startswith(("#", "--")):
            continue
        words = line.split(" --hash=")
        out.append((Requirement(words[0].strip()), [w.strip() for w in words[1:]]))
    return out


def venv_dists(python: Path) -> set[tuple[str, str]]:
    code = ("import importlib.metadata as m, json, re; print(json.dumps(sorted("
            "(re.sub(r'[-_.]+', '-', d.metadata['Name']).lower(), d.version) for d in m.distributions())))")
    out = subprocess.run([str(python), "-c", code], check=True, capture_output=True, text=True).stdout
    return {tuple(x) for x in json.loads(out)}


def test_pip_installs_from_the_export_what_sync_installs(project: Path, index_server: IndexServer,
                                                         tmp_path: Path) -> None:
    r = run_lockenv("sync", "--extra", "feat", cwd=project, env={"LOCKENV_INDEX_URL": index_server.json_url})
    assert r.code == 0, r.output
    synced = venv_dists(project / ".venv" / "bin" / "python")

    req = tmp_path / "requirements.txt"
    r = run_lockenv("export", "--extra", "feat", "-o", req, cwd=project)
    assert r.code == 0, r.output
    assert r.stdout == "" and f"to {req}" in r.stderr
    assert f"--index-url {index_server.simple_url}" in req.read_text()

    fresh = tmp_path / "fresh"
    subprocess.run([str(project / ".venv" / "bin" / "python"), "-m", "venv", str(fresh)], check=True)
    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    before = venv_dists(fresh / "bin" / "python")
    pip = subprocess.run([str(fresh / "bin" / "python"), "-m", "pip", "install", "--require-hashes",
                          "--no-deps", "-r", str(req)], env=env, capture_output=True, text=True)
    assert pip.returncode == 0, pip.stdout + pip.stderr
    installed = venv_dists(fresh / "bin" / "python") - before
    assert installed == synced - before
    assert {n for n, _ in installed} >= {"alpha", "feat", "clicky-cli", "gamma", "diamond"}


def _lock_selects(project: Path, env: dict[str, str], tags: list, extras: set[str],
                  groups: set[str]) -> set[tuple[str, str]]:
    from lockenv.lockfile import load, select

    lock = load(project / "pylock.toml")
    return {(str(p.name), str(p.version)) for p, _ in select(lock, environment=env, tags=tags,
                                                             extras=extras, groups=groups)}


@pytest.mark.parametrize("args, extras, groups", [
    ((), set(), {"dev"}),
    (("--extra", "feat", "--extra", "extra2", "--no-default-groups"), {"feat", "extra2"}, set()),
    (("--all-extras", "--all-groups"), {"feat", "extra2"}, {"dev", "lint"}),
    (("--group", "lint"), set(), {"dev", "lint"}),
])
def test_every_target_gets_what_the_lock_selects_there(project: Path, args: tuple[str, ...],
                                                       extras: set[str], groups: set[str]) -> None:
    from lockenv.resolve.targets import make_targets

    lines = parse(export(project, *args))
    assert all(hashes and all(h.startswith("sha256:") and len(h) == 71 for h in hashes)
               for _, hashes in lines)
    targets = make_targets(">=3.10,<3.14")
    assert len(targets) == 20
    forks_seen = set()
    for target in targets:
        env = target.environment
        chosen = {(req.name, str(next(iter(req.specifier)).version)) for req, _ in lines
                  if req.marker is None or req.marker.evaluate({**env, "extra": ""})}
        assert chosen == _lock_selects(project, env, target.tags, extras, groups), target.name
        forks_seen |= {v for n, v in chosen if n == "modern"}
    assert forks_seen == {"1.5", "2.0"}


def test_only_group_follows_the_groups_requirements(project: Path) -> None:
    from lockenv.resolve.targets import make_targets
    from lockenv.sync.selection import Request, select

    from lockenv.lockfile import load

    lines = parse(export(project, "--only-group", "lint"))
    names = {req.name for req, _ in lines}
    assert "alpha" not in names and "timely" in names
    lock = load(project / "pylock.toml")
    for target in make_targets(">=3.10,<3.14"):
        env = target.environment
        chosen = {(req.name, str(next(iter(req.specifier)).version)) for req, _ in lines
                  if req.marker is None or req.marker.evaluate({**env, "extra": ""})}
        wanted = select(lock, project / "pylock.toml", Request(frozenset(), frozenset({"lint"}), True),
                        markers=env, tags=target.tags,
                        group_requirements={"lint": ("timely", "werky<2; sys_platform == 'win32'")})
        assert chosen == {(w.name, w.version) for w in wanted}, target.name


def test_export_is_stable_has_no_credentials_and_rejects_unknown_input(tmp_path: Path,
                                                                       index_server: IndexServer) -> None:
    project = tmp_path / "app"
    project.mkdir()
    (project / "pyproject.toml").write_text(PYPROJECT)
    url = index_server.json_url.replace("http://", "http://someone:s3cret-token@")
    r = run_lockenv("lock", cwd=project, env={"LOCKENV_INDEX_URL": url})
    assert r.code == 0, r.output
    first = export(project)
    assert first == export(project)
    assert "s3cret" not in first and "someone" not in first
    assert first.splitlines()[:4] == [
        "# Exported by lockenv from pylock.toml; do not edit. Regenerate with:",
        "#    lockenv export",
        "# Install exactly this set (no resolver) with:",
        "#    pip install --require-hashes --no-deps -r FILE",
    ]
    r = run_lockenv("export", "--extra", "nope", cwd=project)
    assert r.code == 2 and "unknown extra `nope`" in r.stderr and r.stdout == ""
    r = run_lockenv("export", "--format", "poetry.lock", cwd=project)
    assert r.code == 2 and "unknown export format" in r.stderr


def test_packages_from_several_indexes(project: Path, index_server: IndexServer) -> None:
    # One package from a second index (a private one, written with credentials by another
    # tool): both URLs are given to pip, the lock's default first, never the credentials.
    lock_file = project / "pylock.toml"
    text = lock_file.read_text()
    private = "http://deploy:t0ken@127.0.0.1:1/private/simple/"
    head, sep, rest = text.partition('name = "winhelper"')
    rest = rest.replace(f'index = "{index_server.simple_url}"', f'index = "{private}"', 1)
    lock_file.write_text(head + sep + rest)
    lines = export(project).splitlines()
    assert lines[4:6] == [f"--index-url {index_server.simple_url}",
                          "--extra-index-url http://127.0.0.1:1/private/simple/"]
    assert "t0ken" not in "\n".join(lines) and "deploy" not in "\n".join(lines)

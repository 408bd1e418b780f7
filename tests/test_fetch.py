"""Air-gapped installs: `lockenv fetch` for another platform and Python (one file per package,
the lock's own selection, plus a copy of pylock.toml), then `sync --find-links DIR` on the
target with every index stopped: installed from DIR alone, every hash checked."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from fixtures.index import IndexServer
from fixtures.private_index import PrivateIndex
from helpers import installed, run_lockenv

USER, PASSWORD = "ci-bot", "fetch-Pw-77"
PRIVATE = {"acme-app": {"1.0": {"dependencies": ["gamma", "native"]}}}


def write(project: Path, private_url: str) -> None:
    project.mkdir(parents=True, exist_ok=True)
    (project / "pyproject.toml").write_text(textwrap.dedent(f"""\
        [project]
        name = "app"
        version = "0.1"
        requires-python = ">=3.10,<3.14"
        dependencies = ["acme-app", "speedy"]

        [[tool.lockenv.index]]
        name = "internal"
        url = "{private_url}"
        explicit = true

        [tool.lockenv.sources]
        acme-app = {{ index = "internal" }}
        """))


@pytest.fixture
def locked_project(tmp_path: Path) -> tuple[Path, IndexServer, PrivateIndex]:
    public = IndexServer("base").start()
    private = PrivateIndex(tmp_path / "pypiserver", PRIVATE, user=USER, password=PASSWORD).start()
    project = tmp_path / "proj"
    write(project, private.url)
    env = {"LOCKENV_INDEX_URL": public.json_url, "LOCKENV_INDEX_INTERNAL_USERNAME": USER,
           "LOCKENV_INDEX_INTERNAL_PASSWORD": PASSWORD}
    result = run_lockenv("lock", cwd=project, env=env)
    assert result.code == 0, result.output
    yield project, public, private
    public.stop()
    private.stop()


def env_for(public: IndexServer) -> dict[str, str]:
    return {"LOCKENV_INDEX_URL": public.json_url, "LOCKENV_INDEX_INTERNAL_USERNAME": USER,
            "LOCKENV_INDEX_INTERNAL_PASSWORD": PASSWORD}


def fetch(project: Path, public: IndexServer, platform: str, python: str, dest: Path) -> Any:
    return run_lockenv("fetch", "--platform", platform, "--python", python, "-d", dest,
                       cwd=project, env=env_for(public))


def test_fetch_for_windows_writes_one_file_per_package_and_the_lock(
        locked_project: tuple[Path, IndexServer, PrivateIndex], tmp_path: Path) -> None:
    project, public, _private = locked_project
    dest = tmp_path / "wheelhouse"
    result = fetch(project, public, "windows-amd64", "3.12", dest)
    assert result.code == 0, result.output
    assert sorted(p.name for p in dest.iterdir()) == [
        "acme_app-1.0-py3-none-any.whl",
        "gamma-1.2-py3-none-any.whl",
        "native-1.0-cp312-cp312-win_amd64.whl",
        "pylock.toml",
        "speedy-1.0-py3-none-any.whl",  # no Windows build: the pure wheel, not the sdist
        "winhelper-0.4-py3-none-any.whl",  # only Windows' native wheel needs it
    ]
    assert (dest / "pylock.toml").read_bytes() == (project / "pylock.toml").read_bytes()
    assert f"Fetched 5 files for cp312-windows-amd64 into {dest}" in result.stderr
    aarch = tmp_path / "aarch"
    result = fetch(project, public, "linux-aarch64", "3.13", aarch)
    assert result.code == 0, result.output
    names = sorted(p.name for p in aarch.iterdir())
    assert "native-1.0-cp313-cp313-manylinux_2_17_aarch64.whl" in names
    assert not any("winhelper" in n for n in names)


def test_fetch_names_the_platforms_it_knows(
        locked_project: tuple[Path, IndexServer, PrivateIndex], tmp_path: Path) -> None:
    project, public, _private = locked_project
    result = fetch(project, public, "solaris-sparc", "3.12", tmp_path / "x")
    assert result.code == 2
    assert "unknown platform `solaris-sparc`" in result.stderr
    assert "linux-musl-x86_64" in result.stderr and "macos-arm64" in result.stderr


def test_fetch_then_sync_from_the_directory_alone_with_every_index_stopped(
        locked_project: tuple[Path, IndexServer, PrivateIndex], tmp_path: Path) -> None:
    project, public, private = locked_project
    python = f"{sys.version_info[0]}.{sys.version_info[1]}"
    dest = tmp_path / "wheelhouse"
    result = fetch(project, public, "linux-x86_64", python, dest)
    assert result.code == 0, result.output
    env = env_for(public)
    public.stop()
    private.stop()
    # The target machine: the project (pyproject.toml and the lock from DIR), a fresh cache.
    target = tmp_path / "target"
    target.mkdir()
    shutil.copy(project / "pyproject.toml", target)
    shutil.copy(dest / "pylock.toml", target)
    env["LOCKENV_CACHE_DIR"] = str(tmp_path / "target-cache")
    # As on an air-gapped machine: --offline with --find-links (no request, even to try).
    result = run_lockenv("sync", "--offline", "--find-links", dest, "--python", sys.executable,
                         cwd=target, env=env)
    assert result.code == 0, result.output
    assert installed(target / ".venv") == {"acme-app": "1.0", "gamma": "1.2", "native": "1.0",
                                            "speedy": "1.0"}
    # A missing file, then an altered one: errors naming the package and the file.
    shutil.rmtree(target / ".venv")
    speedy = next(dest.glob("speedy-*"))
    speedy.rename(tmp_path / speedy.name)
    result = run_lockenv("sync", "--find-links", dest, "--python", sys.executable, cwd=target,
                         env={**env, "LOCKENV_CACHE_DIR": str(tmp_path / "cache-2")})
    assert result.code == 2, result.output
    assert f"`speedy` needs {speedy.name}, which is not in {dest}" in result.stderr
    assert installed(target / ".venv") == {}  # checked before any install
    gamma = next(dest.glob("gamma-*"))
    gamma.rename(tmp_path / gamma.name)
    result = run_lockenv("sync", "--find-links", dest, "--python", sys.executable, cwd=target,
                         env={**env, "LOCKENV_CACHE_DIR": str(tmp_path / "cache-2")})
    assert result.code == 2 and "(and 1 more)" in result.stderr, result.output
    assert f"`gamma`: {gamma.name}" in result.stderr and f"`speedy`: {speedy.name}" in result.stderr
    (tmp_path / gamma.name).rename(gamma)
    speedy.write_bytes((tmp_path / speedy.name).read_bytes() + b"\0")
    result = run_lockenv("sync", "--find-links", dest, "--python", sys.executable, cwd=target,
                         env={**env, "LOCKENV_CACHE_DIR": str(tmp_path / "cache-3")})
    assert result.code == 2, result.output
    assert f"`speedy`: {speedy} does not match the lock" in result.stderr
    assert not (target / ".venv" / "lib").exists() or "speedy" not in installed(target / ".venv")


def test_fetch_for_musl_linux_refuses_a_package_without_a_musl_file_and_writes_nothing(
        locked_project: tuple[Path, IndexServer, PrivateIndex], tmp_path: Path) -> None:
    project, public, _private = locked_project
    dest = tmp_path / "alpine"
    result = fetch(project, public, "linux-musl-x86_64", "3.12", dest)
    assert result.code == 2, result.output
    assert ("error: fetch for cp312-linux-musl-x86_64 (musl Linux): `native 1.0` has no file for this "
            "environment") in result.stderr, result.stderr
    assert "musl Linux is not one of the lock's targets" in result.stderr
    assert "left unserved" not in result.stderr  # that hint is for the lock's own targets
    assert not dest.exists() or not any(dest.iterdir()), "a refused fetch wrote files"
    # A lock whose packages all have a file for musl (pure wheels, a musllinux wheel): fetched.
    speedy = tmp_path / "speedy"
    speedy.mkdir()
    (speedy / "pyproject.toml").write_text(
        '[project]\nname = "app"\nversion = "0.1"\nrequires-python = ">=3.10,<3.14"\n'
        'dependencies = ["speedy", "gamma"]\n')
    assert run_lockenv("lock", cwd=speedy, env=env_for(public)).code == 0
    result = fetch(speedy, public, "linux-musl-x86_64", "3.12", dest)
    assert result.code == 0, result.output
    assert sorted(p.name for p in dest.iterdir()) == [
        "gamma-1.2-py3-none-any.whl", "pylock.toml", "speedy-1.0-py3-none-any.whl"]

"""Our pylock.toml installs with pip 26.3 (`pip install -r pylock.toml`) and uv (`uv pip sync
pylock.toml`), and pylock files written by uv and pip load and select, all against the local
fixture index."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
import urllib.request
from datetime import datetime
from pathlib import Path

import pytest

from fixtures.index import IndexServer
from lockenv import lockfile
from lockenv.models import DistFile, Dependency, LockedPackage, LockInputs, Resolution

UV = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
PIP_ENV = {"PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
UV_ENV = {"UV_NO_CONFIG": "1", "UV_PYTHON_DOWNLOADS": "never"}


def files_of(srv: IndexServer, name: str, version: str) -> tuple[list[DistFile], DistFile | None]:
    """The wheels and sdist of one release, as the index's JSON API lists them."""
    with urllib.request.urlopen(f"{srv.json_url}/{name}/json") as resp:
        data = json.load(resp)
    wheels, sdist = [], None
    for f in data["releases"][version]:
        dist = DistFile(
            filename=f["filename"], url=f["url"], sha256=f["digests"]["sha256"], size=f["size"],
            upload_time=datetime.fromisoformat(f["upload_time_iso_8601"].replace("Z", "+00:00")),
            requires_python=f["requires_python"], index=srv.simple_url,
        )
        if dist.is_wheel:
            wheels.append(dist)
        else:
            sdist = dist
    return wheels, sdist


def fixture_resolution(srv: IndexServer, default_groups: tuple[str, ...] = ("dev",)) -> Resolution:
    """alpha 1.1 → beta 1.0 → gamma 1.2 for everyone; cee 2.0 for the `fast` extra and the
    `dev` group (whose `right` needs it); `dev` is a default group unless told otherwise."""
    def pkg(name: str, version: str, marker: str | None, deps: tuple[str, ...] = ()) -> LockedPackage:
        wheels, sdist = files_of(srv, name, version)
        return LockedPackage(name, version, marker, None, srv.simple_url,
                             tuple(Dependency(d) for d in deps), tuple(wheels), sdist)

    inputs = LockInputs(
        requires_python=">=3.9", dependencies=("alpha<2",), optional_dependencies={"fast": ("cee>=2",)},
        dependency_groups={"dev": ("right",)}, default_groups=default_groups, index_url=srv.simple_url,
        exclude_newer=None, environments=(),
    )
    return Resolution(inputs, (
        pkg("alpha", "1.1", None, ("beta",)),
        pkg("beta", "1.0", None, ("gamma",)),
        pkg("gamma", "1.2", 'python_version >= "3.8"'),  # a literal-string marker
        pkg("cee", "2.0", "'fast' in extras or 'dev' in dependency_groups"),
        pkg("right", "1.0", "'dev' in dependency_groups", ("cee",)),
    ))


def make_venv(path: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    return path / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def installed(python: Path) -> dict[str, str]:
    """name → version of every distribution in the venv, from its dist-info directories."""
    out = subprocess.run(
        [str(python), "-c",
         "import importlib.metadata as m, json; "
         "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))"],
        capture_output=True, text=True, check=True,
    )
    return json.loads(out.stdout)


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env={**os.environ, **env}, cwd=cwd, capture_output=True, text=True, timeout=180)


@pytest.fixture
def our_lock(index_server: IndexServer, tmp_path: Path) -> Path:
    path = tmp_path / "pylock.toml"
    assert lockfile.write(path, fixture_resolution(index_server))
    return path


def pip_install(python: Path, requirement: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-index",
                "-r", requirement], PIP_ENV, cwd)


def test_pip_installs_our_lock_runtime_only_and_extras(our_lock: Path, tmp_path: Path) -> None:
    """pip cannot deselect groups, so the lock's standard `default-groups` is empty: pip installs
    the runtime, never the `dev` group lockenv's own sync turns on (`[tool.lockenv]`)."""
    python = make_venv(tmp_path / "venv")
    result = pip_install(python, "pylock.toml", our_lock.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert installed(python) == {"alpha": "1.1", "beta": "1.0", "gamma": "1.2"}

    python = make_venv(tmp_path / "venv-fast")
    result = run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-index",
                  "-r", "pylock.toml[fast]"], PIP_ENV, our_lock.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert installed(python)["cee"] == "2.0"


def test_pip_checks_our_hashes(our_lock: Path, tmp_path: Path) -> None:
    text = our_lock.read_text()
    good = lockfile.read_pins(our_lock)  # still parses
    assert good["gamma"] == [("1.2", 'python_version >= "3.8"')]
    gamma = next(p for p in tomllib.loads(text)["packages"] if p["name"] == "gamma")
    digest = gamma["wheels"][0]["hashes"]["sha256"]
    our_lock.write_text(text.replace(digest, "0" * 64))
    python = make_venv(tmp_path / "venv")
    result = pip_install(python, "pylock.toml", our_lock.parent)
    assert result.returncode != 0
    assert "0" * 64 in result.stderr and digest in result.stderr  # pip names expected and got
    assert "gamma" not in installed(python)


@pytest.mark.skipif(UV is None, reason="uv is a test dependency; not installed here")
def test_uv_syncs_our_lock(our_lock: Path, index_server: IndexServer, tmp_path: Path) -> None:
    python = make_venv(tmp_path / "venv")
    base = [UV, "pip", "sync", "--python", str(python), "--no-index", "pylock.toml"]
    result = run(base, UV_ENV, our_lock.parent)
    assert result.returncode == 0, result.stderr
    assert installed(python) == {"alpha": "1.1", "beta": "1.0", "gamma": "1.2"}  # runtime only


    # without default groups: extras and groups chosen on the command line
    lockfile.write(our_lock, fixture_resolution(index_server, default_groups=()))
    result = run(base, UV_ENV, our_lock.parent)
    assert result.returncode == 0, result.stderr
    assert installed(python) == {"alpha": "1.1", "beta": "1.0", "gamma": "1.2"}
    result = run([*base, "--extra", "fast"], UV_ENV, our_lock.parent)
    assert result.returncode == 0, result.stderr
    assert installed(python) == {"alpha": "1.1", "beta": "1.0", "gamma": "1.2", "cee": "2.0"}
    result = run([*base, "--group", "dev"], UV_ENV, our_lock.parent)
    assert result.returncode == 0, result.stderr
    assert installed(python) == {"alpha": "1.1", "beta": "1.0", "gamma": "1.2", "right": "1.0", "cee": "2.0"}


@pytest.mark.skipif(UV is None, reason="uv is a test dependency; not installed here")
def test_lock_written_by_uv_loads_and_selects(index_server: IndexServer, tmp_path: Path) -> None:
    (tmp_path / "requirements.in").write_text("alpha<2\n")
    result = run([UV, "pip", "compile", "--universal", "--python-version", "3.10", "--format", "pylock.toml",
                  "--index-url", index_server.simple_url, "-o", "pylock.toml", "requirements.in"],
                 UV_ENV, tmp_path)
    assert result.returncode == 0, result.stderr
    path = tmp_path / "pylock.toml"
    lock = lockfile.load(path)
    assert lock.created_by == "uv"
    from packaging.markers import default_environment
    from packaging.tags import sys_tags

    chosen = {p.name: (str(p.version), d.filename)
              for p, d in lockfile.select(lock, environment=default_environment(), tags=list(sys_tags()),
                                          extras=(), groups=None)}
    assert chosen == {
        "alpha": ("1.1", "alpha-1.1-py3-none-any.whl"),
        "beta": ("1.0", "beta-1.0-py3-none-any.whl"),
        "gamma": ("1.2", "gamma-1.2-py3-none-any.whl"),
    }
    assert lockfile.read_pins(path) == {"alpha": [("1.1", None)], "beta": [("1.0", None)], "gamma": [("1.2", None)]}
    assert lockfile.read_inputs(path) is None


def test_lock_written_by_pip_loads_and_selects(index_server: IndexServer, tmp_path: Path) -> None:
    result = run([sys.executable, "-m", "pip", "lock", "--index-url", index_server.simple_url,
                  "-o", "pylock.toml", "alpha<2"], PIP_ENV, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    path = tmp_path / "pylock.toml"
    lock = lockfile.load(path)
    assert lock.created_by == "pip"
    from packaging.markers import default_environment
    from packaging.tags import sys_tags

    chosen = {p.name: str(p.version) for p, _ in lockfile.select(
        lock, environment=default_environment(), tags=list(sys_tags()), extras=(), groups=None)}
    assert chosen == {"alpha": "1.1", "beta": "1.0", "gamma": "1.2"}

"""Where sync takes things from and what it leaves alone: build requirements from the lock's
index, a venv's seed packages kept, quiet builds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from helpers import installed, lock, run_lockenv, sync, venv_python, write_project


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


def _seed_versions(venv: Path) -> dict[str, str]:

    return {k: v for k, v in installed(venv).items() if k in ("pip", "setuptools", "wheel")}


def test_seed_packages_of_a_venv_made_with_python_m_venv_are_kept_and_listed(
        project: Path, index_server: Any) -> None:
    import subprocess
    import sys

    write_project(project, ["gamma"])
    lock(project, index_server)
    subprocess.run([sys.executable, "-m", "venv", str(project / ".venv")], check=True,
                   env={"PATH": "/usr/bin:/bin", "PIP_CONFIG_FILE": "/dev/null"})
    seeds = _seed_versions(project / ".venv")
    assert "pip" in seeds, seeds

    result = sync(project, index_server)
    assert result.code == 0, result.output
    assert _seed_versions(project / ".venv") == seeds
    assert "+ gamma==1.2" in result.stdout.splitlines()
    for name, version in seeds.items():
        assert f"= {name}=={version} (seed package, kept)" in result.stdout.splitlines(), result.stdout
    assert not any(line.startswith("- ") for line in result.stdout.splitlines()), result.stdout
    # pip still works in the synced venv.
    proc = subprocess.run([str(project / ".venv" / "bin" / "python"), "-m", "pip", "--version"],
                          capture_output=True, text=True, env={"PIP_CONFIG_FILE": "/dev/null"})
    assert proc.returncode == 0, proc.stderr
    # verify agrees with sync: the seed packages are not extraneous.
    verify = run_lockenv("verify", cwd=project, env={"LOCKENV_INDEX_URL": index_server.json_url})
    assert verify.code == 0, verify.output
    assert "seed packages kept: pip" in verify.stderr


NOISY_BACKEND = '''
import base64, hashlib, os, sys, warnings, zipfile

def _noise():
    print("BACKEND-STDOUT chatter")
    print("BACKEND-STDERR License classifiers are deprecated", file=sys.stderr)
    warnings.warn("BACKEND-WARNING this form is deprecated")
    if os.path.exists("FAIL"):
        raise SystemExit("BACKEND-FAILED on purpose")

def get_requires_for_build_editable(config_settings=None):
    _noise()
    return []

def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    _noise()
    name = "noisy-0.1-py3-none-any.whl"
    files = {
        "noisy.pth": (os.path.abspath("src") + "\\n").encode(),
        "noisy-0.1.dist-info/METADATA": b"Metadata-Version: 2.1\\nName: noisy\\nVersion: 0.1\\n\\n",
        "noisy-0.1.dist-info/WHEEL": b"Wheel-Version: 1.0\\nGenerator: t\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n",
    }
    record = []
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as zf:
        for path, data in files.items():
            zf.writestr(path, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append(f"{path},sha256={digest},{len(data)}")
        record.append("noisy-0.1.dist-info/RECORD,,")
        zf.writestr("noisy-0.1.dist-info/RECORD", "\\n".join(record) + "\\n")
    return name
'''


def _noisy_project(project: Path) -> Path:
    project.mkdir(parents=True, exist_ok=True)
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = []\nbuild-backend = "noisybackend"\nbackend-path = ["."]\n\n'
        '[project]\nname = "noisy"\nversion = "0.1"\nrequires-python = ">=3.10"\n'
        'dependencies = ["gamma"]\n')
    (project / "noisybackend.py").write_text(NOISY_BACKEND)
    (project / "src" / "noisy").mkdir(parents=True, exist_ok=True)
    (project / "src" / "noisy" / "__init__.py").write_text("GREETING = 'hi'\n")
    return project


def test_a_successful_build_prints_nothing_of_the_backend_unless_verbose(project: Path, index_server: Any) -> None:

    _noisy_project(project)
    lock(project, index_server)
    result = sync(project, index_server)
    assert result.code == 0, result.output
    assert "BACKEND" not in result.output, result.output
    assert "+ noisy==0.1 (editable)" in result.stdout.splitlines()
    assert venv_python(project, "import noisy; print(noisy.GREETING)") == "hi"
    import shutil

    shutil.rmtree(project / ".venv")  # the editable project is built again
    result = sync(project, index_server, "-v")
    assert result.code == 0, result.output
    for text in ("BACKEND-STDOUT", "BACKEND-STDERR", "BACKEND-WARNING"):
        assert f"build backend: {text}" in result.stderr or (
            text == "BACKEND-WARNING" and "this form is deprecated" in result.stderr), result.stderr


def test_a_failed_editable_build_shows_the_backend_output_and_suggests_no_install_project(
        project: Path, index_server: Any) -> None:

    _noisy_project(project)
    lock(project, index_server)
    (project / "FAIL").write_text("")
    result = sync(project, index_server)
    assert result.code == 2, result.output
    assert "BACKEND-FAILED on purpose" in result.stderr and "BACKEND-WARNING" not in result.stdout
    assert "--no-install-project" in result.stderr.split("hint:")[1], result.stderr
    result = sync(project, index_server, "--no-install-project")
    assert result.code == 0, result.output
    assert installed(project / ".venv") == {"gamma": "1.2"}


def test_a_simple_index_whose_url_does_not_end_in_simple_is_read_as_one(
        project: Path, index_server: Any) -> None:
    """A wheel index such as PyTorch's (`…/whl/cpu`) or devpi's (`…/+simple/`) speaks the
    simple API; only a URL ending in /pypi is PyPI's JSON API."""
    import tomllib

    write_project(project, ["gamma"])
    wheels = f"{index_server.url}/whl/cpu"
    with (project / "pyproject.toml").open("a") as f:
        f.write(f'[[tool.lockenv.index]]\nname = "wheels"\nurl = "{wheels}"\nexplicit = true\n'
                '[tool.lockenv.sources]\ngamma = { index = "wheels" }\n')
    index_server.clear_log()
    lock(project, index_server)
    paths = [r.path for r in index_server.requests]
    assert "/whl/cpu/gamma/" in paths, paths
    assert not any(p.endswith("/json") and "gamma" in p for p in paths), paths
    locked = tomllib.loads((project / "pylock.toml").read_text())
    gamma = next(p for p in locked["packages"] if p["name"] == "gamma")
    assert gamma["index"] == f"{wheels}/"

    result = sync(project, index_server)
    assert result.code == 0, result.output
    assert installed(project / ".venv")["gamma"] == "1.2"
    exported = run_lockenv("export", cwd=project, env={"LOCKENV_INDEX_URL": index_server.json_url})
    assert exported.code == 0, exported.output
    assert f"--index-url {wheels}/" in exported.stdout or \
        f"--extra-index-url {wheels}/" in exported.stdout, exported.stdout

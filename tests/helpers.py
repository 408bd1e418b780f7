"""Helpers shared by the test modules: run the real CLI as a user would, write projects and
hand-made locks for the fixture index, and look inside a venv the way a user would.

Test modules import from here (`from helpers import ...`), never from one another.
"""

from __future__ import annotations

import functools
import glob
import io
import os
import platform
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lockenv.ui import TerminalReporter

ROOT = Path(__file__).resolve().parent.parent
"""The checkout's root (whatever its folder is called)."""


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_lockenv(*args: str | os.PathLike[str], cwd: Path | None = None,
                env: dict[str, str] | None = None, timeout: float = 300) -> CliResult:
    """Run the real CLI in a subprocess (as a user would) and capture what it prints."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    proc = subprocess.run(
        [sys.executable, "-m", "lockenv", *map(str, args)],
        cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def run_fastpath_main(*args: str, cwd: Path, env: dict[str, str],
                      atexit_marker: Path) -> subprocess.CompletedProcess[str]:
    """Run `fastpath.main` (the real entry point, which may end the process with `os._exit`)
    for `lockenv ARGS` in a child Python whose atexit handler appends a line to
    `atexit_marker`: whether the exit handlers still ran is then in that file."""
    code = ("import atexit, sys\n"
            f"atexit.register(lambda: open({str(atexit_marker)!r}, 'a').write('ran\\n'))\n"
            f"sys.argv = ['lockenv', *{list(args)!r}]\n"
            "from lockenv.fastpath import main\n"
            "main()\n")
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def verbose_reporter() -> tuple[TerminalReporter, io.StringIO]:
    """A verbose TerminalReporter and the buffer its stderr goes to."""
    err = io.StringIO()
    return TerminalReporter(verbose=True, out=io.StringIO(), err=err), err


SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"


def scrub(text: str, replacements: dict[str, str]) -> str:
    """`text` without what differs between runs and machines: each key of `replacements` (temp
    paths, the project...; longest first) becomes its placeholder, the running Python's version
    `<python>`, a local port `<port>`, a duration `<time>`."""
    for real, placeholder in sorted(replacements.items(), key=lambda kv: -len(kv[0])):
        text = text.replace(real, placeholder)
    text = re.sub(rf"\bPython {re.escape(platform.python_version())}\b", "Python <python>", text)
    text = re.sub(r"\b(127\.0\.0\.1|localhost|\[::1\]):\d+", r"\1:<port>", text)
    return re.sub(r"(?<![\w.])\d+(?:\.\d+)?(?:ms|s)\b", "<time>", text)


def check_snapshot(name: str, text: str, *, update: bool) -> None:
    """Compare `text` with tests/snapshots/<name>.txt, or (re)write that file when `update`."""
    path = SNAPSHOTS / f"{name}.txt"
    if update:
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return
    assert path.is_file(), f"no snapshot {path.name}: run `scripts/test --update-snapshots` and review it"
    assert text == path.read_text(encoding="utf-8"), (
        f"output differs from {path.name}; if the change is intended, run "
        "`scripts/test --update-snapshots` and review the diff")


@functools.lru_cache(maxsize=None)
def pyenv_root() -> Path:
    """$PYENV_ROOT, else what `pyenv root` says, else ~/.pyenv (no user's home hard-coded)."""
    if os.environ.get("PYENV_ROOT"):
        return Path(os.environ["PYENV_ROOT"])
    try:
        proc = subprocess.run(["pyenv", "root"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        proc = None
    if proc is not None and proc.returncode == 0 and proc.stdout.strip():
        return Path(proc.stdout.strip())
    return Path.home() / ".pyenv"


def pyenv_pythons(minor: str = "3") -> list[str]:
    """The python3 of every pyenv version `minor`.* ("3", "3.12"), oldest first."""
    def version(path: str) -> tuple[int, ...]:
        name = Path(path).parent.parent.name
        return tuple(int(part) if part.isdigit() else -1 for part in name.split("."))

    return sorted(glob.glob(f"{pyenv_root()}/versions/{minor}.*/bin/python3"), key=version)


# -- projects, locks and venvs against the fixture index --------------------------------------


def write_project(path: Path, dependencies: list[str], *, groups: dict[str, list[str]] | None = None,
                  extras: dict[str, list[str]] | None = None, build_system: bool = False,
                  default_groups: list[str] | None = None, name: str = "demo",
                  requires_python: str = ">=3.10") -> Path:
    lines = []
    if build_system:
        lines += ["[build-system]", 'requires = ["lockenv-fixture-backend"]',
                  'build-backend = "lockenv_fixture_backend"', ""]
    lines += ["[project]", f'name = "{name}"', 'version = "0.1"',
              f'requires-python = "{requires_python}"',
              "dependencies = [" + ", ".join(f'"{d}"' for d in dependencies) + "]"]
    if extras:
        lines.append("[project.optional-dependencies]")
        lines += [f"{k} = [" + ", ".join(f'"{d}"' for d in v) + "]" for k, v in extras.items()]
    if groups:
        lines.append("[dependency-groups]")
        lines += [f"{k} = [" + ", ".join(f'"{d}"' for d in v) + "]" for k, v in groups.items()]
    if default_groups is not None:
        lines += ["[tool.lockenv]", "default-groups = [" + ", ".join(f'"{g}"' for g in default_groups) + "]"]
    path.mkdir(parents=True, exist_ok=True)
    (path / "pyproject.toml").write_text("\n".join(lines) + "\n")
    if build_system:
        pkg = path / "src" / name
        pkg.mkdir(parents=True, exist_ok=True)
        (pkg / "__init__.py").write_text('__version__ = "0.1"\nGREETING = "hello"\n')
    return path


def env_for(srv: Any, **extra: str) -> dict[str, str]:
    return {"LOCKENV_INDEX_URL": srv.json_url, **extra}


def lock(project: Path, srv: Any) -> CliResult:
    result = run_lockenv("lock", cwd=project, env=env_for(srv))
    assert result.code == 0, result.output
    return result


def sync(project: Path, srv: Any, *args: str, **env: str) -> CliResult:
    return run_lockenv("sync", *args, cwd=project, env=env_for(srv, **env))


def spy_venv_shape(monkeypatch: Any) -> tuple[list[int], Any]:
    """Wrap `state.venv_shape` so a test sees how many subtrees each call was given as
    already listed by the linking threads (0: a full walk). Returns that list and the real
    function, to compare a kept shape with a full walk."""
    from lockenv.sync import state

    given: list[int] = []
    full_walk = state.venv_shape

    def venv_shape(at: Path, walked: Any = None) -> Any:
        given.append(len(walked or {}))
        return full_walk(at) if walked is None else full_walk(at, walked)

    monkeypatch.setattr(state, "venv_shape", venv_shape)
    return given, full_walk


def site_packages(venv: Path) -> Path:
    found = glob.glob(str(venv / "lib" / "python3.*" / "site-packages"))
    assert len(found) == 1, found
    return Path(found[0])


def installed(venv: Path) -> dict[str, str]:
    """name → version, from the dist-info directories (what `pip list` would show)."""
    out = {}
    for entry in sorted(site_packages(venv).glob("*.dist-info")):
        name, _, version = entry.name[: -len(".dist-info")].partition("-")
        out[name.lower().replace("_", "-")] = version
    return out


def snapshot(venv: Path) -> dict[str, tuple[int, bytes]]:
    """Every file under the venv (relative path → (mode, content)), to prove nothing changed."""
    out = {}
    for root, dirs, files in os.walk(venv):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in files:
            path = Path(root) / name
            if path.is_symlink():
                out[str(path.relative_to(venv))] = (0, os.readlink(path).encode())
            else:
                out[str(path.relative_to(venv))] = (path.stat().st_mode, path.read_bytes())
    return out


def venv_python(project: Path, code: str) -> str:
    proc = subprocess.run([str(project / ".venv" / "bin" / "python"), "-c", code],
                          capture_output=True, text=True, cwd="/")
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def handmade_lock(path: Path, srv: Any, pins: dict[str, str], *, kinds: dict[str, str] | None = None,
                  requires_python: str = ">=3.10") -> Path:
    """A minimal PEP 751 lock listing `pins` (name → version) with every fixture file of that
    version, as another tool would write it (no [tool.lockenv])."""
    kinds = kinds or {}
    lines = ['lock-version = "1.0"', 'created-by = "hand"', f'requires-python = "{requires_python}"', ""]
    for name, version in sorted(pins.items()):
        lines += ["[[packages]]", f'name = "{name}"', f'version = "{version}"', f'index = "{srv.simple_url}"']
        wheels, sdist = [], None
        for filename, sha, size in srv.files(name):
            if f"-{version}-" not in filename and not filename.endswith(f"-{version}.tar.gz"):
                continue
            entry = (f'{{ name = "{filename}", url = "{srv.file_url(name, filename)}", '
                     f'size = {size}, hashes = {{ sha256 = "{sha}" }} }}')
            if filename.endswith(".whl"):
                wheels.append(entry)
            else:
                sdist = entry
        if kinds.get(name) != "sdist" and wheels:
            lines.append("wheels = [" + ", ".join(wheels) + "]")
        if sdist and kinds.get(name) != "wheel":
            lines.append(f"sdist = {sdist}")
        lines.append("")
    path.write_text("\n".join(lines))
    return path

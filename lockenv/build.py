"""Wheels from sdists (and source trees) and the project's editable wheel, through PEP 517/660
hooks (`pyproject_hooks`) in an isolated build environment.

A build environment is a stdlib venv without pip; its requirements (`[build-system] requires`,
or setuptools with the legacy backend when absent, plus what `get_requires_for_build_*` adds)
are resolved with `lockenv.resolve.resolve_single` against the same index and installed with
lockenv's own wheel installer, so pip and its configuration are never involved. Environments
are cached by interpreter and requirements; built wheels by the sdist's sha256 and the target
interpreter's most specific tag.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lockenv.cache import Bucket
from lockenv.errors import BuildError, LockenvError
from lockenv.ui import NullReporter

DEFAULT_REQUIRES = ("setuptools>=40.8.0",)
LEGACY_BACKEND = "setuptools.build_meta:__legacy__"
BUILT_WHEELS = Bucket.BUILT_WHEELS
BUILD_ENVS = Bucket.BUILD_ENVS
_TAIL = 20

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


# -- source trees -----------------------------------------------------------------------------
def _extract(sdist: Path, dest: Path) -> Path:
    """Unpack an sdist safely; return its top directory (the one holding pyproject.toml)."""
    name = sdist.name
    try:
        if name.endswith(".zip"):
            with zipfile.ZipFile(sdist) as zf:
                for member in zf.namelist():
                    if member.startswith("/") or ".." in member.split("/"):
                        raise BuildError(f"{name} contains an unsafe path `{member}`")
                zf.extractall(dest)
        else:
            with tarfile.open(sdist) as tf:
                if hasattr(tarfile, "data_filter"):
                    tf.extractall(dest, filter="data")
                else:  # pragma: no cover - old Pythons without extraction filters
                    for info in tf.getmembers():
                        if info.name.startswith("/") or ".." in info.name.split("/"):
                            raise BuildError(f"{name} contains an unsafe path `{info.name}`")
                    tf.extractall(dest)
    except (tarfile.TarError, zipfile.BadZipFile, OSError) as exc:
        raise BuildError(f"{name} could not be unpacked: {exc}") from None
    entries = [p for p in dest.iterdir()]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return dest


def _build_system(source: Path) -> tuple[list[str], str, list[str] | None]:
    """(requires, backend, backend-path) per PEP 517/518, with the legacy default."""
    pyproject = source / "pyproject.toml"
    if not pyproject.exists():
        return list(DEFAULT_REQUIRES), LEGACY_BACKEND, None
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise BuildError(f"{pyproject} is not valid TOML: {exc}") from None
    table = data.get("build-system")
    if not isinstance(table, dict):
        return list(DEFAULT_REQUIRES), LEGACY_BACKEND, None
    requires = table.get("requires")
    if not isinstance(requires, list) or not all(isinstance(r, str) for r in requires):
        raise BuildError(f"{pyproject}: [build-system] requires must be a list of strings")
    backend = table.get("build-backend") or LEGACY_BACKEND
    backend_path = table.get("backend-path")
    return list(requires), str(backend), backend_path


# -- build environments -----------------------------------------------------------------------
class BuildEnv:
    """An isolated venv with build requirements installed."""

    def __init__(self, path: Path, probe: Any) -> None:
        self.path = path
        self.probe = probe
        self.python = str(probe.python)

    def install(self, requirements: Sequence[str], client: Any, label: str) -> None:
        """Resolve `requirements` for this env and install what is missing."""
        if not requirements:
            return
        from lockenv.resolve import resolve_single
        from lockenv.sync.install import install_wheel, scheme_for, validate_wheel
        from lockenv.sync.scan import scan

        present = {d.name: d.version for d in scan(self.probe.site_dirs, check=False)}
        try:
            pins = resolve_single(list(requirements), client, environment=self.probe.markers,
                                  tags=self.probe.tag_objects())
        except BuildError:
            raise
        except LockenvError as exc:  # a resolver's error keeps its own type
            raise exc.with_prefix(f"build requirements of {label}") from exc
        todo = [(n, v, f) for n, v, f in pins if present.get(n) != v]
        sdists = [f.filename for _n, _v, f in todo if not f.is_wheel]
        if sdists:
            raise BuildError(
                f"{label}: build requirement {', '.join(sdists)} has no wheel for this Python",
                hint="lockenv does not build build requirements from source",
            )
        files = client.download_many([f for _n, _v, f in todo])
        for name, _version, dist in todo:
            scheme = scheme_for(self.probe.paths, self.probe.version, name)
            info = validate_wheel(files[dist.filename], name=name, scheme=scheme, venv=self.path,
                                  sha256=dist.sha256)
            install_wheel(info, scheme=scheme, python=self.python,
                          source_sha256=dist.sha256, source_name=dist.filename)


def _env_for(python: Path, requires: Sequence[str], client: Any, label: str) -> BuildEnv:
    """A cached build env for (interpreter, requirements), created once under a file lock."""
    from lockenv.cache import Cache
    from lockenv.environment import Interpreter, create_venv, probe

    cache = Cache()
    real = os.path.realpath(python)
    key = hashlib.sha256(json.dumps([real, sorted(requires), client.index_url]).encode()).hexdigest()[:24]
    path = cache.bucket(BUILD_ENVS) / key
    with cache.lock(path):
        ready = path / ".lockenv-ready"
        if not ready.exists():
            if path.exists():
                shutil.rmtree(path)
            version = _python_version(python)
            create_venv(path, Interpreter(path=str(python), version=version), NullReporter())
            env = BuildEnv(path, probe(path / "bin" / "python"))
            env.install(requires, client, label)
            ready.write_text("ok\n")
        return BuildEnv(path, probe(path / "bin" / "python"))


def _python_version(python: Path) -> str:
    from lockenv.environment import query_interpreter

    interp = query_interpreter(str(python))
    if interp is None:
        raise BuildError(f"the interpreter {python} does not run")
    return interp.version


# -- hooks ------------------------------------------------------------------------------------
class _Runner:
    """A pyproject_hooks runner that keeps the backend's output (its warnings included) for the
    error message, or for `--verbose`: a build that works prints nothing."""

    def __init__(self, env: BuildEnv, reporter: Any = None) -> None:
        self.env = env
        self.reporter = reporter
        self.output: list[str] = []

    def __call__(self, cmd: Sequence[str], cwd: str | None = None,
                 extra_environ: Mapping[str, str] | None = None) -> None:
        environ = {k: v for k, v in os.environ.items()
                   if k not in ("PYTHONPATH", "PYTHONHOME", "PIP_REQUIRE_VIRTUALENV")}
        environ["PATH"] = str(self.env.path / "bin") + os.pathsep + environ.get("PATH", "")
        environ["VIRTUAL_ENV"] = str(self.env.path)
        if extra_environ:
            environ.update(extra_environ)
        proc = subprocess.run(list(cmd), cwd=cwd, env=environ, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, errors="replace")
        lines = proc.stdout.splitlines() + self._take_warnings(cmd)
        self.output.extend(lines)
        if self.reporter is not None:
            for line in lines:
                self.reporter.debug(f"build backend: {line}")
        if proc.returncode != 0:
            raise subprocess.CalledProcessError(proc.returncode, cmd, proc.stdout)


    @staticmethod
    def _take_warnings(cmd: Sequence[str]) -> list[str]:
        """The backend's Python warnings as output lines. pyproject_hooks' in-process script
        records them in `<dir>/output.json` (cmd is `python script hook dir`) and the caller
        re-emits them with `warnings.warn` in this process, straight to stderr: take them out
        of the file so they are kept with the rest of the output instead."""
        if len(cmd) < 4:
            return []
        out_file = Path(cmd[-1]) / "output.json"
        try:
            data = json.loads(out_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return []
        found = data.pop("warnings", None) if isinstance(data, dict) else None
        if not found:
            return []
        out_file.write_text(json.dumps(data), encoding="utf-8")
        lines = []
        for w in found:
            try:
                lines.append(f"{w['filename']}:{w['lineno']}: {w['message']}")
            except (KeyError, TypeError):
                lines.append(str(w))
        return lines


def _call(label: str, source: Path, env: BuildEnv, client: Any, hook: str,
          requires_hook: str | None, *args: Any) -> Any:
    from pyproject_hooks import BackendUnavailable, BuildBackendHookCaller, HookMissing

    _requires, backend, backend_path = _build_system(source)
    runner = _Runner(env, getattr(client, "reporter", None))
    caller = BuildBackendHookCaller(str(source), backend, backend_path=backend_path,
                                    runner=runner, python_executable=env.python)
    try:
        if requires_hook:
            extra = getattr(caller, requires_hook)()
            if extra:
                env.install(list(extra), client, label)
        return getattr(caller, hook)(*args)
    except HookMissing as exc:
        raise BuildError(f"the build backend `{backend}` of {label} has no `{exc.hook_name}` hook",
                         hint="editable installs need a PEP 660 backend" if "editable" in hook else None
                         ) from None
    except BackendUnavailable as exc:
        raise BuildError(f"the build backend `{backend}` of {label} could not be imported",
                         details=runner.output[-_TAIL:] or str(getattr(exc, "traceback", "") or exc
                                                              ).splitlines()[-_TAIL:]) from None
    except subprocess.CalledProcessError:
        raise BuildError(
            f"building {label} failed",
            details=runner.output[-_TAIL:],
            context={"package": label},
            hint="the lines above are the end of the build backend's output",
        ) from None


def _prepare_source(path: Path, workdir: Path) -> Path:
    if path.is_dir():
        return path
    return _extract(path, workdir / "src")


def _built_key(sdist: Path, python: Path) -> str:
    from lockenv.cache import file_sha256
    from lockenv.environment import probe

    sha = file_sha256(sdist)
    tag = probe(python).tags[0]
    return f"{sha}/{tag}"


def cached_wheel(sdist: Path, python: Path) -> Path | None:
    """The wheel an earlier build made from this sdist for this interpreter, if cached."""
    from lockenv.cache import Cache

    cache_dir = Cache().root / BUILT_WHEELS / _built_key(sdist, python)
    found = sorted(cache_dir.glob("*.whl")) if cache_dir.is_dir() else []
    return found[0] if found else None


def build_wheel(sdist: Path, *, client: Any, python: Path | None = None) -> Path:
    """A wheel built from `sdist` (or a source directory) for `python` (default: the running
    interpreter). Wheels built from sdists are cached by the sdist's sha256 and the target's
    most specific tag."""
    from lockenv.cache import Cache

    python = Path(python or sys.executable)
    label = sdist.name
    cache_dir = None
    if sdist.is_file():
        cache_dir = Cache().bucket(BUILT_WHEELS) / _built_key(sdist, python)
        found = sorted(cache_dir.glob("*.whl")) if cache_dir.is_dir() else []
        if found:
            return found[0]
    with tempfile.TemporaryDirectory(prefix="lockenv-build-") as tmp:
        work = Path(tmp)
        source = _prepare_source(sdist, work)
        requires, _backend, _path = _build_system(source)
        env = _env_for(python, requires, client, label)
        out = work / "dist"
        out.mkdir()
        name = _call(label, source, env, client, "build_wheel", "get_requires_for_build_wheel",
                     str(out))
        wheel = out / name
        if cache_dir is None:
            persistent = Cache().bucket(BUILT_WHEELS) / "trees" / hashlib.sha256(
                str(source.resolve()).encode()).hexdigest()[:24]
            persistent.mkdir(parents=True, exist_ok=True)
            target = persistent / name
            shutil.copyfile(wheel, target)
            return target
        cache_dir.mkdir(parents=True, exist_ok=True)
        target = cache_dir / name
        tmp_target = cache_dir / f".{name}.{os.getpid()}.tmp"
        shutil.copyfile(wheel, tmp_target)
        os.replace(tmp_target, target)
        return target


def _project_name(project_dir: Path) -> str | None:
    try:
        data = tomllib.loads((project_dir / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    name = data.get("project", {}).get("name")
    return f"the project {name}" if isinstance(name, str) else None


def build_editable(project_dir: Path, *, client: Any, python: Path) -> Path:
    """The project's PEP 660 editable wheel, built for `python`."""
    from lockenv.cache import Cache

    label = _project_name(project_dir) or project_dir.name
    requires, _backend, _path = _build_system(project_dir)
    env = _env_for(Path(python), requires, client, label)
    out = Cache().bucket(BUILT_WHEELS) / "editable" / hashlib.sha256(
        str(project_dir.resolve()).encode()).hexdigest()[:24]
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    name = _call(label, project_dir, env, client, "build_editable",
                 "get_requires_for_build_editable", str(out))
    return out / name


def prepare_metadata(sdist: Path, *, client: Any) -> str:
    """METADATA of an sdist through `prepare_metadata_for_build_wheel` in an isolated env of the
    running interpreter (falling back to building the wheel when the backend lacks the hook)."""
    label = sdist.name
    with tempfile.TemporaryDirectory(prefix="lockenv-meta-") as tmp:
        work = Path(tmp)
        source = _prepare_source(sdist, work)
        requires, _backend, _path = _build_system(source)
        env = _env_for(Path(sys.executable), requires, client, label)
        out = work / "meta"
        out.mkdir()
        name = _call(label, source, env, client, "prepare_metadata_for_build_wheel",
                     "get_requires_for_build_wheel", str(out), None, True)
        path = out / name
        if path.is_dir():
            return (path / "METADATA").read_text(encoding="utf-8")
        with zipfile.ZipFile(path) as zf:  # the fallback built a whole wheel
            meta = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
            return zf.read(meta[0]).decode("utf-8")

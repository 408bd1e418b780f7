"""Wheels from sdists (and source trees) and the project's editable wheel, through PEP 517/660
hooks (`pyproject_hooks`) in an isolated build environment.

A build environment is a stdlib venv without pip; its requirements (`[build-system] requires`,
or setuptools with the legacy backend when absent, plus what `get_requires_for_build_*` adds)
are resolved and installed by a `BuildContext` the caller hands in (`ops/dispatch.py`: the
resolver against the same index, lockenv's own wheel installer), so this module imports neither
resolve nor sync, and pip and its configuration are never involved. Environments are cached by
interpreter and requirements; built wheels by the sdist's sha256 and the target interpreter's
most specific tag. A build stack (per thread: a build's requirements are resolved on the thread
that builds) turns a build that needs itself, directly or through a chain, into an error.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

from packaging.utils import canonicalize_name

from lockenv.cache import Bucket, Cache, file_sha256, remove_stale, write_atomic
from lockenv.environment import Interpreter, Probe, create_venv, probe, query_interpreter, venv_python
from lockenv.errors import BuildCycleError, BuildError, LockenvError
from lockenv.models import DistFile
from lockenv.ui import NullReporter, Reporter

DEFAULT_REQUIRES = ("setuptools>=40.8.0",)
LEGACY_BACKEND = "setuptools.build_meta:__legacy__"
BUILT_WHEELS = Bucket.BUILT_WHEELS
BUILD_ENVS = Bucket.BUILD_ENVS
_TAIL = 20

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


Pin = tuple[str, str, DistFile]
"""(name, version, file): one resolved build requirement."""


class BuildContext(Protocol):
    """What a build needs from the layers above it (uv's `BuildContext`): resolving its
    requirements and installing them into its environment. `ops/dispatch.py` implements it;
    handing it in keeps build.py free of resolve and sync imports."""

    @property
    def reporter(self) -> Reporter: ...

    @property
    def index_url(self) -> str:
        """The index build requirements come from (part of a build environment's cache key)."""
        ...

    def resolve(self, requirements: Sequence[str], env: Probe) -> Sequence[Pin]:
        """One environment's resolution of `requirements`, for the interpreter `env`."""
        ...

    def install(self, pins: Sequence[Pin], env: BuildEnv, label: str) -> None:
        """Install into `env` the pins it does not hold yet (wheels only: `label` names the
        build in the error when a pin has none)."""
        ...


# -- the build stack --------------------------------------------------------------------------
_stack = threading.local()


def _current() -> list[tuple[str, str]]:
    if not hasattr(_stack, "builds"):
        _stack.builds = []
    builds: list[tuple[str, str]] = _stack.builds
    return builds


def check_not_building(name: str, label: str) -> None:
    """Raise a BuildError when `name` is being built on this thread already: what would come
    next is a build that needs itself (and, without this, waits for itself forever)."""
    stack = _current()
    key = canonicalize_name(name)
    if any(n == key for n, _ in stack):
        chain = " -> ".join([*(lbl for _, lbl in stack), label])
        raise BuildCycleError(
            f"building {stack[0][1]} needs {name} built from source, which needs itself: {chain}",
            hint=f"lockenv builds build requirements only from wheels; pin a version of {name} "
                 "that has a wheel for this Python, or change the build requirements",
            context={"package": name},
        )


@contextmanager
def _building(name: str, label: str) -> Iterator[None]:
    check_not_building(name, label)
    stack = _current()
    stack.append((canonicalize_name(name), label))
    try:
        yield
    finally:
        stack.pop()


def _source_name(path: Path) -> str:
    """The project name of an sdist file (from its name) or a source tree (its pyproject.toml)."""
    if path.is_dir():
        return _project_field(path) or path.name
    from packaging.utils import InvalidSdistFilename, parse_sdist_filename

    try:
        return str(parse_sdist_filename(path.name)[0])
    except InvalidSdistFilename:
        stem = path.name
        for ext in (".tar.gz", ".tar.bz2", ".tar.xz", ".tgz", ".tar", ".zip"):
            if stem.endswith(ext):
                stem = stem[: -len(ext)]
                break
        return stem.rpartition("-")[0] or stem


# -- source trees -----------------------------------------------------------------------------
def _extract(sdist: Path, dest: Path) -> Path:
    """Unpack an sdist safely; return its top directory (the one holding pyproject.toml)."""
    import tarfile  # here, not at the top: a warm lock imports this module and builds nothing

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
    except RecursionError:  # F31: nested thousands deep
        raise BuildError(f"{pyproject}: nested too deeply to read") from None
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

    def __init__(self, path: Path, probe: Probe) -> None:
        self.path = path
        self.probe = probe
        self.python = str(probe.python)

    def install(self, requirements: Sequence[str], context: BuildContext, label: str) -> None:
        """Resolve `requirements` for this env and install what is missing."""
        if not requirements:
            return
        try:
            pins = context.resolve(list(requirements), self.probe)
        except BuildError:
            raise
        except LockenvError as exc:  # a resolver's error keeps its own type
            raise exc.with_prefix(f"build requirements of {label}") from exc
        context.install(pins, self, label)


def _env_for(python: Path, requires: Sequence[str], context: BuildContext, cache: Cache,
             label: str) -> BuildEnv:
    """A cached build env for (interpreter, requirements), created once under a file lock."""
    real = os.path.realpath(python)
    key = hashlib.sha256(json.dumps([real, sorted(requires), context.index_url]).encode()
                         ).hexdigest()[:24]
    path = cache.bucket(BUILD_ENVS) / key
    with cache.lock(path):
        ready = path / ".lockenv-ready"
        if not ready.exists():
            if path.exists():
                shutil.rmtree(path)
            version = _python_version(python)
            create_venv(path, Interpreter(path=str(python), version=version), NullReporter())
            env = BuildEnv(path, probe(venv_python(path), cache=cache))
            env.install(requires, context, label)
            ready.write_text("ok\n")
        return BuildEnv(path, probe(venv_python(path), cache=cache))


def _python_version(python: Path) -> str:
    interp = query_interpreter(str(python))
    if interp is None:
        raise BuildError(f"the interpreter {python} does not run")
    return interp.version


# -- hooks ------------------------------------------------------------------------------------
class _Runner:
    """A pyproject_hooks runner that keeps the backend's output (its warnings included) for the
    error message, or for `--verbose`: a build that works prints nothing."""

    def __init__(self, env: BuildEnv, reporter: Reporter) -> None:
        self.env = env
        self.reporter = reporter
        self.output: list[str] = []

    def __call__(self, cmd: Sequence[str], cwd: str | None = None,
                 extra_environ: Mapping[str, str] | None = None) -> None:
        environ = {k: v for k, v in os.environ.items()
                   if k not in ("PYTHONPATH", "PYTHONHOME", "PIP_REQUIRE_VIRTUALENV")}
        environ["PATH"] = str(venv_python(self.env.path).parent) + os.pathsep + environ.get("PATH", "")
        environ["VIRTUAL_ENV"] = str(self.env.path)
        if extra_environ:
            environ.update(extra_environ)
        proc = subprocess.run(list(cmd), cwd=cwd, env=environ, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, errors="replace")
        lines = proc.stdout.splitlines() + self._take_warnings(cmd)
        self.output.extend(lines)
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


def _call(label: str, source: Path, env: BuildEnv, context: BuildContext, hook: str,
          requires_hook: str | None, *args: object, cache: Cache, python: Path,
          log: Path | None = None) -> str:
    """Run one hook; its return value (a file or directory name in the output directory).
    What `requires_hook` adds (dynamic build requirements) gets a build env of its own, keyed
    by the complete requirement set (F17): installing it into the shared env of the static
    requirements would leave it there for every other project's build. When the hook fails,
    the backend's whole output goes to `log` (the error shows only its last lines)."""
    from pyproject_hooks import BackendUnavailable, BuildBackendHookCaller, HookMissing

    requires, backend, backend_path = _build_system(source)
    runner = _Runner(env, context.reporter)
    caller = BuildBackendHookCaller(str(source), backend, backend_path=backend_path,
                                    runner=runner, python_executable=env.python)
    try:
        if requires_hook:
            extra = [str(r) for r in getattr(caller, requires_hook)() or ()]
            if extra:
                env = _env_for(python, sorted({*requires, *extra}), context, cache, label)
                runner.env = env
                caller = BuildBackendHookCaller(str(source), backend, backend_path=backend_path,
                                                runner=runner, python_executable=env.python)
        result: str = getattr(caller, hook)(*args)
        return result
    except HookMissing as exc:
        raise BuildError(f"the build backend `{backend}` of {label} has no `{exc.hook_name}` hook",
                         hint="editable installs need a PEP 660 backend" if "editable" in hook else None
                         ) from None
    except BackendUnavailable as exc:
        _write_log(log, runner.output)
        raise BuildError(f"the build backend `{backend}` of {label} could not be imported",
                         details=runner.output[-_TAIL:] or str(getattr(exc, "traceback", "") or exc
                                                              ).splitlines()[-_TAIL:]) from None
    except subprocess.CalledProcessError:
        _write_log(log, runner.output)
        raise BuildError(
            f"building {label} failed",
            details=runner.output[-_TAIL:],
            context={"package": label},
            hint="the lines above are the end of the build backend's output",
        ) from None


def _write_log(log: Path | None, lines: Sequence[str]) -> None:
    if log is not None and lines:
        try:
            log.write_text("\n".join(lines) + "\n", encoding="utf-8", errors="replace")
        except OSError:
            pass


KEPT_LOG = "lockenv-build-output.log"
"""In a failed build's directory, which is kept: the backend's whole output."""

KEPT_AGE = 86400.0
"""Seconds a failed build's directory is kept for its logs before a later build removes it."""


@contextmanager
def _workdir(kind: str) -> Iterator[Path]:
    """A build's temporary directory, removed afterwards unless the build fails with a log
    written (KEPT_LOG: only a wheel build for a sync writes one; a metadata build's failure may
    be passed over by the resolver, which tries another version, and must leave nothing). The
    failed build's directory is kept where it is and the error says so: a backend's last lines
    often name a log inside it (meson, CMake), and a path to a directory already removed is no
    help. `_sweep_temp_dirs` removes it a day later."""
    work = Path(tempfile.mkdtemp(prefix=f"lockenv-{kind}-{os.getpid()}-"))
    try:
        yield work
    except BuildError as exc:
        if (work / KEPT_LOG).is_file():
            raise exc.with_note(f"the build's directory is kept for its logs: {work} (the backend's whole "
                                f"output is {KEPT_LOG} there); delete it when done") from None
        shutil.rmtree(work, ignore_errors=True)
        raise
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    shutil.rmtree(work, ignore_errors=True)


def _prepare_source(path: Path, workdir: Path) -> Path:
    if path.is_dir():
        return path
    return _extract(path, workdir / "src")


def _built_dir(sdist: Path, python: Path, cache: Cache) -> Path:
    """Where wheels built from this sdist for this interpreter live (not created)."""
    tag = probe(python, cache=cache).tags[0]
    return cache.root / BUILT_WHEELS / file_sha256(sdist) / tag


def cached_wheel(sdist: Path, python: Path, cache: Cache) -> Path | None:
    """The wheel an earlier build made from this sdist for this interpreter, if cached."""
    cache_dir = _built_dir(sdist, python, cache)
    found = sorted(cache_dir.glob("*.whl")) if cache_dir.is_dir() else []
    return found[0] if found else None


def build_wheel(sdist: Path, *, context: BuildContext, cache: Cache,
                python: Path | None = None) -> Path:
    """A wheel built from `sdist` (or a source directory) for `python` (default: the running
    interpreter). Wheels built from sdists are cached by the sdist's sha256 and the target's
    most specific tag; those of source trees by the tree's path (rebuilt each time)."""
    python = Path(python or sys.executable)
    label = sdist.name
    built = _built_dir(sdist, python, cache) if sdist.is_file() else None
    found = sorted(built.glob("*.whl")) if built is not None and built.is_dir() else []
    if found:
        return found[0]
    _sweep_temp_dirs()
    with _building(_source_name(sdist), label), _workdir("build") as work:
        source = _prepare_source(sdist, work)
        requires, _backend, _path = _build_system(source)
        env = _env_for(python, requires, context, cache, label)
        out = work / "dist"
        out.mkdir()
        name = _call(label, source, env, context, "build_wheel", "get_requires_for_build_wheel",
                     str(out), cache=cache, python=python, log=work / KEPT_LOG)
        if built is not None:
            target = built / name
        else:
            target = cache.bucket(BUILT_WHEELS) / "trees" / _path_key(source) / name
        write_atomic(target, (out / name).read_bytes())
        return target


def _path_key(path: Path) -> str:
    return hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:24]


def _project_field(project_dir: Path) -> str | None:
    """`[project] name` of a source tree, if it says."""
    try:
        data = tomllib.loads((project_dir / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError):
        return None
    project = data.get("project")
    name = project.get("name") if isinstance(project, dict) else None
    return name if isinstance(name, str) else None


def build_editable(project_dir: Path, *, context: BuildContext, cache: Cache,
                   python: Path) -> Path:
    """The project's PEP 660 editable wheel, built for `python`."""
    name = _project_field(project_dir)
    label = f"the project {name}" if name else project_dir.name
    with _building(name or project_dir.name, label):
        requires, _backend, _path = _build_system(project_dir)
        env = _env_for(Path(python), requires, context, cache, label)
        out = cache.bucket(BUILT_WHEELS) / "editable" / _path_key(project_dir)
        out.mkdir(parents=True, exist_ok=True)
        remove_stale(out, STALE_AGE)
        # Built in a directory of its own, then published under its sha256: two syncs of one
        # project (two venvs) never empty the directory the other one builds in or reads (F18).
        work = Path(tempfile.mkdtemp(prefix=".build-", dir=out))
        try:
            wheel = _call(label, project_dir, env, context, "build_editable",
                          "get_requires_for_build_editable", str(work), cache=cache,
                          python=Path(python))
            built = work / wheel
            target = out / file_sha256(built) / wheel
            target.parent.mkdir(exist_ok=True)
            os.replace(built, target)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return target


STALE_AGE = 3600.0
"""Seconds after which a build's leftovers (a killed build's directory, an editable wheel
since rebuilt) are removed: no build, nor the install after it, takes that long to read them."""


def _sweep_temp_dirs() -> None:
    """Remove the temporary build directories of lockenv processes that were killed (F30): a
    `lockenv-build-<pid>-*` whose process is gone, untouched for a minute (a live build's
    directory is never removed, however long it builds). A failed build's directory, kept for
    its logs, goes a day after its log was written."""
    now = time.time()
    try:
        entries = list(os.scandir(tempfile.gettempdir()))
    except OSError:
        return
    for entry in entries:
        if not entry.name.startswith(("lockenv-build-", "lockenv-meta-")):
            continue
        pid = entry.name.split("-")[2]
        try:
            if not pid.isdigit() or now - entry.stat(follow_symlinks=False).st_mtime < 60:
                continue
            if now - os.stat(os.path.join(entry.path, KEPT_LOG)).st_mtime < KEPT_AGE:
                continue
        except FileNotFoundError:
            pass  # no log: not a failed build kept for it
        except OSError:
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(entry.path, ignore_errors=True)
        except OSError:
            pass


def prepare_metadata(sdist: Path, *, context: BuildContext, cache: Cache) -> str:
    """METADATA of an sdist through `prepare_metadata_for_build_wheel` in an isolated env of the
    running interpreter (falling back to building the wheel when the backend lacks the hook)."""
    label = sdist.name
    _sweep_temp_dirs()
    with _building(_source_name(sdist), label), _workdir("meta") as work:
        source = _prepare_source(sdist, work)
        requires, _backend, _path = _build_system(source)
        env = _env_for(Path(sys.executable), requires, context, cache, label)
        # Said again: making the env told what it fetched, and a build env of the running
        # interpreter is made in process now (~20 ms), too short to be drawn before that.
        context.reporter.activity(f"Building {label} to read its metadata")
        out = work / "meta"
        out.mkdir()
        name = _call(label, source, env, context, "prepare_metadata_for_build_wheel",
                     "get_requires_for_build_wheel", str(out), None, True, cache=cache,
                     python=Path(sys.executable))
        path = out / name
        if path.is_dir():
            return (path / "METADATA").read_text(encoding="utf-8")
        with zipfile.ZipFile(path) as zf:  # the fallback built a whole wheel
            meta = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
            return zf.read(meta[0]).decode("utf-8")

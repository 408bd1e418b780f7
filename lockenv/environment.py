"""Target environments: finding an interpreter, creating the project's venv, probing it once.

A venv lockenv creates carries `lockenv = <version>` in its `pyvenv.cfg` (as uv writes `uv =`);
only such venvs are ever recreated. The probe runs the venv's own interpreter on `_probe.py`
(stdlib only, so Python 3.8 and 3.9 work too), so markers and wheel tags are that
interpreter's; the result is cached by interpreter path, mtime and size.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from lockenv import __version__
from lockenv.cache import Bucket, Cache, write_atomic
from lockenv.errors import PythonNotFoundError, SyncError
from lockenv.project import VERSION_REQUEST, is_version_request, read_pyvenv_cfg, venv_path
from lockenv.ui import Reporter

_VERSION_REQUEST = re.compile(VERSION_REQUEST)
_QUERY = "import sys, platform; print(sys.version_info[0], sys.version_info[1], sys.version_info[2], platform.python_implementation())"


@dataclass(frozen=True)
class Interpreter:
    """A Python interpreter found on this machine."""

    path: str
    version: str
    """Full version, e.g. '3.12.1'."""
    implementation: str = "CPython"

    @property
    def minor(self) -> str:
        return ".".join(self.version.split(".")[:2])


@dataclass(frozen=True)
class Probe:
    """What lockenv needs to know about a venv's interpreter to select and install for it."""

    python: str
    """The venv's interpreter path (not resolved: a symlink inside the venv)."""
    prefix: str
    version: str
    markers: dict[str, str]
    """A complete PEP 508 marker environment of the interpreter."""
    tags: tuple[str, ...]
    """Its wheel tags, most preferred first."""
    paths: dict[str, str]
    """Install scheme: purelib, platlib, scripts, data, include."""

    def tag_objects(self) -> list:  # list[packaging.tags.Tag]
        from packaging.tags import Tag

        out = []
        for text in self.tags:
            interpreter, abi, platform = text.split("-")
            out.append(Tag(interpreter, abi, platform))
        return out

    @property
    def site_dirs(self) -> list[Path]:
        dirs = [Path(self.paths["purelib"])]
        if self.paths.get("platlib") and Path(self.paths["platlib"]) != dirs[0]:
            dirs.append(Path(self.paths["platlib"]))
        return dirs


@dataclass(frozen=True)
class Venv:
    """The project's virtual environment (it exists once returned by `realize_venv`)."""

    path: Path
    python: Path
    version: str
    created_by_lockenv: bool


# -- interpreters -----------------------------------------------------------------------------
def _debug(reporter: Reporter | None, message: str) -> None:
    if reporter is not None:
        reporter.debug(message)


def query_interpreter(path: str, reporter: Reporter | None = None) -> Interpreter | None:
    """Run `path` to learn its version; None when it does not run (e.g. a pyenv shim of a
    version not selected prints "command not found" and fails). The very binary lockenv runs
    on (its base installation's) is not run: it is this Python."""
    if _is_running_base(path):
        import platform

        return Interpreter(path=path, version=platform.python_version(),
                           implementation=platform.python_implementation())
    import subprocess  # not at module level: a warm sync runs no interpreter

    try:
        proc = subprocess.run(
            [path, "-I", "-c", _QUERY], capture_output=True, text=True, timeout=20,
            env={k: v for k, v in os.environ.items() if k not in ("PYTHONHOME", "PYTHONPATH")},
        )
    except (OSError, subprocess.SubprocessError) as exc:
        _debug(reporter, f"skipping interpreter {path}: {exc}")
        return None
    if proc.returncode != 0:
        _debug(reporter, f"skipping interpreter {path}: exit {proc.returncode}: "
                         f"{(proc.stderr or proc.stdout).strip()[:200]}")
        return None
    try:
        major, minor, micro, impl = proc.stdout.split()
    except ValueError:
        _debug(reporter, f"skipping interpreter {path}: unexpected output {proc.stdout[:100]!r}")
        return None
    return Interpreter(path=path, version=f"{major}.{minor}.{micro}", implementation=impl)


def _pyenv_root() -> Path | None:
    import shutil

    root = os.environ.get("PYENV_ROOT")
    if root:
        return Path(root)
    if shutil.which("pyenv"):
        default = Path.home() / ".pyenv"
        if default.is_dir():
            return default
        # HOME may be a test's temp dir; the pyenv executable lives in <root>/bin/ or a shim.
        exe = Path(shutil.which("pyenv") or "").resolve()
        for parent in exe.parents:
            if (parent / "versions").is_dir():
                return parent
    return None


def candidate_paths(minor: str | None = None) -> list[str]:
    """Interpreter paths worth trying, in a stable order: PATH's `python3.X` (newest X first),
    `python3`, then pyenv's installed versions. Duplicates (same real file) are dropped."""
    import glob
    import shutil

    names = [f"python{minor}"] if minor else [f"python3.{m}" for m in range(20, 7, -1)] + ["python3"]
    found: list[str] = []
    for name in names:
        path = shutil.which(name)
        if path:
            found.append(path)
    root = _pyenv_root()
    if root is not None:
        pattern = f"{minor}*" if minor else "3.*"
        versions = glob.glob(str(root / "versions" / pattern / "bin" / "python3"))
        found.extend(sorted(versions, key=_version_key_from_path, reverse=True))
    seen: set[str] = set()
    unique = []
    for path in found:
        real = os.path.realpath(path)
        if real in seen:
            continue
        seen.add(real)
        unique.append(path)
    return unique


def _version_key_from_path(path: str) -> tuple[int, ...]:
    match = re.search(r"/(\d+)\.(\d+)(?:\.(\d+))?[^/]*/bin/", path)
    if not match:
        return (0,)
    return tuple(int(x or 0) for x in match.groups())


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", version)[:3])


def _satisfies(version: str, requires_python: str | None) -> bool:
    if not requires_python:
        return True
    from packaging.specifiers import SpecifierSet

    return SpecifierSet(requires_python).contains(version, prereleases=True)


def _admits(version: str, requires_python: str | None, cache: Cache | None) -> bool:
    """`_satisfies`, remembered in the cache: importing packaging.specifiers (its regexes are
    compiled at import) was ~3 ms of CPU of every warm sync, 2.5% of one on web, for an answer
    that is a function of two strings and packaging's version. A marker in the fresh-locks
    bucket (`python-<digest>`) exists when `requires_python` was found to admit `version`, as
    the lock's fresh marker exists when the lock was found fresh; a refusal is never kept."""
    if not requires_python or cache is None:
        return _satisfies(version, requires_python)
    import hashlib

    import packaging

    key = f"{requires_python}\0{version}\0{packaging.__version__}\0{__version__}".encode()
    marker = cache.root / Bucket.FRESH_LOCKS.value / f"python-{hashlib.sha256(key).hexdigest()}"
    if marker.exists():
        return True
    if not _satisfies(version, requires_python):
        return False
    try:
        write_atomic(marker, b"admits\n")
    except OSError:
        pass  # a read-only cache: checked again next time
    return True


def _matches_request(interp: Interpreter, request: str) -> bool:
    match = _VERSION_REQUEST.match(request.strip())
    if not match:
        return False
    wanted = [x for x in match.groups() if x is not None]
    return interp.version.split(".")[: len(wanted)] == wanted


def find_python(request: str | None, requires_python: str | None,
                reporter: Reporter | None = None, *, source: str = "--python") -> Interpreter:
    """The interpreter to build the venv with: `request` (a version like '3.12' or a path) when
    given, else the running interpreter when the lock allows it, else the newest matching
    `python3.X` found. PythonNotFoundError lists what was found. `source` names where the
    request came from (`--python` or `LOCKENV_PYTHON`) for the messages."""
    import shutil

    tried: list[Interpreter] = []
    if request:
        if not is_version_request(request):
            path = shutil.which(request) or request
            if not os.path.exists(path):
                raise PythonNotFoundError(
                    f"no interpreter at `{request}` (from {source})",
                    details=_found_lines(_all_interpreters(reporter)),
                    hint=f"{_ask(source)} a version like 3.12 or the path of an interpreter",
                )
            interp = query_interpreter(path, reporter)
            if interp is None:
                raise PythonNotFoundError(
                    f"`{request}` (from {source}) did not run as a Python interpreter",
                    hint=f"{_ask(source)} a version like 3.12 or the path of an interpreter",
                )
            if not _satisfies(interp.version, requires_python):
                raise PythonNotFoundError(
                    f"`{request}` (from {source}) is Python {interp.version}, which the lock does "
                    f"not allow (requires-python `{requires_python}`)",
                    hint=f"{_ask(source)} an interpreter the lock's requires-python allows",
                )
            return interp
        minor_match = _VERSION_REQUEST.match(request.strip())
        assert minor_match is not None
        minor = f"3.{minor_match.group(2)}" if minor_match.group(2) else None
        running = _running()
        candidates: list[Interpreter] = []
        if _matches_request(running, request):
            candidates.append(running)
        for path in candidate_paths(minor):
            interp = query_interpreter(path, reporter)
            if interp is not None:
                tried.append(interp)
                if _matches_request(interp, request):
                    candidates.append(interp)
        for interp in candidates:
            if _satisfies(interp.version, requires_python):
                return interp
        if candidates:  # it exists: the project's bounds are what refuses it
            raise PythonNotFoundError(
                f"Python {request} (from {source}) is outside requires-python "
                f"`{requires_python}`",
                details=_found_lines([*candidates, *_all_interpreters(reporter)]),
                hint=f"{_ask(source)} a version that requires-python allows, or widen "
                     "requires-python in pyproject.toml and lock again",
            )
        _not_found(f"Python {request} (from {source})", requires_python,
                   _all_interpreters(reporter), source=source)

    running = _running()
    if _satisfies(running.version, requires_python):
        return running
    tried.append(running)
    best: Interpreter | None = None
    for path in candidate_paths():
        interp = query_interpreter(path, reporter)
        if interp is None:
            continue
        tried.append(interp)
        if interp.implementation == "CPython" and _satisfies(interp.version, requires_python):
            if best is None or _version_tuple(interp.version) > _version_tuple(best.version):
                best = interp
    if best is not None:
        return best
    _not_found("a Python", requires_python, tried, source=None)
    raise AssertionError("unreachable")


def _ask(source: str) -> str:
    """'pass `--python`' or 'set LOCKENV_PYTHON to', for a hint."""
    return "pass `--python`" if source.startswith("-") else f"set {source} to"


def _all_interpreters(reporter: Reporter | None) -> list[Interpreter]:
    """Every interpreter found (the running one, PATH's, pyenv's), for an error's `found:` list."""
    found = [_running()]
    for path in candidate_paths():
        interp = query_interpreter(path, reporter)
        if interp is not None:
            found.append(interp)
    return found


def _found_lines(found: Iterable[Interpreter]) -> list[str]:
    seen: set[str] = set()
    lines = []
    for interp in found:
        real = os.path.realpath(interp.path)
        if real in seen:
            continue
        seen.add(real)
        lines.append(f"found: {interp.path} (Python {interp.version})")
    return lines or ["found: no Python interpreter on PATH or in pyenv"]


def _running() -> Interpreter:
    import platform

    v = sys.version_info
    return Interpreter(path=sys.executable, version=f"{v[0]}.{v[1]}.{v[2]}",
                       implementation=platform.python_implementation())


def _not_found(what: str, requires_python: str | None, tried: Iterable[Interpreter], *,
               source: str | None) -> None:
    need = f" satisfying requires-python `{requires_python}`" if requires_python else ""
    if source:
        hint = f"install a matching Python, or {_ask(source)} one of those found"
    else:
        hint = "install a matching Python, or pass `--python PATH` (or set LOCKENV_PYTHON)"
    raise PythonNotFoundError(f"no interpreter found for {what}{need}",
                              details=_found_lines(tried), hint=hint)


# -- venvs ------------------------------------------------------------------------------------
def venv_python(path: Path) -> Path:
    if os.name == "nt":
        return path / "Scripts" / "python.exe"
    return path / "bin" / "python"


def existing_venv(path: Path) -> Venv | None:
    """The venv at `path` as its pyvenv.cfg describes it, without running anything (fast)."""
    cfg = read_pyvenv_cfg(path)
    if cfg is None:
        return None
    python = venv_python(path)
    version = cfg.get("version_info") or cfg.get("version") or ""
    return Venv(path=path, python=python, version=".".join(version.split(".")[:3]),
                created_by_lockenv="lockenv" in cfg)


@dataclass(frozen=True)
class VenvPlan:
    """What `sync` will do to the venv, decided before anything changes: use it as it is, or
    (re)create it with `interpreter`, which has already been found."""

    path: Path
    current: Venv | None
    """The venv to use as it is (None when it must be created or recreated)."""
    interpreter: Interpreter | None = None
    """The interpreter to create the venv with (set when `current` is None)."""
    problem: str | None = None
    """Why an existing venv is recreated."""


def request_source() -> tuple[str | None, str]:
    """The interpreter request from the environment: (LOCKENV_PYTHON's value, its name)."""
    return os.environ.get("LOCKENV_PYTHON") or None, "LOCKENV_PYTHON"


def plan_venv(project: Path, *, request: str | None, requires_python: str | None,
              reporter: Reporter, source: str = "--python", cache: Cache | None = None) -> VenvPlan:
    """Decide what to do with the project's venv and find the interpreter for a new one, without
    changing anything: every check that can fail (no interpreter, a foreign venv that does not
    fit, a path that is not a venv) fails here, before an existing venv is deleted. `cache`
    remembers which requires-python admits the existing venv's Python (`_admits`)."""
    if not request:
        request, source = request_source()
    path = venv_path(project)
    if path.exists() and not path.is_dir():
        raise SyncError(
            f"the virtual environment path {path} is a file, not a directory",
            hint=f"remove {path}, or point LOCKENV_VENV at a directory",
        )
    current = existing_venv(path)
    if current is None and path.exists() and any(path.iterdir()):
        raise SyncError(
            f"{path} exists but is not a virtual environment (no pyvenv.cfg)",
            hint=f"remove {path} or point LOCKENV_VENV elsewhere",
        )
    problem = None
    if current is not None:
        # pyvenv.cfg and the interpreter file say enough (no subprocess on every sync); the probe
        # that follows runs the interpreter when its cache entry is missing.
        runs = current.python.exists() and bool(current.version)
        actual = Interpreter(str(current.python), current.version) if runs else None
        if actual is None and current.python.exists():
            actual = query_interpreter(str(current.python), reporter)
        if actual is None:
            problem = f"its interpreter {current.python} does not run"
        else:
            current = Venv(path, current.python, actual.version, current.created_by_lockenv)
            if not _admits(actual.version, requires_python, cache):
                problem = (f"its Python {actual.version} does not satisfy the lock's "
                           f"requires-python `{requires_python}`")
            elif request and not _request_fits(request, actual, current.python):
                problem = f"its Python {actual.version} is not the requested `{request}` (from {source})"
        if problem is None:
            return VenvPlan(path, current)
        if not current.created_by_lockenv:
            raise PythonNotFoundError(
                f"the virtual environment {path} was not created by lockenv and {problem}",
                hint=f"remove {path} (lockenv then creates one) or pass `--python` to match it",
            )
    interp = find_python(request, requires_python, reporter, source=source)
    return VenvPlan(path, None, interp, problem)


def realize_venv(plan: VenvPlan, reporter: Reporter) -> Venv:
    """Carry out `plan`: the venv as it is, or (re)created with the interpreter already found."""
    if plan.current is not None:
        return plan.current
    assert plan.interpreter is not None
    if plan.problem is not None:
        import shutil

        reporter.status(f"Recreating {plan.path}: {plan.problem}")
        shutil.rmtree(plan.path)
    return create_venv(plan.path, plan.interpreter, reporter)


def _request_fits(request: str, actual: Interpreter, python: Path) -> bool:
    if is_version_request(request):
        return _matches_request(actual, request)
    if os.sep in request:  # a path: shutil.which gives it back, or None (then it is used as is)
        wanted = request
    else:
        import shutil  # not at module level: a warm sync with LOCKENV_PYTHON=<path> skips it

        wanted = shutil.which(request) or request
    try:  # the venv's interpreter links to the very file asked for: it fits, no need to run it
        if os.path.samefile(os.path.realpath(wanted), os.path.realpath(python)):
            return True
    except OSError:
        pass
    wanted_interp = query_interpreter(wanted)
    return wanted_interp is not None and wanted_interp.version == actual.version


def create_venv(path: Path, interp: Interpreter, reporter: Reporter) -> Venv:
    """`python -m venv --without-pip`, then mark it as lockenv's in pyvenv.cfg."""
    import subprocess

    try:
        os.fsdecode(path).encode("utf-8")
    except UnicodeEncodeError:  # venv writes the path into pyvenv.cfg and its scripts as UTF-8
        raise SyncError(
            f"cannot create a virtual environment at {path}: its path is not valid UTF-8, "
            "which Python's venv module cannot write into the environment's files",
            hint="point LOCKENV_VENV at a directory whose path is UTF-8, or move the project",
            context={"file": str(path)},
        ) from None
    reporter.status(f"Creating virtual environment at {path} with Python {interp.version}")
    if not _create_here(path, interp):
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHOME", "PYTHONPATH", "VIRTUAL_ENV")}
        proc = subprocess.run(
            [interp.path, "-I", "-m", "venv", "--without-pip", str(path)],
            capture_output=True, text=True, env=env,
        )
        if proc.returncode != 0:
            raise SyncError(
                f"creating the virtual environment {path} failed",
                details=(proc.stderr or proc.stdout).strip().splitlines()[-10:],
            )
    cfg = path / "pyvenv.cfg"
    text = cfg.read_text(encoding="utf-8")
    if not text.endswith("\n"):
        text += "\n"
    cfg.write_text(text + f"lockenv = {__version__}\n", encoding="utf-8")
    (path / ".gitignore").write_text("# created by lockenv\n*\n", encoding="utf-8")
    return Venv(path=path, python=venv_python(path), version=interp.version,
                created_by_lockenv=True)


def _is_running_base(path: str) -> bool:
    """Whether `path` is the interpreter binary lockenv itself runs on (its base, when lockenv
    runs in a venv)."""
    base = getattr(sys, "_base_executable", None)
    if not base:
        return False
    try:
        return os.path.samefile(os.path.realpath(path), os.path.realpath(base))
    except OSError:
        return False


def _create_here(path: Path, interp: Interpreter) -> bool:
    """Make the venv with the standard library's `venv` in this process when `interp` is the
    very interpreter lockenv runs on (its base installation, same version): what `python -m
    venv --without-pip` does, without starting a Python for it (~50 ms). False (nothing done)
    for any other interpreter, and on Windows (its venv copies launchers of the running
    Python): the caller runs the interpreter's own venv module then."""
    import platform

    if os.name != "posix" or interp.version != platform.python_version() \
            or not _is_running_base(interp.path):
        return False
    import venv

    try:
        venv.EnvBuilder(with_pip=False, symlinks=True).create(str(path))
    except (OSError, ValueError) as exc:
        raise SyncError(f"creating the virtual environment {path} failed: {exc}") from None
    cfg = path / "pyvenv.cfg"  # `command` names the interpreter asked for, as when run there
    lines = cfg.read_text(encoding="utf-8").splitlines(keepends=True)
    ran = f"command = {sys.executable} -m venv "
    cfg.write_text("".join(f"command = {interp.path} -m venv " + line[len(ran):]
                           if line.startswith(ran) else line for line in lines), encoding="utf-8")
    return True


# -- probe ------------------------------------------------------------------------------------
_PROBE_VERSION = "3"
"""Bumped when the probe's output changes (it is part of the cache key)."""


def tags_from_facts(facts: dict) -> list[str]:
    """The interpreter's wheel tags, most preferred first, as `packaging.tags.sys_tags()` would
    list them there: the probe (`_probe.py`, stdlib only) reports the inputs only that
    interpreter can know, and packaging's own tag functions order them."""
    from packaging.tags import compatible_tags, cpython_tags, generic_tags, mac_platforms

    reported = facts["platforms"]
    if "mac" in reported:
        version = tuple(reported["mac"]["version"])
        platforms = list(mac_platforms((version[0], version[1]), reported["mac"]["arch"]))
    else:
        platforms = list(reported["list"])
    python_version = tuple(facts["python_version"])
    name, version_nodot = facts["interpreter"], facts["interpreter_version"]
    if name == "cp":
        tags = list(cpython_tags(python_version, facts["abis"], platforms))
        interpreter: str | None = f"cp{version_nodot}"
    else:
        tags = list(generic_tags(f"{name}{version_nodot}", facts["abis"], platforms))
        interpreter = "pp3" if name == "pp" else None
    tags.extend(compatible_tags(python_version, interpreter, platforms))
    return [str(t) for t in tags]


def probe(python: Path, reporter: Reporter | None = None, *, cache: Cache | None) -> Probe:
    """Markers, tags and install paths of the interpreter `python` (a venv's), cached by the
    interpreter's path, real path, mtime and size in `cache`: the one the use case made, or
    None when it has none it can use (then every call runs the interpreter). A venv's
    interpreter is cached by its venv-relative path instead: a new venv of the same base
    interpreter (a fresh checkout, a CI runner's new directory) is not run either; its paths
    are the probed venv's with the venv's root replaced (see `_relocated`)."""
    started = _start_probe(python, cache=cache)
    return started if isinstance(started, Probe) else started.finish(reporter)


def _start_probe(python: Path, *, cache: Cache | None) -> Probe | _Probing:
    """`probe`'s cached answer, or its interpreter started (`_Probing.finish` waits for it)."""
    import hashlib

    real = os.path.realpath(python)
    try:
        st = os.stat(real)
    except OSError as exc:
        raise SyncError(f"the interpreter {python} is missing") from exc
    root = _plain_venv_root(python)
    where = f"<venv>/{os.path.relpath(python, root)}" if root is not None else str(python)
    key_text = (f"{where}\0{real}\0{st.st_mtime_ns}\0{st.st_size}\0{_packaging_version()}"
                f"\0{_PROBE_VERSION}")
    key = hashlib.sha256(key_text.encode()).hexdigest()
    cache_file = cache.bucket(Bucket.PROBE) / f"{key}.json" if cache is not None else None
    try:
        if cache_file is not None:
            return _probe_from(python, _relocated(json.loads(cache_file.read_bytes()), root))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    return _Probing(python, cache_file, root)


PROBE_TIMEOUT = 60.0
"""Seconds an interpreter has to answer the probe (a first run may compile its stdlib)."""


class _Probing:
    """The probe's interpreter, running: started by `_start_probe`, read by `finish` (at most
    once), so that the sync goes on meanwhile without a thread (one ran the probe before:
    its Python around the run held the GIL against the sync's imports, ~0.04 s on a cold
    sync)."""

    def __init__(self, python: Path, cache_file: Path | None, root: str | None) -> None:
        script = (Path(__file__).parent / "_probe.py").read_text(encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHOME", "PYTHONPATH")}
        import subprocess  # not at module level: a cached probe (every warm sync) runs nothing

        self._python, self._cache_file, self._root = python, cache_file, root
        self._proc = subprocess.Popen([str(python), "-I", "-c", script], stdin=subprocess.DEVNULL,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                      env=env)

    def finish(self, reporter: Reporter | None = None) -> Probe:
        """Its answer, parsed and cached; a SyncError says what the interpreter said."""
        import subprocess

        python = self._python
        try:
            stdout, stderr = self._proc.communicate(timeout=PROBE_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            stdout, stderr = self._proc.communicate()
            stderr = f"{stderr}\nit did not answer within {PROBE_TIMEOUT:g} s and was stopped"
        try:
            data = json.loads(stdout) if self._proc.returncode == 0 else None
            if data is not None:
                data["tags"] = tags_from_facts(data.pop("tag_facts"))
        except (ValueError, KeyError, TypeError):
            data = None
        if data is None:
            raise SyncError(
                f"could not inspect the interpreter {python}",
                details=(stderr or stdout).strip().splitlines()[-10:],
                hint="lockenv needs a CPython or PyPy 3.8 or newer there",
            )
        if self._cache_file is not None and (self._root is None or data.get("prefix") == self._root):
            write_atomic(self._cache_file, json.dumps(data, sort_keys=True).encode())
        _debug(reporter, f"probed {python}: Python {data['version']}, {len(data['tags'])} tags")
        return _probe_from(python, data)


class ProbeAhead:
    """The probe of the project's existing venv interpreter, run while the sync does other
    work: started by the fast path before most of the sync's imports (~0.15 s on a cold sync),
    or by the sync before it reads the lock. The interpreter's run (0.05-0.1 s) was waited for
    after those. It runs as a process of its own, read when first asked for (no thread: see
    `_Probing`). `take` waits for it and gives the probe, or None for
    another interpreter, no venv, a probe that failed, or an interpreter changed since it was
    started (it may start before the venv's lock is held): the caller then probes as before,
    and reports what fails. Taken with None (the venv is to be recreated, maybe with another
    interpreter at the same path, or the sync stops), it voids the probe for good.

    With no venv yet, it probes the interpreter the venv will most likely be made with
    (`likely_interpreter`), for `take_base`: the sync probes that one before it makes the venv
    (to select for it), and waited for it after reading the lock (0.06-0.12 s on a cold sync
    into a fresh clone)."""

    def __init__(self, venv_dir: Path, cache: Cache | None = None, *,
                 request: str | None = None) -> None:
        self._found: list[Probe] = []
        self._running: _Probing | None = None
        venv = existing_venv(venv_dir)
        self._for_venv = venv is not None
        self._python = venv.python if venv is not None else likely_interpreter(request)
        self._identity = _identity(self._python) if self._python is not None else None
        if self._python is None or self._identity is None:
            return
        try:
            started = _start_probe(self._python, cache=cache if cache is not None else Cache())
        except Exception:  # noqa: BLE001 - the caller's own probe reports it
            return
        if isinstance(started, Probe):
            self._found.append(started)
        else:
            self._running = started

    def _wait(self) -> None:
        running, self._running = self._running, None
        if running is not None:
            try:
                self._found.append(running.finish())
            except Exception:  # noqa: BLE001 - the caller's own probe reports it
                pass

    def peek(self) -> Probe | None:
        """The probe as it was found (waiting for it), without voiding it: for work done ahead
        whose outcome does not depend on it being the one `take` or `take_base` gives (a venv
        has its base interpreter's markers and tags: what the lock's selection is keyed by)."""
        self._wait()
        return self._found[0] if self._found else None

    def take(self, python: Path | None) -> Probe | None:
        self._wait()
        if not self._for_venv or python is None or python != self._python \
                or _identity(python) != self._identity:
            self._found.clear()
        return self._found[0] if self._found else None

    def take_base(self, python: Path) -> Probe | None:
        """The probe of `python`, the interpreter a new venv is to be made with, when that is
        the one probed ahead (there was no venv) and it is unchanged; else None (voided)."""
        self._wait()
        if self._for_venv or python != self._python or _identity(python) != self._identity:
            self._found.clear()
        return self._found[0] if self._found else None


def likely_interpreter(request: str | None) -> Path | None:
    """The interpreter `find_python` gives first for `request` (else LOCKENV_PYTHON's) when it
    needs no search: the path asked for, or the running interpreter when none is asked for
    (used when the lock's requires-python allows it); None for a version request."""
    request = request or os.environ.get("LOCKENV_PYTHON") or None
    if request is None:
        return Path(sys.executable) if sys.executable else None
    if is_version_request(request):
        return None
    import shutil

    path = shutil.which(request) or request
    return Path(path) if os.path.exists(path) else None


def _identity(python: Path) -> tuple[str, int, int, int, int] | None:
    """What tells one interpreter file from another at the same path: its real path, inode,
    size and mtime (None when it is missing)."""
    try:
        real = os.path.realpath(python)
        st = os.stat(real)
    except OSError:
        return None
    return real, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def _plain_venv_root(python: Path) -> str | None:
    """The venv `python` is the interpreter of (`<root>/bin/python`, a pyvenv.cfg at the
    root), when no symbolic link is on the way to the root (the interpreter reports its prefix
    from the path as given: only then is it the root itself); else None."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(python)))
    if not os.path.isfile(os.path.join(root, "pyvenv.cfg")) or os.path.realpath(root) != root:
        return None
    return root


def _relocated(data: dict, root: str | None) -> dict:
    """A venv's probe data moved to the venv at `root`: its prefix, and every path under it
    (purelib, platlib, scripts, data; the base interpreter's include directory stays)."""
    old = data["prefix"]
    if root is None or old == root:
        return data
    if not isinstance(old, str) or not os.path.isabs(old):
        raise ValueError("not a venv's probe")

    def move(path: str) -> str:
        return root + path[len(old):] if path == old or path.startswith(old + os.sep) else path

    return {**data, "prefix": root, "paths": {k: move(v) for k, v in data["paths"].items()}}


def _packaging_version() -> str:
    """The running packaging's version (its attribute: importlib.metadata costs ~15 ms to import
    and scans sys.path)."""
    import packaging

    return str(getattr(packaging, "__version__", "?"))


def _probe_from(python: Path, data: dict) -> Probe:
    return Probe(
        python=str(python),
        prefix=data["prefix"],
        version=data["version"],
        markers=dict(data["markers"]),
        tags=tuple(data["tags"]),
        paths=dict(data["paths"]),
    )

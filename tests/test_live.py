"""Live tests against PyPI (opt-in: `scripts/test --live`): real projects lock into a lock that
installs a complete, consistent set on every target, and sync into an environment that works."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from collections import defaultdict
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import httpx
import pytest
from packaging.dependency_groups import resolve_dependency_groups
from packaging.markers import Marker
from packaging.metadata import parse_email
from packaging.pylock import Package, PackageSdist, PackageWheel, Pylock, PylockSelectError
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.tags import Tag, compatible_tags, cpython_tags, mac_platforms
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version

from helpers import ROOT, run_lockenv

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

pytestmark = pytest.mark.live

BENCH_PROJECTS = next((d / "shared" / "bench" / "projects" for d in ROOT.parents
                       if (d / "shared" / "bench" / "projects").is_dir()),
                      ROOT.parent / "shared" / "bench" / "projects")
"""The shared bench projects beside this checkout (or a worktree of it), wherever it is."""
EXCLUDE_NEWER = "2026-10-01T00:00:00Z"
"""Fixed, so that what PyPI publishes later does not change what these tests lock."""

EXCLUDE_NEWER_ISO = "2026-10-01T00:00:00"   # compares as text with PEP 700 upload-time values

LOCK_TIMEOUT = 1200

# The targets every lock must serve: CPython 3.10-3.14 on five platforms. Chosen here, not taken
# from lockenv, so that the check does not share lockenv's assumptions by construction.
PYTHONS = ((3, 10), (3, 11), (3, 12), (3, 13), (3, 14))
GLIBC_MAX = 39      # manylinux_2_39 down to manylinux_2_17 (and the legacy aliases)
MACOS = (15, 0)     # mac_platforms() lists everything older that this macOS accepts too


@dataclass(frozen=True)
class Target:
    python: tuple[int, int]
    os: str
    machine: str

    @property
    def name(self) -> str:
        return f"cp3{self.python[1]}-{self.os}-{self.machine}"

    @property
    def environment(self) -> dict[str, str]:
        """A complete PEP 508 environment (select() merges a partial one over the running one)."""
        system, platform, os_name = {
            "linux": ("Linux", "linux", "posix"),
            "macos": ("Darwin", "darwin", "posix"),
            "windows": ("Windows", "win32", "nt"),
        }[self.os]
        full = "{}.{}.0".format(*self.python)
        return {
            "implementation_name": "cpython",
            "implementation_version": full,
            "os_name": os_name,
            "platform_machine": self.machine,
            "platform_python_implementation": "CPython",
            "platform_release": "",
            "platform_system": system,
            "platform_version": "",
            "python_full_version": full,
            "python_version": "{}.{}".format(*self.python),
            "sys_platform": platform,
        }

    @property
    def tags(self) -> list[Tag]:
        """The wheel tags, best first, that CPython on that machine accepts."""
        if self.os == "linux":
            arch = self.machine
            plats = [f"manylinux_2_{minor}_{arch}" for minor in range(GLIBC_MAX, 16, -1)]
            plats.append(f"manylinux2014_{arch}")
            if arch == "x86_64":
                plats += ["manylinux_2_12_x86_64", "manylinux2010_x86_64",
                          "manylinux_2_5_x86_64", "manylinux1_x86_64"]
            plats.append(f"linux_{arch}")
        elif self.os == "macos":
            plats = list(mac_platforms(MACOS, self.machine))
        else:
            plats = ["win_amd64"]
        interpreter = "cp{}{}".format(*self.python)
        return [*cpython_tags(self.python, [interpreter], plats),
                *compatible_tags(self.python, interpreter, plats)]


TARGETS = [
    Target(python, os, machine)
    for python in PYTHONS
    for os, machine in (("linux", "x86_64"), ("linux", "aarch64"), ("macos", "x86_64"),
                        ("macos", "arm64"), ("windows", "AMD64"))
]


def _bench_project(name: str, tmp_path: Path) -> Path:
    source = BENCH_PROJECTS / name
    if not (source / "pyproject.toml").is_file():
        pytest.skip(f"no bench project {source} (../shared is not beside this clone)")
    project = tmp_path / name
    project.mkdir()
    shutil.copy2(source / "pyproject.toml", project / "pyproject.toml")
    return project


def _lock(project: Path) -> Pylock:
    result = run_lockenv("lock", "--exclude-newer", EXCLUDE_NEWER, cwd=project, timeout=LOCK_TIMEOUT)
    assert result.code == 0, result.output
    with (project / "pylock.toml").open("rb") as f:
        lock = Pylock.from_dict(tomllib.load(f))
    lock.validate()
    return lock


# ---------------------------------------------------------------- metadata, fetched independently

class MetadataSource:
    """Requires-Dist of wheels, straight from PyPI (PEP 658 file, else the wheel itself)."""

    def __init__(self) -> None:
        self._client = httpx.Client(timeout=60, follow_redirects=True,
                                    limits=httpx.Limits(max_connections=16))
        self._cache: dict[str, list[Requirement]] = {}
        self._pages: dict[str, list[tuple[str, str]]] = {}

    def close(self) -> None:
        self._client.close()

    def prefetch(self, urls: Iterable[str]) -> None:
        todo = sorted({u for u in urls if u not in self._cache})
        with ThreadPoolExecutor(16) as pool:
            for url, reqs in zip(todo, pool.map(self._fetch, todo)):
                self._cache[url] = reqs

    def requires_dist(self, url: str) -> list[Requirement]:
        if url not in self._cache:
            self._cache[url] = self._fetch(url)
        return self._cache[url]

    def index_wheels(self, index: str, name: str) -> list[tuple[str, str]]:
        """(filename, upload-time) of every non-yanked wheel of a project, from the simple API
        (PEP 691 JSON) of the index the lock names."""
        key = f"{index}#{name}"
        if key not in self._pages:
            response = self._client.get(f"{index.rstrip('/')}/{name}/",
                                        headers={"Accept": "application/vnd.pypi.simple.v1+json"})
            response.raise_for_status()
            self._pages[key] = [
                (f["filename"], f.get("upload-time") or "")
                for f in response.json()["files"]
                if f["filename"].endswith(".whl") and not f.get("yanked")
            ]
        return self._pages[key]

    def _fetch(self, url: str) -> list[Requirement]:
        for attempt in range(3):
            try:
                response = self._client.get(url + ".metadata")
                if response.status_code == 404:
                    wheel = self._client.get(url)
                    wheel.raise_for_status()
                    with zipfile.ZipFile(BytesIO(wheel.content)) as zf:
                        name = next(n for n in zf.namelist()
                                    if n.count("/") == 1 and n.endswith(".dist-info/METADATA"))
                        text = zf.read(name)
                else:
                    response.raise_for_status()
                    text = response.content
                raw, _ = parse_email(text)
                return [Requirement(r) for r in raw.get("requires_dist", [])]
            except httpx.TransportError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


# ---------------------------------------------------------------- the check

def _roots(pyproject: Mapping, groups: Iterable[str], extras: Iterable[str]) -> list[Requirement]:
    project = pyproject["project"]
    texts = list(project.get("dependencies", []))
    for extra in extras:
        texts += project.get("optional-dependencies", {}).get(extra, [])
    groups = list(groups)
    if groups:
        texts += resolve_dependency_groups(pyproject.get("dependency-groups", {}), *groups)
    return [Requirement(t) for t in texts]


def _applies(marker: Marker | None, env: dict[str, str], extra: str = "") -> bool:
    return marker is None or marker.evaluate({**env, "extra": extra})


def check_selection(lock: Pylock, pyproject: Mapping, target: Target, *, groups: list[str],
                    extras: list[str], metadata: MetadataSource) -> list[str]:
    """Problems with what `select()` gives this target: it must not fail, every package must come
    with a file, and the selected set must be exactly the closure of the project's requirements
    under the selected files' own metadata, each requirement satisfied by the selected version."""
    env = target.environment
    try:
        chosen = list(lock.select(environment=env, tags=target.tags, extras=extras,
                                  dependency_groups=groups))
    except PylockSelectError as exc:
        return [f"select() failed: {exc}"]
    selected: dict[str, tuple[Package, PackageWheel | PackageSdist]] = {}
    problems: list[str] = []
    for package, dist in chosen:
        if not isinstance(dist, (PackageWheel, PackageSdist)) or not dist.url:
            problems.append(f"{package.name} {package.version}: no wheel or sdist URL ({dist!r})")
            continue
        if not dist.hashes.get("sha256") or dist.size is None:
            problems.append(f"{package.name} {package.version}: {dist.name} has no sha256 or size")
        selected[canonicalize_name(package.name)] = (package, dist)
        if isinstance(dist, PackageSdist) and package.index and package.version:
            # An sdist is only right when the index has no wheel this target could install.
            accepted = set(target.tags)
            for filename, uploaded in metadata.index_wheels(package.index, package.name):
                _, version, _, tags = parse_wheel_filename(filename)
                if (version == package.version and tags & accepted
                        and (not uploaded or uploaded <= EXCLUDE_NEWER_ISO)):
                    problems.append(f"{package.name} {package.version}: the lock gives only the "
                                    f"sdist, but the index has {filename} for this target")
                    break
    metadata.prefetch(d.url for _, d in selected.values() if isinstance(d, PackageWheel) and d.url)

    reached: set[str] = set()
    visited: set[tuple[str, str]] = set()
    queue: list[tuple[Requirement, str]] = [
        (r, "the project") for r in _roots(pyproject, groups, extras) if _applies(r.marker, env)
    ]
    while queue:
        req, parent = queue.pop()
        name = canonicalize_name(req.name)
        if name not in selected:
            problems.append(f"{parent} requires `{req}` but nothing named {name} is selected")
            continue
        package, dist = selected[name]
        version = package.version or Version("0")
        if not req.specifier.contains(version, prereleases=True):
            problems.append(f"{parent} requires `{req}` but {name} {version} is selected")
        reached.add(name)
        for extra in ("", *sorted(canonicalize_name(e) for e in req.extras)):
            if (name, extra) in visited:
                continue
            visited.add((name, extra))
            who = f"{name} {version}"
            if isinstance(dist, PackageWheel):
                for dep in metadata.requires_dist(dist.url):
                    if _applies(dep.marker, env, extra):
                        queue.append((dep, f"{who}" + (f"[{extra}]" if extra else "")))
            else:
                # An sdist's metadata would need a build: follow the lock's own record of its
                # dependencies instead (weaker, but still catches a missing closure below it).
                for dep in package.dependencies or ():
                    dep_name = canonicalize_name(str(dep.get("name", "")))
                    if dep_name in selected:
                        queue.append((Requirement(dep_name), who))
    extraneous = sorted(set(selected) - reached)
    if extraneous:
        problems.append("selected but required by nothing: " + ", ".join(extraneous))
    return problems


@pytest.mark.parametrize("name", ["small", "web", "data", "markers"])
def test_bench_project_lock_serves_every_target(name: str, tmp_path: Path) -> None:
    project = _bench_project(name, tmp_path)
    lock = _lock(project)
    with (project / "pyproject.toml").open("rb") as f:
        pyproject = tomllib.load(f)
    assert lock.created_by == "lockenv"
    assert lock.requires_python is not None and lock.requires_python.contains("3.10")

    default_groups = list(lock.default_groups or [])
    all_groups = sorted(pyproject.get("dependency-groups", {}))
    all_extras = sorted(pyproject["project"].get("optional-dependencies", {}))
    selections = {"default": (default_groups, [])}
    if all_groups or all_extras:
        selections["no groups"] = ([], [])
        selections["all groups and extras"] = (all_groups, all_extras)

    metadata = MetadataSource()
    problems: dict[str, list[str]] = defaultdict(list)
    try:
        for target in TARGETS:
            for label, (groups, extras) in selections.items():
                found = check_selection(lock, pyproject, target, groups=groups, extras=extras,
                                        metadata=metadata)
                if found:
                    problems[f"{target.name} ({label})"] += found
    finally:
        metadata.close()
    report = "\n".join(f"{t}: {p}" for t, ps in problems.items() for p in ps[:5])
    assert not problems, f"{len(problems)} target selections are wrong:\n{report}"


# ---------------------------------------------------------------- sync, then use the environment

_IMPORT_DISTS = r"""
import importlib, importlib.metadata as md, json, sys

def import_names(dist):
    names = set((dist.read_text("top_level.txt") or "").split())
    for path in dist.files or ():
        parts = path.parts
        if not parts or parts[0] in ("..", "__pycache__") or parts[0].endswith((".dist-info", ".data")):
            continue
        if len(parts) == 1 and path.suffix in (".py", ".so", ".pyd"):
            names.add(parts[0].split(".")[0])
        elif len(parts) > 1 and path.suffix == ".py":
            names.add(parts[0])
    return sorted(n for n in names if n.isidentifier())

report = {}
for name in sys.argv[1:]:
    modules = import_names(md.distribution(name))
    errors = {}
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception as exc:
            errors[module] = f"{type(exc).__name__}: {exc}"
    report[name] = {"modules": modules, "errors": errors}
print(json.dumps(report))
"""


def _venv_python(project: Path) -> Path:
    venv = project / ".venv"
    python = venv / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")
    assert python.is_file(), f"sync made no {python}"
    return python


def test_web_syncs_into_a_working_environment(tmp_path: Path) -> None:
    project = _bench_project("web", tmp_path)
    _lock(project)
    result = run_lockenv("sync", cwd=project, timeout=LOCK_TIMEOUT)
    assert result.code == 0, result.output
    python = _venv_python(project)

    check = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "check"],
                           capture_output=True, text=True, timeout=300)
    assert check.returncode == 0, check.stdout + check.stderr

    with (project / "pyproject.toml").open("rb") as f:
        pyproject = tomllib.load(f)
    top_level = [r.name for r in _roots(pyproject, ["dev"], [])]
    imported = subprocess.run([str(python), "-c", _IMPORT_DISTS, *top_level],
                              capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr
    report = json.loads(imported.stdout)
    for name in top_level:
        assert report[name]["modules"], f"{name}: found no importable module"
        assert not report[name]["errors"], f"{name}: {report[name]['errors']}"

    again = run_lockenv("sync", cwd=project, timeout=120)
    assert again.code == 0, again.output
    verify = run_lockenv("verify", cwd=project, timeout=300)
    assert verify.code == 0, verify.output


_ASK_APP = r"""
import json, sys
from importlib.metadata import version
from app import app
response = app.test_client().get("/")
print(json.dumps({"flask": version("flask"), "status": response.status_code,
                  "body": response.get_data(as_text=True)}))
"""


@pytest.mark.parametrize(("example", "flask"), [("legacy-app", "<2"), ("modern-app", ">=2.3")])
def test_demo_example_answers_a_request(example: str, flask: str, tmp_path: Path) -> None:
    """What `scripts/demo` does, in a copy: lock, sync, then the app answers from its .venv."""
    project = tmp_path / example
    shutil.copytree(ROOT / "examples" / example, project,
                    ignore=shutil.ignore_patterns(".venv", "__pycache__", "pylock.toml"))
    result = run_lockenv("lock", "--exclude-newer", EXCLUDE_NEWER, cwd=project, timeout=LOCK_TIMEOUT)
    assert result.code == 0, result.output
    with (project / "pylock.toml").open("rb") as f:
        lock = Pylock.from_dict(tomllib.load(f))
    with (project / "pyproject.toml").open("rb") as f:
        pyproject = tomllib.load(f)
    metadata = MetadataSource()
    try:
        problems = {t.name: p for t in TARGETS
                    if (p := check_selection(lock, pyproject, t, groups=[], extras=[], metadata=metadata))}
    finally:
        metadata.close()
    assert not problems, "\n".join(f"{t}: {p[:3]}" for t, p in problems.items())

    result = run_lockenv("sync", cwd=project, timeout=LOCK_TIMEOUT)
    assert result.code == 0, result.output
    answer = subprocess.run([str(_venv_python(project)), "-c", _ASK_APP], cwd=project,
                            capture_output=True, text=True, timeout=120)
    assert answer.returncode == 0, answer.stderr
    reply = json.loads(answer.stdout)
    assert Version(reply["flask"]) in SpecifierSet(flask)
    assert reply["status"] == 200
    assert reply["body"] == f"{example} says hello from Flask {reply['flask']}"

"""lockfile: the PEP 751 writer (golden, deterministic, valid, atomic), the readers, select()
and freshness with typed reasons."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import subprocess
import sys
import textwrap
from datetime import datetime, timezone
from pathlib import Path

import pytest
from packaging.pylock import Pylock
from packaging.tags import Tag, compatible_tags, cpython_tags

from lockenv import lockfile, manifest
from lockenv.errors import LockfileError
from lockenv.models import DistFile, Dependency, LockedPackage, LockInputs, Resolution

DATA = Path(__file__).parent / "data" / "lockfile"
INDEX = "https://index.example/simple/"
T0 = datetime(2024, 5, 1, 12, 30, tzinfo=timezone.utc)


def dist(filename: str, *, upload: datetime | None = T0) -> DistFile:
    """A file entry; the digest is the sha256 of the name (the writer never opens files; the
    interop tests use real wheels)."""
    digest = hashlib.sha256(filename.encode()).hexdigest()
    return DistFile(filename, f"https://files.example/packages/{filename}", digest, 1000 + len(filename),
                    upload, None, index=INDEX)


def resolution(*, environments: tuple[str, ...] = (), reverse: bool = False) -> Resolution:
    """A small universal lock: a fork on python_version, platform-only wheels, an extra and a
    dependency group expressed as markers."""
    inputs = LockInputs(
        requires_python=">=3.10",
        dependencies=("numpy>=1.26", "anyio>=4"),
        optional_dependencies={"fast": ('uvloop>=0.19; sys_platform != "win32"',)},
        dependency_groups={"dev": ("pytest>=8",), "docs": ()},
        default_groups=("dev",),
        index_url=INDEX,
        exclude_newer="2025-01-01T00:00:00Z",
        environments=environments,
    )
    packages = [
        LockedPackage("anyio", "4.4.0", None, ">=3.8", INDEX,
                      (Dependency("idna"), Dependency("exceptiongroup")),
                      (dist("anyio-4.4.0-py3-none-any.whl"),), dist("anyio-4.4.0.tar.gz")),
        LockedPackage("exceptiongroup", "1.2.2", 'python_version < "3.11"', ">=3.7", INDEX, (),
                      (dist("exceptiongroup-1.2.2-py3-none-any.whl"),), None),
        LockedPackage("idna", "3.7", None, ">=3.5", INDEX, (),
                      (dist("idna-3.7-py3-none-any.whl", upload=datetime(2024, 4, 11, 3, 8, 55, 123000, tzinfo=timezone.utc)),),
                      dist("idna-3.7.tar.gz", upload=None)),
        LockedPackage("numpy", "2.1.0", 'python_version >= "3.11"', ">=3.10", INDEX, (),
                      (dist("numpy-2.1.0-cp311-cp311-win_amd64.whl"),
                       dist("numpy-2.1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"),
                       dist("numpy-2.1.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"),
                       dist("numpy-2.1.0-cp312-cp312-win_amd64.whl")),
                      dist("numpy-2.1.0.tar.gz")),
        LockedPackage("numpy", "1.26.4", 'python_version < "3.11"', ">=3.9", INDEX, (),
                      (dist("numpy-1.26.4-cp310-cp310-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"),
                       dist("numpy-1.26.4-cp310-cp310-win_amd64.whl")),
                      None),
        LockedPackage("pytest", "8.3.2", "'dev' in dependency_groups", ">=3.8", INDEX,
                      (Dependency("numpy", "2.1.0"), Dependency("exceptiongroup")),
                      (dist("pytest-8.3.2-py3-none-any.whl"),), None),
        LockedPackage("uvloop", "0.19.0", "'fast' in extras and sys_platform != \"win32\"", None, INDEX, (),
                      (dist("uvloop-0.19.0-cp312-cp312-manylinux_2_17_x86_64.whl"),), None),
    ]
    if reverse:
        packages = [
            dataclasses.replace(
                p,
                wheels=tuple(reversed(p.wheels)),
                dependencies=tuple(reversed(p.dependencies)),
            )
            for p in reversed(packages)
        ]
        inputs = dataclasses.replace(
            inputs,
            dependencies=tuple(reversed(inputs.dependencies)),
            optional_dependencies=dict(reversed(list(inputs.optional_dependencies.items()))),
            dependency_groups=dict(reversed(list(inputs.dependency_groups.items()))),
            environments=tuple(reversed(inputs.environments)),
        )
    return Resolution(inputs, tuple(packages))


def environment(python: str, platform: str = "linux", machine: str = "x86_64") -> dict[str, str]:
    os_name = "nt" if platform == "win32" else "posix"
    system = {"linux": "Linux", "darwin": "Darwin", "win32": "Windows"}[platform]
    return {
        "implementation_name": "cpython",
        "implementation_version": f"{python}.0",
        "os_name": os_name,
        "platform_machine": machine,
        "platform_release": "",
        "platform_system": system,
        "platform_version": "",
        "python_full_version": f"{python}.0",
        "platform_python_implementation": "CPython",
        "python_version": python,
        "sys_platform": platform,
    }


def tags(python: str, platform: str) -> list[Tag]:
    version = tuple(int(x) for x in python.split("."))
    platforms = {
        "linux": ["manylinux_2_17_x86_64", "manylinux2014_x86_64", "linux_x86_64"],
        "win32": ["win_amd64"],
        "darwin": ["macosx_11_0_arm64"],
    }[platform]
    return [*cpython_tags(version, platforms=platforms), *compatible_tags(version, platforms=platforms)]


# --- dumps -----------------------------------------------------------------------------------


def test_dumps_matches_golden_file() -> None:
    text = lockfile.dumps(resolution(environments=("sys_platform == \"linux\"", "sys_platform == \"win32\"")))
    golden = DATA / "golden.pylock.toml"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(text, encoding="utf-8", newline="\n")
    assert text == golden.read_text(encoding="utf-8")


def test_dumps_is_independent_of_input_order() -> None:
    assert lockfile.dumps(resolution()) == lockfile.dumps(resolution(reverse=True))
    env = ("sys_platform == \"linux\"", "sys_platform == \"darwin\"")
    assert lockfile.dumps(resolution(environments=env)) == lockfile.dumps(resolution(environments=env, reverse=True))


def test_dumps_has_no_timestamps_versions_or_crlf() -> None:
    text = lockfile.dumps(resolution())
    assert text.endswith("\n") and not text.endswith("\n\n")
    assert "\r" not in text
    from lockenv import __version__

    assert __version__ not in text
    top = text.split("[[packages]]")[0]
    assert top.splitlines() == [
        'lock-version = "1.0"',
        'requires-python = ">=3.10"',
        'extras = ["fast"]',
        "dependency-groups = [",
        '    "dev",',
        '    "docs",',
        "]",
        "default-groups = []",  # plain installers: the runtime only (dev is [tool.lockenv]'s)
        'created-by = "lockenv"',
        "",
    ]  # no `environments` unless the user narrowed them


def test_dumps_output_is_valid_pep751() -> None:
    import tomllib

    text = lockfile.dumps(resolution(environments=("sys_platform == \"linux\"",)))
    lock = Pylock.from_dict(tomllib.loads(text))
    lock.validate()
    assert [str(e) for e in lock.environments or ()] == ['sys_platform == "linux"']
    assert [(p.name, str(p.version)) for p in lock.packages][:4] == [
        ("anyio", "4.4.0"), ("exceptiongroup", "1.2.2"), ("idna", "3.7"), ("numpy", "1.26.4"),
    ]
    numpy = [p for p in lock.packages if p.name == "numpy"]
    assert [str(p.marker) for p in numpy] == ['python_version < "3.11"', 'python_version >= "3.11"']
    wheel = numpy[1].wheels[0]
    assert wheel.filename == "numpy-2.1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
    assert wheel.upload_time == T0 and wheel.size and wheel.hashes["sha256"]
    pytest_pkg = next(p for p in lock.packages if p.name == "pytest")
    assert list(pytest_pkg.dependencies or ()) == [{"name": "exceptiongroup"}, {"name": "numpy", "version": "2.1.0"}]
    tool = (lock.tool or {})["lockenv"]
    assert tool["dependencies"] == ["anyio>=4", "numpy>=1.26"]
    assert tool["dependency-groups"] == {"dev": ["pytest>=8"], "docs": []}
    assert tool["exclude-newer"] == "2025-01-01T00:00:00Z"


def test_dumps_project_without_dependencies(tmp_path: Path) -> None:
    res = Resolution(dataclasses.replace(resolution().inputs, dependencies=(), optional_dependencies={},
                                         dependency_groups={}, default_groups=()), ())
    text = lockfile.dumps(res)
    assert "packages = []\n" in text
    path = tmp_path / "pylock.toml"
    lockfile.write(path, res)
    assert list(lockfile.load(path).packages) == []
    assert lockfile.read_pins(path) == {}


def test_dumps_rejects_a_file_without_hash() -> None:
    res = resolution()
    broken = dataclasses.replace(res.packages[1], wheels=(dataclasses.replace(res.packages[1].wheels[0], sha256=None),))
    with pytest.raises(LockfileError, match="has no sha256"):
        lockfile.dumps(dataclasses.replace(res, packages=(broken,)))


def test_dumps_rejects_an_invalid_lock() -> None:
    """Validation runs before anything is written: a wheel whose name disagrees is a bug."""
    res = resolution()
    broken = dataclasses.replace(res.packages[2], version="9.9")  # idna 9.9 with idna-3.7 files
    with pytest.raises(LockfileError, match="not valid PEP 751"):
        lockfile.dumps(dataclasses.replace(res, packages=(broken,)))


def test_the_serve_check_selects_from_what_the_written_text_holds() -> None:
    """The serve-check's lock is built from the mapping the text is rendered from, not parsed
    back from the text: the two must be the same lock, every optional field included."""
    import tomllib

    base = resolution(environments=('sys_platform != "win32"',))
    odd = dataclasses.replace(base.packages[0], marker='extra == "a\\b" or sys_platform != \'x"y\'')
    inputs = dataclasses.replace(base.inputs, indexes=("extra https://example.invalid/simple explicit",),
                                 sources=("anyio=extra",), required_environments=('sys_platform == "linux"',),
                                 exclude_newer_from_cli=True)
    for res in (base, Resolution(inputs, (odd, *base.packages[1:])), Resolution(base.inputs, ())):
        text = lockfile.dumps(res)
        assert Pylock.from_dict(tomllib.loads(text)) == lockfile.to_pylock(res)
        assert lockfile.to_pylock(res).to_dict() == Pylock.from_dict(tomllib.loads(text)).to_dict()


def test_string_quoting_round_trips() -> None:
    import tomllib

    from lockenv.lockfile.write import _str

    for value in ['plain', 'with "double"', "with 'single'", "both ' and \"", "back\\slash", "tab\there"]:
        assert tomllib.loads(f"v = {_str(value)}")["v"] == value


# --- write -----------------------------------------------------------------------------------


def test_write_creates_then_skips_identical_bytes(tmp_path: Path) -> None:
    path = tmp_path / "pylock.toml"
    assert lockfile.write(path, resolution()) is True
    assert path.read_text() == lockfile.dumps(resolution())
    before = path.stat()
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns - 10**9))
    stamped = path.stat().st_mtime_ns
    assert lockfile.write(path, resolution(reverse=True)) is False
    assert path.stat().st_mtime_ns == stamped
    assert path.stat().st_ino == before.st_ino
    assert [p.name for p in tmp_path.iterdir()] == ["pylock.toml"]  # no temp files left


def test_write_replaces_atomically_and_keeps_mode(tmp_path: Path) -> None:
    path = tmp_path / "pylock.toml"
    path.write_text("old\n")
    path.chmod(0o640)
    old_inode = path.stat().st_ino
    assert lockfile.write(path, resolution()) is True
    assert path.stat().st_mode & 0o777 == 0o640
    assert path.stat().st_ino != old_inode  # a new file renamed over the old one
    assert path.read_text().startswith('lock-version = "1.0"\n')
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pylock.toml"]


def test_write_failure_leaves_old_file(tmp_path: Path) -> None:
    path = tmp_path / "pylock.toml"
    path.write_text("old\n")
    bad = resolution()
    bad = dataclasses.replace(bad, packages=(dataclasses.replace(bad.packages[2], version="9.9"),))
    with pytest.raises(LockfileError):
        lockfile.write(path, bad)
    assert path.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pylock.toml"]


# --- load / select -----------------------------------------------------------------------------


def test_load_and_select_per_target(tmp_path: Path) -> None:
    path = tmp_path / "pylock.toml"
    lockfile.write(path, resolution())
    lock = lockfile.load(path)

    def chosen(python: str, platform: str, extras=(), groups=None) -> dict[str, str]:
        return {
            p.name: f"{p.version} {d.filename}"
            for p, d in lockfile.select(lock, environment=environment(python, platform), tags=tags(python, platform),
                                        extras=extras, groups=groups)
        }

    assert "pytest" not in chosen("3.10", "linux")  # the standard default-groups: runtime only
    linux310 = chosen("3.10", "linux", groups=["dev"])
    assert linux310 == {
        "anyio": "4.4.0 anyio-4.4.0-py3-none-any.whl",
        "exceptiongroup": "1.2.2 exceptiongroup-1.2.2-py3-none-any.whl",
        "idna": "3.7 idna-3.7-py3-none-any.whl",
        "numpy": "1.26.4 numpy-1.26.4-cp310-cp310-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "pytest": "8.3.2 pytest-8.3.2-py3-none-any.whl",
    }
    win312 = chosen("3.12", "win32", groups=[])
    assert win312["numpy"] == "2.1.0 numpy-2.1.0-cp312-cp312-win_amd64.whl"
    assert "pytest" not in win312 and "exceptiongroup" not in win312
    assert "uvloop" in chosen("3.12", "linux", extras=["fast"])
    assert "uvloop" not in chosen("3.12", "win32", extras=["fast"])
    # macOS has no numpy 2.1 wheel: the sdist is the fallback
    assert chosen("3.12", "darwin")["numpy"] == "2.1.0 numpy-2.1.0.tar.gz"


def test_select_error_names_environment_and_package(tmp_path: Path) -> None:
    path = tmp_path / "pylock.toml"
    lockfile.write(path, resolution())
    lock = lockfile.load(path)
    with pytest.raises(LockfileError) as info:  # numpy 1.26.4 has no macOS wheel and no sdist
        lockfile.select(lock, environment=environment("3.10", "darwin", "arm64"), tags=tags("3.10", "darwin"),
                        extras=(), groups=None)
    message = str(info.value)
    assert "python_full_version 3.10.0, sys_platform darwin, platform_machine arm64" in message
    assert "`numpy 1.26.4` has no file for this environment" in message  # the version too
    assert info.value.context.package == "numpy"
    with pytest.raises(LockfileError, match="does not satisfy the Python version"):
        lockfile.select(lock, environment=environment("3.9", "linux"), tags=tags("3.9", "linux"), extras=(), groups=None)
    with pytest.raises(LockfileError, match="Undeclared extras: nope"):
        lockfile.select(lock, environment=environment("3.12", "linux"), tags=tags("3.12", "linux"),
                        extras=["nope"], groups=None)


def test_load_invalid_toml_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "pylock.toml"
    path.write_text('lock-version = "1.0"\ncreated-by = \n')
    with pytest.raises(LockfileError) as info:
        lockfile.load(path)
    assert str(info.value).startswith(f"{path}:2:14: invalid TOML: ")
    assert info.value.context.line == 2


def test_load_invalid_lock_names_key_and_package(tmp_path: Path) -> None:
    path = tmp_path / "pylock.toml"
    lockfile.write(path, resolution())
    text = path.read_text().replace('name = "idna-3.7-py3-none-any.whl"', 'name = "idna-3.8-py3-none-any.whl"')
    path.write_text(text)
    with pytest.raises(LockfileError) as info:
        lockfile.load(path)
    message = str(info.value)
    assert message.startswith(f"{path} is not a valid pylock file: ")
    assert "at `packages[2].wheels[0]` in package `idna 3.7`" in message
    assert info.value.context.package == "idna 3.7"


def test_load_missing_and_unsupported_version(tmp_path: Path) -> None:
    with pytest.raises(LockfileError, match="does not exist"):
        lockfile.load(tmp_path / "pylock.toml")
    path = tmp_path / "pylock.toml"
    path.write_text('lock-version = "2.0"\ncreated-by = "x"\npackages = []\n')
    with pytest.raises(LockfileError, match="pylock version 2.0 is not supported"):
        lockfile.load(path)


def test_load_missing_required_key(tmp_path: Path) -> None:
    path = tmp_path / "pylock.toml"
    path.write_text('lock-version = "1.0"\npackages = []\n')
    with pytest.raises(LockfileError, match="Missing required value at `created-by`"):
        lockfile.load(path)


# --- read_inputs / read_pins -----------------------------------------------------------------


def test_read_inputs_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "pylock.toml"
    res = resolution(environments=("sys_platform == \"linux\"",))
    lockfile.write(path, res)
    assert lockfile.read_inputs(path) == lockfile.canonical_inputs(res.inputs)


def test_read_inputs_of_foreign_and_missing_lock(tmp_path: Path) -> None:
    assert lockfile.read_inputs(tmp_path / "pylock.toml") is None
    path = tmp_path / "pylock.toml"
    path.write_text('lock-version = "1.0"\ncreated-by = "uv"\npackages = []\n')
    assert lockfile.read_inputs(path) is None
    path.write_text('lock-version = "1.0"\ncreated-by = "x"\npackages = []\n[tool.lockenv]\ndependencies = "x"\n')
    with pytest.raises(LockfileError, match=r"\[tool.lockenv\] is malformed"):
        lockfile.read_inputs(path)


def test_read_pins(tmp_path: Path) -> None:
    path = tmp_path / "pylock.toml"
    assert lockfile.read_pins(path) == {}
    lockfile.write(path, resolution())
    pins = lockfile.read_pins(path)
    assert pins["numpy"] == [("1.26.4", 'python_version < "3.11"'), ("2.1.0", 'python_version >= "3.11"')]
    assert pins["idna"] == [("3.7", None)]
    assert sorted(pins) == ["anyio", "exceptiongroup", "idna", "numpy", "pytest", "uvloop"]


# --- freshness -------------------------------------------------------------------------------

BASE = """
[project]
name = "app"
requires-python = ">=3.10"
dependencies = ["numpy>=1.26", "anyio>=4"]

[project.optional-dependencies]
fast = ["uvloop>=0.19; sys_platform != 'win32'"]

[dependency-groups]
dev = ["pytest>=8"]
docs = []

[tool.lockenv]
exclude-newer = "2025-01-01"
"""


@pytest.fixture
def locked(project: Path) -> Path:
    """A project whose pylock.toml is fresh."""
    (project / "pyproject.toml").write_text(BASE)
    spec = manifest.load(project, environ={"LOCKENV_INDEX_URL": INDEX})
    res = resolution()
    assert lockfile.inputs_from_spec(spec) == lockfile.canonical_inputs(res.inputs)
    lockfile.write(project / "pylock.toml", dataclasses.replace(res, inputs=lockfile.inputs_from_spec(spec)))
    return project


def reasons(project: Path, pyproject: str | None = None, env: dict[str, str] | None = None) -> list[tuple[str, str, str]]:
    if pyproject is not None:
        (project / "pyproject.toml").write_text(textwrap.dedent(pyproject))
    spec = manifest.load(project, environ=env or {"LOCKENV_INDEX_URL": INDEX})
    return [(r.kind, r.subject, str(r)) for r in lockfile.stale_reasons(spec, project / "pylock.toml")]


def test_fresh_lock_has_no_reasons(locked: Path) -> None:
    assert reasons(locked) == []


def test_reordering_and_respelling_is_not_a_change(locked: Path) -> None:
    text = BASE.replace('["numpy>=1.26", "anyio>=4"]', '["AnyIO >= 4", "NumPy>=1.26", "anyio>=4"]')
    assert reasons(locked, text) == []


def test_dependency_added_and_removed(locked: Path) -> None:
    text = BASE.replace('["numpy>=1.26", "anyio>=4"]', '["numpy>=1.26", "httpx>=0.27"]')
    assert reasons(locked, text) == [
        ("dependency-added", "httpx>=0.27", "added `httpx>=0.27` to dependencies"),
        ("dependency-removed", "anyio>=4", "removed `anyio>=4` from dependencies"),
    ]


def test_requires_python_changed(locked: Path) -> None:
    assert reasons(locked, BASE.replace('">=3.10"', '">=3.11"')) == [
        ("requires-python", "requires-python", "changed requires-python from `>=3.10` to `>=3.11`"),
    ]


def test_extras_added_removed_changed(locked: Path) -> None:
    text = BASE.replace(
        "fast = [\"uvloop>=0.19; sys_platform != 'win32'\"]",
        'fast = ["uvloop>=0.20"]\nsocks = ["pysocks"]',
    )
    assert reasons(locked, text) == [
        ("extra-changed", "fast",
         "changed extra `fast`: added `uvloop>=0.20`, removed `uvloop>=0.19; sys_platform != \"win32\"`"),
        ("extra-added", "socks", "added extra `socks`"),
    ]
    text = BASE.replace("fast = [\"uvloop>=0.19; sys_platform != 'win32'\"]", "")
    assert reasons(locked, text) == [("extra-removed", "fast", "removed extra `fast`")]


def test_groups_changed_and_default_groups(locked: Path) -> None:
    text = BASE.replace('dev = ["pytest>=8"]', 'dev = ["pytest>=8", "ruff"]\nlint = ["ruff"]').replace("docs = []\n", "")
    assert reasons(locked, text) == [
        ("group-changed", "dev", "changed dependency group `dev`: added `ruff`"),
        ("group-removed", "docs", "removed dependency group `docs`"),
        ("group-added", "lint", "added dependency group `lint`"),
    ]
    text = BASE + 'default-groups = ["docs"]\n'
    assert reasons(locked, text) == [
        ("default-groups", "default-groups", "changed default-groups from [`dev`] to [`docs`]"),
    ]


def test_index_url_changed_is_redacted(locked: Path) -> None:
    got = reasons(locked, env={"LOCKENV_INDEX_URL": "https://user:s3cret@other.example/simple/"})
    assert got == [("index-url", "index-url",
                    f"changed index-url from `{INDEX}` to `https://other.example/simple/`")]
    assert "s3cret" not in str(got)


def test_credentials_alone_are_not_a_change(locked: Path) -> None:
    assert reasons(locked, env={"LOCKENV_INDEX_URL": "https://u:p@index.example/simple/"}) == []


def test_exclude_newer_changed_added_removed(locked: Path) -> None:
    assert reasons(locked, BASE.replace('"2025-01-01"', '"2025-02-01T10:00:00Z"')) == [
        ("exclude-newer", "exclude-newer",
         "changed exclude-newer from `2025-01-01T00:00:00Z` to `2025-02-01T10:00:00Z`"),
    ]
    assert reasons(locked, BASE.replace('exclude-newer = "2025-01-01"', "")) == [
        ("exclude-newer", "exclude-newer", "removed exclude-newer `2025-01-01T00:00:00Z`"),
    ]


def test_environments_changed(locked: Path) -> None:
    assert reasons(locked, BASE + "environments = [\"sys_platform == 'linux'\"]\n") == [
        ("environments", "environments", 'changed environments: added `sys_platform == "linux"`'),
    ]


def test_missing_foreign_and_invalid_lock(locked: Path) -> None:
    lock = locked / "pylock.toml"
    lock.unlink()
    assert reasons(locked) == [("missing", "pylock.toml", "pylock.toml is missing")]
    lock.write_text('lock-version = "1.0"\ncreated-by = "uv"\npackages = []\n')
    assert reasons(locked) == [
        ("foreign", "pylock.toml", "pylock.toml was not written by lockenv (no [tool.lockenv])"),
    ]
    lock.write_text('lock-version = "1.0"\ncreated-by = \n')
    [(kind, _, text)] = reasons(locked)
    assert kind == "invalid"
    assert text.startswith("pylock.toml is invalid: 2:14: invalid TOML")


def test_the_recorded_index_url_carries_no_credentials(project: Path) -> None:
    (project / "pyproject.toml").write_text(BASE)
    for url in ["https://u:p@h.example/simple/", "https://token@h.example/x?y=1"]:
        spec = manifest.load(project, environ={"LOCKENV_INDEX_URL": url})
        recorded = lockfile.inputs_from_spec(spec).index_url
        assert "@" not in recorded and "h.example" in recorded


def test_freshness_path_stays_light(locked: Path) -> None:
    """The no-op path: no tomlkit, no packaging.pylock, no httpx."""
    code = (
        "import sys; from pathlib import Path; from lockenv import manifest, lockfile; "
        f"p = Path({str(locked)!r}); "
        f"s = manifest.load(p, environ={{'LOCKENV_INDEX_URL': {INDEX!r}}}); "
        "assert lockfile.stale_reasons(s, p / 'pylock.toml') == []; "
        "lockfile.read_pins(p / 'pylock.toml'); "
        "print(sorted(m for m in ('tomlkit', 'httpx', 'packaging.pylock', 'lockenv.index.client', 'lockenv.index.http') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_public_api_is_the_contract() -> None:
    """The names TEAM.md promises, and nothing private, are exported."""
    contract = {"LOCK_NAME", "inputs_from_spec", "dumps", "write", "read_inputs", "read_pins",
                "stale_reasons", "load", "select", "StaleReason"}
    assert contract <= set(lockfile.__all__)
    assert all(hasattr(lockfile, name) and not name.startswith("_") for name in lockfile.__all__)
    assert "load" in manifest.__all__ and all(hasattr(manifest, n) for n in manifest.__all__)


# --- the serve-check (plain expectations) and pin diffs --------------------------------------


@dataclasses.dataclass(frozen=True)
class Expect:
    label: str
    environment: dict[str, str]
    tags: tuple[Tag, ...]
    pins: frozenset[tuple[str, str]]
    unserved: frozenset[str] = frozenset()


@dataclasses.dataclass(frozen=True)
class Outside:
    label: str
    environment: dict[str, str]
    required: frozenset[str]


def _expect(python: str, platform: str, pins: dict[str, str]) -> Expect:
    return Expect(f"Python {python} on {platform}", environment(python, platform), tuple(tags(python, platform)),
                  frozenset(pins.items()))


def test_the_serve_check_accepts_a_lock_that_selects_each_targets_pins() -> None:
    on_312 = {"anyio": "4.4.0", "idna": "3.7", "numpy": "2.1.0", "pytest": "8.3.2", "uvloop": "0.19.0"}
    on_310 = {"anyio": "4.4.0", "exceptiongroup": "1.2.2", "idna": "3.7", "numpy": "1.26.4", "pytest": "8.3.2"}
    lockfile.check_serves(
        resolution(),
        [_expect("3.12", "linux", on_312), _expect("3.10", "win32", on_310)],
        [Outside("Python 3.13 on linux", environment("3.13"), frozenset({"anyio", "numpy"}))],
    )


def test_the_serve_check_selects_a_package_left_unserved_by_its_marker_alone() -> None:
    # numpy 1.26.4 and uvloop have no macOS wheel and no sdist: lock warned, the target pins them
    on_mac = {"anyio": "4.4.0", "exceptiongroup": "1.2.2", "idna": "3.7", "numpy": "1.26.4", "pytest": "8.3.2",
              "uvloop": "0.19.0"}
    mac = dataclasses.replace(_expect("3.10", "darwin", on_mac), environment=environment("3.10", "darwin", "arm64"))
    with pytest.raises(LockfileError, match="does not serve Python 3.10 on darwin"):
        lockfile.check_serves(resolution(), [mac])
    lockfile.check_serves(resolution(), [dataclasses.replace(mac, unserved=frozenset({"numpy", "uvloop"}))])
    wrong = dataclasses.replace(mac, unserved=frozenset({"numpy", "uvloop"}), pins=frozenset({**on_mac, "numpy": "2.1.0"}.items()))
    with pytest.raises(LockfileError) as info:
        lockfile.check_serves(resolution(), [wrong])
    assert list(info.value.details) == ["unexpected: numpy 1.26.4", "missing: numpy 2.1.0"]


def test_the_serve_check_names_the_target_and_what_differs() -> None:
    wrong = {"anyio": "4.4.0", "idna": "3.7", "numpy": "1.26.4", "pytest": "8.3.2"}
    with pytest.raises(LockfileError) as info:
        lockfile.check_serves(resolution(), [_expect("3.12", "win32", wrong)])
    assert "Python 3.12 on win32" in info.value.message
    assert list(info.value.details) == ["unexpected: numpy 2.1.0", "missing: numpy 1.26.4"]


def test_the_serve_check_refuses_two_versions_of_a_name_and_a_python_an_entry_excludes() -> None:
    on_312 = {"anyio": "4.4.0", "idna": "3.7", "numpy": "2.1.0", "pytest": "8.3.2", "uvloop": "0.19.0"}
    both = dataclasses.replace(resolution(), packages=tuple(
        dataclasses.replace(p, marker=None) if (p.name, p.version) == ("numpy", "1.26.4") else p
        for p in resolution().packages))
    with pytest.raises(LockfileError, match="does not serve Python 3.12 on linux: .*multiple packages .*'numpy'"):
        lockfile.check_serves(both, [_expect("3.12", "linux", on_312)])
    narrow = dataclasses.replace(resolution(), packages=tuple(
        dataclasses.replace(p, requires_python=">=3.13") if p.name == "idna" else p
        for p in resolution().packages))
    with pytest.raises(LockfileError, match="does not serve Python 3.12 on linux: .*'>=3.13' of package 'idna'"):
        lockfile.check_serves(narrow, [_expect("3.12", "linux", on_312)])


def test_the_serve_check_refuses_a_lock_that_misses_a_required_name_outside_the_targets() -> None:
    with pytest.raises(LockfileError) as info:
        lockfile.check_serves(
            resolution(), [], [Outside("Python 3.13 on linux", environment("3.13"), frozenset({"httpx"}))]
        )
    assert "Python 3.13 on linux, an environment outside its targets" in info.value.message
    assert list(info.value.details) == ["httpx: required but not selected"]


def test_diff_pins_says_what_moved_and_why_as_data(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(textwrap.dedent("""
        [project]
        name = "app"
        version = "0.1"
        requires-python = ">=3.10"
        dependencies = ["numpy>=2", "anyio>=4"]
    """))
    spec = manifest.load(tmp_path, environ={"LOCKENV_INDEX_URL": INDEX})
    old = {"numpy": [("1.26.4", None)], "anyio": [("4.4.0", None)], "sniffio": [("1.3.1", None)]}
    recorded = dataclasses.replace(resolution().inputs, dependencies=("numpy>=1.26", "anyio>=4"))
    changes = {c.name: c for c in lockfile.diff_pins(old, resolution(), spec, recorded)}
    assert sorted(changes) == ["exceptiongroup", "idna", "numpy", "pytest", "sniffio", "uvloop"]
    numpy = changes["numpy"]
    assert (numpy.kind, numpy.before, numpy.after) == ("moved", ("1.26.4",), ("1.26.4", "2.1.0"))
    assert numpy.direct == ("numpy>=2", "main") and numpy.changed_requirement == "numpy>=2"
    assert changes["sniffio"].kind == "removed" and changes["sniffio"].after == ()
    idna = changes["idna"]
    assert idna.kind == "added" and idna.direct is None and idna.required_by == ("anyio 4.4.0",)

"""manifest.load: pyproject.toml → ProjectSpec, and every bad input named with file and line."""

from __future__ import annotations

import sys
import textwrap
from datetime import datetime, timezone
from pathlib import Path

import pytest

from lockenv import manifest
from lockenv.errors import ManifestError
from lockenv.ui import render_error

INDEX = "https://index.example/simple/"


def write(project: Path, text: str) -> Path:
    path = project / "pyproject.toml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def load(project: Path):
    return manifest.load(project, environ={"LOCKENV_INDEX_URL": INDEX})


def error(project: Path, text: str, environ: dict[str, str] | None = None) -> ManifestError:
    write(project, text)
    with pytest.raises(ManifestError) as info:
        manifest.load(project, environ=environ if environ is not None else {"LOCKENV_INDEX_URL": INDEX})
    # What the user sees is the rendered error: it must never be empty nor a repr.
    assert render_error(info.value).startswith("error: ")
    return info.value


FULL = """
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "My_App"
version = "0.1"
requires-python = ">=3.10, <4"
dependencies = [
    "Requests[SOCKS,Security] >= 2.0",
    "httpx",
    'tomli; python_version < "3.11"',
]

[project.optional-dependencies]
Fast = ["uvloop; sys_platform != 'win32'"]
docs = []

[dependency-groups]
Test = ["pytest>=8", "Pytest_XDist"]
lint = ["ruff"]
dev = [{include-group = "test"}, {include-group = "lint"}, "pytest>=8"]

[tool.lockenv]
environments = ["sys_platform == 'linux'", "sys_platform == 'darwin'"]
exclude-newer = "2025-01-31T12:00:00+01:00"
"""


def test_full_manifest_is_normalised(project: Path) -> None:
    write(project, FULL)
    spec = manifest.load(project, environ={"LOCKENV_INDEX_URL": INDEX})
    assert spec.root == str(project)
    assert spec.pyproject == str(project / "pyproject.toml")
    assert spec.name == "my-app"
    assert spec.requires_python == "<4,>=3.10"
    assert spec.requires_python_declared is True
    assert spec.dependencies == (
        "requests[security,socks]>=2.0",
        "httpx",
        'tomli; python_version < "3.11"',
    )
    assert spec.optional_dependencies == {"docs": (), "fast": ('uvloop; sys_platform != "win32"',)}
    # include-group expanded in order, duplicates dropped, names normalised
    assert spec.dependency_groups == {
        "dev": ("pytest>=8", "pytest-xdist", "ruff"),
        "lint": ("ruff",),
        "test": ("pytest>=8", "pytest-xdist"),
    }
    assert spec.default_groups == ("dev",)
    assert spec.index_url == INDEX
    assert spec.environments == ('sys_platform == "linux"', 'sys_platform == "darwin"')
    assert spec.exclude_newer == datetime(2025, 1, 31, 11, 0, tzinfo=timezone.utc)
    assert spec.has_build_system is True
    assert spec.line_of["[project]"] == 5
    assert spec.line_of["dependencies"] == 9
    assert spec.line_of["requires-python"] == 8
    assert spec.line_of["[tool.lockenv]"] == 24
    assert spec.line_of["[dependency-groups]"] == 19


def test_minimal_manifest_defaults(project: Path) -> None:
    write(project, """
        [project]
        name = "app"
    """)
    spec = manifest.load(project, environ={"LOCKENV_INDEX_URL": INDEX})
    assert spec.requires_python == f">={sys.version_info[0]}.{sys.version_info[1]}"
    assert spec.requires_python_declared is False
    assert spec.dependencies == ()
    assert spec.optional_dependencies == {}
    assert spec.dependency_groups == {}
    assert spec.default_groups == ()
    assert spec.environments == ()
    assert spec.exclude_newer is None
    assert spec.has_build_system is False
    assert spec.line_of["[project]"] == 1


def test_default_groups_without_dev(project: Path) -> None:
    write(project, """
        [project]
        name = "app"
        [dependency-groups]
        test = ["pytest"]
    """)
    assert load(project).default_groups == ()


def test_default_groups_explicit(project: Path) -> None:
    write(project, """
        [project]
        name = "app"
        [dependency-groups]
        dev = ["ruff"]
        Docs = ["sphinx"]
        [tool.lockenv]
        default-groups = ["docs"]
    """)
    assert load(project).default_groups == ("docs",)


def test_index_url_env_wins_over_manifest(project: Path) -> None:
    write(project, """
        [project]
        name = "app"
        [tool.lockenv]
        index-url = "https://from-file.example/simple/"
    """)
    assert manifest.load(project, environ={}).index_url == "https://from-file.example/simple/"
    env = {"LOCKENV_INDEX_URL": "http://127.0.0.1:9/pypi"}
    assert manifest.load(project, environ=env).index_url == "http://127.0.0.1:9/pypi"


def test_index_url_default_is_the_index_constant(project: Path) -> None:
    write(project, """
        [project]
        name = "app"
    """)
    from lockenv.urls import DEFAULT_INDEX_URL

    assert manifest.load(project, environ={}).index_url == DEFAULT_INDEX_URL


def test_environ_defaults_to_process_environment(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(project, '[project]\nname = "app"\n')
    monkeypatch.setenv("LOCKENV_INDEX_URL", "http://127.0.0.1:1/simple/")
    assert manifest.load(project).index_url == "http://127.0.0.1:1/simple/"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('"2025-01-31"', datetime(2025, 1, 31, tzinfo=timezone.utc)),
        ('"2025-01-31T10:20:30Z"', datetime(2025, 1, 31, 10, 20, 30, tzinfo=timezone.utc)),
        ('"2025-01-31T10:20:30"', datetime(2025, 1, 31, 10, 20, 30, tzinfo=timezone.utc)),
        ("2025-01-31T10:20:30-02:00", datetime(2025, 1, 31, 12, 20, 30, tzinfo=timezone.utc)),
        ("2025-01-31", datetime(2025, 1, 31, tzinfo=timezone.utc)),
    ],
)
def test_exclude_newer_forms(project: Path, value: str, expected: datetime) -> None:
    write(project, f'[project]\nname = "app"\n[tool.lockenv]\nexclude-newer = {value}\n')
    assert load(project).exclude_newer == expected


# --- bad input -----------------------------------------------------------------------------


def test_missing_pyproject(project: Path) -> None:
    with pytest.raises(ManifestError) as info:
        manifest.load(project, environ={})
    assert str(info.value) == f"no pyproject.toml in {project}"
    assert "--project" in (info.value.hint or "")


def test_invalid_toml_names_file_line_and_column(project: Path) -> None:
    exc = error(project, """
        [project]
        name = "app"
        dependencies = [
            "httpx"
            "rich",
        ]
    """)
    path = project / "pyproject.toml"
    assert exc.context.line == 5 and exc.context.column == 5
    assert str(exc).startswith(f"{path}:5:5: invalid TOML: ")
    assert exc.details == ('    "rich",', "    ^")


def test_invalid_toml_at_end_of_file(project: Path) -> None:
    exc = error(project, '[project]\nname = "app"\ndependencies = [\n')
    assert "invalid TOML" in str(exc)
    assert exc.context.line is not None


def test_no_project_table(project: Path) -> None:
    exc = error(project, '[tool.other]\nx = 1\n')
    assert "no [project] table" in str(exc)


def test_missing_name(project: Path) -> None:
    exc = error(project, '[project]\nversion = "1"\n')
    assert str(exc) == f"{project / 'pyproject.toml'}:1: `project.name` is missing"


def test_invalid_name(project: Path) -> None:
    exc = error(project, '[project]\nname = "-bad name"\n')
    assert "invalid project name `-bad name`" in str(exc)
    assert exc.context.line == 2


def test_invalid_requirement_is_quoted_with_key_and_line(project: Path) -> None:
    exc = error(project, """
        [project]
        name = "app"
        dependencies = [
            "httpx",
            "rich",
            "foo >> 1",
        ]
    """)
    path = project / "pyproject.toml"
    assert str(exc).startswith(f"{path}:6: invalid requirement `foo >> 1` in `project.dependencies[2]`: ")
    assert exc.context.key == "project.dependencies[2]"
    assert exc.context.line == 6
    assert exc.details  # packaging's caret pointing into the string
    assert "^" in exc.details[-1]


def test_invalid_requirement_in_extra(project: Path) -> None:
    exc = error(project, """
        [project]
        name = "app"
        [project.optional-dependencies]
        fast = ["uvloop;;"]
    """)
    assert "invalid requirement `uvloop;;` in `project.optional-dependencies.fast[0]`" in str(exc)
    assert exc.context.line == 4


def test_invalid_requirement_in_group(project: Path) -> None:
    exc = error(project, """
        [project]
        name = "app"
        [dependency-groups]
        dev = [
            "pytest",
            "ruff=1",
        ]
    """)
    assert "invalid requirement `ruff=1` in `dependency-groups.dev[1]`" in str(exc)
    assert exc.context.line == 6


def test_dependencies_not_a_list(project: Path) -> None:
    exc = error(project, '[project]\nname = "app"\ndependencies = "httpx"\n')
    assert "`project.dependencies` must be an array of strings, not a string" in str(exc)
    assert exc.context.line == 3


def test_dynamic_dependencies_refused(project: Path) -> None:
    exc = error(project, '[project]\nname = "app"\ndynamic = ["dependencies"]\n')
    assert "`dependencies` is listed in `project.dynamic`" in str(exc)


def test_invalid_requires_python(project: Path) -> None:
    exc = error(project, '[project]\nname = "app"\nrequires-python = ">=3.x"\n')
    assert str(exc).startswith(f"{project / 'pyproject.toml'}:3: invalid `requires-python` `>=3.x`")
    assert "requires-python" in (exc.hint or "")


def test_empty_requires_python(project: Path) -> None:
    exc = error(project, '[project]\nname = "app"\nrequires-python = ""\n')
    assert "is empty" in str(exc)


def test_invalid_marker_in_environments(project: Path) -> None:
    exc = error(project, """
        [project]
        name = "app"
        [tool.lockenv]
        environments = [
            "sys_platform == 'linux'",
            "os_nam == 'nt'",
        ]
    """)
    assert "invalid marker `os_nam == 'nt'` in `tool.lockenv.environments[1]`" in str(exc)
    assert exc.context.line == 6


@pytest.mark.parametrize("value", ['"yesterday"', '"2025-13-01"', "12", '"2025-01-01T25:00:00Z"'])
def test_bad_exclude_newer(project: Path, value: str) -> None:
    exc = error(project, f'[project]\nname = "app"\n[tool.lockenv]\nexclude-newer = {value}\n')
    assert "`tool.lockenv.exclude-newer`: invalid timestamp" in str(exc)
    assert exc.context.line == 4
    assert "2025-01-31" in str(exc)  # says which forms are accepted


def test_unknown_include_group(project: Path) -> None:
    exc = error(project, """
        [project]
        name = "app"
        [dependency-groups]
        test = ["pytest"]
        dev = [
            {include-group = "tests"},
        ]
    """)
    assert "dependency group `dev` includes unknown group `tests`" in str(exc)
    assert str(exc).startswith(f"{project / 'pyproject.toml'}:6:")
    assert "`test`" in (exc.hint or "")


def test_cyclic_include_group(project: Path) -> None:
    exc = error(project, """
        [project]
        name = "app"
        [dependency-groups]
        a = [{include-group = "b"}]
        b = ["x", {include-group = "c"}]
        c = [{include-group = "a"}]
    """)
    assert "dependency groups include each other in a cycle: `a` → `b` → `c` → `a`" in str(exc)
    assert exc.context.line == 4


def test_self_including_group(project: Path) -> None:
    exc = error(project, """
        [project]
        name = "app"
        [dependency-groups]
        dev = ["x", {include-group = "dev"}]
    """)
    assert "cycle: `dev` → `dev`" in str(exc)


def test_malformed_group_item(project: Path) -> None:
    exc = error(project, """
        [project]
        name = "app"
        [dependency-groups]
        dev = [{include = "x"}]
    """)
    assert "`dependency-groups.dev[0]` must be a requirement string or `{include-group = \"name\"}`" in str(exc)


def test_default_groups_naming_a_missing_group(project: Path) -> None:
    exc = error(project, """
        [project]
        name = "app"
        [dependency-groups]
        test = ["pytest"]
        [tool.lockenv]
        default-groups = ["test", "lint"]
    """)
    assert "`tool.lockenv.default-groups` names `lint`, which is not a dependency group" in str(exc)
    assert exc.context.line == 6
    assert "`test`" in (exc.hint or "")


def test_bad_index_url(project: Path) -> None:
    exc = error(project, '[project]\nname = "app"\n[tool.lockenv]\nindex-url = "ftp://x/"\n', environ={})
    assert "`tool.lockenv.index-url` is not an http(s) URL" in str(exc)
    assert exc.context.line == 4


def test_bad_index_url_from_environment(project: Path) -> None:
    exc = error(project, '[project]\nname = "app"\n', environ={"LOCKENV_INDEX_URL": "not a url"})
    assert str(exc) == "LOCKENV_INDEX_URL is not an http(s) URL"


def test_unknown_tool_key_is_named(project: Path) -> None:
    exc = error(project, '[project]\nname = "app"\n[tool.lockenv]\nindex_url = "https://x/simple/"\n')
    assert "unknown key `index_url` in [tool.lockenv]" in str(exc)
    assert "index-url" in (exc.hint or "")


@pytest.mark.parametrize(
    ("table", "what"), [("project.optional-dependencies", "extra"), ("dependency-groups", "dependency group")]
)
def test_invalid_extra_or_group_name(project: Path, table: str, what: str) -> None:
    exc = error(project, f'[project]\nname = "app"\n[{table}]\n"fa st" = ["x"]\n')
    assert f"invalid {what} name `fa st`" in str(exc)
    assert exc.context.line == 4


def test_duplicate_extra_spellings(project: Path) -> None:
    exc = error(project, """
        [project]
        name = "app"
        [project.optional-dependencies]
        Fast = ["a"]
        fast = ["b"]
    """)
    assert "extras `Fast` and `fast` are the same name" in str(exc)


def test_load_does_not_import_tomlkit_or_httpx(project: Path, tmp_path: Path) -> None:
    """The no-op path reads the manifest: it must stay light."""
    import subprocess

    write(project, FULL)
    code = (
        "import sys; from pathlib import Path; from lockenv import manifest; "
        f"manifest.load(Path({str(project)!r}), environ={{'LOCKENV_INDEX_URL': {INDEX!r}}}); "
        "print(sorted(m for m in ('tomlkit', 'httpx', 'packaging.pylock') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_default_index_url_does_not_import_httpx(project: Path) -> None:
    import subprocess

    write(project, '[project]\nname = "app"\n')
    code = (
        "import sys; from pathlib import Path; from lockenv import manifest; "
        f"manifest.load(Path({str(project)!r}), environ={{}}); "
        "print('httpx' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_lock_file_marker_variable_in_a_requirement_is_named(project: Path) -> None:
    """`dependency_groups` (and `extras`) exist in PEP 751 lock files only: in a group's requirement
    packaging cannot evaluate them (the lock failed with an internal error)."""
    exc = error(project, """
        [project]
        name = "app"
        [dependency-groups]
        dev = ["pytest", "six; python_version < '3.11' or 'dev' in dependency_groups"]
    """)
    assert "the marker variable `dependency_groups` exists only in lock files" in str(exc)
    assert "`dependency-groups.dev[1]`" in str(exc) and exc.context.line == 4
    assert "[dependency-groups]" in (exc.hint or "")
    write(project, """
        [project]
        name = "app"
        dependencies = ["six; extra == 'x' or python_version < '3.11'"]
    """)
    assert load(project).dependencies == ('six; extra == "x" or python_version < "3.11"',)

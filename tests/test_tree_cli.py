"""`lockenv tree` and `lockenv why` through the CLI: from pylock.toml alone (the index is
stopped before they run), forks, markers on edges, extras and groups, --invert, --depth, --json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import run_lockenv
from fixtures.index import IndexServer

PYPROJECT = """\
[project]
name = "app"
version = "0.1"
requires-python = ">=3.10,<3.14"
dependencies = ["alpha", "marked", "native", "modern", "feat[cli]; python_version >= '3.11'"]

[project.optional-dependencies]
feat = ["feat[all]"]

[dependency-groups]
dev = ["diamond", "flasky"]
"""


@pytest.fixture(scope="module")
def locked(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A locked project whose index is gone by the time the tests run."""
    project = tmp_path_factory.mktemp("app")
    (project / "pyproject.toml").write_text(PYPROJECT)
    with IndexServer("base") as srv:
        r = run_lockenv("lock", cwd=project, env={"LOCKENV_INDEX_URL": srv.json_url,
                                                  "LOCKENV_CACHE_DIR": str(project / ".cache")})
        assert r.code == 0, r.output
    return project


def offline(*args: str, cwd: Path):  # type: ignore[no-untyped-def]
    # The index URL points at a closed port: any request would fail loudly.
    return run_lockenv(*args, cwd=cwd, env={"LOCKENV_INDEX_URL": "http://127.0.0.1:9/pypi"})


def test_tree_from_the_lock_alone_with_forks_and_markers(locked: Path) -> None:
    r = offline("tree", cwd=locked)
    assert r.code == 0, r.output
    assert r.stdout.splitlines() == [
        "app v0.1",
        "├── alpha v2.0",
        "│   └── beta v2.0",
        "│       └── gamma v1.2",
        '├── feat v1.0 ; python_version >= "3.11"',
        "│   ├── clicky-cli v1.0",
        "│   └── gamma v1.2",
        "├── marked v1.0",
        '│   ├── backport v1.0 ; python_version < "3.11"',
        '│   └── winhelper v0.4 ; sys_platform == "win32"',
        # the fork: each version of `modern` under its own condition
        '├── modern v1.5 ; python_version < "3.12"',
        '├── modern v2.0 ; python_version >= "3.12"',
        "├── native v1.0",
        "│   ├── gamma v1.2",
        '│   └── winhelper v0.4 ; sys_platform == "win32"',
        "├── feat v1.0 (extra: feat) (*)",
        "├── diamond v1.0 (group: dev)",
        "│   ├── left v1.0",
        "│   │   └── cee v2.0",
        "│   └── right v1.0",
        "│       └── cee v2.0",
        "└── flasky v2.0 (group: dev)",
        "    ├── alpha v2.0 (*)",
        "    └── werky v2.0",
        "",
        "(*) shown above with what it needs",
    ]


def test_tree_invert_package_and_depth(locked: Path) -> None:
    r = offline("tree", "--invert", "--package", "Gamma", cwd=locked)
    assert r.code == 0, r.output
    assert r.stdout.splitlines() == [
        "gamma v1.2",
        "├── beta v2.0",
        "│   └── alpha v2.0",
        "│       ├── app",
        "│       └── flasky v2.0",
        "│           └── app (group: dev)",
        "├── feat v1.0",
        '│   ├── app ; python_version >= "3.11"',
        "│   └── app (extra: feat)",
        "└── native v1.0",
        "    └── app",
    ]
    r = offline("tree", "--depth", "1", cwd=locked)
    assert r.code == 0, r.output
    lines = r.stdout.splitlines()
    assert "├── alpha v2.0 ..." in lines and not any("beta" in line for line in lines)
    inverted = offline("tree", "-i", cwd=locked).stdout
    assert inverted.startswith("backport v1.0\n└── marked v1.0 ; python_version < \"3.11\"\n    └── app\n")
    assert "modern v2.0\n└── app ; python_version >= \"3.12\"\n" in inverted
    r = offline("tree", "--package", "gama", cwd=locked)
    assert r.code == 2 and "`gama` is not in pylock.toml" in r.stderr and "`gamma`" in r.stderr


def test_why_lists_every_path_with_markers(locked: Path) -> None:
    r = offline("why", "gamma", cwd=locked)
    assert r.code == 0, r.output
    assert r.stdout.splitlines() == [
        "gamma v1.2: 5 paths",
        'app → feat v1.0 [python_version >= "3.11"] → gamma v1.2',
        "app → native v1.0 → gamma v1.2",
        "app → alpha v2.0 → beta v2.0 → gamma v1.2",
        "app (extra: feat) → feat v1.0 → gamma v1.2",
        "app (group: dev) → flasky v2.0 → alpha v2.0 → beta v2.0 → gamma v1.2",
    ]
    r = offline("why", "modern", cwd=locked)
    assert r.stdout.splitlines()[1:] == ['app → modern v1.5 [python_version < "3.12"]',
                                         'app → modern v2.0 [python_version >= "3.12"]']
    r = offline("why", "nope", cwd=locked)
    assert r.code == 1 and r.stdout == "" and "`nope` is not in pylock.toml" in r.stderr


def test_json_documents_have_the_documented_keys(locked: Path) -> None:
    r = offline("tree", "--json", cwd=locked)
    assert r.code == 0, r.output
    doc = json.loads(r.stdout)
    assert set(doc) == {"lockfile", "project", "project_version", "inverted", "roots", "exact"}
    node_keys = {"kind", "name", "version", "marker", "source", "repeated", "truncated", "children"}
    project = doc["roots"][0]
    assert set(project) == node_keys and project["name"] == "app" and project["kind"] == "project"
    modern = [c for c in project["children"] if c["name"] == "modern"]
    assert [(c["version"], c["marker"]) for c in modern] == [
        ("1.5", 'python_version < "3.12"'), ("2.0", 'python_version >= "3.12"')]
    assert all(set(c) == node_keys for c in project["children"])

    r = offline("why", "backport", "--json", cwd=locked)
    doc = json.loads(r.stdout)
    assert set(doc) == {"lockfile", "project", "package", "versions", "paths", "truncated", "found"}
    assert doc["found"] is True and doc["versions"] == ["1.0"]
    assert doc["paths"] == [{
        "source": None,
        "steps": [{"name": "marked", "version": "1.0", "marker": None},
                  {"name": "backport", "version": "1.0", "marker": 'python_version < "3.11"'}],
        "marker": 'python_version < "3.11"',
    }]
    r = offline("why", "nope", "--json", cwd=locked)
    assert r.code == 1 and json.loads(r.stdout)["found"] is False


def test_tree_of_a_lock_lockenv_did_not_write(locked: Path, tmp_path: Path) -> None:
    # No [tool.lockenv]: the project's requirements are unknown, so the tree starts from the
    # packages nothing else depends on.
    text = (locked / "pylock.toml").read_text()
    foreign = tmp_path / "pylock.other.toml"
    foreign.write_text(text[: text.index("\n[tool.lockenv]")] + "\n")
    r = offline("tree", "--lockfile", str(foreign), "--json", cwd=locked)
    assert r.code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["exact"] is False
    tops = [(c["name"], c["version"]) for c in doc["roots"][0]["children"]]
    assert ("diamond", "1.0") in tops and ("beta", "2.0") not in tops


def test_tree_needs_no_usable_cache(locked: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    r = run_lockenv("tree", "--depth", "1", cwd=locked,
                    env={"LOCKENV_INDEX_URL": "http://127.0.0.1:9/pypi", "LOCKENV_CACHE_DIR": str(blocker)})
    assert r.code == 0, r.output
    assert r.stdout.startswith("app v0.1\n├── alpha v2.0 ...\n")


def test_a_dependency_from_a_packages_extra_asked_only_by_a_project_extra(tmp_path: Path) -> None:
    # `feat` is a main dependency; only the project's extra `x` asks for `feat[cli]`, which
    # brings clicky-cli: the edge feat -> clicky-cli holds only with that extra, and says so.
    project = tmp_path / "app2"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        '[project]\nname = "app2"\nversion = "0.1"\nrequires-python = ">=3.10,<3.14"\n'
        'dependencies = ["feat"]\n[project.optional-dependencies]\nx = ["feat[cli]"]\n')
    with IndexServer("base") as srv:
        assert run_lockenv("lock", cwd=project, env={"LOCKENV_INDEX_URL": srv.json_url}).code == 0
    r = offline("tree", cwd=project)
    assert r.code == 0, r.output
    assert r.stdout.splitlines()[:4] == [
        "app2 v0.1",
        "├── feat v1.0",
        '│   └── clicky-cli v1.0 ; "x" in extras',
        "└── feat v1.0 (extra: x) (*)",
    ]
    r = offline("why", "clicky-cli", cwd=project)
    assert r.stdout.splitlines()[1:] == [
        'app2 → feat v1.0 → clicky-cli v1.0 ["x" in extras]',
        "app2 (extra: x) → feat v1.0 → clicky-cli v1.0",
    ]

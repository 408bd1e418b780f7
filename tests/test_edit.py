"""`lockenv init`, `add` and `remove` end to end against the fixture index and real venvs:
comments and layout kept byte for byte, bounds on the locked version, replacement in place, and
every failure leaving pyproject.toml, pylock.toml and .venv as they were."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from helpers import run_lockenv
from helpers import env_for, installed, lock, snapshot, sync

COMMENTED = """\
# The demo project: comments and layout here must survive every edit.
[project]
name = "demo"   # the name
version = "0.1"
requires-python = ">=3.10"
dependencies = [
    # why beta: the chain starts there
    "beta",  # trailing comment
]

[tool.somebody]
keep = [ 1,2,   3 ]  # odd spacing
"""


def edit(project: Path, srv: Any, *args: str) -> Any:
    return run_lockenv(*args, cwd=project, env=env_for(srv))


def state(project: Path) -> tuple[bytes, bytes | None, dict[str, tuple[int, bytes]] | None]:
    """Everything add/remove may change: pyproject.toml, pylock.toml and every file of .venv."""
    lock_file = project / "pylock.toml"
    venv = project / ".venv"
    return ((project / "pyproject.toml").read_bytes(),
            lock_file.read_bytes() if lock_file.exists() else None,
            snapshot(venv) if venv.exists() else None)


# -- init -------------------------------------------------------------------------------------


def test_init_writes_a_minimal_project_and_refuses_to_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "my-app"
    result = run_lockenv("init", target, cwd=tmp_path)
    assert result.code == 0, result.output
    minor = f"{sys.version_info[0]}.{sys.version_info[1]}"
    text = (target / "pyproject.toml").read_text()
    assert text == ('[project]\nname = "my-app"\nversion = "0.1.0"\n'
                    f'requires-python = ">={minor}"\ndependencies = []\n')
    again = run_lockenv("init", target, "--name", "other", cwd=tmp_path)
    assert again.code == 2
    assert "already exists" in again.stderr and "Traceback" not in again.output
    assert (target / "pyproject.toml").read_text() == text
    assert (target / "pyproject.toml").stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_init_name_and_python_options_and_a_bad_directory_name(tmp_path: Path) -> None:
    minor = f"{sys.version_info[0]}.{sys.version_info[1]}"
    (tmp_path / "here").mkdir()
    result = run_lockenv("init", "--name", "Cool_Tool", "--python", minor, cwd=tmp_path / "here")
    assert result.code == 0, result.output
    text = (tmp_path / "here" / "pyproject.toml").read_text()
    assert 'name = "Cool_Tool"' in text and f'requires-python = ">={minor}"' in text
    bad = run_lockenv("init", tmp_path / "not a name", cwd=tmp_path)
    assert bad.code == 2
    assert "not a valid project name" in bad.stderr and "--name" in bad.stderr
    assert not (tmp_path / "not a name" / "pyproject.toml").exists()


# -- add --------------------------------------------------------------------------------------


def test_add_keeps_comments_bounds_the_locked_version_and_syncs(project: Path, index_server: Any) -> None:
    (project / "pyproject.toml").write_text(COMMENTED)
    (project / "pyproject.toml").chmod(0o644)
    result = edit(project, index_server, "add", "alpha")
    assert result.code == 0, result.output
    assert (project / "pyproject.toml").read_text() == COMMENTED.replace(
        '    "beta",  # trailing comment\n',
        '    "beta",  # trailing comment\n    "alpha>=2.0",\n')
    assert "Added `alpha>=2.0` to [project] dependencies" in result.stderr
    assert (project / "pyproject.toml").stat().st_mode & 0o777 == 0o644  # not made private
    assert 'name = "alpha"' in (project / "pylock.toml").read_text()
    assert installed(project / ".venv") == {"alpha": "2.0", "beta": "2.0", "gamma": "1.2"}
    # Already there: replaced in place (same position, comments kept), not duplicated.
    result = edit(project, index_server, "add", "Alpha==1.0", "beta<2")
    assert result.code == 0, result.output
    assert (project / "pyproject.toml").read_text() == COMMENTED.replace(
        '    "beta",  # trailing comment\n',
        '    "beta<2",  # trailing comment\n    "Alpha==1.0",\n')
    assert ("Updated `Alpha==1.0` (was `alpha>=2.0`), `beta<2` (was `beta`) in [project] dependencies"
            in result.stderr), result.stderr
    assert installed(project / ".venv") == {"alpha": "1.0", "beta": "1.0", "gamma": "1.2"}
    # The same again, plus a new one: each said as what happened to it.
    result = edit(project, index_server, "add", "Alpha==1.0", "gamma")
    assert result.code == 0, result.output
    assert ("Added `gamma>=1.2` to [project] dependencies; `Alpha==1.0` was already there"
            in result.stderr), result.stderr


def test_add_to_a_group_and_to_an_extra_makes_their_tables(project: Path, index_server: Any) -> None:
    (project / "pyproject.toml").write_text(COMMENTED)
    result = edit(project, index_server, "add", "gamma<1.2", "--group", "dev")
    assert result.code == 0, result.output
    result = edit(project, index_server, "add", "feat", "--optional", "web", "--no-sync")
    assert result.code == 0, result.output
    text = (project / "pyproject.toml").read_text()
    assert text.startswith(COMMENTED.split("\n[tool.somebody]")[0])
    assert "keep = [ 1,2,   3 ]  # odd spacing\n" in text
    assert '[project.optional-dependencies]\nweb = ["feat>=1.0"]\n' in text
    assert text.endswith('[dependency-groups]\ndev = ["gamma<1.2"]\n')
    assert installed(project / ".venv") == {"beta": "2.0", "gamma": "1.1"}  # --no-sync: no feat
    assert 'extras = ["web"]' in (project / "pylock.toml").read_text()


def test_add_frozen_only_edits_pyproject(project: Path, index_server: Any) -> None:
    (project / "pyproject.toml").write_text(COMMENTED)
    result = edit(project, index_server, "add", "alpha", "--frozen")
    assert result.code == 0, result.output
    assert '"alpha",' in (project / "pyproject.toml").read_text()
    assert not (project / "pylock.toml").exists() and not (project / ".venv").exists()
    assert index_server.requests == []


def _synced(project: Path, srv: Any) -> tuple[bytes, bytes | None, Any]:
    (project / "pyproject.toml").write_text(COMMENTED)
    lock(project, srv)
    assert sync(project, srv).code == 0
    return state(project)


def test_a_failed_add_restores_everything(project: Path, index_server: Any) -> None:
    before = _synced(project, index_server)
    unknown = edit(project, index_server, "add", "nosuchpackage")
    assert unknown.code == 2
    assert "`nosuchpackage` was not found" in unknown.stderr
    assert "nothing was changed" in unknown.stderr
    assert state(project) == before
    unsatisfiable = edit(project, index_server, "add", "alpha>=9")
    assert unsatisfiable.code == 2
    assert "alpha" in unsatisfiable.stderr and "Traceback" not in unsatisfiable.output
    assert state(project) == before
    index_server.stop()
    down = edit(project, index_server, "add", "feat")
    assert down.code == 2
    assert "cannot reach" in down.stderr
    assert state(project) == before


def test_a_failed_sync_during_add_restores_everything(project: Path, index_server: Any,
                                                      tmp_path: Path) -> None:
    before = _synced(project, index_server)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    (scratch / "pyproject.toml").write_text(COMMENTED.replace('"beta"', '"feat"'))
    lock(scratch, index_server)  # feat's page and metadata are cached; its wheel is not
    index_server.inject("feat-1.0-py3-none-any.whl", "wrong-bytes")
    result = edit(project, index_server, "add", "feat")
    assert result.code == 2, result.output
    assert "feat-1.0-py3-none-any.whl" in result.stderr
    assert "nothing was changed" in result.stderr
    assert state(project) == before


def test_a_failed_first_add_leaves_no_lock_and_no_venv(project: Path, index_server: Any) -> None:
    (project / "pyproject.toml").write_text(COMMENTED)
    result = edit(project, index_server, "add", "nosuchpackage")
    assert result.code == 2
    assert state(project) == (COMMENTED.encode(), None, None)


def test_add_rejects_a_bad_requirement_and_two_targets(project: Path, index_server: Any) -> None:
    (project / "pyproject.toml").write_text(COMMENTED)
    bad = edit(project, index_server, "add", "alpha>>1")
    assert bad.code == 2 and "not a valid requirement" in bad.stderr
    both = edit(project, index_server, "add", "alpha", "--group", "dev", "--optional", "web")
    assert both.code == 2 and "--group and --optional" in both.stderr
    assert state(project) == (COMMENTED.encode(), None, None)


# -- remove -----------------------------------------------------------------------------------


def test_remove_keeps_comments_and_drops_what_nothing_needs(project: Path, index_server: Any) -> None:
    (project / "pyproject.toml").write_text(COMMENTED)
    assert edit(project, index_server, "add", "alpha==1.0", "diamond").code == 0
    assert "diamond" in installed(project / ".venv")
    result = edit(project, index_server, "remove", "DIAMOND")
    assert result.code == 0, result.output
    assert (project / "pyproject.toml").read_text() == COMMENTED.replace(
        '    "beta",  # trailing comment\n',
        '    "beta",  # trailing comment\n    "alpha==1.0",\n')
    assert installed(project / ".venv") == {"alpha": "1.0", "beta": "1.0", "gamma": "1.2"}
    text = (project / "pylock.toml").read_text()
    assert 'name = "diamond"' not in text and 'name = "cee"' not in text


def test_remove_of_a_name_not_there_says_where_it_looked(project: Path, index_server: Any) -> None:
    before = _synced(project, index_server)
    result = edit(project, index_server, "remove", "alpha")
    assert result.code == 2
    assert "`alpha` is not in [project] dependencies" in result.stderr
    assert state(project) == before
    assert edit(project, index_server, "add", "gamma", "--group", "dev").code == 0
    before = state(project)
    result = edit(project, index_server, "remove", "gamma")
    assert result.code == 2
    assert "[dependency-groups] dev" in result.stderr and "--group dev" in result.stderr
    assert state(project) == before
    result = edit(project, index_server, "remove", "gamma", "--group", "dev")
    assert result.code == 0, result.output
    assert '[dependency-groups]\ndev = []\n' in (project / "pyproject.toml").read_text()


def test_add_and_remove_name_a_byte_order_mark_and_change_nothing(project: Path, index_server: Any) -> None:
    """A BOM (Notepad's UTF-8) is what TOML refuses; say that, not "empty key at line 1"."""
    (project / "pyproject.toml").write_text("\ufeff" + COMMENTED, encoding="utf-8")
    before = state(project)
    for args in (("add", "alpha"), ("remove", "beta")):
        result = edit(project, index_server, *args)
        assert result.code == 2, result.output
        assert result.stderr.startswith(f"error: {project / 'pyproject.toml'}:1: starts with a "
                                        "byte-order mark (BOM)"), result.stderr
        assert "hint: save pyproject.toml as UTF-8 without BOM" in result.stderr
        assert state(project) == before


def test_add_and_remove_report_broken_toml_as_lock_does(project: Path, index_server: Any) -> None:
    """A pyproject.toml cut short (an unclosed array at the end) reads the same from `add`,
    `remove` and `lock`: file:line, the line, a caret; not tomlkit's "Unexpected character:
    '\\x00'", which names a byte the file does not hold. Nothing is written."""
    (project / "pyproject.toml").write_text(COMMENTED + "extra = [\n", encoding="utf-8")
    before = state(project)
    first_lines = set()
    for args in (("add", "alpha"), ("remove", "beta"), ("lock",)):
        result = edit(project, index_server, *args)
        assert result.code == 2, result.output
        assert "x00" not in result.stderr and "Unexpected character" not in result.stderr
        first = result.stderr.splitlines()[0]
        assert first.startswith(f"error: {project / 'pyproject.toml'}:") and "invalid TOML" in first
        first_lines.add(first)
        assert state(project) == before
    assert len(first_lines) == 1, first_lines

"""`lock` resolves git merge conflicts in pylock.toml (issue 10): both sides' pins are the
preferences of a relock, and the report says which side each package came from and what moved.
A lock that is unreadable some other way keeps every pin that can still be read, with a warning.

The conflicts are made by git itself (`git merge-file`, in the merge and diff3 styles) from
three locks lockenv wrote: the common base, ours (HEAD) and theirs (feature)."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
from helpers import env_for, lock, run_lockenv, sync, write_project

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def _lock_with(project: Path, srv: Any, *moves: str) -> str:
    args = [a for m in moves for a in ("-P", m)]
    result = run_lockenv("lock", *args, cwd=project, env=env_for(srv))
    assert result.code == 0, result.output
    return (project / "pylock.toml").read_text()


def _pins(path: Path) -> dict[str, str]:
    return {p["name"]: p["version"] for p in tomllib.loads(path.read_text())["packages"]}


def _conflict(tmp_path: Path, base: str, ours: str, theirs: str, style: str) -> str:
    """What `git merge` leaves in pylock.toml when both branches relocked."""
    files = []
    for name, text in (("ours", ours), ("base", base), ("theirs", theirs)):
        path = tmp_path / f"{name}.toml"
        path.write_text(text)
        files.append(str(path))
    flags = {"merge": [], "diff3": ["--diff3"], "zdiff3": ["--zdiff3"]}[style]
    proc = subprocess.run(["git", "merge-file", "-p", *flags, "-L", "HEAD", "-L", "base", "-L", "feature",
                           *files], capture_output=True, text=True)
    assert proc.returncode > 0, "git merged the locks without a conflict"
    return proc.stdout


@pytest.fixture
def base_project(project: Path, index_server: Any) -> tuple[Path, str]:
    """alpha → beta → gamma, and cee; locked at old versions (the merge base)."""
    write_project(project, ["alpha", "cee"])
    lock(project, index_server)
    base = _lock_with(project, index_server, "alpha==1.0", "gamma==1.0", "cee==1.0")
    assert _pins(project / "pylock.toml") == {"alpha": "1.0", "beta": "1.0", "gamma": "1.0", "cee": "1.0"}
    return project, base


@pytest.mark.parametrize("style", ["merge", "diff3"])
def test_both_sides_editing_the_same_package_take_the_newer_pin(
        base_project: tuple[Path, str], index_server: Any, tmp_path: Path, style: str) -> None:
    """Both branches moved gamma (markers inside its [[packages]] table, the entry split across
    them); theirs also moved cee. The merge keeps each side's pins, the newer where both moved."""
    project, base = base_project
    ours = _lock_with(project, index_server, "gamma==1.1")
    (project / "pylock.toml").write_text(base)
    theirs = _lock_with(project, index_server, "gamma==1.2", "cee==2.0")
    conflicted = _conflict(tmp_path, base, ours, theirs, style)
    assert "<<<<<<< HEAD" in conflicted and ">>>>>>> feature" in conflicted
    assert ("||||||| base" in conflicted) == (style == "diff3")
    gamma_table = conflicted[conflicted.index('name = "gamma"'):]
    assert gamma_table.index("<<<<<<<") < gamma_table.index("[tool.lockenv]")  # inside the table
    (project / "pylock.toml").write_text(conflicted)

    refused = sync(project, index_server)
    assert refused.code == 2, refused.output
    assert "merge conflict" in refused.stderr and "lockenv lock" in refused.stderr
    assert (project / "pylock.toml").read_text() == conflicted

    stale = run_lockenv("lock", "--check", cwd=project, env=env_for(index_server))
    assert stale.code == 1 and "pylock.toml has unresolved git merge conflicts" in stale.stderr, stale.output
    result = run_lockenv("lock", cwd=project, env=env_for(index_server))
    assert result.code == 0, result.output
    assert "Traceback" not in result.output
    err = result.stderr
    assert "Locking: pylock.toml has unresolved git merge conflicts\n" in err, err
    assert "merge conflict" in err and "HEAD" in err and "feature" in err, err
    assert _pins(project / "pylock.toml") == {"alpha": "1.0", "beta": "1.0", "gamma": "1.2", "cee": "2.0"}
    assert re.search(r"gamma 1\.2 \(from feature; HEAD had 1\.1\)", err), err
    assert re.search(r"cee 2\.0 \(same on both sides\)", err), err  # git merged it: no conflict
    assert re.search(r"alpha 1\.0 \(same on both sides\)", err), err
    assert "<<<<<<<" not in (project / "pylock.toml").read_text()
    check = run_lockenv("lock", "--check", cwd=project, env=env_for(index_server))
    assert check.code == 0, check.output
    assert sync(project, index_server).code == 0


def test_conflict_spanning_whole_tables_and_a_pin_that_must_move(
        base_project: tuple[Path, str], index_server: Any, tmp_path: Path) -> None:
    """Ours added `feat` and moved alpha to 1.1; theirs added `Clicky_CLI` and moved alpha to 2.0
    (with beta 2.0 and gamma 1.2): the two new [[packages]] tables land in one conflict region,
    alpha's entry is split across markers, and the newer side wins package by package. The
    merged pyproject.toml also asks for `cee>=2`, so cee (1.0 on both sides) has to move."""
    project, base = base_project
    write_project(project, ["alpha", "cee", "feat"])
    ours = _lock_with(project, index_server, "alpha==1.1")
    (project / "pylock.toml").write_text(base)
    write_project(project, ["alpha", "cee", "Clicky_CLI"])
    theirs = _lock_with(project, index_server, "alpha==2.0")
    assert _pins(project / "pylock.toml")["gamma"] == "1.2"
    conflicted = _conflict(tmp_path, base, ours, theirs, "diff3")
    regions = re.findall(r"(?ms)^<<<<<<< HEAD$.*?^>>>>>>> feature$", conflicted)
    assert any('name = "feat"' in r and 'clicky' in r.lower() for r in regions), conflicted
    (project / "pylock.toml").write_text(conflicted)
    write_project(project, ["alpha", "cee>=2", "feat", "Clicky_CLI"])
    result = run_lockenv("lock", cwd=project, env=env_for(index_server))
    assert result.code == 0, result.output
    err = result.stderr
    pins = {k.lower().replace("_", "-"): v for k, v in _pins(project / "pylock.toml").items()}
    assert pins == {"alpha": "2.0", "beta": "2.0", "gamma": "1.2", "cee": "2.0", "feat": "1.0",
                    "clicky-cli": "1.0"}
    assert re.search(r"alpha 2\.0 \(from feature; HEAD had 1\.1\)", err), err
    assert re.search(r"feat 1\.0 \(from HEAD; feature did not have it\)", err), err
    assert re.search(r"clicky-cli 1\.0 \(from feature; HEAD did not have it\)", err), err
    assert re.search(r"~ cee 1\.0 -> 2\.0 \(moved; both sides had 1\.0; ", err), err


def test_a_lock_cut_in_the_middle_of_a_conflict_keeps_what_it_can(
        base_project: tuple[Path, str], index_server: Any, tmp_path: Path) -> None:
    """A conflict whose closing marker was deleted by hand is not a conflict git made: the file
    is unreadable, and the pins that can still be read are kept, with a warning."""
    project, base = base_project
    (project / "pylock.toml").write_text(base.replace('name = "cee"\nversion = "1.0"\n',
                                                      'name = "cee"\n<<<<<<< HEAD\nversion = "1.0"\n'))
    result = run_lockenv("lock", cwd=project, env=env_for(index_server))
    assert result.code == 0, result.output
    assert "keeping the 4 pins that can still be read" in result.stderr, result.stderr
    assert _pins(project / "pylock.toml") == {"alpha": "1.0", "beta": "1.0", "gamma": "1.0", "cee": "1.0"}


def test_an_unreadable_lock_keeps_every_pin_that_can_still_be_read(
        base_project: tuple[Path, str], index_server: Any) -> None:
    """A lock damaged in one package entry (not TOML any more) keeps the other entries' pins and
    that entry's own name and version lines, with a warning naming the file and the line; before,
    it was relocked "from scratch, without its pins" (every package upgraded)."""
    project, base = base_project
    damaged = re.sub(r'(name = "beta"\nversion = "1.0"\n(?:.*\n)*?wheels = \[\n)', r"\1    { name = ,,\n",
                     base, count=1)
    assert damaged != base
    (project / "pylock.toml").write_text(damaged)
    result = run_lockenv("lock", cwd=project, env=env_for(index_server))
    assert result.code == 0, result.output
    assert "Traceback" not in result.output
    assert re.search(r"warning: .*pylock\.toml:\d+:\d+: invalid TOML", result.stderr), result.stderr
    assert "keeping the 4 pins that can still be read" in result.stderr, result.stderr
    assert _pins(project / "pylock.toml") == {"alpha": "1.0", "beta": "1.0", "gamma": "1.0", "cee": "1.0"}


def test_a_lock_path_that_is_a_directory_is_a_clean_error(project: Path) -> None:
    write_project(project, [])
    (project / "pylock.toml").mkdir()
    result = run_lockenv("lock", cwd=project)
    assert result.code == 2, result.output
    assert "internal error" not in result.output and "Traceback" not in result.output
    assert "pylock.toml: Is a directory" in result.stderr

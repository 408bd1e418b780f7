"""Issue 9, point 3: a long lock shows on a terminal what it is doing (pages fetched, packages
resolved, sdists built) on one live line; piped or with --quiet, no progress at all."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
from pathlib import Path

from helpers import run_lockenv
from fixtures.index import IndexServer

PYPROJECT = """\
[project]
name = "app"
version = "0.1"
requires-python = ">=3.10,<3.14"
dependencies = {deps}
"""
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _write(project: Path, *deps: str) -> None:
    (project / "pyproject.toml").write_text(
        PYPROJECT.format(deps="[" + ", ".join(f'"{d}"' for d in deps) + "]"))


def _lock_on_a_terminal(project: Path, srv: IndexServer, *args: str) -> tuple[int, str]:
    """`lockenv lock` with stderr on a pseudo-terminal: (exit code, every state of the line)."""
    master, slave = pty.openpty()
    env = {**os.environ, "LOCKENV_INDEX_URL": srv.json_url, "TERM": "xterm"}
    proc = subprocess.Popen([sys.executable, "-m", "lockenv", "lock", *args], cwd=project,
                            env=env, stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    out = b""
    while True:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
    os.close(master)
    return proc.wait(timeout=60), ANSI.sub("", out.decode(errors="replace"))


def test_a_terminal_sees_what_is_fetched_and_resolved(project: Path) -> None:
    _write(project, "restframe")
    with IndexServer("realpypi") as srv:
        # The one page the lock waits for first; slow, so it is drawn. (Later activities
        # overlap: pages are fetched in parallel and the line shows the latest.)
        srv.inject("restframe", "slow", delay=0.8)
        srv.inject("djangle", "slow", delay=0.8)  # its page and metadata: after the first pin
        code, text = _lock_on_a_terminal(project, srv)
    assert code == 0, text
    assert "Fetching restframe" in text, text
    assert re.search(r"Resolving for Python 3\.\d+ on [\w-]+: \d+ packages, at ", text), text
    assert "Resolved 2 packages in" in text  # the summary stays; the live line is gone


def test_a_terminal_sees_an_sdist_being_built(project: Path) -> None:
    _write(project, "sddynamic")
    with IndexServer("base") as srv:
        code, text = _lock_on_a_terminal(project, srv)
    assert code == 0, text
    assert "Building sddynamic-1.0.tar.gz to read its metadata" in text


def test_quiet_on_a_terminal_shows_no_progress(project: Path) -> None:
    _write(project, "restframe")
    with IndexServer("realpypi") as srv:
        srv.inject("restframe", "slow", delay=0.6)
        code, text = _lock_on_a_terminal(project, srv, "--quiet")
    assert code == 0, text
    assert text.strip() == ""


def test_piped_output_has_no_progress_noise(project: Path) -> None:
    _write(project, "alpha", "sddynamic")
    with IndexServer("base") as srv:
        srv.inject("alpha", "slow", delay=0.6)
        result = run_lockenv("lock", cwd=project, env={"LOCKENV_INDEX_URL": srv.json_url})
    assert result.code == 0, result.output
    for noise in ("\r", "\x1b[", "Fetching", "Resolving", "Building", "━"):
        assert noise not in result.output, (noise, result.output)
    lines = result.stderr.splitlines()
    assert lines and all(re.fullmatch(r"Resolved \d+ packages in [\d.]+s|\+ \S+==\S+ \(.*\)", line)
                         for line in lines), lines

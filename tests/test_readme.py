"""The README's promise: its first two commands exist, run as written, and CI runs the second."""

from __future__ import annotations

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def _code_lines(text: str) -> list[str]:
    """Lines inside fenced code blocks, in order."""
    lines: list[str] = []
    inside = False
    for line in text.splitlines():
        if line.startswith("```"):
            inside = not inside
            continue
        if inside and line.strip():
            lines.append(line.strip())
    return lines


def test_readme_opens_with_demo_then_test() -> None:
    text = README.read_text(encoding="utf-8")
    assert _code_lines(text)[:2] == ["scripts/demo", "scripts/test"]
    # right under the title and one sentence: nothing else comes before the first code block
    before = text.split("```", 1)[0].strip().splitlines()
    assert before[0].startswith("# ")
    assert len([line for line in before[1:] if line.strip()]) == 1, before


def test_readme_commands_exist_and_are_executable() -> None:
    for name in ("scripts/demo", "scripts/test", "scripts/bench"):
        path = ROOT / name
        assert path.is_file(), name
        assert os.access(path, os.X_OK), f"{name} is not executable"
        assert path.read_text(encoding="utf-8").startswith("#!/usr/bin/env bash\n"), name


def test_ci_runs_the_readme_test_command() -> None:
    run = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    commands = [line.strip() for line in run.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert any(re.match(r"(exec\s+)?(bash\s+)?(\./)?scripts/test(\s|$)", c) for c in commands), commands


def test_readme_names_no_registry_host() -> None:
    text = README.read_text(encoding="utf-8").lower()
    for host in ("pypi" + ".org", "pythonhosted" + ".org", "files." + "pythonhosted"):
        assert host not in text


def test_examples_are_projects_with_an_app() -> None:
    for name in ("legacy-app", "modern-app"):
        example = ROOT / "examples" / name
        pyproject = (example / "pyproject.toml").read_text(encoding="utf-8")
        assert 'requires-python = ">=3.10"' in pyproject
        assert "flask" in pyproject.lower()
        assert "app = Flask(" in (example / "app.py").read_text(encoding="utf-8")

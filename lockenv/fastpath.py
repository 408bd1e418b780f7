"""The no-op answer for `lockenv lock` / `lockenv sync`, given before the CLI framework loads.

CI runs these thousands of times a day with nothing to do; importing typer (and the pydantic it
brings) alone costs ~0.15 s. So the entry point first parses the few argument shapes a no-op can
have and asks the use case whether there is anything to do; any other shape, or any doubt, falls
through to the full CLI, which decides again.
"""

from __future__ import annotations

import sys
from pathlib import Path


def _parse(argv: list[str]) -> tuple[str, Path, bool] | None:
    project = Path(".")
    quiet = False
    command: str | None = None
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("-q", "--quiet"):
            quiet = True
        elif arg in ("-C", "--project") and i + 1 < len(argv):
            project = Path(argv[i + 1])
            i += 1
        elif arg.startswith("--project="):
            project = Path(arg.split("=", 1)[1])
        elif command is None and arg in ("lock", "sync"):
            command = arg
        else:
            return None
        i += 1
    if command is None:
        return None
    return command, project.resolve(), quiet


def try_noop(argv: list[str]) -> int | None:
    """0 when the command had nothing to do (and said so); None to run the full CLI."""
    parsed = _parse(argv)
    if parsed is None:
        return None
    command, project, quiet = parsed
    if command == "lock":
        from lockenv.ops.lock import is_noop

        if not is_noop(project):
            return None
        message = "pylock.toml is up to date"
    else:
        try:
            from lockenv.ops.sync import is_noop as sync_is_noop
        except ImportError:
            return None
        if not sync_is_noop(project):
            return None
        message = "Environment is up to date"
    if not quiet:
        print(message, file=sys.stderr)
    return 0


def main() -> None:
    """Console-script entry point."""
    code = try_noop(sys.argv[1:])
    if code is not None:
        raise SystemExit(code)
    from lockenv.cli import app

    app()

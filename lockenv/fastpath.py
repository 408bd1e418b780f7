"""The no-op answer for `lockenv lock` / `lockenv sync`, given before the CLI framework loads.

CI runs these thousands of times a day with nothing to do; importing typer (and the pydantic it
brings) alone costs ~0.15 s. So the entry point first parses the few argument shapes a no-op can
have and asks the use case whether there is anything to do; any other shape, or any doubt, falls
through to the full CLI, which decides again.
"""

from __future__ import annotations

import sys
from pathlib import Path

from lockenv.project import find_project


_SYNC_FLAGS = {
    "--all-extras": "all_extras", "--no-default-groups": "no_default_groups",
    "--all-groups": "all_groups", "--inexact": "inexact", "--locked": "locked",
    "--frozen": "frozen",
}
_SYNC_LISTS = {"--extra": "extras", "--group": "groups", "--only-group": "only_groups"}


def _parse(argv: list[str]) -> tuple[str, Path, bool, dict[str, object]] | None:
    """(command, project, quiet, options) for the shapes a no-op can have, else None."""
    project: Path | None = None
    quiet = False
    command: str | None = None
    options: dict[str, object] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        value = argv[i + 1] if i + 1 < len(argv) else None
        if "=" in arg and arg.startswith("--"):
            arg, value = arg.split("=", 1)
            step = 1
        else:
            step = 2
        if arg in ("-q", "--quiet"):
            quiet, step = True, 1
        elif arg in ("-C", "--project") and value is not None:
            project = Path(value)
        elif command is None and arg in ("lock", "sync"):
            command, step = arg, 1
        elif command in ("lock", "sync") and arg == "--offline":
            step = 1  # a no-op uses no network anyway
        elif command == "lock" and arg == "--check":
            step = 1
        elif command == "sync" and arg in _SYNC_FLAGS:
            options[_SYNC_FLAGS[arg]], step = True, 1
        elif command == "sync" and arg in _SYNC_LISTS and value is not None:
            key = _SYNC_LISTS[arg]
            options[key] = (*options.get(key, ()), value)  # type: ignore[misc]
        elif command == "sync" and arg == "--python" and value is not None:
            options["python"] = value
        elif command == "sync" and arg == "--lockfile" and value is not None:
            options["lockfile"] = Path(value).resolve()
        elif command == "sync" and arg == "--no-install-project":
            options["install_project"], step = False, 1
        else:
            return None
        i += step
    if command is None:
        return None
    if project is None:
        return command, find_project(Path.cwd()), quiet, options
    return command, project.resolve(), quiet, options


def try_noop(argv: list[str]) -> int | None:
    """0 when the command had nothing to do (and said so); None to run the full CLI."""
    parsed = _parse(argv)
    if parsed is None:
        return None
    command, project, quiet, options = parsed
    if command == "lock":
        from lockenv.ops.lock import is_noop

        if not is_noop(project):
            return None
        message = "pylock.toml is up to date"
    else:
        from lockenv.ops.sync import SyncOptions, is_noop as sync_is_noop

        if not sync_is_noop(project, SyncOptions(project=project, **options)):  # type: ignore[arg-type]
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

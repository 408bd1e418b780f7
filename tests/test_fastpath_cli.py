"""The no-op fast path parses argv by hand (importing Typer costs ~0.15 s); these tests hold that
parser to the Typer CLI, so the two cannot drift: every option `lockenv.fastpath` accepts exists
on the Typer command with the same shape (flag, value, repeatable), and every argv shape it
accepts means exactly what the CLI makes of it (the same options for the use case, the same
project, the same quietness). Any shape it does not know must fall through to the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer
import typer.core
import typer.main
from typer.testing import CliRunner

from lockenv import cli, fastpath

FLAGS = dict(fastpath._SYNC_FLAGS)
LISTS = dict(fastpath._SYNC_LISTS)
# The sync options fastpath handles outside its two tables: option -> (takes a value, argv value).
OTHER_SYNC = {"--python": "3.12", "--lockfile": "other.toml", "--no-install-project": None,
              "--offline": None}
GLOBAL = (("-q", "--quiet"), ("-C", "--project"))


def command(name: str | None = None) -> Any:
    """The click command Typer builds (Typer vendors click, so its classes are Typer's)."""
    group = typer.main.get_command(cli.app)
    if name is None:
        return group
    assert isinstance(group, typer.core.TyperGroup)
    return group.commands[name]


def option(cmd: Any, name: str) -> typer.core.TyperOption:
    found = [p for p in cmd.params if isinstance(p, typer.core.TyperOption) and name in p.opts]
    assert len(found) == 1, f"`{cmd.name} {name}` is not an option of the Typer CLI"
    return found[0]


# -- the shape of every option fastpath knows ------------------------------------------------


@pytest.mark.parametrize("flag", sorted(FLAGS))
def test_every_sync_flag_fastpath_parses_is_a_boolean_flag_of_sync(flag: str) -> None:
    opt = option(command("sync"), flag)
    assert opt.is_flag and not opt.multiple and opt.default is False
    assert opt.name == FLAGS[flag], "the CLI's parameter and fastpath's field differ in name"


@pytest.mark.parametrize("name", sorted(LISTS))
def test_every_sync_list_fastpath_parses_is_a_repeatable_value_option_of_sync(name: str) -> None:
    opt = option(command("sync"), name)
    assert not opt.is_flag and opt.multiple and opt.nargs == 1
    # the CLI names the parameter in the singular (--extra -> extra) and fastpath the field
    # of SyncOptions it fills (extras); the behaviour tests below check they meet
    assert LISTS[name] in (opt.name, f"{opt.name}s")


def test_the_other_sync_options_fastpath_parses_have_its_shape() -> None:
    sync = command("sync")
    for name, value in OTHER_SYNC.items():
        opt = option(sync, name)
        assert opt.is_flag == (value is None), name
        assert not opt.multiple, name


@pytest.mark.parametrize("where", [None, "lock", "sync"])
def test_quiet_and_project_have_both_spellings_everywhere_fastpath_accepts_them(where: str | None) -> None:
    cmd = command(where)
    quiet = option(cmd, "--quiet")
    assert "-q" in quiet.opts and quiet.is_flag and not quiet.multiple
    project = option(cmd, "--project")
    assert "-C" in project.opts and not project.is_flag and not project.multiple
    assert project.nargs == 1


def test_lock_check_is_a_flag_of_lock() -> None:
    check = option(command("lock"), "--check")
    assert check.is_flag and not check.multiple and check.default is False


# -- the same argv means the same thing to both -------------------------------------------


def _shapes() -> list[list[str]]:
    shapes = [["sync"], ["lock"], ["lock", "--check"], ["-q", "lock"], ["lock", "--quiet"],
              ["--quiet", "sync", "-q"], ["lock", "--offline"], ["lock", "--check", "--offline"]]
    shapes += [["sync", flag] for flag in sorted(FLAGS)]
    for name in sorted(LISTS):
        shapes += [["sync", name, "a"], ["sync", name, "a", name, "b-c"], ["sync", f"{name}=a"]]
    shapes += [["sync", name] + ([value] if value else []) for name, value in OTHER_SYNC.items()]
    shapes += [["sync", "--python=3.11", "--lockfile=sub/x.toml"],
               ["sync", *sorted(FLAGS), "--extra", "e", "--group", "g", "--no-install-project", "-q"]]
    return shapes


def _cli_meaning(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Path, bool]:
    """What the Typer CLI hands the use case for `argv`: (options, project, quiet)."""
    seen: list[tuple[Any, Path, bool]] = []

    def capture(ctx: typer.Context, func: Any, options: Any, **kwargs: Any) -> None:
        seen.append((options, ctx.obj.project, ctx.obj.reporter.quiet))
        raise typer.Exit(0)

    monkeypatch.setattr(cli, "_run", capture)
    result = CliRunner().invoke(cli.app, argv)
    assert result.exit_code == 0, result.output
    assert len(seen) == 1
    return seen[0]


def _fastpath_meaning(argv: list[str]) -> tuple[Any, Path, bool]:
    parsed = fastpath._parse(argv)
    assert parsed is not None, f"fastpath does not accept {argv}"
    name, project, quiet, options = parsed
    if name == "lock":
        from lockenv.ops.lock import LockOptions

        # the fast path answers `lock` and `lock --check` alike (only when nothing would change),
        # but it must still mean a plain lock: no upgrade, no refresh, no exclude-newer
        return (LockOptions(project=project, check="--check" in argv, offline="--offline" in argv),
                project, quiet)
    from lockenv.ops.sync import SyncOptions

    return SyncOptions(project=project, **options), project, quiet  # type: ignore[arg-type]


@pytest.mark.parametrize("argv", _shapes(), ids=" ".join)
@pytest.mark.parametrize("where", ["cwd", "-C before", "-C after"])
def test_every_shape_fastpath_accepts_means_the_same_to_the_cli(
        argv: list[str], where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "proj"
    (project / "sub").mkdir(parents=True)
    (project / "pyproject.toml").write_text('[project]\nname = "demo"\nversion = "0.1"\n')
    monkeypatch.chdir(project / "sub" if where == "cwd" else tmp_path)
    if where == "-C before":
        argv = ["-C", str(project), *argv]
    elif where == "-C after":
        argv = [*argv, "--project", str(project)]
    assert _cli_meaning(argv, monkeypatch) == _fastpath_meaning(argv)


# -- anything else falls through -----------------------------------------------------------


@pytest.mark.parametrize("name", ["lock", "sync", "verify"])
def test_every_other_option_falls_through_to_the_cli(name: str) -> None:
    known = ({*FLAGS, *LISTS, *OTHER_SYNC} if name == "sync" else {"--check", "--offline"}
             if name == "lock" else set())
    known |= {"-q", "--quiet", "-C", "--project"}
    checked = 0
    for opt in command(name).params:
        if not isinstance(opt, typer.core.TyperOption):
            continue
        for spelling in opt.opts:
            if spelling in known:
                continue
            argv = [name, spelling] + ([] if opt.is_flag else ["x"])
            assert fastpath._parse(argv) is None, f"fastpath accepts `{' '.join(argv)}` unchecked"
            checked += 1
    assert checked > 0 or name == "verify"
    for spelling in ("-v", "--verbose", "--help", "--version"):
        assert fastpath._parse([spelling, "sync"]) is None


# -- `run`: the fast path execs only shapes whose meaning it shares with the CLI ------------


RUN_SHAPES = [["run", "true"], ["run", "python", "-c", "x", "--group", "g"],
              ["run", "--frozen", "--extra", "e", "--group", "g", "--all-extras", "cmd"],
              ["run", "--locked", "--offline", "-q", "--", "--weird-cmd"], ["-q", "run", "--no-sync", "cmd"],
              ["run", "--only-group", "g", "--no-default-groups", "--all-groups", "cmd", "-q"]]


@pytest.mark.parametrize("argv", RUN_SHAPES, ids=" ".join)
def test_every_run_shape_fastpath_accepts_means_the_same_to_the_cli(
        argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lockenv.ops.sync import SyncOptions

    (tmp_path / "pyproject.toml").write_text('[project]\nname = "demo"\nversion = "0.1"\n')
    monkeypatch.chdir(tmp_path)
    options, project, quiet = _cli_meaning(argv, monkeypatch)
    parsed = fastpath._parse_run(argv)
    assert parsed is not None, argv
    fp_project, fp_quiet, fp_options, fp_no_sync, fp_command = parsed
    assert (fp_project, fp_quiet) == (project, quiet)
    assert (tuple(fp_command), fp_no_sync) == (options.command, options.no_sync)
    assert SyncOptions(project=fp_project, **fp_options) == options.sync  # type: ignore[arg-type]


def test_run_options_fastpath_does_not_know_fall_through() -> None:
    for argv in (["run", "--python", "3.12", "x"], ["run", "-v", "x"], ["run", "-h"], ["run"],
                 ["run", "--inexact", "x"], ["-v", "run", "x"]):
        assert fastpath._parse_run(argv) is None, argv


# -- Ctrl-C before a use case runs ------------------------------------------------------------
_INTERRUPTED = """
import sys
from lockenv import fastpath
def interrupted(parsed):
    raise KeyboardInterrupt
fastpath._try_noop = interrupted
sys.argv = ["lockenv", *sys.argv[1:]]
fastpath.main()
"""


@pytest.mark.parametrize("argv", [["sync"], ["lock"], ["tree"]], ids=" ".join)
def test_ctrl_c_before_a_use_case_runs_says_interrupted_without_a_traceback(
        argv: list[str], tmp_path: Path) -> None:
    """Ctrl-C while the entry point imports or checks the no-op (the first ~0.1 s of every
    command) ends as inside a use case: one line, exit 130."""
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", _INTERRUPTED, *argv], cwd=tmp_path,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 130
    assert result.stderr == "error: interrupted\n"
    assert result.stdout == ""

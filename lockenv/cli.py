"""The command line: parse options, call one use case of `lockenv.ops`, render its errors.

No logic lives here. Stages are imported inside the commands so that `--help` and the no-op
paths do not pay for httpx or the resolver.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable
from typing import Annotated, Any, NoReturn, Optional, TypedDict

import typer

from lockenv import __version__
from lockenv.errors import LockenvError
from lockenv.ui import Reporter, TerminalReporter, run_use_case

app = typer.Typer(
    name="lockenv",
    help="Universal, hashed PEP 751 lockfiles (pylock.toml) and exact virtual environments.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish)
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _examples(*lines: str) -> str:
    """A help epilog: the examples, one per line (\\b keeps click from rewrapping them)."""
    return "Examples:\n\n\b\n" + "\n".join(f"  {line}" for line in lines)


@dataclass
class Globals:
    project: Path
    reporter: Reporter


def _version(value: bool) -> None:
    if value:
        print(f"lockenv {__version__}")
        raise typer.Exit()


ProjectOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--project", "-C", show_default=False, metavar="DIR",
        help="The project directory (default: the nearest one upward holding pyproject.toml).",
    ),
]


@app.callback()
def _main(
    ctx: typer.Context,
    project: ProjectOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors.")] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Say more; show tracebacks of bugs.")
    ] = False,
    version: Annotated[
        Optional[bool],
        typer.Option("--version", "-V", callback=_version, is_eager=True, help="Show the version."),
    ] = None,
) -> None:
    from lockenv.project import find_project

    where = project.resolve() if project is not None else find_project(Path.cwd())
    ctx.obj = Globals(project=where, reporter=TerminalReporter(quiet=quiet, verbose=verbose))


QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Only errors.")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Say more; show tracebacks of bugs.")]


def _flags(ctx: typer.Context, quiet: bool, verbose: bool, project: Path | None = None) -> Globals:
    """-q/-v/-C work after the command too (`lockenv sync -q`), as they do before it."""
    g: Globals = ctx.obj
    if project is not None:
        g.project = project.resolve()
    g.reporter.quiet = g.reporter.quiet or quiet
    g.reporter.verbose = g.reporter.verbose or verbose
    return g


def _run(ctx: typer.Context, func: Callable[..., int], *args: object, **kwargs: object) -> NoReturn:
    """Call a use case; turn LockenvError into a message and an exit code."""
    g: Globals = ctx.obj
    if ctx.find_root().invoked_subcommand != "cache":
        from lockenv.ops.in_use import hold_in_use

        hold_in_use()  # `cache clean/prune` leave alone what a running lockenv may be using
    code = run_use_case(g.reporter, lambda: func(*args, reporter=g.reporter, **kwargs))
    raise typer.Exit(code)


ExtraOpt = Annotated[
    Optional[list[str]],
    typer.Option("--extra", metavar="NAME", help="Include this extra (repeatable)."),
]
GroupOpt = Annotated[
    Optional[list[str]],
    typer.Option("--group", metavar="NAME", help="Include this dependency group (repeatable)."),
]
OnlyGroupOpt = Annotated[
    Optional[list[str]],
    typer.Option("--only-group", metavar="NAME", help="Only this group: no main dependencies (repeatable)."),
]
OfflineOpt = Annotated[
    bool,
    typer.Option("--offline", envvar="LOCKENV_OFFLINE",
                 help="No network: use the cache only; fail at once naming what it lacks."),
]
AllExtrasOpt = Annotated[bool, typer.Option("--all-extras", help="Include every extra.")]
NoDefaultGroupsOpt = Annotated[
    bool, typer.Option("--no-default-groups", help="Leave out the default groups.")
]
AllGroupsOpt = Annotated[bool, typer.Option("--all-groups", help="Include every group.")]
LockfileOpt = Annotated[
    Optional[Path],
    typer.Option("--lockfile", metavar="PATH", help="Use this pylock file instead of pylock.toml (one written by uv, pip or PDM, say)."),
]


JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print one JSON document on stdout (keys: see the README).")
]


def _json_sink(g: Globals, wanted: bool) -> Any:
    """For --json: data lines move to stderr, and the use case's result, when it hands one
    over, is printed on stdout as one JSON document."""
    if not wanted:
        return None
    from lockenv import render

    if isinstance(g.reporter, TerminalReporter):
        g.reporter.out = sys.stderr
    return render.write_json


def _usage_error(ctx: typer.Context, message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    raise typer.Exit(2)


@app.command(epilog=_examples(
    "lockenv lock                      # write pylock.toml, or say it is up to date",
    "lockenv lock --check              # CI: exit 1 when pylock.toml is out of date",
    "lockenv lock -P httpx --dry-run   # what moving httpx to its newest would change",
))
def lock(
    ctx: typer.Context,
    check: Annotated[
        bool, typer.Option("--check", help="Write nothing; exit 1 if the lock is out of date.")
    ] = False,
    upgrade: Annotated[
        bool, typer.Option("--upgrade", "-U", help="Move every package to the newest allowed.")
    ] = False,
    upgrade_package: Annotated[
        Optional[list[str]],
        typer.Option("--upgrade-package", "-P", metavar="NAME[==VERSION]", help="Move only this package: NAME, or NAME==VERSION (repeatable)."),
    ] = None,
    exclude_newer: Annotated[
        Optional[str],
        typer.Option(
            "--exclude-newer", metavar="TIME",
            help="Ignore files uploaded after this time (RFC 3339 or YYYY-MM-DD); remembered in the lock "
                 "for later relocks until changed; `none` forgets it.",
        ),
    ] = None,
    refresh: Annotated[
        bool, typer.Option("--refresh", help="Fetch index pages again instead of using the cache.")
    ] = False,
    json_: Annotated[
        bool, typer.Option("--json", help="With --check: print the finding as JSON on stdout (keys: see the README).")
    ] = False,
    offline: OfflineOpt = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what a relock would change; write nothing.")
    ] = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
    project: ProjectOpt = None,
) -> None:
    """Resolve pyproject.toml into a universal, hashed pylock.toml."""
    from lockenv.ops.lock import LockOptions, lock as do_lock

    g = _flags(ctx, quiet, verbose, project)
    options = LockOptions(
        project=g.project,
        check=check,
        upgrade=upgrade,
        upgrade_packages=tuple(upgrade_package or ()),
        exclude_newer=exclude_newer,
        refresh=refresh,
        offline=offline,
        dry_run=dry_run,
    )
    if json_ and not check:
        _usage_error(ctx, "--json goes with --check (the finding as JSON)")
    _run(ctx, do_lock, options, on_result=_json_sink(g, json_))


@app.command(epilog=_examples(
    "lockenv sync                          # make .venv match pylock.toml (relocking first if stale)",
    "lockenv sync --locked --all-extras    # CI: fail on a stale lock; every extra",
    "lockenv sync --dry-run --group docs   # show the plan with the docs group",
))
def sync(
    ctx: typer.Context,
    python: Annotated[
        Optional[str],
        typer.Option("--python", metavar="VERSION|PATH",
                     help="Interpreter: a version like 3.12, or a path."),
    ] = None,
    extra: ExtraOpt = None,
    all_extras: AllExtrasOpt = False,
    group: GroupOpt = None,
    only_group: OnlyGroupOpt = None,
    no_default_groups: NoDefaultGroupsOpt = False,
    all_groups: AllGroupsOpt = False,
    inexact: Annotated[
        bool, typer.Option("--inexact", help="Keep installed packages the lock does not select.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan; change nothing.")
    ] = False,
    locked: Annotated[
        bool, typer.Option("--locked", help="Fail if the lock is out of date with pyproject.toml.")
    ] = False,
    frozen: Annotated[
        bool, typer.Option("--frozen", help="Use the lock as it is, without checking it.")
    ] = False,
    lockfile: LockfileOpt = None,
    no_install_project: Annotated[
        bool, typer.Option("--no-install-project", help="Do not install the project itself.")
    ] = False,
    json_: Annotated[
        bool, typer.Option("--json", help="With --dry-run: print the plan as JSON on stdout (keys: see the README).")
    ] = False,
    find_links: Annotated[
        Optional[Path],
        typer.Option("--find-links", metavar="DIR", help="Install from this directory alone (what `lockenv "
                     "fetch` wrote); every file checked against the lock."),
    ] = None,
    offline: OfflineOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
    project: ProjectOpt = None,
) -> None:
    """Make the project's .venv match the lock exactly."""
    from lockenv.ops.sync import SyncOptions, sync as do_sync

    g = _flags(ctx, quiet, verbose, project)
    options = SyncOptions(
        project=g.project,
        python=python,
        inexact=inexact,
        dry_run=dry_run,
        locked=locked,
        frozen=frozen,
        install_project=not no_install_project,
        find_links=find_links.absolute() if find_links is not None else None,
        offline=offline,
        **_selection(extra, all_extras, group, only_group, no_default_groups, all_groups, lockfile),
    )
    if json_ and not dry_run:
        _usage_error(ctx, "--json goes with --dry-run (the plan as JSON)")
    _run(ctx, do_sync, options, on_result=_json_sink(g, json_))


@app.command(epilog=_examples(
    "lockenv fetch --platform linux-x86_64 --python 3.12 -d wheels   # files for that machine",
    "lockenv sync --find-links wheels                                 # there, with no index",
))
def fetch(
    ctx: typer.Context,
    platform: Annotated[
        str, typer.Option("--platform", metavar="PLATFORM", help="Target: linux-x86_64, linux-aarch64, "
                          "linux-musl-x86_64, macos-x86_64, macos-arm64 or windows-amd64.")
    ],
    python: Annotated[str, typer.Option("--python", metavar="VERSION", help="Target Python, such as 3.12.")],
    dest: Annotated[Path, typer.Option("--dest", "-d", metavar="DIR", help="Directory to write the files to.")],
    extra: ExtraOpt = None,
    all_extras: AllExtrasOpt = False,
    group: GroupOpt = None,
    only_group: OnlyGroupOpt = None,
    no_default_groups: NoDefaultGroupsOpt = False,
    all_groups: AllGroupsOpt = False,
    lockfile: LockfileOpt = None,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
    project: ProjectOpt = None,
) -> None:
    """Download what the lock selects for another machine into a directory, with the lock."""
    from lockenv.ops.fetch import FetchOptions, fetch as do_fetch

    g = _flags(ctx, quiet, verbose, project)
    options = FetchOptions(
        project=g.project, platform=platform, python=python, dest=dest.absolute(),
        **_selection(extra, all_extras, group, only_group, no_default_groups, all_groups, lockfile),
    )
    _run(ctx, do_fetch, options)


@app.command(epilog=_examples(
    "lockenv verify                # every installed file against RECORD, the set against the lock",
    "lockenv verify --all-groups   # the same, counting every dependency group",
))
def verify(
    ctx: typer.Context,
    extra: ExtraOpt = None,
    all_extras: AllExtrasOpt = False,
    group: GroupOpt = None,
    only_group: OnlyGroupOpt = None,
    no_default_groups: NoDefaultGroupsOpt = False,
    all_groups: AllGroupsOpt = False,
    no_install_project: Annotated[
        bool, typer.Option("--no-install-project", help="The project itself is not expected.")
    ] = False,
    lockfile: LockfileOpt = None,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
    project: ProjectOpt = None,
) -> None:
    """Check every installed file against its RECORD and the installed set against the lock
    (the selection of the last sync, unless extras or groups are given)."""
    from lockenv.ops.verify import VerifyOptions, verify as do_verify

    g = _flags(ctx, quiet, verbose, project)
    options = VerifyOptions(
        project=g.project, install_project=not no_install_project,
        **_selection(extra, all_extras, group, only_group, no_default_groups, all_groups, lockfile),
    )
    _run(ctx, do_verify, options, on_result=_json_sink(g, json_))


class _Selection(TypedDict):
    extras: tuple[str, ...]
    all_extras: bool
    groups: tuple[str, ...]
    only_groups: tuple[str, ...]
    no_default_groups: bool
    all_groups: bool
    lockfile: Path | None


def _selection(
    extra: list[str] | None,
    all_extras: bool,
    group: list[str] | None,
    only_group: list[str] | None,
    no_default_groups: bool,
    all_groups: bool,
    lockfile: Path | None,
) -> _Selection:
    """The Selection fields `sync` and `verify` share: what to select from which lock."""
    return {
        "extras": tuple(extra or ()),
        "all_extras": all_extras,
        "groups": tuple(group or ()),
        "only_groups": tuple(only_group or ()),
        "no_default_groups": no_default_groups,
        "all_groups": all_groups,
        "lockfile": lockfile.resolve() if lockfile else None,
    }




def _query(ctx: typer.Context, func: Any, options: Any, render: Any) -> NoReturn:
    """Run a query use case and render its result; `render` returns the exit code."""

    def call(*, reporter: Reporter) -> int:
        result = func(options, reporter=reporter)
        try:
            return int(render(result, reporter) or 0)
        except BrokenPipeError:  # `lockenv tree | head`: the reader has all it wanted
            import os

            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0

    _run(ctx, call)


@app.command(epilog=_examples(
    "lockenv tree                      # everything the project needs",
    "lockenv tree --package beta -i    # who needs beta, up to the project",
    "lockenv tree --depth 1 --json     # direct dependencies, as JSON",
))
def tree(
    ctx: typer.Context,
    package: Annotated[
        Optional[str],
        typer.Option("--package", "-p", metavar="NAME", help="Start from this package (every locked version of it)."),
    ] = None,
    invert: Annotated[
        bool, typer.Option("--invert", "-i", help="Show who depends on each package, up to the project.")
    ] = False,
    depth: Annotated[
        Optional[int], typer.Option("--depth", "-d", metavar="N", min=0, help="Show at most N levels.")
    ] = None,
    json_: JsonOpt = False,
    lockfile: LockfileOpt = None,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
    project: ProjectOpt = None,
) -> None:
    """Show the dependency tree of pylock.toml (no network, no venv), with versions and the
    marker of every conditional edge."""
    from lockenv.ops.tree import TreeOptions, tree as do_tree
    from lockenv import render

    g = _flags(ctx, quiet, verbose, project)
    options = TreeOptions(project=g.project, package=package, invert=invert, depth=depth,
                          lockfile=lockfile.resolve() if lockfile else None)
    _query(ctx, do_tree, options,
           lambda result, reporter: render.write_json(result) if json_ else render.print_tree(result))


@app.command(epilog=_examples(
    "lockenv why gamma          # every path from the project to gamma",
    "lockenv why gamma --json   # the same, as JSON",
))
def why(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The package to explain.")],
    json_: JsonOpt = False,
    lockfile: LockfileOpt = None,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
    project: ProjectOpt = None,
) -> None:
    """Show every path from the project (its dependencies, extras and groups) to NAME, with the
    markers on the way; exit 1 when NAME is not in the lock."""
    from lockenv.ops.tree import TreeOptions, why as do_why
    from lockenv import render

    g = _flags(ctx, quiet, verbose, project)
    options = TreeOptions(project=g.project, package=name,
                          lockfile=lockfile.resolve() if lockfile else None)

    def show(result: Any, reporter: Reporter) -> int:
        if json_:
            render.write_json(result, found=result.found)
        elif result.found:
            render.print_why(result)
        if not result.found:
            reporter.status(f"`{name}` is not in {Path(result.lockfile).name}")
        return 0 if result.found else 1

    _query(ctx, do_why, options, show)


@app.command(epilog=_examples(
    "lockenv export -o requirements.txt             # what sync installs, for pip",
    "lockenv export --only-group dev > dev.txt      # one group, nothing else",
    "pip install --require-hashes --no-deps -r requirements.txt",
))
def export(
    ctx: typer.Context,
    format_: Annotated[
        str, typer.Option("--format", metavar="FORMAT", help="The output format: requirements.txt.")
    ] = "requirements.txt",
    output: Annotated[
        Optional[Path], typer.Option("--output", "-o", metavar="FILE", help="Write to FILE instead of stdout.")
    ] = None,
    extra: ExtraOpt = None,
    all_extras: AllExtrasOpt = False,
    group: GroupOpt = None,
    only_group: OnlyGroupOpt = None,
    no_default_groups: NoDefaultGroupsOpt = False,
    all_groups: AllGroupsOpt = False,
    lockfile: LockfileOpt = None,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
    project: ProjectOpt = None,
) -> None:
    """Export the lock as a hashed requirements file: one `name==version ; marker` line per
    package the options select, with the sha256 of every file, for `pip install
    --require-hashes --no-deps -r FILE` on any machine the lock serves."""
    from lockenv.ops.export import ExportOptions, export as do_export

    g = _flags(ctx, quiet, verbose, project)
    options = ExportOptions(
        project=g.project, format=format_, output=output.resolve() if output else None,
        **_selection(extra, all_extras, group, only_group, no_default_groups, all_groups, lockfile),
    )

    def show(result: Any, reporter: Reporter) -> int:
        if result.output is None:
            sys.stdout.write(result.text)
            sys.stdout.flush()
        return 0

    _query(ctx, do_export, options, show)


@app.command(epilog=_examples(
    "lockenv outdated          # what has newer releases",
    "lockenv outdated --json   # every locked package, as JSON",
))
def outdated(
    ctx: typer.Context,
    json_: JsonOpt = False,
    offline: OfflineOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
    project: ProjectOpt = None,
) -> None:
    """For each locked package: the locked version, the newest the project's requirements allow
    (what `lock --upgrade` would choose) and the newest on the index. Writes nothing; exit 0."""
    from lockenv.ops.outdated import OutdatedOptions, outdated as do_outdated
    from lockenv import render

    g = _flags(ctx, quiet, verbose, project)

    def show(result: Any, reporter: Reporter) -> int:
        if json_:
            render.write_json(render.outdated_document(result))
            return 0
        for line in render.outdated_lines(result):
            reporter.data(line)
        n = sum(1 for p in result.packages if p.outdated or p.upgradable)
        total = len(result.packages)
        reporter.status(f"{n} of {total} locked package{'s' if total != 1 else ''} "
                        f"{'has' if n == 1 else 'have'} a newer release" if n else
                        f"All {total} locked packages are at the newest release")
        return 0

    _query(ctx, do_outdated, OutdatedOptions(project=g.project, offline=offline), show)


cache_app = typer.Typer(
    name="cache", help="Show, clean or prune lockenv's cache.", no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(cache_app)


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"


def _show_removed(result: Any, reporter: Reporter, verb: str) -> int:
    for r in result.removed:
        reporter.debug(f"removed {r.path} ({r.why})")
    reporter.status(f"{verb} {len(result.removed)} entr{'y' if len(result.removed) == 1 else 'ies'}, "
                    f"freed {_size(result.freed)} in {result.root}")
    if result.kept_busy:
        reporter.status(f"Kept {result.kept_busy} entr{'y' if result.kept_busy == 1 else 'ies'} "
                        "another lockenv process may be using; prune again when it is done")
    return 0


@cache_app.command("dir", epilog=_examples("lockenv cache dir", "du -sh \"$(lockenv cache dir)\""))
def cache_dir(ctx: typer.Context) -> None:
    """Print the cache directory (LOCKENV_CACHE_DIR, else the platform's user cache directory)."""
    from lockenv.ops.cache import CacheOptions, cache_dir as do_dir

    _query(ctx, do_dir, CacheOptions(), lambda result, reporter: print(result))


@cache_app.command("clean", epilog=_examples(
    "lockenv cache clean          # everything",
    "lockenv cache clean numpy    # one package's pages, files, metadata and unpacked wheels",
))
def cache_clean(
    ctx: typer.Context,
    names: Annotated[Optional[list[str]], typer.Argument(metavar="[NAME]...", help="Only these packages.")] = None,
    verbose: VerboseOpt = False,
) -> None:
    """Remove the whole cache, or every entry of the named packages. Waits for other lockenv
    processes using the cache to finish."""
    from lockenv.ops.cache import CacheOptions, clean as do_clean

    _flags(ctx, False, verbose)
    _query(ctx, do_clean, CacheOptions(names=tuple(names or ())),
           lambda result, reporter: _show_removed(result, reporter, "Removed"))


@cache_app.command("prune", epilog=_examples("lockenv cache prune", "lockenv cache prune -v   # list what goes"))
def cache_prune(ctx: typer.Context, verbose: VerboseOpt = False) -> None:
    """Remove what no lock can use any more: buckets of older lockenv versions, temporary files
    of killed runs, unpacked wheels no venv links to, install records of those, unfinished build
    environments, index pages older than a week, parsed-lock and probe entries. Safe while
    other lockenv processes run (it leaves what they may be using)."""
    from lockenv.ops.cache import CacheOptions, prune as do_prune

    _flags(ctx, False, verbose)
    _query(ctx, do_prune, CacheOptions(), lambda result, reporter: _show_removed(result, reporter, "Pruned"))


# -- the everyday workflow: init, add, remove, run ----------------------------------------------
@app.command(epilog=_examples(
    "lockenv init                       # a pyproject.toml for the project in this directory",
    "lockenv init myapp --python 3.12   # a new directory myapp, requires-python >=3.12",
))
def init(
    ctx: typer.Context,
    directory: Annotated[
        Optional[Path],
        typer.Argument(metavar="[DIR]", show_default=False,
                       help="Where to write pyproject.toml (made if missing; default: here)."),
    ] = None,
    name: Annotated[
        Optional[str],
        typer.Option("--name", metavar="NAME", help="The project name (default: the directory's)."),
    ] = None,
    python: Annotated[
        Optional[str],
        typer.Option("--python", metavar="VERSION",
                     help="requires-python becomes >=VERSION (default: this interpreter's X.Y)."),
    ] = None,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Write a minimal pyproject.toml; refuse when there is one."""
    from lockenv.ops.init import InitOptions, init as do_init

    _flags(ctx, quiet, verbose)
    _run(ctx, do_init, InitOptions(directory=(directory or Path.cwd()), name=name, python=python))


EditGroupOpt = Annotated[
    Optional[str],
    typer.Option("--group", metavar="NAME", help="Edit this dependency group ([dependency-groups])."),
]
EditExtraOpt = Annotated[
    Optional[str],
    typer.Option("--optional", metavar="EXTRA",
                 help="Edit this extra ([project.optional-dependencies])."),
]
NoSyncOpt = Annotated[
    bool, typer.Option("--no-sync", help="Lock, but leave .venv as it is.")
]


@app.command(epilog=_examples(
    "lockenv add httpx                              # the newest httpx, written as httpx>=VERSION",
    "lockenv add 'rich>=13' --group dev             # into [dependency-groups] dev",
    "lockenv add uvicorn --optional web --no-sync   # into the extra `web`; lock only",
))
def add(
    ctx: typer.Context,
    requirements: Annotated[
        list[str], typer.Argument(metavar="REQ...", show_default=False,
                                  help="Requirements as in pyproject.toml: NAME, NAME>=1.2, NAME[extra].")
    ],
    group: EditGroupOpt = None,
    optional: EditExtraOpt = None,
    no_sync: NoSyncOpt = False,
    frozen: Annotated[
        bool, typer.Option("--frozen", help="Only edit pyproject.toml: neither lock nor sync.")
    ] = False,
    offline: OfflineOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
    project: ProjectOpt = None,
) -> None:
    """Add requirements to pyproject.toml, lock and sync; on any failure nothing changes."""
    from lockenv.ops.edit import EditOptions, add as do_add

    g = _flags(ctx, quiet, verbose, project)
    _run(ctx, do_add, EditOptions(project=g.project, items=tuple(requirements), group=group,
                                  optional=optional, no_sync=no_sync, frozen=frozen, offline=offline))


@app.command(epilog=_examples(
    "lockenv remove httpx                # from [project] dependencies",
    "lockenv remove pytest --group dev   # from [dependency-groups] dev",
))
def remove(
    ctx: typer.Context,
    names: Annotated[
        list[str], typer.Argument(metavar="NAME...", show_default=False,
                                  help="Package names to remove (every requirement on each).")
    ],
    group: EditGroupOpt = None,
    optional: EditExtraOpt = None,
    no_sync: NoSyncOpt = False,
    offline: OfflineOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
    project: ProjectOpt = None,
) -> None:
    """Remove requirements from pyproject.toml, lock and sync; on any failure nothing changes."""
    from lockenv.ops.edit import EditOptions, remove as do_remove

    g = _flags(ctx, quiet, verbose, project)
    _run(ctx, do_remove, EditOptions(project=g.project, items=tuple(names), group=group,
                                     optional=optional, no_sync=no_sync, offline=offline))


@app.command(
    context_settings={"allow_interspersed_args": False, "ignore_unknown_options": True},
    epilog=_examples(
        "lockenv run pytest -x                                   # sync if needed, then the venv's pytest",
        "lockenv run python -c 'import sys; print(sys.prefix)'   # the venv's Python",
        "lockenv run --group docs --frozen mkdocs build          # with the docs group, lock unchecked",
    ),
)
def run(
    ctx: typer.Context,
    command: Annotated[
        list[str], typer.Argument(metavar="CMD [ARGS]...", show_default=False,
                                  help="The command and its arguments (options after CMD are its own).")
    ],
    no_sync: Annotated[
        bool, typer.Option("--no-sync", help="Run in .venv as it is: neither lock nor sync.")
    ] = False,
    locked: Annotated[
        bool, typer.Option("--locked", help="Fail if the lock is out of date with pyproject.toml.")
    ] = False,
    frozen: Annotated[
        bool, typer.Option("--frozen", help="Sync from the lock as it is, without checking it.")
    ] = False,
    extra: ExtraOpt = None,
    all_extras: AllExtrasOpt = False,
    group: GroupOpt = None,
    only_group: OnlyGroupOpt = None,
    no_default_groups: NoDefaultGroupsOpt = False,
    all_groups: AllGroupsOpt = False,
    offline: OfflineOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
    project: ProjectOpt = None,
) -> None:
    """Run a command in the project's venv, syncing it first when it is out of date.

    The command replaces lockenv (its exit status is lockenv's; signals reach it), with the
    venv's scripts first on PATH and VIRTUAL_ENV set."""
    from lockenv.ops.run import RunOptions, run as do_run
    from lockenv.ops.sync import SyncOptions

    g = _flags(ctx, quiet, verbose, project)
    sync_options = SyncOptions(
        project=g.project, locked=locked, frozen=frozen, offline=offline,
        extras=tuple(extra or ()), all_extras=all_extras, groups=tuple(group or ()),
        only_groups=tuple(only_group or ()), no_default_groups=no_default_groups,
        all_groups=all_groups,
    )
    _run(ctx, do_run, RunOptions(command=tuple(command), sync=sync_options, no_sync=no_sync))


def main() -> None:
    """Full CLI without the no-op fast path (see lockenv.fastpath.main)."""
    app()

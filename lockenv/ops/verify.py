"""The `verify` use case: is this environment really what the lock says?

Every file of every installed distribution is hashed against its RECORD, files no RECORD owns
are reported, and the installed set is compared with what the lock selects for the venv by the
comparison sync plans with (`sync.plan.plan(..., full_check=True)`), including the sha256 of
the archive each was installed from (recorded by sync in the dist-info's `lockenv.json`). What
sync keeps although the lock does not select it (a venv's seed packages, lockenv's own runtime
in the venv lockenv runs from) is not extraneous.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lockenv.errors import SyncError
from lockenv.ops.wanted import (
    Selection,
    chose_nothing,
    describe_selection,
    lock_path,
    own_runtime,
    recorded_selection,
    select_all,
)
from lockenv.ui import counted

if TYPE_CHECKING:
    from lockenv.models import ProjectSpec
    from lockenv.sync.plan import Action, SyncPlan
    from lockenv.sync.scan import Installed
    from lockenv.sync.selection import Wanted
    from lockenv.ui import Reporter

VerifyOptions = Selection
"""verify selects as sync does and takes no other option."""


@dataclass(frozen=True)
class FileReport:
    """What hashing every installed file found."""

    problems: tuple[str, ...]
    checked: int


def verify(options: VerifyOptions, *, reporter: Reporter, on_result: Any = None) -> int:
    """Check every installed file against RECORD and the installed set against the lock;
    returns 0 when the environment matches, 1 when it differs."""
    from lockenv.cache import Cache
    from lockenv.environment import existing_venv, probe
    from lockenv.project import venv_path
    from lockenv.sync.scan import scan
    from lockenv.sync.selection import load_lock

    venv_dir = venv_path(options.project)
    venv = existing_venv(venv_dir)
    if venv is None:
        raise SyncError(f"no virtual environment at {venv_dir}", hint="run `lockenv sync` first")
    cache = Cache()
    info = probe(venv.python, reporter, cache=cache)
    spec = _spec(options.project)
    _warn_if_stale(options, spec, reporter)
    options = _selection_of_last_sync(options, venv_dir, reporter)
    wanted = select_all(options, spec, load_lock(lock_path(options), cache), info)
    installed = scan(info.site_dirs, check=False)
    files = check_installed_files(installed)
    stray = extraneous_files(info.site_dirs)
    sync_plan = _compare(wanted, installed, venv_dir)
    problems = [*files.problems, *(f"extraneous file: {p}" for p in stray),
                *package_problems(sync_plan, lock_path(options).name)]
    if on_result is not None:  # --json: the finding as data (`ops.reports.VerifyReport`)
        from lockenv.ops.reports import verify_report

        on_result(verify_report(lock_path(options), venv_dir, problems, len(installed), files.checked))
    _report(problems, sync_plan, reporter, lock_name=lock_path(options).name,
            packages=len(installed), files=files.checked)
    return 1 if problems else 0


def _selection_of_last_sync(options: VerifyOptions, venv_dir: Path, reporter: Reporter) -> VerifyOptions:
    """No selection flag: check what the venv's last sync selected (its extras, groups and
    whether it installed the project), and say so when that is not the defaults."""
    if not chose_nothing(options):
        return options
    recorded = recorded_selection(venv_dir, options)
    if recorded is None or chose_nothing(recorded):
        return options
    reporter.status(f"Checking the selection of the last sync: {describe_selection(recorded)}")
    return recorded


def _warn_if_stale(options: VerifyOptions, spec: ProjectSpec | None, reporter: Reporter) -> None:
    """The environment is checked against the lock as it is; a lock behind pyproject.toml is
    said, since the environment then matches an outdated lock."""
    from lockenv import lockfile

    path = lock_path(options)
    if spec is None or not path.exists():
        return
    try:
        if lockfile.read_inputs(path) is None:
            return  # a lock lockenv did not write records no inputs to compare
    except Exception:
        pass  # unreadable: stale_reasons says so
    reasons = lockfile.stale_reasons(spec, path)
    if reasons:
        reporter.warn(f"{path.name} is out of date with pyproject.toml ({'; '.join(map(str, reasons))}); "
                      "the environment is checked against the lock as it is",
                      hint="run `lockenv sync` to lock again and sync")


def _spec(project: Path) -> ProjectSpec | None:
    """The project's ProjectSpec when it has a pyproject.toml (a foreign lock may have none)."""
    if not (project / "pyproject.toml").exists():
        return None
    from lockenv import manifest

    return manifest.load(project)


def _compare(wanted: Sequence[Wanted], installed: Sequence[Installed], venv_dir: Path) -> SyncPlan:
    """sync's comparison, exact, keeping what sync keeps."""
    from lockenv.sync.plan import plan

    return plan(wanted, installed, exact=True, protected=own_runtime(venv_dir),
                full_check=True)


def check_installed_files(installed: Sequence[Installed]) -> FileReport:
    """Every file of every distribution hashed against its RECORD."""
    from lockenv.sync.scan import check_files

    problems: list[str] = []
    checked = 0
    for dist in installed:
        result = check_files(Path(dist.dist_info), full=True)
        if result is None:
            problems.append(f"no RECORD: {dist.label}")
            continue
        checked += result.checked
        problems.extend(f"modified: {dist.name} {dist.version}: {p}" for p in result.modified)
        problems.extend(f"missing: {dist.name} {dist.version}: {p}" for p in result.missing)
    return FileReport(tuple(problems), checked)


def extraneous_files(site_dirs: Sequence[Path]) -> list[str]:
    """Files in site-packages that no RECORD lists (`__pycache__` and dist-info contents aside),
    relative to their site directory."""
    from lockenv.sync.scan import iter_dist_infos, read_record

    owned: set[str] = set()
    for dist_info in iter_dist_infos(site_dirs):
        site = dist_info.parent
        owned.add(os.path.normpath(dist_info))
        for entry in read_record(dist_info) or []:
            owned.add(os.path.normpath(os.path.join(site, *entry.path.split("/"))))
    out = []
    for site in site_dirs:
        for dirpath, dirnames, filenames in os.walk(site):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__"
                                 and os.path.normpath(os.path.join(dirpath, d)) not in owned)
            for name in sorted(filenames):
                path = os.path.normpath(os.path.join(dirpath, name))
                if path not in owned:
                    out.append(os.path.relpath(path, site))
    return out


def package_problems(sync_plan: SyncPlan, lock_name: str) -> list[str]:
    """One line per distribution the plan would change, in verify's words: what differs."""
    lines: list[str] = []
    for action in sync_plan.changes:
        lines.extend(_problem_lines(action, lock_name))
    return lines


def _problem_lines(action: Action, lock_name: str) -> list[str]:
    want, have = action.wanted, action.installed
    if action.kind == "remove":
        return [f"extraneous package: {dist.label}" for dist in have]
    assert want is not None
    if action.kind == "install":
        return [f"missing package: {want.label}"]
    if action.kind in ("upgrade", "downgrade"):
        return [f"wrong version: {action.name} {have[0].version} installed, lock has {want.version}"]
    dist = have[0]
    if action.cause == "twice":
        return [f"installed twice: {action.name} ({', '.join(d.version for d in have)})"]
    if action.cause == "archive":
        return [f"different archive: {action.name} {dist.version} was installed from sha256 "
                f"{dist.archive_sha256}, {lock_name} has {want.sha256}"]
    if action.cause == "editable":
        return [f"not editable: {action.name} {dist.version}"]
    if action.cause == "release":
        return [f"installed editable: {action.name} {dist.version}; {lock_name} has a release"]
    return [f"differs: {action.name} {dist.version}: {action.reason}"]


def _report(problems: Sequence[str], sync_plan: SyncPlan, reporter: Reporter, *, lock_name: str,
            packages: int, files: int) -> None:
    for line in problems:
        reporter.data(line)
    if problems:
        reporter.status(f"Environment differs from {lock_name}: {len(problems)} "
                        f"problem{'s' if len(problems) != 1 else ''} ({counted(packages, 'package')}, "
                        f"{files} files verified)")
        return
    kept = [a for a in sync_plan.of_kind("keep") if a.wanted is None]
    seeds = [a.name for a in kept if a.is_seed_kept]
    also = ""
    if seeds:
        also += f"; seed packages kept: {', '.join(seeds)}"
    if len(kept) > len(seeds):
        also += f"; {len(kept) - len(seeds)} of lockenv's own runtime kept"
    reporter.status(f"Environment matches {lock_name} ({counted(packages, 'package')}, "
                    f"{files} files verified{also})")

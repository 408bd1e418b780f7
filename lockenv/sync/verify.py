"""`lockenv verify`: is this environment really what the lock says? Every file of every installed
distribution is hashed against its RECORD, files no RECORD owns are reported, and the set of
distributions is compared with what the lock selects for the venv, including the sha256 of the
archive each was installed from (recorded by sync in the dist-info's `lockenv.json`). What sync
keeps although the lock does not select it (a venv's seed packages, lockenv's own runtime in the
venv lockenv runs from) is not extraneous."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lockenv.errors import SyncError


def _owned_paths(dist_infos: list[Path]) -> set[str]:
    from lockenv.sync.scan import read_record

    owned = set()
    for dist_info in dist_infos:
        site = dist_info.parent
        owned.add(os.path.normpath(dist_info))
        for entry in read_record(dist_info) or []:
            owned.add(os.path.normpath(os.path.join(site, *entry.path.split("/"))))
    return owned


def _extraneous_files(site_dirs: list[Path], owned: set[str]) -> list[str]:
    """Files in site-packages that no RECORD lists (`__pycache__` and dist-info contents aside)."""
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


def verify_environment(options: Any, *, reporter: Any) -> int:
    from lockenv.environment import existing_venv, probe
    from lockenv.project import venv_path
    from lockenv.ops.sync import _lock_path, _own_runtime, _select_all
    from lockenv.sync.plan import SEED_PACKAGES
    from lockenv.sync.scan import check_files, iter_dist_infos, scan
    from lockenv.sync.selection import load_lock

    venv_dir = venv_path(options.project)
    venv = existing_venv(venv_dir)
    if venv is None:
        raise SyncError(f"no virtual environment at {venv_dir}", hint="run `lockenv sync` first")
    lock_path = _lock_path(options)
    lock = load_lock(lock_path)
    info = probe(venv.python, reporter)
    spec = None
    if (options.project / "pyproject.toml").exists():
        from lockenv import manifest

        spec = manifest.load(options.project)
    wanted = {w.name: w for w in _select_all(options, spec, lock, info)}
    installed = scan(info.site_dirs, check=False)
    problems: list[str] = []
    files_checked = 0
    for dist in installed:
        result = check_files(Path(dist.dist_info), full=True)
        if result is None:
            problems.append(f"no RECORD: {dist.label}")
            continue
        files_checked += result.checked
        problems.extend(f"modified: {dist.name} {dist.version}: {p}" for p in result.modified)
        problems.extend(f"missing: {dist.name} {dist.version}: {p}" for p in result.missing)
    owned = _owned_paths(list(iter_dist_infos(info.site_dirs)))
    problems.extend(f"extraneous file: {p}" for p in _extraneous_files(info.site_dirs, owned))
    by_name: dict[str, list[Any]] = {}
    for dist in installed:
        by_name.setdefault(dist.name, []).append(dist)
    for name, want in sorted(wanted.items()):
        have = by_name.get(name)
        if not have:
            problems.append(f"missing package: {want.label}")
        elif want.version and all(d.version != want.version for d in have):
            problems.append(f"wrong version: {name} {have[0].version} installed, lock has {want.version}")
        elif want.sha256 and any(d.archive_sha256 and d.archive_sha256 != want.sha256 for d in have):
            other = next(d.archive_sha256 for d in have if d.archive_sha256 != want.sha256)
            problems.append(f"different archive: {name} {have[0].version} was installed from "
                            f"sha256 {other}, {lock_path.name} has {want.sha256}")
        elif want.editable and not any(d.editable_url for d in have):
            problems.append(f"not editable: {name} {have[0].version}")
        elif len(have) > 1:
            problems.append(f"installed twice: {name} ({', '.join(d.version for d in have)})")
    protected = _own_runtime(venv_dir)
    kept: list[str] = []
    for name in sorted(set(by_name) - set(wanted)):
        if name in protected or name in SEED_PACKAGES:  # what sync keeps, as it keeps them
            kept.append(name)
            continue
        for dist in by_name[name]:
            problems.append(f"extraneous package: {dist.label}")
    for line in problems:
        reporter.data(line)
    if problems:
        reporter.status(f"Environment differs from {lock_path.name}: {len(problems)} "
                        f"problem{'s' if len(problems) != 1 else ''} ({len(installed)} packages, "
                        f"{files_checked} files verified)")
        return 1
    seeds = [n for n in kept if n in SEED_PACKAGES and n not in protected]
    also = ""
    if seeds:
        also += f"; seed packages kept: {', '.join(seeds)}"
    if len(kept) > len(seeds):
        also += f"; {len(kept) - len(seeds)} of lockenv's own runtime kept"
    reporter.status(f"Environment matches {lock_path.name} ({len(installed)} packages, "
                    f"{files_checked} files verified{also})")
    return 0

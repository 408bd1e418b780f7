"""A remembered `--exclude-newer` (issue 9, point 9): clearing it with `none`, and saying when
it holds a package back during `--upgrade`/`-P`, so an old flag never silently pins a project
in the past."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Any

CLEAR_VALUES = ("", "none")
"""`--exclude-newer` values that clear a remembered cut-off instead of setting one."""


def clears(value: str | None) -> bool:
    return value is not None and value.strip().lower() in CLEAR_VALUES


def held_back(client: Any, packages: Iterable[Any], names: Collection[str] | None,
              cutoff: datetime) -> list[str]:
    """Warnings for the packages (`names`; None: all) that have a newer release uploaded only
    after `cutoff`. `client` reads pages without a cut-off (from the page cache: the lock just
    fetched them)."""
    from packaging.version import InvalidVersion, Version

    locked: dict[str, Version] = {}
    for p in packages:
        if names is None or p.name in names:
            version = Version(p.version)
            locked[p.name] = max(version, locked.get(p.name, version))
    stamp = cutoff.strftime("%Y-%m-%dT%H:%M:%SZ")
    lines = []
    for name, current in sorted(locked.items()):
        newest: tuple[Version, datetime] | None = None
        by_version: dict[Version, list[Any]] = {}
        for f in client.project(name).files:
            try:
                by_version.setdefault(f.version, []).append(f)
            except InvalidVersion:
                continue
        for version, files in by_version.items():
            if version <= current or (version.is_prerelease and not current.is_prerelease):
                continue
            times = [f.upload_time for f in files if not f.yanked and f.upload_time is not None]
            if times and min(times) > cutoff and (newest is None or version > newest[0]):
                newest = (version, min(times))
        if newest is not None:
            lines.append(f"`{name}` stays at {current}: {newest[0]} was uploaded "
                         f"{newest[1]:%Y-%m-%d}, after the exclude-newer cut-off {stamp} "
                         "remembered from an earlier `lock --exclude-newer`")
    return lines

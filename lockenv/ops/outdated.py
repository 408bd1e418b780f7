"""The `outdated` use case: for each locked package, the locked version, the newest the
project's requirements allow, and the newest on the index. Writes nothing.

"Allowed" is what `lock --upgrade` would choose: a universal resolution of pyproject.toml with
upgrades on (in memory, not written), so it accounts for every requirement on the way (a
dependency's own bounds included) and for exclude-newer. "Latest" is the index's newest
release (not yanked; a pre-release only when the locked version is one), whatever the
requirements say. Index pages are fetched afresh: the question is about the index now.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lockenv.project import LOCK_NAME


@dataclass(frozen=True)
class OutdatedOptions:
    project: Path
    offline: bool = False
    """Answer from the cached pages alone (of any age); what the cache lacks is one error."""


@dataclass(frozen=True)
class OutdatedPackage:
    name: str
    locked: str
    marker: str | None
    """The locked entry's marker (a forked package has one entry per version)."""
    allowed: str | None
    """The newest version the requirements allow there (None: the package would leave the lock)."""
    latest: str | None
    """The newest release on the index (None: the index lists none)."""

    @property
    def outdated(self) -> bool:
        return self.latest is not None and _newer(self.latest, self.locked)

    @property
    def upgradable(self) -> bool:
        return self.allowed is not None and _newer(self.allowed, self.locked)


@dataclass(frozen=True)
class Outdated:
    lockfile: str
    index_url: str
    """Redacted."""
    packages: tuple[OutdatedPackage, ...]


def _newer(a: str, b: str) -> bool:
    from packaging.version import InvalidVersion, Version

    try:
        return Version(a) > Version(b)
    except InvalidVersion:
        return a != b


def outdated(options: OutdatedOptions, *, reporter: Any) -> Outdated:
    from lockenv import lockfile, manifest
    from lockenv.cache import Cache
    from lockenv.errors import OfflineError
    from lockenv.index.routing import IndexRouter, single
    from lockenv.ops.dispatch import distributions
    from lockenv.urls import redact_url

    spec = manifest.load(options.project)
    path = Path(spec.root) / LOCK_NAME
    lock = lockfile.load(path)
    pins = lockfile.read_pins(path)
    cache = Cache()
    settings = spec.indexes or single(spec.index_url)  # each name from its own index
    offline = options.offline
    with IndexRouter(settings, cache=cache, exclude_newer=spec.exclude_newer, refresh=not offline,
                     reporter=reporter, offline=offline) as client, \
            distributions(client, cache=cache, reporter=reporter) as dists:
        try:
            allowed = _allowed(spec, dists, pins, reporter)
            if spec.exclude_newer is None:
                latest = _latest(client, lock)
            else:
                with IndexRouter(settings, cache=cache, reporter=reporter,
                                 offline=offline) as everything:
                    latest = _latest(everything, lock)
        except OfflineError:  # name every page the answer needed, not just the first
            raise client.offline_error() from None
    out = []
    for pkg in lock.packages:
        name, version = str(pkg.name), str(pkg.version)
        marker = str(pkg.marker) if pkg.marker is not None else None
        out.append(OutdatedPackage(name, version, marker, _allowed_for(allowed.get(name, []), marker),
                                   latest.get((name, version))))
    out.sort(key=lambda p: (p.name, _key(p.locked)))
    return Outdated(str(path), redact_url(spec.index_url), tuple(out))


def _allowed(spec: Any, client: Any, pins: Any, reporter: Any) -> dict[str, list[tuple[str, str | None]]]:
    """name → [(version, marker)] of what `lock --upgrade` would write."""
    from lockenv.lockfile import inputs_from_spec
    from lockenv.resolve import resolve

    resolution = resolve(spec, inputs_from_spec(spec), client, preferences=pins, upgrade=True,
                         reporter=reporter).resolution
    found: dict[str, list[tuple[str, str | None]]] = {}
    for p in resolution.packages:
        found.setdefault(str(p.name), []).append((p.version, p.marker))
    return found


def _allowed_for(versions: list[tuple[str, str | None]], marker: str | None) -> str | None:
    """Of a relock's versions of one name, the newest whose environments meet the entry's."""
    from dep_logic.markers import AnyMarker, parse_marker

    if not versions:
        return None
    mine = AnyMarker() if marker is None else parse_marker(marker)
    meeting = [v for v, m in versions if not (mine & (AnyMarker() if m is None else parse_marker(m))).is_empty()]
    return max(meeting or [v for v, _ in versions], key=_key)


def _latest(client: Any, lock: Any) -> dict[tuple[str, str], str | None]:
    """(name, locked version) → the index's newest release."""
    from packaging.version import InvalidVersion, Version

    names = sorted({str(p.name) for p in lock.packages})
    client.prefetch(names)
    out: dict[tuple[str, str], str | None] = {}
    for pkg in lock.packages:
        name, locked = str(pkg.name), str(pkg.version)
        try:
            pre = Version(locked).is_prerelease
        except InvalidVersion:
            pre = False
        best: Version | None = None
        for f in client.project(name).files:
            if f.yanked:
                continue
            try:
                v = f.version
            except (InvalidVersion, ValueError):
                continue
            if v.is_prerelease and not pre:
                continue
            if best is None or v > best:
                best = v
        out[(name, locked)] = str(best) if best is not None else None
    return out


def _key(version: str) -> Any:
    from packaging.version import InvalidVersion, Version

    try:
        return (0, Version(version))
    except InvalidVersion:
        return (1, version)

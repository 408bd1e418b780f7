"""What a venv holds: its installed distributions, read from `*.dist-info` and RECORD.

The drift check is cheap enough to run on every sync: each RECORD file is stat'ed, and only a
file whose size differs or that is newer than its RECORD is hashed.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

LOCKENV_SOURCE = "lockenv.json"
"""The file lockenv adds to each dist-info it installs: the sha256 and name of the archive."""


@dataclass(frozen=True)
class RecordEntry:
    path: str
    """As written in RECORD (relative to the site-packages directory, '/'-separated)."""
    algorithm: str | None
    digest: str | None
    size: int | None


@dataclass(frozen=True)
class Installed:
    """One installed distribution."""

    name: str
    version: str
    dist_info: str
    """Absolute path of the `.dist-info` directory."""
    installer: str | None = None
    archive_sha256: str | None = None
    """sha256 of the archive lockenv installed it from (None when another tool installed it)."""
    editable_url: str | None = None
    """direct_url.json's URL when installed editable."""
    problems: tuple[str, ...] = ()
    """Why its files do not match RECORD ('modified: x.py', 'missing: y.py', 'no RECORD'),
    or that an interrupted sync touched it."""

    @property
    def label(self) -> str:
        return f"{self.name}=={self.version}"


@dataclass
class FileCheck:
    """The result of checking one distribution's files against RECORD."""

    modified: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    checked: int = 0


def canon(name: str) -> str:
    from packaging.utils import canonicalize_name

    return str(canonicalize_name(name))


def _read_metadata_fields(dist_info: Path) -> tuple[str, str] | None:
    """Name and Version from METADATA (headers only)."""
    try:
        with open(dist_info / "METADATA", encoding="utf-8", errors="replace") as fh:
            name = version = None
            for line in fh:
                if not line.strip():
                    break
                key, _, value = line.partition(":")
                key = key.strip().lower()
                if key == "name" and name is None:
                    name = value.strip()
                elif key == "version" and version is None:
                    version = value.strip()
                if name and version:
                    break
    except OSError:
        return None
    if not name or not version:
        return None
    return name, version


def read_record(dist_info: Path) -> list[RecordEntry] | None:
    try:
        text = (dist_info / "RECORD").read_text(encoding="utf-8")
    except OSError:
        return None
    import csv  # not at module level: a sync into a new venv reads no RECORD

    entries = []
    for row in csv.reader(io.StringIO(text)):
        if not row or not row[0]:
            continue
        path = row[0]
        algorithm = digest = None
        if len(row) > 1 and row[1]:
            algorithm, _, digest = row[1].partition("=")
        size = int(row[2]) if len(row) > 2 and row[2].isdigit() else None
        entries.append(RecordEntry(path, algorithm, digest, size))
    return entries


def record_hash(data_or_path: bytes | Path, algorithm: str = "sha256") -> str:
    """The urlsafe-base64, unpadded digest RECORD uses."""
    h = hashlib.new(algorithm)
    if isinstance(data_or_path, bytes):
        h.update(data_or_path)
    else:
        with open(data_or_path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return base64.urlsafe_b64encode(h.digest()).rstrip(b"=").decode("ascii")


def check_files(dist_info: Path, *, full: bool) -> FileCheck | None:
    """Compare files with RECORD. `full` hashes every file (verify); otherwise only files whose
    size differs or that are newer than RECORD are hashed. None when there is no RECORD."""
    entries = read_record(dist_info)
    if entries is None:
        return None
    site = dist_info.parent
    try:
        record_mtime = (dist_info / "RECORD").stat().st_mtime_ns
    except OSError:
        return None
    result = FileCheck()
    for entry in entries:
        if not entry.digest or not entry.algorithm:
            continue  # RECORD itself, or .pyc files compiled later
        path = Path(os.path.normpath(site / entry.path))
        result.checked += 1
        try:
            st = path.stat()
        except OSError:
            result.missing.append(entry.path)
            continue
        if entry.size is not None and st.st_size != entry.size:
            result.modified.append(entry.path)
            continue
        if full or st.st_mtime_ns > record_mtime:
            try:
                actual = record_hash(path, entry.algorithm)
            except (OSError, ValueError):
                result.modified.append(entry.path)
                continue
            if actual != entry.digest:
                result.modified.append(entry.path)
    return result


def iter_dist_infos(site_dirs: Iterable[Path]) -> Iterator[Path]:
    seen: set[str] = set()
    for site in site_dirs:
        real = os.path.realpath(site)
        if real in seen:
            continue
        seen.add(real)
        try:
            names = sorted(os.listdir(site))
        except OSError:
            continue
        for entry in names:
            if entry.endswith(".dist-info"):
                yield Path(site) / entry


def scan(site_dirs: Iterable[Path], *, check: bool = True,
         suspect: Iterable[str] = ()) -> list[Installed]:
    """The distributions installed in `site_dirs`, sorted by name. With `check`, each one's files
    are compared with RECORD; names in `suspect` (from an interrupted sync) are flagged."""
    suspects = {canon(s) for s in suspect}
    out = []
    for dist_info in iter_dist_infos(site_dirs):
        fields = _read_metadata_fields(dist_info)
        if fields is None:
            stem = dist_info.name[: -len(".dist-info")]
            name, _, version = stem.partition("-")
            problems = ["no METADATA"]
        else:
            name, version = fields
            problems = []
        name = canon(name)
        installer = _read_text(dist_info / "INSTALLER")
        archive = None
        source = _read_text(dist_info / LOCKENV_SOURCE)
        if source:
            try:
                archive = json.loads(source).get("sha256")
            except ValueError:
                archive = None
        editable_url = None
        direct = _read_text(dist_info / "direct_url.json")
        if direct:
            try:
                data = json.loads(direct)
                if data.get("dir_info", {}).get("editable"):
                    editable_url = data.get("url")
            except (ValueError, AttributeError):
                pass
        if check:
            result = check_files(dist_info, full=False)
            if result is None:
                problems.append("no RECORD")
            else:
                problems.extend(f"modified: {p}" for p in result.modified)
                problems.extend(f"missing: {p}" for p in result.missing)
        if name in suspects:
            problems.append("touched by an interrupted sync")
        out.append(Installed(name=name, version=version, dist_info=str(dist_info),
                             installer=installer.strip() if installer else None,
                             archive_sha256=archive, editable_url=editable_url,
                             problems=tuple(problems)))
    return sorted(out, key=lambda d: (d.name, d.version))


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None

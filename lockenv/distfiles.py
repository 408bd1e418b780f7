"""One file (wheel or sdist) as an index lists it, and the checks of file names and hashes:
what the sync stage needs of the models (`lockenv.models` re-exports all of it). Its own module
so a sync, which uses no other model, does not create the lock stages' frozen dataclasses at
import (ProjectSpec, LockInputs, Resolution...: ~5 ms of a warm sync's ~60 ms of imports)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime

    from packaging.utils import NormalizedName
    from packaging.version import Version


@dataclass(frozen=True, slots=True, eq=False)
class DistFile:
    """One wheel or sdist as an index lists it. Slotted: a lock holds one per file of every
    page it reads (53,000 on the data benchmark), and an instance without a dict is ~50 bytes
    smaller. Equal when all fields are, whatever the class (`PackedFile` included)."""

    filename: str
    url: str
    """Absolute URL, without credentials."""
    sha256: str | None
    size: int | None
    upload_time: datetime | None
    requires_python: str | None
    yanked: bool = False
    yanked_reason: str | None = None
    metadata: bool | None = None
    """PEP 658/714: True when the index advertises `<url>.metadata`, False when it says there
    is none, None when it does not say (the JSON API): then try it anyway."""
    index: str = ""
    """The simple-API base URL of the index the file came from (redacted), for the lock."""

    @property
    def is_wheel(self) -> bool:
        return self.filename.endswith(".whl")

    @property
    def project_name(self) -> NormalizedName:
        return _parse_filename(self.filename)[0]

    @property
    def version(self) -> Version:
        return _parse_filename(self.filename)[1]

    def _fields(self) -> tuple[object, ...]:
        return (self.filename, self.url, self.sha256, self.size, self.upload_time,
                self.requires_python, self.yanked, self.yanked_reason, self.metadata, self.index)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DistFile):
            return NotImplemented
        return self is other or self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())


_DIGEST_PATH = re.compile(r"([0-9a-f]{2})/([0-9a-f]{2})/([0-9a-f]{60})/")
"""`ab/cd/<60 hex>/`: where PyPI (and its mirrors) keep a file, by its blake2b-256 digest."""
_FILLED = ("filename", "sha256", "size", "upload_time", "requires_python", "yanked",
           "yanked_reason", "metadata", "index")


class PackedFile(DistFile):
    """A DistFile as an index page lists it, with its URL `<base>ab/cd/<60 hex>/<filename>`
    and its sha256 kept packed: the base (one string per page) and one 64-byte string of the
    two digests, ~110 bytes instead of ~340 per file (the data benchmark's pages list 53,000
    files; the resolver reads the URLs and hashes of a few hundred). Each is built on first
    read, and kept."""

    __slots__ = ("_base", "_digest")
    _base: str
    _digest: bytes

    @staticmethod
    def make(filename: str, url: str, sha256: str | None, size: int | None,
             upload_time: datetime | None, requires_python: str | None, yanked: bool,
             yanked_reason: str | None, metadata: bool | None, index: str,
             bases: dict[str, str]) -> DistFile:
        """A PackedFile when `url` has that shape (`bases` shares the base strings of a page),
        else a plain DistFile; either way equal to `DistFile(filename, url, ...)`."""
        at = len(url) - len(filename) - 67
        match = _DIGEST_PATH.match(url, at, at + 67) if at > 0 else None
        if match is None or not url.endswith(filename):
            return DistFile(filename, url, sha256, size, upload_time, requires_python, yanked,
                            yanked_reason, metadata, index)
        packed = object.__new__(PackedFile)  # the slots set directly: 2x faster than __init__
        base = url[:at]
        _set_base(packed, bases.setdefault(base, base))
        digest = bytes.fromhex("".join(match.groups()))
        if sha256 is not None:
            try:
                raw = bytes.fromhex(sha256)
            except ValueError:
                raw = b""
            if len(raw) == 32 and len(sha256) == 64 and sha256.islower():
                digest += raw  # the hex string comes back from it exactly
            else:
                _set_sha256(packed, sha256)
        else:
            _set_sha256(packed, None)
        _set_digest(packed, digest)
        _set_filename(packed, filename)
        _set_size(packed, size)
        _set_upload_time(packed, upload_time)
        _set_requires_python(packed, requires_python)
        _set_yanked(packed, yanked)
        _set_yanked_reason(packed, yanked_reason)
        _set_metadata(packed, metadata)
        _set_index(packed, index)
        return packed

    def __getattr__(self, name: str) -> str:
        """Only called for a slot never set: `url` or `sha256` (else a real miss)."""
        if name == "url":
            digest = self._digest[:32].hex()
            value = f"{self._base}{digest[:2]}/{digest[2:4]}/{digest[4:]}/{self.filename}"
        elif name == "sha256":
            value = self._digest[32:].hex()
        else:
            raise AttributeError(name)
        object.__setattr__(self, name, value)
        return value


(_set_filename, _set_sha256, _set_size, _set_upload_time, _set_requires_python, _set_yanked,
 _set_yanked_reason, _set_metadata, _set_index) = (
    DistFile.__dict__[name].__set__ for name in _FILLED)
_set_base = PackedFile.__dict__["_base"].__set__
_set_digest = PackedFile.__dict__["_digest"].__set__


SDIST_EXTENSIONS = (".tar.gz", ".zip", ".tar.bz2", ".tgz", ".tar")
"""Source archives lockenv can unpack and build (tarfile and zipfile read them all); any other
archive type an index lists (.exe, .egg, .msi, .rpm, .tar.zst…) is skipped, as pip and uv do."""

_NAME = re.compile(r"[A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9]", re.IGNORECASE)


def _parse_filename(filename: str) -> tuple[NormalizedName, Version]:
    """(name, version) of a wheel or sdist file name; raises ValueError (or packaging's
    Invalid*Filename, both ValueErrors) for anything else. packaging is imported here, not at
    module level: a warm sync parses no file name, and packaging.utils imports packaging.tags
    (subprocess, sysconfig...: ~54 M instructions, 10% of a warm sync of web)."""
    from packaging.utils import InvalidSdistFilename, canonicalize_name, parse_wheel_filename
    from packaging.version import Version

    if filename.endswith(".whl"):
        name, version, _build, _tags = parse_wheel_filename(filename)  # checks the tags too
        return name, version
    ext = next((e for e in SDIST_EXTENSIONS if filename.endswith(e)), None)
    if ext is None:
        raise InvalidSdistFilename(f"not a wheel or a known sdist archive: {filename!r}")
    # Legacy sdists (`Foo_Bar-1.0.tar.bz2`) are split at the last dash, as packaging does.
    raw_name, dash, raw_version = filename[: -len(ext)].rpartition("-")
    if not dash or not _NAME.fullmatch(raw_name):
        raise InvalidSdistFilename(f"invalid sdist name {filename!r}")
    return canonicalize_name(raw_name), Version(raw_version)


@lru_cache(maxsize=4096)
def sdist_name_ok(name: str) -> bool:
    """Is `name` (an sdist file name up to its last dash) a project name `_parse_filename`
    accepts?"""
    return _NAME.fullmatch(name) is not None


_HEX = frozenset("0123456789abcdef")


def is_sha256(text: object) -> bool:
    """A sha256 as lockenv accepts one (F2): exactly 64 lower-case hex digits. Every hash from a
    lock, an index page or the cache passes this before it is compared or becomes a path."""
    return isinstance(text, str) and len(text) == 64 and _HEX.issuperset(text)


def is_dist_filename(filename: str) -> bool:
    """True for a wheel or sdist file name lockenv understands."""
    return filename_problem(filename) is None


def filename_problem(filename: str) -> str | None:
    """Why `filename` is not a wheel or sdist lockenv can use (None: it is one)."""
    try:
        _parse_filename(filename)
    except ValueError as exc:  # InvalidWheelFilename, InvalidSdistFilename, InvalidVersion
        return str(exc) or type(exc).__name__
    return None

"""Reading core metadata: parsing METADATA/PKG-INFO leniently, finding it inside wheels and
sdists, and a lazily fetched remote file so `zipfile` can read a wheel through range requests."""

from __future__ import annotations

import io
import re
import struct
import sys
import zipfile
import zlib
from collections.abc import Callable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import IO, Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from lockenv.models import CoreMetadata, DistFile


class MetadataProblem(Exception):
    """METADATA is missing or unusable; the client names the file in an `PackageIndexError`."""


def parse_metadata(text: str | bytes, source: str,
                   debug: Callable[[str], None] = lambda _m: None) -> tuple[CoreMetadata, set[str],
                                                                              str | None]:
    """(CoreMetadata, lower-cased Dynamic fields, Metadata-Version). Invalid Requires-Dist
    entries are skipped (with a debug line), never fatal: a resolver should not die on one
    bad line of someone else's package."""
    raw: Mapping[str, Any] | None = _plain_fields(_headers(text))
    if raw is None:
        from packaging.metadata import parse_email  # with `email`, ~8 ms a warm lock never needs

        raw = parse_email(_headers(text))[0]
    name = raw.get("name")
    version = raw.get("version")
    if not name or not version:
        raise MetadataProblem("its metadata has no Name or Version")
    requires: list[str] = []
    for line in raw.get("requires_dist", []) or []:
        try:
            requires.append(_normal_requirement(line))
        except InvalidRequirement as exc:
            debug(f"ignoring invalid Requires-Dist {line!r} of {name} {version}: {exc}")
    requires_python = raw.get("requires_python")
    if requires_python is not None:
        try:
            SpecifierSet(requires_python)
        except InvalidSpecifier:
            debug(f"ignoring invalid Requires-Python {requires_python!r} of {name} {version}")
            requires_python = None
    extras = []
    for extra in raw.get("provides_extra", []) or []:
        norm = canonicalize_name(extra)
        if norm not in extras:
            extras.append(norm)
    meta = CoreMetadata(
        name=canonicalize_name(name),
        version=version,
        requires_dist=tuple(requires),
        requires_python=requires_python or None,
        provides_extra=tuple(extras),
        source=source,
    )
    dynamic = {d.lower() for d in raw.get("dynamic", []) or []}
    return meta, dynamic, raw.get("metadata_version")


_BLANK_LINE = re.compile(r"\n\r?\n")
_BLANK_LINE_BYTES = re.compile(rb"\n\r?\n")


def _headers(text: str | bytes) -> str | bytes:
    """METADATA up to the blank line that ends its headers: the body after it is the long
    description (a whole README, often 10-50 KB), which the email parser walks line by line and
    lockenv never reads (it was most of parse_email's time). The last header keeps its whole
    line ending: a CRLF one cut after its CR read as a lone CR, and every wheel with CRLF
    METADATA (mypy's, SQLAlchemy's: 19 of a cold lock of web) went to the email parser."""
    found = (_BLANK_LINE_BYTES.search(text) if isinstance(text, bytes)
             else _BLANK_LINE.search(text))
    return text if found is None else text[:found.start() + 1]


_FIELDS = {b"name": "name", b"version": "version", b"metadata-version": "metadata_version",
           b"requires-python": "requires_python", b"requires-dist": "requires_dist",
           b"provides-extra": "provides_extra", b"dynamic": "dynamic"}
"""The headers lockenv reads (lower-cased) -> packaging's `RawMetadata` key."""
_ONCE = frozenset({"name", "version", "metadata_version", "requires_python"})
_PLAIN = re.compile(rb"[\x21-\x39\x3b-\x7e]+:[^\n]*\n(?:[\x21-\x39\x3b-\x7e]+:[^\n]*\n|[ \t][^\n]*\n)*")
"""Header lines (a printable name without `:`, then `:`), each maybe folded onto lines that
start with a space or tab: no blank or other line, where the email parser ends the headers."""


def _plain_fields(block: str | bytes) -> dict[str, Any] | None:
    """The fields lockenv reads, as `packaging.metadata.parse_email` gives them, when the
    headers are plain: `Name: value` lines, the fields lockenv reads in ASCII and never folded
    onto a continuation line, a single-valued one given once. None for anything else, which
    `parse_email` then decides. Its email parser costs ~0.15 ms a METADATA (with lookups that
    scan every header for each name); this, ~0.02 ms."""
    data = block.encode("utf-8", "surrogateescape") if isinstance(block, str) else block
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n")
        if b"\r" in data:
            return None  # a lone \r ends a line there too
    if not data.endswith(b"\n"):
        data += b"\n"
    if _PLAIN.fullmatch(data) is None:
        return None
    low = b"\n" + data.lower()  # header names are case-insensitive; offsets are data's + 1
    out: dict[str, Any] = {}
    for field, key in _FIELDS.items():
        needle = b"\n" + field + b":"
        at = low.find(needle)
        while at >= 0:
            end = low.index(b"\n", at + len(needle))
            if low[end + 1:end + 2] in (b" ", b"\t"):
                return None  # folded onto the next line
            value = data[at + len(needle) - 1:end - 1].lstrip(b" \t")
            if not value.isascii():
                return None  # undecodable bytes have their own rules there
            if key in _ONCE:
                if key in out:
                    return None  # given twice: parse_email leaves it out
                out[key] = value.decode("ascii")
            else:
                out.setdefault(key, []).append(value.decode("ascii"))
            at = low.find(needle, end)
    return out


@lru_cache(maxsize=8192)
def _normal_requirement(line: str) -> str:
    """A Requires-Dist line checked and in its normal spelling, once per run: the ~10 wheels
    read per binary version repeat the same lines. Raises InvalidRequirement."""
    return str(Requirement(line))


def check_matches(meta: CoreMetadata, file: DistFile) -> None:
    """METADATA must describe the file it came from."""
    try:
        same_version = Version(meta.version) == file.version
    except InvalidVersion:
        same_version = False
    if meta.name != file.project_name or not same_version:
        raise MetadataProblem(
            f"its metadata says {meta.name} {meta.version}, but the file name says "
            f"{file.project_name} {file.version}"
        )


def wheel_metadata_text(zf: zipfile.ZipFile, file: DistFile) -> bytes:
    """The bytes of the wheel's top-level `*.dist-info/METADATA`."""
    candidates = [
        n for n in zf.namelist()
        if n.count("/") == 1 and n.endswith(".dist-info/METADATA")
    ]
    if not candidates:
        raise MetadataProblem("the wheel has no .dist-info/METADATA")
    if len(candidates) > 1:
        want = canonicalize_name(file.project_name)
        matching = [
            n for n in candidates
            if canonicalize_name(n.split("/")[0][: -len(".dist-info")].rpartition("-")[0]) == want
        ]
        candidates = matching or candidates
    return zf.read(candidates[0])


_CENTRAL = b"PK\x01\x02"
_LOCAL = b"PK\x03\x04"
_ENTRY = struct.Struct("<HHHHHHLLLHHHHHLL")
"""A central directory entry after its signature: versions, flags, method, time, date, CRC,
sizes, name/extra/comment lengths, disk, attributes, local header offset."""
_LENGTHS = struct.Struct("<HHH")
"""An entry's name, extra and comment lengths, 28 bytes after its signature."""
MAX_METADATA = 64 << 20
"""The most METADATA may inflate to (a zip bomb stops there and the slow path decides)."""


def wheel_metadata_fast(read: Callable[[int, int], bytes], cd_offset: int, cd_size: int,
                        file: DistFile) -> bytes | None:
    """`wheel_metadata_text` without `zipfile`: walk the central directory's entries (no
    object per entry: `zipfile` builds a ZipInfo for each of a wheel's thousands of files,
    measured at half the CPU of reading metadata on the cold `data` lock) and inflate the
    one METADATA. `read(offset, n)` gives bytes of the wheel. None whenever this is not the
    plain case (zip64, an odd method, a CRC or size that does not match): the caller then
    asks `zipfile`, which decides."""
    cd = read(cd_offset, cd_size)
    found: list[tuple[str, int, int, int, int, int]] = []
    pos, end = 0, len(cd)
    lengths, starts, ends = _LENGTHS.unpack_from, cd.startswith, cd.endswith
    while pos < end:  # a wheel lists hundreds to thousands of files: no object per entry
        if pos + 46 > end or not starts(_CENTRAL, pos):
            return None
        nlen, elen, clen = lengths(cd, pos + 28)
        if ends(b".dist-info/METADATA", pos + 46, pos + 46 + nlen):
            name = cd[pos + 46:pos + 46 + nlen]
            if name.count(b"/") == 1:
                (_made, _need, flags, method, _time, _date, crc, csize, usize, _n, _e, _c,
                 _disk, _internal, _external, local) = _ENTRY.unpack_from(cd, pos + 4)
                text = name.decode("utf-8" if flags & 0x800 else "cp437", "replace")
                found.append((text, method, crc, csize, usize, local))
        pos += 46 + nlen + elen + clen
    if not found:
        return None  # `zipfile` says so in its words
    if len(found) > 1:
        want = canonicalize_name(file.project_name)
        matching = [f for f in found
                    if canonicalize_name(f[0].split("/")[0][: -len(".dist-info")].rpartition("-")[0])
                    == want]
        found = matching or found
    _name, method, crc, csize, usize, local = found[0]
    if 0xFFFFFFFF in (csize, usize, local) or method not in (0, 8) or usize > MAX_METADATA:
        return None
    header = read(local, 30)
    if len(header) != 30 or header[:4] != _LOCAL:
        return None
    nlen, elen = struct.unpack_from("<HH", header, 26)
    data = read(local + 30 + nlen + elen, csize)
    if method == 8:
        inflater = zlib.decompressobj(-15)
        try:
            data = inflater.decompress(data, usize + 1)
        except zlib.error:
            return None
    if len(data) != usize or zlib.crc32(data) != crc:
        return None
    return data


def read_wheel_metadata(path: Path, file: DistFile) -> bytes:
    try:
        with zipfile.ZipFile(path) as zf:
            return wheel_metadata_text(zf, file)
    except (zipfile.BadZipFile, OSError, KeyError, EOFError) as exc:
        raise MetadataProblem(f"the wheel is not a readable zip file ({exc})") from None


_MAX_TOP_FILE = 4 << 20
"""PKG-INFO and pyproject.toml are a few KiB; a bigger one is not read (untrusted archive)."""


def read_sdist_top_files(path: Path, names: tuple[str, ...]) -> dict[str, bytes]:
    """Those of `names` found at the top of an sdist (.tar.gz or .zip), in one pass over the
    archive; MetadataProblem when it is not a readable archive."""
    import tarfile  # only for an sdist: most locks read wheels' metadata alone

    found: dict[str, bytes] = {}
    try:
        if path.name.endswith(".zip"):
            with zipfile.ZipFile(path) as zf:
                for info in zf.infolist():
                    parts = info.filename.split("/")
                    if (len(parts) == 2 and parts[1] in names and parts[1] not in found
                            and info.file_size <= _MAX_TOP_FILE):
                        found[parts[1]] = zf.read(info)
        else:
            with tarfile.open(path, "r:*") as tf:
                for member in tf:
                    parts = member.name.lstrip("./").split("/")
                    if (len(parts) == 2 and parts[1] in names and parts[1] not in found
                            and member.isfile() and member.size <= _MAX_TOP_FILE):
                        fh = tf.extractfile(member)
                        if fh is not None:
                            found[parts[1]] = fh.read()
                    if len(found) == len(names):
                        break
    except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError) as exc:
        raise MetadataProblem(f"the sdist is not a readable archive ({exc})") from None
    return found


_STATIC_NEEDS = ("dependencies", "optional-dependencies", "requires-python")


def pyproject_metadata(text: bytes, file_version: str) -> str | None:
    """Core metadata (as METADATA text) from an sdist's pyproject.toml when its `[project]`
    table declares the dependencies statically (PEP 621: a field not listed in `dynamic` is
    what the backend must write, and absent means none), or None: then a build decides. Read
    like uv does, so an sdist whose build cannot run here (it downloads, it needs a compiler)
    still locks. A dynamic version is the one in the file name (`file_version`). A Poetry
    project that keeps its dependencies under `[tool.poetry]` is built."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib

    try:
        data = tomllib.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    project = data.get("project")
    if not isinstance(project, dict) or not isinstance(project.get("name"), str):
        return None
    dynamic = project.get("dynamic", [])
    if not isinstance(dynamic, list) or any(f in dynamic for f in _STATIC_NEEDS):
        return None
    tool = data.get("tool")
    poetry = tool.get("poetry") if isinstance(tool, dict) else None
    if isinstance(poetry, dict) and "dependencies" not in project and (
            "dependencies" in poetry or "group" in poetry):
        return None
    deps = project.get("dependencies", [])
    extras = project.get("optional-dependencies", {})
    requires_python = project.get("requires-python")
    version = file_version if "version" in dynamic else project.get("version")
    if (not isinstance(version, str) or not isinstance(deps, list)
            or not all(isinstance(d, str) for d in deps) or not isinstance(extras, dict)
            or not all(isinstance(v, list) and all(isinstance(d, str) for d in v)
                       for v in extras.values())
            or not (requires_python is None or isinstance(requires_python, str))):
        return None
    lines = ["Metadata-Version: 2.2", f"Name: {project['name']}", f"Version: {version}"]
    if requires_python is not None:
        lines.append(f"Requires-Python: {requires_python}")
    lines += [f"Requires-Dist: {d}" for d in deps]
    for extra, reqs in extras.items():
        lines.append(f"Provides-Extra: {extra}")
        lines += [f"Requires-Dist: {_with_extra(d, extra)}" for d in reqs]
    if any("\n" in line or "\r" in line for line in lines):
        return None  # a value that would inject headers: let the build decide
    return "\n".join(lines) + "\n\n"


def _with_extra(text: str, extra: str) -> str:
    """`text` (a PEP 508 requirement) required only with `extra`; an invalid one is kept as
    it is, for parse_metadata to skip with its debug line."""
    try:
        req = Requirement(text)
    except InvalidRequirement:
        return text
    marker, req.marker = req.marker, None
    cond = f'extra == "{canonicalize_name(extra)}"'
    return f"{req} ; ({marker}) and {cond}" if marker is not None else f"{req} ; {cond}"


def static_sdist_metadata(dynamic: set[str], metadata_version: str | None) -> bool:
    """True when PKG-INFO can be trusted for dependencies (Metadata 2.2+, Requires-Dist and
    Requires-Python not dynamic)."""
    try:
        if metadata_version is None or Version(metadata_version) < Version("2.2"):
            return False
    except InvalidVersion:
        return False
    return "requires-dist" not in dynamic and "requires-python" not in dynamic


class RangeFile(io.RawIOBase):
    """A read-only, seekable view of a remote file of known size that fetches the byte ranges
    `zipfile` asks for (in blocks of at least `min_fetch` bytes) and keeps them."""

    def __init__(self, size: int, fetch: Callable[[int, int], bytes], *,
                 tail: bytes = b"", min_fetch: int = 16 * 1024) -> None:
        super().__init__()
        self._size = size
        self._fetch = fetch
        self._pos = 0
        self._min_fetch = min_fetch
        self._chunks: list[tuple[int, bytes]] = []
        if tail:
            self._chunks.append((size - len(tail), tail))
        self.fetches = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            self._pos = offset
        elif whence == io.SEEK_CUR:
            self._pos += offset
        else:
            self._pos = self._size + offset
        self._pos = max(0, self._pos)
        return self._pos

    def read(self, n: int = -1) -> bytes:
        start = self._pos
        end = self._size if n is None or n < 0 else min(self._size, start + n)
        if start >= end:
            return b""
        data = self._get(start, end)
        self._pos = end
        return data

    def read_at(self, offset: int, n: int) -> bytes:
        """`n` bytes from `offset` (fewer at the end of the file)."""
        self.seek(offset)
        return self.read(n)

    def readinto(self, buffer: IO[bytes] | bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))  # type: ignore[arg-type]
        buffer[: len(data)] = data  # type: ignore[index]
        return len(data)

    def _get(self, start: int, end: int) -> bytes:
        for offset, chunk in self._chunks:
            if offset <= start and end <= offset + len(chunk):
                return chunk[start - offset:end - offset]
        fetch_end = min(self._size, max(end, start + self._min_fetch))
        # Do not refetch bytes a later chunk already holds.
        for offset, _chunk in self._chunks:
            if start < offset < fetch_end and end <= offset:
                fetch_end = offset
        data = self._fetch(start, fetch_end)
        self.fetches += 1
        if len(data) != fetch_end - start:
            raise MetadataProblem("the server sent a range of the wrong length")
        self._add(start, data)
        return self._get(start, end)

    def _add(self, start: int, data: bytes) -> None:
        """Keep chunks sorted and merge touching ones, so a read spanning two fetches is
        served from memory."""
        chunks = sorted([*self._chunks, (start, data)])
        merged: list[tuple[int, bytes]] = [chunks[0]]
        for offset, chunk in chunks[1:]:
            last_offset, last = merged[-1]
            last_end = last_offset + len(last)
            if offset <= last_end:
                if offset + len(chunk) > last_end:
                    merged[-1] = (last_offset, last + chunk[last_end - offset:])
            else:
                merged.append((offset, chunk))
        self._chunks = merged

"""Parsers for index project pages: the JSON API, PEP 691 JSON and PEP 503 HTML.

Each returns compact records (plain lists; the client caches them as a `CachedPage`) of the
files a page lists:

    [filename, url, sha256, size, upload_time, requires_python, yanked, yanked_reason,
     metadata, metadata_sha256]

`upload_time` is an RFC 3339 string in UTC or None; `metadata` is True/False/None as in
`DistFile.metadata`. Pure functions: the client turns a `PageError` into an `PackageIndexError`
naming the URL.

Everything on a page is untrusted and checked here, before anything else uses it. A page that
is not a page at all is a `PageError`; one bad file entry is not: as pip and uv do, it is left
out (a file name that is not a wheel or sdist lockenv can use, an unknown archive type, a URL
that is not http(s), a sha256 that is not one) and the reason is added to `skipped`, for the
client's `-v` output. Optional fields that do not parse (size, requires-python) are dropped
with a note.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from datetime import datetime, timezone
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar
from urllib.parse import urldefrag, urljoin

import msgspec
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from lockenv.index.auth import split_credentials
from lockenv.models import SDIST_EXTENSIONS, DistFile, filename_problem, sdist_name_ok

T = TypeVar("T", bound=DistFile)

Record = list[Any]
Buffer = Any
"""A page body: bytes, or a read-only map of the temporary file it was streamed into."""


_SHA256 = re.compile(r"[0-9a-f]{64}")
_UTC_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{3}|\.\d{6})?Z")


class PageError(Exception):
    """The page is not what the index API promises; the message says what was wrong."""


def parse_time(value: object) -> str | None:
    """Normalise an upload time to `YYYY-MM-DDTHH:MM:SS[.ffffff]Z` (UTC); None if absent/bad."""
    if not isinstance(value, str) or not value:
        return None
    if _UTC_TIME.fullmatch(value):
        return value  # already canonical (the JSON API's upload_time_iso_8601)
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def to_datetime(value: str | None) -> datetime | None:
    if value is None:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _split_url(href: str, page_url: str) -> tuple[str, str | None]:
    """Absolute URL without fragment, plus a `#sha256=` from the fragment if there is one."""
    if href.startswith(("https://", "http://")) and "#" not in href and " " not in href:
        return href, None  # the common case, 4x cheaper than urljoin
    if "#" not in href and "?" not in href:
        # Mirrors' `../../packages/...`: join the leading dot segments once per page.
        rest = href.lstrip("./")
        prefix = href[: len(href) - len(rest)]
        if prefix and rest and "/." not in rest and ":" not in rest.split("/", 1)[0]:
            return _join(page_url, prefix) + rest, None
    url, fragment = urldefrag(urljoin(page_url, href.strip()))
    sha = None
    if fragment.startswith("sha256="):
        sha = fragment[len("sha256="):].lower() or None
    return url, sha


@lru_cache(maxsize=256)
def _join(base: str, prefix: str) -> str:
    return urljoin(base, prefix)


@lru_cache(maxsize=1 << 16)
def _wheel_part_problem(probe: str) -> str | None:
    return filename_problem(probe)


@lru_cache(maxsize=1 << 16)
def _version_ok(text: str) -> bool:
    """Does packaging parse `text` as a version (what a wheel's or sdist's version must be)?"""
    try:
        Version(text)
    except InvalidVersion:
        return False
    return True


def file_problem(filename: str) -> str | None:
    """`models.filename_problem`, with every part checked once per run: a wheel's name, its
    version and its tag set, an sdist's name and version (a big page lists thousands of files
    of a few hundred versions and a few dozen tags, and a warm lock checks every cached name
    again: 53,000 on the data benchmark). Only an acceptance is short-cut: a name that fails
    a part gets `filename_problem`'s own verdict and message."""
    if filename.endswith(".whl"):
        parts = filename[:-4].split("-")
        if len(parts) != 5 or not all(parts):  # a build tag (rare) or no wheel name at all
            return filename_problem(filename)
        if (_wheel_part_problem(f"{parts[0]}-1-py3-none-any.whl") is None
                and _version_ok(parts[1])
                and _wheel_part_problem(f"x-1-{'-'.join(parts[-3:])}.whl") is None):
            return None
    else:
        for ext in SDIST_EXTENSIONS:
            if filename.endswith(ext):
                name, dash, version = filename[: -len(ext)].rpartition("-")
                if dash and sdist_name_ok(name) and _version_ok(version):
                    return None
                break
    return filename_problem(filename)


def latest_builds(files: Sequence[T]) -> list[T]:
    """`files` without the wheels another wheel supersedes: same project, version and tags,
    a higher build tag (a project re-uploads a fixed build under a new build number). An
    installer takes the highest build of a tag (PEP 427), and the lock lists only what an
    installer would take; a yanked build counts only when every build of its tags is. Order
    is kept."""
    from packaging.utils import parse_wheel_filename

    best: dict[tuple[str, ...], tuple[tuple[bool, tuple[()] | tuple[int, str]], str]] = {}
    for f in files:
        if not f.filename.endswith(".whl"):
            continue
        parts = f.filename[:-4].split("-")
        key = (*parts[:2], *parts[-3:])
        build = parse_wheel_filename(f.filename)[2]
        rank = (not f.yanked, build)
        if key not in best or rank > best[key][0]:
            best[key] = (rank, f.filename)
    keep = {filename for _rank, filename in best.values()}
    return [f for f in files if not f.filename.endswith(".whl") or f.filename in keep]


def project_of(filename: str) -> str:
    """The normalised project name of a valid wheel or sdist file name."""
    if filename.endswith(".whl"):
        return _normalized(filename.split("-", 1)[0])
    return _normalized(filename.rpartition("-")[0])


@lru_cache(maxsize=1024)
def _normalized(name: str) -> str:
    return canonicalize_name(name)


@lru_cache(maxsize=1024)
def valid_specifier(text: str) -> bool:
    try:
        SpecifierSet(text)
    except InvalidSpecifier:
        return False
    return True


def _note(skipped: list[str] | None, message: str) -> None:
    if skipped is not None:
        skipped.append(message)


def _file_ok(filename: str, url: str, sha: str | None, skipped: list[str] | None) -> bool:
    """The checks every parser makes before a file becomes a record."""
    problem = file_problem(filename)
    if problem is not None:
        _note(skipped, f"{filename}: {problem}")
        return False
    if not url.startswith(("https://", "http://")):
        _note(skipped, f"{filename}: its URL is not http(s)")
        return False
    if sha is not None and not _SHA256.fullmatch(sha):
        _note(skipped, f"{filename}: its sha256 is not 64 hex digits")
        return False
    return True


def _requires_python(value: object, filename: str, skipped: list[str] | None) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, str) and valid_specifier(value):
        return value
    _note(skipped, f"{filename}: ignoring its invalid requires-python {value!r}")
    return None


def _size(value: object, filename: str, skipped: list[str] | None) -> int | None:
    if value is None:
        return None
    if type(value) is int and value >= 0:
        return value
    _note(skipped, f"{filename}: ignoring its invalid size {value!r}")
    return None


def _load_json(body: Buffer) -> Any:
    try:
        return json.loads(bytes(body))
    except (ValueError, UnicodeDecodeError) as exc:
        raise PageError(f"the page is not valid JSON ({exc})") from None


def _sha256_of(hashes: object) -> str | None:
    """The sha256 of a `hashes`/`digests` mapping, lower-cased; "" when it is not a string
    (so `_file_ok` refuses the file), None when there is none."""
    if not isinstance(hashes, dict):
        return None
    value = hashes.get("sha256")
    if value is None:
        return None
    return value.lower() if isinstance(value, str) else ""


class _Digests(msgspec.Struct, gc=False):
    sha256: str | None = None


class _JsonFile(msgspec.Struct, gc=False):
    """One file of the JSON API, typed strictly: only the fields the lock needs (msgspec
    skips the rest of the entry without building it)."""

    filename: str
    url: str
    digests: _Digests | None = None
    size: int | None = None
    upload_time_iso_8601: str | None = None
    upload_time: str | None = None
    requires_python: str | None = None
    yanked: bool = False
    yanked_reason: str | None = None


class _JsonPage(msgspec.Struct, gc=False):
    releases: dict[str, list[_JsonFile]]
    info: msgspec.Raw = msgspec.Raw(b"null")
    """Kept undecoded (a view of the body): only `requires_names` reads it, tolerantly, so an
    odd `info` never turns a usable page into one the loose parser must read."""


_JSON_PAGE = msgspec.json.Decoder(_JsonPage)


class _JsonInfo(msgspec.Struct, gc=False):
    requires_dist: list[str] | None = None


_JSON_INFO = msgspec.json.Decoder(_JsonInfo)
_REQUIRED_NAME = re.compile(r"\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(.*)", re.S)
MAX_REQUIRED_NAMES = 64
"""The most names one page's `info.requires_dist` may hint at (untrusted input: a page
cannot make the lock fetch thousands of pages for nothing)."""


def requires_names(info: msgspec.Raw) -> list[str]:
    """The projects the newest release requires unconditionally or on a platform (not for an
    extra), from a JSON API page's `info.requires_dist`: what that release's metadata will name,
    known a round trip earlier. A hint only (which version the lock takes is the resolver's
    question): [] for anything that does not decode, names that do not look like project
    names skipped."""
    try:
        requires = _JSON_INFO.decode(info).requires_dist
    except msgspec.DecodeError:
        return []
    names: dict[str, None] = {}
    for text in requires or ():
        match = _REQUIRED_NAME.match(text)
        if match is None:
            continue
        marker = match.group(2).partition(";")[2]
        if "extra" in marker:
            continue
        names[_normalized(match.group(1))] = None
        if len(names) >= MAX_REQUIRED_NAMES:
            break
    return list(names)


def parse_json_api(body: Buffer, page_url: str, skipped: list[str] | None = None) -> list[Record]:
    """The PyPI JSON API (`/pypi/<name>/json`): every file of every release.

    Decoded by msgspec into Structs holding only what the lock needs: `info`, the
    description, `urls`, `vulnerabilities` and the md5/blake2 digests are skipped without
    being built (web's pages: half the parse time and a fraction of `json.loads`' memory).
    A page whose fields do not all have the API's types is parsed again by `_parse_json_api_loose`,
    which skips the bad entries one by one with a reason; both apply the same file checks."""
    try:
        page = _JSON_PAGE.decode(body)
    except msgspec.DecodeError:  # ValidationError included: the loose parser says what
        return _parse_json_api_loose(body, page_url, skipped)
    records: list[Record] = []
    append = records.append
    canonical_time = _UTC_TIME.fullmatch
    for files in page.releases.values():
        for entry in files:
            filename = entry.filename
            url, sha = _split_url(entry.url, page_url)
            digests = entry.digests
            if digests is not None and digests.sha256 is not None:
                sha = digests.sha256.lower()
            if not _file_ok(filename, url, sha, skipped):
                continue
            upload = entry.upload_time_iso_8601
            if upload is None or not canonical_time(upload):
                upload = parse_time(upload or entry.upload_time)
            yanked = entry.yanked
            reason = entry.yanked_reason if yanked else None
            size = entry.size
            if size is not None and size < 0:
                size = _size(size, filename, skipped)
            append([filename, url, sha, size, upload,
                    _requires_python(entry.requires_python, filename, skipped), yanked,
                    reason or None, None, None])
    return records


def _parse_json_api_loose(body: Buffer, page_url: str,
                          skipped: list[str] | None = None) -> list[Record]:
    """`parse_json_api` for a page with a field of the wrong type somewhere: every entry
    checked by hand, a bad one skipped with a reason (as pip and uv do)."""
    data = _load_json(body)
    if not isinstance(data, dict):
        raise PageError("the page is not a JSON object")
    releases = data.get("releases")
    if not isinstance(releases, dict):
        raise PageError("the page has no `releases` mapping")
    records: list[Record] = []
    append = records.append
    canonical_time = _UTC_TIME.fullmatch
    for version, files in releases.items():
        if type(files) is not list:
            _note(skipped, f"release {version}: its file list is not a list")
            continue
        for entry in files:
            get = entry.get if type(entry) is dict else None
            filename = get("filename") if get else None
            href = get("url") if get else None
            if get is None or type(filename) is not str or type(href) is not str:
                _note(skipped, f"release {version}: a file entry without filename or url")
                continue
            url, sha = _split_url(href, page_url)
            digest = _sha256_of(get("digests"))
            sha = sha if digest is None else digest
            if not _file_ok(filename, url, sha, skipped):
                continue
            upload = get("upload_time_iso_8601")
            if type(upload) is not str or not canonical_time(upload):
                upload = parse_time(upload or get("upload_time"))
            yanked = bool(get("yanked", False))
            reason = get("yanked_reason") if yanked else None
            append([filename, url, sha, _size(get("size"), filename, skipped), upload,
                    _requires_python(get("requires_python"), filename, skipped), yanked,
                    reason if type(reason) is str and reason else None, None, None])
    return records


def _metadata_flag(value: object) -> tuple[bool | None, str | None]:
    """PEP 658/714 value → (available, sha256 of the metadata file)."""
    if value is None:
        return None, None
    if isinstance(value, bool):
        return value, None
    if isinstance(value, dict):
        sha = value.get("sha256")
        return True, _sha_or_none(sha) if isinstance(sha, str) else None
    if isinstance(value, str):  # HTML attribute: "true" or "sha256=<hex>"
        text = value.strip()
        if text.lower() == "false":
            return False, None
        if text.startswith("sha256="):
            return True, _sha_or_none(text[len("sha256="):])
        return True, None
    return None, None


def _sha_or_none(value: str) -> str | None:
    """A metadata file's sha256, or None when it is not one (the file is then not checked
    against it, rather than refused for the index's typo)."""
    value = value.lower()
    return value if _SHA256.fullmatch(value) else None


def parse_simple_json(body: Buffer, page_url: str,
                      skipped: list[str] | None = None) -> list[Record]:
    """A PEP 691 JSON project page (with PEP 700 size and upload-time when present)."""
    data = _load_json(body)
    if not isinstance(data, dict):
        raise PageError("the page is not a JSON object")
    files = data.get("files")
    if not isinstance(files, list):
        raise PageError("the page has no `files` list")
    records: list[Record] = []
    for entry in files:
        filename = entry.get("filename") if isinstance(entry, dict) else None
        href = entry.get("url") if isinstance(entry, dict) else None
        if not isinstance(filename, str) or not isinstance(href, str):
            _note(skipped, "a file entry without filename or url")
            continue
        url, frag_sha = _split_url(href, page_url)
        digest = _sha256_of(entry.get("hashes"))
        sha = frag_sha if digest is None else digest
        if not _file_ok(filename, url, sha, skipped):
            continue
        yanked = entry.get("yanked", False)
        reason = yanked if isinstance(yanked, str) and yanked else None
        meta = entry.get("core-metadata", entry.get("dist-info-metadata"))
        available, meta_sha = _metadata_flag(meta)
        records.append([
            filename, url, sha, _size(entry.get("size"), filename, skipped),
            parse_time(entry.get("upload-time")),
            _requires_python(entry.get("requires-python"), filename, skipped),
            bool(yanked), reason, available, meta_sha,
        ])
    return records


CachedRecord = tuple[str, str, str | None, int | None, datetime | None, str | None, bool,
                     str | None, bool | None, str | None]
"""A checked record as the cache keeps it: the upload time is a datetime (a msgpack
timestamp, decoded in C)."""

RawRecord = tuple[str, str, str | None, int | None, str | None, str | None, bool, str | None]
"""A JSON API file entry as the page gives it, not checked yet: (filename, url, sha256 of
`digests`, size, upload time, requires-python, yanked, yanked reason). `check_raw` makes it a
`CachedRecord` (or skips it), when the lock first looks at its version."""


class CachedVersion(msgspec.Struct, array_like=True, gc=False):
    """The records of one version of a page (`text`: the version as its file names spell it),
    kept as their msgpack (`records`: `CachedRecord`s, or `RawRecord`s on a raw page):
    decoded, checked and made into files only when a lock looks at that version
    (`decode_version`). `usable` (some file passes the checks) and `all_yanked` (every such
    file is yanked) let the resolver list and skip versions without looking; `decode_version`
    checks both against the records."""

    text: str
    usable: bool
    all_yanked: bool
    records: msgspec.Raw


class CachedPage(msgspec.Struct, array_like=True, gc=False):
    """A parsed page as the cache keeps it (msgpack, positional): its redacted URL, whether
    its records are raw (a JSON API page: checked version by version, see `raw_page`) or
    checked by a parser, its records by version (in the order of the page) and the notes of
    what the page's checks skipped (for `-v`)."""

    url: str
    raw: bool
    versions: list[CachedVersion]
    skipped: list[str] = msgspec.field(default_factory=list)
    etag: str = ""
    """The index's validators for the page (`ETag`, `Last-Modified`; "" when it sent none):
    a page past its TTL is asked for again with them, and a 304 keeps this one."""
    last_modified: str = ""


_CACHED_PAGE = msgspec.msgpack.Decoder(CachedPage)
_RECORDS = msgspec.msgpack.Decoder(list[CachedRecord])
_RAW_RECORDS = msgspec.msgpack.Decoder(list[RawRecord])
_ENCODER = msgspec.msgpack.Encoder()


def cached_page(url: str, records: Sequence[CachedRecord],
                skipped: list[str] | None = None) -> CachedPage:
    """The page of `records` (checked by a parser) grouped by version, in page order; each
    version's records are encoded here, once: the cache entry and the lock both use them."""
    by_text: dict[str, list[CachedRecord]] = {}
    for rec in records:
        by_text.setdefault(version_text(rec[0]), []).append(rec)
    encode = _ENCODER.encode
    versions = [CachedVersion(text, True, all(rec[6] for rec in recs), msgspec.Raw(encode(recs)))
                for text, recs in by_text.items()]
    return CachedPage(url, False, versions, skipped if skipped is not None else [])


def json_api_raw(body: Buffer, requires: list[str] | None = None) -> list[RawRecord] | None:
    """Every file entry of a JSON API page, unchecked (None when the page does not decode
    with the API's types: `parse_json_api` then says what is wrong). `requires` gets the
    names `requires_names` finds in the page's `info`."""
    try:
        page = _JSON_PAGE.decode(body)
    except msgspec.DecodeError:
        return None
    if requires is not None:
        requires += requires_names(page.info)
    page.info = _NO_INFO  # a view of `body`, which may be a map its caller closes
    return [(e.filename, e.url, None if e.digests is None else e.digests.sha256, e.size,
             e.upload_time_iso_8601 or e.upload_time, e.requires_python, e.yanked,
             e.yanked_reason)
            for files in page.releases.values() for e in files]


_NO_INFO = msgspec.Raw(b"null")


def raw_page(url: str, name: str, records: Sequence[RawRecord],
             skipped: list[str] | None = None) -> CachedPage:
    """A JSON API page cached unchecked, by version: a lock looks at a few versions of a
    page that lists thousands of files (~5 us of checks a file: 0.25 s of a cold web lock).
    Each version is checked only as far as deciding `usable` and `all_yanked` takes (one file,
    as a rule); `decode_version` checks all of a version's files when it is used."""
    by_text: dict[str, list[RawRecord]] = {}
    for rec in records:
        by_text.setdefault(version_text(rec[0]), []).append(rec)
    encode = _ENCODER.encode
    versions = []
    for text, recs in by_text.items():
        usable, all_yanked = False, True
        for rec in recs:
            checked = check_raw(rec, url, name, None)
            if checked is not None:
                usable = True
                if not checked[6]:
                    all_yanked = False
                    break
        versions.append(CachedVersion(text, usable, usable and all_yanked,
                                      msgspec.Raw(encode(recs))))
    return CachedPage(url, True, versions, skipped if skipped is not None else [])


def check_raw(rec: RawRecord, page_url: str, name: str,
              skipped: list[str] | None) -> CachedRecord | None:
    """What `parse_json_api` and the client make of one entry (the same checks, notes and
    values), or None when it is skipped."""
    filename, href, digest, size, upload, requires_python, yanked, reason = rec
    url, sha = _split_url(href, page_url)
    if digest is not None:
        sha = digest.lower()
    if not _file_ok(filename, url, sha, skipped):
        return None
    if size is not None and size < 0:
        size = _size(size, filename, skipped)
    requires_python = _requires_python(requires_python, filename, skipped)
    if "@" in url and "@" in url.split("/")[2]:
        url = split_credentials(url)[0]  # keep credentials out of DistFile
    if project_of(filename) != name:
        _note(skipped, f"{filename}: a file of another project")
        return None
    return (filename, url, sha, size, to_datetime(parse_time(upload)), requires_python, yanked,
            (reason if yanked else None) or None, None, None)


def version_text(filename: str) -> str:
    """The version part of a wheel or sdist name, as written (not parsed; anything for a
    name that is not one)."""
    if filename.endswith(".whl"):
        parts = filename.split("-", 2)
        return parts[1] if len(parts) > 1 else ""
    stem = filename
    for ext in SDIST_EXTENSIONS:
        if stem.endswith(ext):
            stem = stem[: -len(ext)]
            break
    return stem.rpartition("-")[2]


def encode_cached(page: CachedPage) -> bytes:
    return _ENCODER.encode(page)


_PIECE = 48 * 1024
"""Bytes per piece of `encode_chunks`: below glibc's initial mmap threshold."""
_BOOL = (b"\xc2", b"\xc3")


def encode_chunks(page: CachedPage) -> Iterator[bytes]:
    """`encode_cached(page)` in pieces of a few dozen KB (joined, the same bytes): a big page's
    msgpack (2 MB for 5,000 files) as one buffer would, once freed, raise glibc's mmap threshold
    and fragment the heap for every later buffer of up to that size."""
    pending: list[bytes] = [b"\x96", _ENCODER.encode(page.url), _BOOL[page.raw],
                            _array_header(len(page.versions))]
    size = 0
    for version in page.versions:
        pending.append(b"\x94" + _ENCODER.encode(version.text) + _BOOL[version.usable]
                       + _BOOL[version.all_yanked])
        pending.append(bytes(version.records))
        size += len(pending[-1]) + len(pending[-2])
        if size >= _PIECE:
            yield b"".join(pending)
            pending, size = [], 0
    pending += [_ENCODER.encode(page.skipped), _ENCODER.encode(page.etag),
                _ENCODER.encode(page.last_modified)]
    yield b"".join(pending)


def _array_header(count: int) -> bytes:
    """The msgpack array header msgspec writes for `count` items (the shortest form)."""
    if count < 16:
        return bytes((0x90 | count,))
    if count < 1 << 16:
        return b"\xdc" + count.to_bytes(2, "big")
    return b"\xdd" + count.to_bytes(4, "big")


def decode_cached(data: Buffer) -> CachedPage | None:
    """A cached page, or None when it is not one (fetch it again): the cache is untrusted
    input too. The typed decode checks the page's shape and each version's text and flags;
    each version's records are checked when it is first used (`decode_version`). Records read
    from a map are copied out of it (the map is closed when the caller drops it)."""
    try:
        page = _CACHED_PAGE.decode(data)
    except msgspec.DecodeError:
        return None
    if not isinstance(data, bytes):
        for version in page.versions:
            version.records = version.records.copy()
    return page


def version_records(page: CachedPage, version: CachedVersion) -> list[CachedRecord] | list[RawRecord]:
    """One version's records as the cache holds them, not checked (raw ones on a raw page);
    a `PageError` when they do not decode."""
    try:
        if page.raw:
            return _RAW_RECORDS.decode(version.records)
        return _RECORDS.decode(version.records)
    except msgspec.DecodeError as exc:
        raise PageError(f"version {version.text!r}: {exc}") from None


def decode_version(page: CachedPage, version: CachedVersion, name: str,
                   skipped: list[str] | None = None) -> list[CachedRecord]:
    """One version's records, checked (the cache is untrusted): a raw page's as `check_raw`
    does (notes in `skipped`), a checked page's file names again; on both, each file's version
    and the version's flags. A `PageError` says what is wrong."""
    text = version.text
    decoded = version_records(page, version)
    records: list[CachedRecord] = decoded if not page.raw else [  # type: ignore[assignment]
        checked for rec in decoded if (checked := check_raw(rec, page.url, name, skipped)) is not None]  # type: ignore[arg-type]
    for rec in records:
        filename = rec[0]
        if not page.raw and (problem := file_problem(filename)) is not None:
            raise PageError(f"{filename!r}: {problem}")
        if version_text(filename) != text:
            raise PageError(f"{filename!r} is listed under version {text!r}")
    usable = bool(records)
    if version.usable != usable or version.all_yanked != (usable and all(r[6] for r in records)):
        raise PageError(f"version {text!r}: its flags do not match its files")
    return records


def parse_simple_html(body: Buffer, page_url: str,
                      skipped: list[str] | None = None) -> list[Record]:
    """A PEP 503 HTML project page (PEP 592 yanked, PEP 658/714 metadata, `#sha256=`)."""
    try:
        text = bytes(body).decode("utf-8")
    except UnicodeDecodeError:
        raise PageError("the page is not UTF-8 text") from None
    from lockenv.index.anchors import AnchorParser  # html.parser: only for HTML pages

    parser = AnchorParser()
    try:
        parser.feed(text)
        parser.close()
    except Exception as exc:  # html.parser is lenient; anything it still rejects is junk
        raise PageError(f"the page is not parseable HTML ({exc})") from None
    records: list[Record] = []
    links = 0
    if parser.base:  # <base href> changes what relative links are relative to
        page_url = urljoin(page_url, parser.base)
    for attrs, label in parser.anchors:
        href = attrs.get("href")
        if not href:
            continue
        links += 1
        url, sha = _split_url(href, page_url)
        filename = label or url.rstrip("/").rsplit("/", 1)[-1]
        if not _file_ok(filename, url, sha, skipped):
            continue
        yanked = "data-yanked" in attrs
        reason = attrs.get("data-yanked") or None
        key = next((k for k in ("data-core-metadata", "data-dist-info-metadata") if k in attrs),
                   None)
        available, meta_sha = None, None
        if key is not None:
            # A bare attribute means "available"; otherwise "true" or "sha256=<hex>".
            available, meta_sha = _metadata_flag(attrs[key] or "true")
        records.append([
            filename, url, sha, None, None,
            _requires_python(attrs.get("data-requires-python"), filename, skipped),
            yanked, reason, available, meta_sha,
        ])
    if not records and parser.repository_version is None:
        stripped = text.strip().lower()
        looks_html = stripped.startswith(("<!doctype html", "<html")) or "<body" in stripped
        if links or not looks_html:
            raise PageError("the page is not a simple-API project page (no distribution links)")
    return records

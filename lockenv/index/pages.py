"""Parsers for index project pages: the JSON API, PEP 691 JSON and PEP 503 HTML.

Each returns compact records (plain lists, cheap to cache as JSON) of the files a page lists:

    [filename, url, sha256, size, upload_time, requires_python, yanked, yanked_reason,
     metadata, metadata_sha256]

`upload_time` is an RFC 3339 string in UTC or None; `metadata` is True/False/None as in
`DistFile.metadata`. Files whose names are not wheels or sdists are left out. Pure functions:
the client turns a `PageError` into an `PackageIndexError` naming the URL.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from datetime import datetime, timezone
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urldefrag, urljoin

from lockenv.models import is_dist_filename

Record = list[Any]


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


@lru_cache(maxsize=4096)
def _valid_name_version(name: str, version: str) -> bool:
    return is_dist_filename(f"{name}-{version}-py3-none-any.whl")


def valid_filename(filename: str) -> bool:
    """`models.is_dist_filename`, with wheels checked per (name, version) once: a big page
    lists thousands of wheels of a few hundred versions."""
    if filename.endswith(".whl"):
        parts = filename[:-4].split("-")
        if len(parts) not in (5, 6) or not all(parts):
            return False
        if len(parts) == 6 and not parts[2][0].isdigit():
            return False
        return _valid_name_version(parts[0], parts[1])
    return is_dist_filename(filename)


def _load_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PageError(f"the page is not valid JSON ({exc})") from None


def _sha256_of(hashes: object, where: str) -> str | None:
    if hashes is None:
        return None
    if not isinstance(hashes, dict):
        raise PageError(f"{where}: hashes is not a mapping")
    value = hashes.get("sha256")
    if value is None:
        return None
    if not isinstance(value, str):
        raise PageError(f"{where}: sha256 is not a string")
    return value.lower()


def _opt_str(entry: dict[str, Any], key: str, where: str) -> str | None:
    value = entry.get(key)
    if value is None or isinstance(value, str):
        return value or None
    raise PageError(f"{where}: {key} is not a string")


def _opt_int(entry: dict[str, Any], key: str, where: str) -> int | None:
    value = entry.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise PageError(f"{where}: {key} is not an integer")
    return value


def parse_json_api(body: bytes, page_url: str) -> list[Record]:
    """The PyPI JSON API (`/pypi/<name>/json`): every file of every release.

    Written as one tight loop with inline type checks: a big project's page lists 15,000
    files, and this runs for every page of a cold lock."""
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
            raise PageError(f"release {version}: files is not a list")
        for entry in files:
            if type(entry) is not dict:
                raise PageError(f"release {version}: a file entry is not an object")
            get = entry.get
            filename = get("filename")
            href = get("url")
            if type(filename) is not str or type(href) is not str:
                raise PageError(f"release {version}: a file has no filename or url")
            if not valid_filename(filename):
                continue
            url, sha = _split_url(href, page_url)
            digests = get("digests")
            if digests is not None:
                if type(digests) is not dict:
                    raise PageError(f"file {filename}: digests is not a mapping")
                value = digests.get("sha256")
                if value is not None:
                    if type(value) is not str:
                        raise PageError(f"file {filename}: sha256 is not a string")
                    sha = value.lower()
            size = get("size")
            if size is not None and type(size) is not int:
                raise PageError(f"file {filename}: size is not an integer")
            upload = get("upload_time_iso_8601")
            if type(upload) is not str or not canonical_time(upload):
                upload = parse_time(upload or get("upload_time"))
            requires_python = get("requires_python")
            if requires_python is not None and type(requires_python) is not str:
                raise PageError(f"file {filename}: requires_python is not a string")
            yanked = bool(get("yanked", False))
            reason = _opt_str(entry, "yanked_reason", f"file {filename}") if yanked else None
            append([filename, url, sha, size, upload, requires_python or None, yanked, reason,
                    None, None])
    return records


def _metadata_flag(value: object) -> tuple[bool | None, str | None]:
    """PEP 658/714 value → (available, sha256 of the metadata file)."""
    if value is None:
        return None, None
    if isinstance(value, bool):
        return value, None
    if isinstance(value, dict):
        sha = value.get("sha256")
        return True, sha.lower() if isinstance(sha, str) else None
    if isinstance(value, str):  # HTML attribute: "true" or "sha256=<hex>"
        text = value.strip()
        if text.lower() == "false":
            return False, None
        if text.startswith("sha256="):
            return True, text[len("sha256="):].lower() or None
        return True, None
    return None, None


def parse_simple_json(body: bytes, page_url: str) -> list[Record]:
    """A PEP 691 JSON project page (with PEP 700 size and upload-time when present)."""
    data = _load_json(body)
    if not isinstance(data, dict):
        raise PageError("the page is not a JSON object")
    files = data.get("files")
    if not isinstance(files, list):
        raise PageError("the page has no `files` list")
    records: list[Record] = []
    for entry in files:
        if not isinstance(entry, dict):
            raise PageError("a file entry is not an object")
        filename = entry.get("filename")
        href = entry.get("url")
        if not isinstance(filename, str) or not isinstance(href, str):
            raise PageError("a file has no filename or url")
        if not valid_filename(filename):
            continue
        where = f"file {filename}"
        url, frag_sha = _split_url(href, page_url)
        sha = _sha256_of(entry.get("hashes"), where) or frag_sha
        yanked = entry.get("yanked", False)
        reason = yanked if isinstance(yanked, str) and yanked else None
        meta = entry.get("core-metadata", entry.get("dist-info-metadata"))
        available, meta_sha = _metadata_flag(meta)
        records.append([
            filename, url, sha, _opt_int(entry, "size", where),
            parse_time(entry.get("upload-time")), _opt_str(entry, "requires-python", where),
            bool(yanked), reason, available, meta_sha,
        ])
    return records


class _AnchorParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.anchors: list[tuple[dict[str, str | None], str]] = []
        self.repository_version: str | None = None
        self.base: str | None = None
        self._current: dict[str, str | None] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._current = dict(attrs)
            self._text = []
        elif tag == "base" and self.base is None:
            self.base = dict(attrs).get("href")
        elif tag == "meta":
            values = dict(attrs)
            if values.get("name") == "pypi:repository-version":
                self.repository_version = values.get("content")

    def handle_data(self, data: str) -> None:
        if self._current is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._current is not None:
            self.anchors.append((self._current, "".join(self._text).strip()))
            self._current = None


def parse_simple_html(body: bytes, page_url: str) -> list[Record]:
    """A PEP 503 HTML project page (PEP 592 yanked, PEP 658/714 metadata, `#sha256=`)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise PageError("the page is not UTF-8 text") from None
    parser = _AnchorParser()
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
        if not valid_filename(filename):
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
            filename, url, sha, None, None, attrs.get("data-requires-python") or None,
            yanked, reason, available, meta_sha,
        ])
    if not records and parser.repository_version is None:
        stripped = text.strip().lower()
        looks_html = stripped.startswith(("<!doctype html", "<html")) or "<body" in stripped
        if links or not looks_html:
            raise PageError("the page is not a simple-API project page (no distribution links)")
    return records

"""An in-process fake package index for `httpx.MockTransport`: real wheels and sdists built in
memory, the JSON API, PEP 691 JSON and PEP 503 HTML pages, PEP 658 metadata, range requests,
a request log and simple fault switches. Unit tests of the index client use it; end-to-end
tests use the fixtures' real HTTP server."""

from __future__ import annotations

import hashlib
import html
import io
import json
import os
import tarfile
import threading
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

HOST = "index.test"
FILES_HOST = "files.test"


def metadata_text(name: str, version: str, requires: list[str] = (), *,  # type: ignore[assignment]
                  requires_python: str | None = None, extras: list[str] = (),  # type: ignore[assignment]
                  metadata_version: str = "2.1", dynamic: list[str] = ()) -> str:  # type: ignore[assignment]
    lines = [f"Metadata-Version: {metadata_version}", f"Name: {name}", f"Version: {version}"]
    if requires_python:
        lines.append(f"Requires-Python: {requires_python}")
    lines += [f"Provides-Extra: {e}" for e in extras]
    lines += [f"Requires-Dist: {r}" for r in requires]
    lines += [f"Dynamic: {d}" for d in dynamic]
    return "\n".join(lines) + "\n\n"


def build_wheel(name: str, version: str, metadata: str, *, padding: int = 0,
                entries: int = 0) -> bytes:
    """A wheel; `padding` bytes of incompressible data stored *after* METADATA's local entry
    push the central directory away from it (so range reading needs several requests);
    `entries` small modules stored *before* it (as real wheels do) make a long central
    directory."""
    dist = f"{name.replace('-', '_')}-{version}"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(entries):
            zf.writestr(f"{name.replace('-', '_')}/a/fairly/long/package/path/module_{i:05}.py",
                        os.urandom(64).hex())
        zf.writestr(f"{dist}.dist-info/METADATA", metadata)
        zf.writestr(f"{name.replace('-', '_')}/__init__.py", "")
        if padding:
            zf.writestr(f"{name.replace('-', '_')}/blob.bin", os.urandom(padding),
                        compress_type=zipfile.ZIP_STORED)
        zf.writestr(f"{dist}.dist-info/WHEEL",
                    "Wheel-Version: 1.0\nGenerator: fake\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        zf.writestr(f"{dist}.dist-info/RECORD", "")
    return buf.getvalue()


def build_sdist(name: str, version: str, pkg_info: str) -> bytes:
    stem = f"{name.replace('-', '_')}-{version}"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for path, text in ((f"{stem}/PKG-INFO", pkg_info),
                           (f"{stem}/pyproject.toml", "[project]\n")):
            data = text.encode()
            info = tarfile.TarInfo(path)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@dataclass
class FakeFile:
    filename: str
    content: bytes
    upload_time: str | None
    requires_python: str | None = None
    yanked: str | bool = False
    metadata: str | None = None
    """METADATA served at `<url>.metadata` (wheels), None when the index has none."""

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


@dataclass
class Logged:
    method: str
    host: str
    path: str
    status: int
    headers: dict[str, str]


@dataclass
class FakeIndex:
    """Serve with `httpx.MockTransport(fake.handler)`. Files live on FILES_HOST unless
    `same_host`; `relative` makes the JSON API list them as `../../files/...`."""

    projects: dict[str, list[FakeFile]] = field(default_factory=dict)
    relative: bool = False
    same_host: bool = False
    serve_metadata: bool = True
    advertise_metadata: bool = True
    ranges: bool = True
    html_only: bool = False
    auth: tuple[str, str] | None = None
    delay: float = 0.0
    faults: dict[str, list[Callable[[httpx.Request], httpx.Response] | int]] = field(
        default_factory=dict)
    """path → responses served (once each) before the normal one; an int is a status."""
    log: list[Logged] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- building -----------------------------------------------------------------------
    def add_release(self, name: str, version: str, requires: list[str] = (),  # type: ignore[assignment]
                    *, day: int = 1, requires_python: str | None = None, wheel: bool = True,
                    sdist: str | None = "static", padding: int = 0, yanked: str | bool = False,
                    extras: list[str] = (), entries: int = 0) -> None:  # type: ignore[assignment]
        files = self.projects.setdefault(name, [])
        when = f"2024-01-{day:02d}T00:00:00Z"
        meta = metadata_text(name, version, list(requires), requires_python=requires_python,
                             extras=list(extras))
        if wheel:
            filename = f"{name.replace('-', '_')}-{version}-py3-none-any.whl"
            files.append(FakeFile(filename, build_wheel(name, version, meta, padding=padding, entries=entries),
                                  when, requires_python, yanked, meta))
        if sdist:
            kind = {"static": ("2.2", []), "dynamic": ("2.2", ["Requires-Dist"]),
                    "legacy": ("1.2", [])}[sdist]
            pkg = metadata_text(name, version, list(requires), requires_python=requires_python,
                                extras=list(extras), metadata_version=kind[0], dynamic=kind[1])
            filename = f"{name.replace('-', '_')}-{version}.tar.gz"
            files.append(FakeFile(filename, build_sdist(name, version, pkg), when,
                                  requires_python, yanked))

    def file(self, filename: str) -> FakeFile:
        for files in self.projects.values():
            for f in files:
                if f.filename == filename:
                    return f
        raise KeyError(filename)

    def requests_to(self, path_part: str, method: str | None = None) -> list[Logged]:
        with self._lock:
            return [r for r in self.log if path_part in r.path
                    and (method is None or r.method == method)]

    # -- serving ------------------------------------------------------------------------
    def file_url(self, f: FakeFile) -> str:
        host = HOST if self.same_host else FILES_HOST
        return f"http://{host}/files/{f.filename}"

    def handler(self, request: httpx.Request) -> httpx.Response:
        if self.delay:
            time.sleep(self.delay)
        response = self._respond(request)
        with self._lock:
            self.log.append(Logged(request.method, request.url.host, request.url.path,
                                   response.status_code, dict(request.headers)))
        return response

    def _respond(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        with self._lock:
            queue = self.faults.get(path)
            fault = queue.pop(0) if queue else None
        if fault is not None:
            return httpx.Response(fault) if isinstance(fault, int) else fault(request)
        if self.auth is not None and request.url.host == HOST:
            import base64

            token = base64.b64encode(f"{self.auth[0]}:{self.auth[1]}".encode()).decode()
            if request.headers.get("Authorization") != f"Basic {token}":
                return httpx.Response(401, text="auth required")
        parts = path.strip("/").split("/")
        if parts[0] == "pypi" and len(parts) == 3 and parts[2] == "json":
            return self._json_api(parts[1])
        if parts[0] == "simple" and len(parts) == 2:
            accept = request.headers.get("Accept", "")
            if "vnd.pypi.simple.v1+json" in accept and not self.html_only:
                return self._simple_json(parts[1])
            return self._simple_html(parts[1])
        if parts[0] == "files" and len(parts) == 2:
            return self._file(parts[1], request)
        return httpx.Response(404)

    def _files_of(self, name: str) -> list[FakeFile] | None:
        return self.projects.get(name)

    def _json_api(self, name: str) -> httpx.Response:
        files = self._files_of(name)
        if files is None:
            return httpx.Response(404, json={"message": "Not Found"})
        releases: dict[str, list[dict]] = {}
        for f in files:
            version = f.filename.split("-")[1].removesuffix(".tar.gz")
            url = (f"../../files/{f.filename}" if self.relative else self.file_url(f))
            releases.setdefault(version, []).append({
                "filename": f.filename, "url": url, "digests": {"sha256": f.sha256},
                "size": len(f.content), "upload_time_iso_8601": f.upload_time,
                "requires_python": f.requires_python, "yanked": bool(f.yanked),
                "yanked_reason": f.yanked if isinstance(f.yanked, str) else None,
            })
        body = {"info": {"name": name, "requires_dist": ["never-used"]}, "releases": releases,
                "urls": []}
        return httpx.Response(200, json=body)

    def _simple_json(self, name: str) -> httpx.Response:
        files = self._files_of(name)
        if files is None:
            return httpx.Response(404)
        out = []
        for f in files:
            entry = {"filename": f.filename, "url": self.file_url(f),
                     "hashes": {"sha256": f.sha256}, "size": len(f.content),
                     "upload-time": f.upload_time, "yanked": f.yanked}
            if f.requires_python:
                entry["requires-python"] = f.requires_python
            if f.metadata is not None and self.advertise_metadata:
                entry["core-metadata"] = {
                    "sha256": hashlib.sha256(f.metadata.encode()).hexdigest()}
            out.append(entry)
        body = {"meta": {"api-version": "1.1"}, "name": name, "files": out}
        return httpx.Response(200, content=json.dumps(body).encode(),
                              headers={"Content-Type": "application/vnd.pypi.simple.v1+json"})

    def _simple_html(self, name: str) -> httpx.Response:
        files = self._files_of(name)
        if files is None:
            return httpx.Response(404)
        links = []
        for f in files:
            attrs = f' href="{html.escape(self.file_url(f))}#sha256={f.sha256}"'
            if f.requires_python:
                attrs += f' data-requires-python="{html.escape(f.requires_python)}"'
            if f.yanked:
                reason = f.yanked if isinstance(f.yanked, str) else ""
                attrs += f' data-yanked="{html.escape(reason)}"'
            if f.metadata is not None and self.advertise_metadata:
                digest = hashlib.sha256(f.metadata.encode()).hexdigest()
                attrs += f' data-core-metadata="sha256={digest}"'
            links.append(f"<a{attrs}>{f.filename}</a><br/>")
        page = ("<!DOCTYPE html><html><head><meta name=\"pypi:repository-version\" "
                "content=\"1.1\"></head><body>" + "\n".join(links) + "</body></html>")
        return httpx.Response(200, content=page.encode(),
                              headers={"Content-Type": "text/html; charset=utf-8"})

    def _file(self, filename: str, request: httpx.Request) -> httpx.Response:
        if filename.endswith(".metadata"):
            try:
                f = self.file(filename[: -len(".metadata")])
            except KeyError:
                return httpx.Response(404)
            if f.metadata is None or not self.serve_metadata:
                return httpx.Response(404)
            return httpx.Response(200, content=f.metadata.encode())
        try:
            f = self.file(filename)
        except KeyError:
            return httpx.Response(404)
        data = f.content
        if request.method == "HEAD":
            return httpx.Response(200, headers={"Content-Length": str(len(data))})
        spec = request.headers.get("Range")
        if spec and self.ranges:
            first, _, last = spec.removeprefix("bytes=").partition("-")
            if first == "":
                start, end = max(0, len(data) - int(last)), len(data) - 1
            else:
                start, end = int(first), min(int(last), len(data) - 1)
            return httpx.Response(
                206, content=data[start:end + 1],
                headers={"Content-Range": f"bytes {start}-{end}/{len(data)}"})
        return httpx.Response(200, content=data)

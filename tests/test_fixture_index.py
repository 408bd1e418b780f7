"""The fixture index itself: artifacts, every route, every fault switch, and real clients."""

from __future__ import annotations

import base64
import csv
import hashlib
import http.client
import http.server
import io
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tarfile
import threading
import time
import zipfile
from email.parser import HeaderParser
from pathlib import Path

import httpx
import pytest

from fixtures import builder
from fixtures.backend import lockenv_fixture_backend as backend
from fixtures.index import FAULTS, IndexServer, LocalServer, main
from fixtures.universe import load_universe
from fixtures_plugin import MakeIndex

JSON_ACCEPT = "application/vnd.pypi.simple.v1+json"
PIP_ACCEPT = ("application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1,"
              " text/html; q=0.01")


@pytest.fixture
def client() -> httpx.Client:
    with httpx.Client(timeout=10) as c:
        yield c


def _wheel(srv: IndexServer, name: str, version: str, tag: str = "py3-none-any") -> str:
    return f"{backend.dist_name(name)}-{version}-{tag}.whl"


def _meta(text: bytes | str) -> dict[str, list[str]]:
    msg = HeaderParser().parsestr(text.decode() if isinstance(text, bytes) else text)
    out: dict[str, list[str]] = {}
    for key, value in msg.items():
        out.setdefault(key, []).append(value)
    return out


def _read(tf: tarfile.TarFile, name: str) -> bytes:
    member = tf.extractfile(name)
    assert member is not None
    return member.read()


# --- universes and artifacts ---------------------------------------------------------------


def test_base_universe_covers_its_cases() -> None:
    builder._cache.clear()
    projects = builder.build_universe(load_universe("base"))
    assert len(projects) >= 20
    assert {"alpha", "diamond", "native", "partial", "yanky", "onlypre", "newpre", "timely",
            "sdstatic", "sddynamic", "sdlegacy", "sdbroken", "marked", "flasky",
            "clicky-cli", "lockenv-fixture-backend"} <= set(projects)


def test_artifacts_are_byte_identical_across_builds_and_processes() -> None:
    builder._cache.clear()
    first = {a.filename: a.sha256 for p in builder.build_universe(load_universe("base")).values()
             for fs in p.releases.values() for a in fs}
    builder._cache.clear()
    second = {a.filename: a.sha256 for p in builder.build_universe(load_universe("base")).values()
              for fs in p.releases.values() for a in fs}
    assert first == second
    code = ("import json; from fixtures.builder import build_universe;"
            "from fixtures.universe import load_universe;"
            "print(json.dumps({a.filename: a.sha256 for p in build_universe("
            "load_universe('base')).values() for fs in p.releases.values() for a in fs}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).parent.parent, env={**os.environ, "TZ": "Asia/Tokyo"})
    assert json.loads(out.stdout) == first


def test_archive_bytes_are_pinned() -> None:
    """Golden digests: the same on Python 3.10-3.13 and any machine (stored zip members and
    stored-deflate gzip do not depend on the zlib build). A change here changes every hash."""
    meta = backend.core_metadata("Demo", "1.0", dependencies=["x>=1"], extras={"e": ["y"]})
    _, wheel = backend.build_wheel_bytes(
        "Demo", "1.0", "cp312-cp312-manylinux_2_17_x86_64", [("demo/__init__.py", b"x=1\n")],
        meta, backend.entry_points_text({"d": "demo:main"}))
    sdist = backend.write_targz([("demo-1.0/PKG-INFO", meta.encode()),
                                 ("demo-1.0/demo/__init__.py", b"x=1\n" * 40000)])
    assert hashlib.sha256(wheel).hexdigest() == \
        "7db823ea8b6d948c629319b66071e85d67448c05495953f860817f49efa11688"
    assert hashlib.sha256(sdist).hexdigest() == \
        "67c7d5f3b24720e19a1f17fe16292f63cc09c4657d0e457292508b7d6464ef91"
    with tarfile.open(fileobj=io.BytesIO(sdist)) as tf:  # > 64 KiB: several gzip blocks
        assert _read(tf, "demo-1.0/demo/__init__.py") == b"x=1\n" * 40000


def test_wheel_is_real_with_correct_record_and_importable_module(
        index_server: IndexServer, tmp_path: Path) -> None:
    name = _wheel(index_server, "alpha", "1.1")
    data = index_server.file("alpha", name)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        infos = zf.infolist()
        assert all(i.date_time == (1980, 1, 1, 0, 0, 0) for i in infos)
        assert all(i.external_attr >> 16 == 0o100644 for i in infos)
        names = [i.filename for i in infos]
        assert names[-1] == "alpha-1.1.dist-info/RECORD"
        rows = list(csv.reader(io.StringIO(zf.read(names[-1]).decode())))
        assert sorted(r[0] for r in rows) == sorted(names)
        for path, digest, size in rows:
            if path.endswith("RECORD"):
                assert (digest, size) == ("", "")
                continue
            content = zf.read(path)
            expected = base64.urlsafe_b64encode(hashlib.sha256(content).digest()).rstrip(b"=")
            assert digest == f"sha256={expected.decode()}" and int(size) == len(content)
        meta = _meta(zf.read("alpha-1.1.dist-info/METADATA"))
        assert meta["Metadata-Version"] == ["2.3"] and meta["Requires-Dist"] == ["beta<2,>=1"]
        assert "Tag: py3-none-any" in zf.read("alpha-1.1.dist-info/WHEEL").decode()
        assert "alpha-cli = alpha:main" in zf.read("alpha-1.1.dist-info/entry_points.txt").decode()
        zf.extractall(tmp_path)
    out = subprocess.run([sys.executable, "-c", "import alpha; print(alpha.__version__, "
                          "alpha.__build__)"], cwd=tmp_path, capture_output=True, text=True)
    assert out.stdout.split() == ["1.1", "py3-none-any"]


def test_sdists_are_deterministic_tarballs_with_the_declared_pkg_info(
        index_server: IndexServer) -> None:
    expected = {"sdstatic": ("2.2", ["gamma>=1.1"], []),
                "sddynamic": ("2.2", [], ["Requires-Dist", "Provides-Extra"]),
                "sdlegacy": ("2.1", [], [])}
    for project, (mv, requires, dynamic) in expected.items():
        (filename, _, _), = index_server.files(project)
        data = index_server.file(project, filename)
        assert data[4:8] == b"\0\0\0\0"  # gzip mtime 0
        with tarfile.open(fileobj=io.BytesIO(data)) as tf:
            members = tf.getmembers()
            assert [m.name for m in members] == sorted(m.name for m in members)
            assert {(m.mtime, m.uid, m.gid, m.mode) for m in members} == \
                {(315532800, 0, 0, 0o644)}
            top = filename[:-len(".tar.gz")]
            meta = _meta(_read(tf, f"{top}/PKG-INFO"))
            pyproject = _read(tf, f"{top}/pyproject.toml").decode()
        assert meta["Metadata-Version"] == [mv]
        assert meta.get("Requires-Dist", []) == requires
        assert meta.get("Dynamic", []) == dynamic
        assert 'requires = ["lockenv-fixture-backend"]' in pyproject


def test_windows_wheels_of_native_carry_their_own_dependencies(
        index_server: IndexServer) -> None:
    files = [f for f, _, _ in index_server.files("native")]
    assert len(files) == 20 and not any(f.endswith(".tar.gz") for f in files)
    for filename in files:
        requires = _meta(index_server.metadata("native", filename))["Requires-Dist"]
        assert requires == (["gamma", "winhelper"] if "win_amd64" in filename else ["gamma"])


def test_universe_from_dict_shorthand_and_validation_errors(make_index: MakeIndex) -> None:
    srv = make_index({"solo": {"1.0": {"dependencies": ["duo>=1"], "wheels": []},
                               "2.0": {"yanked": True}}})
    assert srv.projects == ["lockenv-fixture-backend", "solo"]
    assert [f for f, _, _ in srv.files("solo")] == ["solo-1.0.tar.gz", "solo-2.0.tar.gz",
                                                    "solo-2.0-py3-none-any.whl"]
    with pytest.raises(ValueError, match="unknown key.*dependecies"):
        load_universe({"x": {"1.0": {"dependecies": []}}})
    with pytest.raises(ValueError, match="bad requirement"):
        load_universe({"x": {"1.0": {"dependencies": ["not a req !"]}}})
    with pytest.raises(ValueError, match="no fixture universe 'nope'.*base"):
        load_universe("nope")
    assert not load_universe({"universe": {"include-backend": False},
                              "package": []}).include_backend


def test_universe_from_toml_path(tmp_path: Path, make_index: MakeIndex) -> None:
    path = tmp_path / "tiny.toml"
    path.write_text('[[package]]\nname = "tiny"\n[[package.version]]\nversion = "0.1"\n'
                    'upload-time = 2023-05-01T00:00:00Z\nsdist = false\n')
    srv = make_index(path)
    assert [f for f, _, _ in srv.files("tiny")] == ["tiny-0.1-py3-none-any.whl"]


# --- lifecycle -----------------------------------------------------------------------------


def test_server_stops_despite_a_keep_alive_connection_and_frees_the_port(
        client: httpx.Client) -> None:
    """Leaving the block returns (it does not wait for the client's idle keep-alive
    connection to close) and the port no longer answers."""
    with IndexServer("base") as srv:
        assert srv.url.startswith("http://127.0.0.1:") and srv.port > 0
        assert srv.json_url == f"{srv.url}/pypi" and srv.simple_url == f"{srv.url}/simple/"
        assert client.get(srv.simple_url).status_code == 200  # leaves a keep-alive connection
    with pytest.raises(httpx.TransportError):
        client.get(srv.simple_url)


def test_server_answers_many_requests_in_parallel(index_server: IndexServer) -> None:
    """A slow answer does not hold up the others; 32 concurrent connections all succeed."""
    from concurrent.futures import ThreadPoolExecutor

    index_server.inject("gamma", "slow", delay=1.0)
    limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
    with httpx.Client(limits=limits, timeout=10) as c, ThreadPoolExecutor(32) as pool:
        slow = pool.submit(c.get, f"{index_server.json_url}/gamma/json")
        names = [n for n in index_server.projects if n != "gamma"] * 2
        codes = list(pool.map(lambda n: c.get(f"{index_server.simple_url}{n}/").status_code,
                              names))
        assert codes == [200] * len(names) and not slow.done()
        assert slow.result().status_code == 200


def _reset(sock: socket.socket) -> None:
    """Close `sock` with a TCP reset, as a killed client's kernel does."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def _settled(server: LocalServer) -> None:
    """Wait until the server has finished with every connection (its error report, if any,
    is printed before the connection is let go)."""
    deadline = time.monotonic() + 10
    while server._connections and time.monotonic() < deadline:  # noqa: SLF001 - the fixture's own
        time.sleep(0.01)
    assert not server._connections  # noqa: SLF001


def test_a_client_that_goes_away_is_not_reported_as_a_server_error(
        capfd: pytest.CaptureFixture[str]) -> None:
    """A killed sync resets its keep-alive connections, mid-request or between requests: the
    suite's output must not fill with the server's tracebacks for it."""
    with IndexServer("base") as srv:
        for payload in (b"GET /pypi/", b"GET /simple/ HTTP/1.1\r\nHost: x\r\n\r\n"):
            sock = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
            sock.sendall(payload)
            if payload.endswith(b"\r\n\r\n"):
                assert sock.recv(12) == b"HTTP/1.1 200"
            _reset(sock)
        assert srv._httpd is not None  # noqa: SLF001
        _settled(srv._httpd)  # noqa: SLF001
    out, err = capfd.readouterr()
    assert "Exception occurred" not in out + err and "ConnectionResetError" not in err


def test_a_real_server_error_is_still_printed(capfd: pytest.CaptureFixture[str]) -> None:
    """Only the client's going away is quiet: a bug in a handler still shows."""
    class Broken(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            raise ValueError("a bug in the fixture")

    server = LocalServer(("127.0.0.1", 0), Broken)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                     daemon=True).start()
    try:
        sock = socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=5)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(1) == b""  # the handler died: the server closes the connection
        sock.close()
        # the report is printed before the server lets the connection go (the b"" above)
        assert "ValueError: a bug in the fixture" in capfd.readouterr().err
    finally:
        server.shutdown()
        server.server_close()


def test_connections_are_kept_alive(index_server: IndexServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", index_server.port, timeout=5)
    for path in ("/simple/", "/pypi/alpha/json", "/simple/gamma/"):
        conn.request("GET", path)
        resp = conn.getresponse()
        assert resp.status == 200 and len(resp.read()) == int(resp.headers["Content-Length"])
    conn.close()


# --- JSON API ------------------------------------------------------------------------------


def test_json_api_has_pypi_shape(index_server: IndexServer, client: httpx.Client) -> None:
    data = client.get(f"{index_server.json_url}/alpha/json").json()
    assert set(data) == {"info", "last_serial", "releases", "urls", "vulnerabilities"}
    assert data["info"]["name"] == "alpha" and data["info"]["version"] == "2.0"
    assert data["info"]["requires_python"] == ">=3.8"
    assert data["info"]["requires_dist"] == ["beta>=2"]
    assert list(data["releases"]) == ["1.0", "1.1", "2.0"] and data["vulnerabilities"] == []
    assert [f["filename"] for f in data["urls"]] == ["alpha-2.0.tar.gz",
                                                      "alpha-2.0-py3-none-any.whl"]
    wheel = data["releases"]["1.1"][1]
    body = client.get(wheel["url"]).content
    assert wheel["digests"] == {"sha256": hashlib.sha256(body).hexdigest(),
                                "md5": hashlib.md5(body).hexdigest(),
                                "blake2b_256": hashlib.blake2b(body, digest_size=32).hexdigest()}
    assert wheel["size"] == len(body) and wheel["packagetype"] == "bdist_wheel"
    assert wheel["python_version"] == "py3" and wheel["yanked"] is False
    assert wheel["upload_time_iso_8601"] == "2024-01-02T00:00:00.000000Z"
    assert wheel["upload_time"] == "2024-01-02T00:00:00"
    assert data["releases"]["1.0"][0]["packagetype"] == "sdist"
    assert data["releases"]["1.0"][0]["python_version"] == "source"


@pytest.mark.parametrize(("project", "version"), [
    ("yanky", "1.1"), ("onlypre", "1.0b2"), ("newpre", "1.0"), ("modern", "2.0")])
def test_json_info_version_skips_yanked_and_prereleases(
        index_server: IndexServer, client: httpx.Client, project: str, version: str) -> None:
    assert client.get(f"{index_server.json_url}/{project}/json").json()["info"]["version"] == \
        version


def test_json_yanked_files_and_requires_dist_from_first_upload(
        index_server: IndexServer, client: httpx.Client) -> None:
    yanked = client.get(f"{index_server.json_url}/yanky/json").json()["releases"]["1.2"]
    assert {(f["yanked"], f["yanked_reason"]) for f in yanked} == {(True, "broken build")}
    # sddynamic's only file is an sdist with dynamic Requires-Dist: PyPI knows nothing
    assert client.get(f"{index_server.json_url}/sddynamic/json").json()["info"][
        "requires_dist"] is None
    timely = client.get(f"{index_server.json_url}/timely/json").json()["releases"]["1.1"]
    assert [(f["packagetype"], f["upload_time_iso_8601"]) for f in timely] == [
        ("sdist", "2024-06-01T10:00:00.000000Z"), ("bdist_wheel", "2024-06-08T10:00:00.000000Z")]


def test_json_redirects_non_normalised_names_and_404s_unknown(
        index_server: IndexServer, client: httpx.Client) -> None:
    resp = client.get(f"{index_server.json_url}/Clicky_CLI/json")
    assert resp.status_code == 301
    assert resp.headers["Location"] == "/pypi/clicky-cli/json"
    data = client.get(f"{index_server.json_url}/Clicky_CLI/json", follow_redirects=True).json()
    assert data["info"]["name"] == "Clicky_CLI"
    missing = client.get(f"{index_server.json_url}/nonexistent/json")
    assert missing.status_code == 404 and missing.json() == {"message": "Not Found"}


def test_per_version_json_is_off_unless_enabled(
        index_server: IndexServer, make_index: MakeIndex, client: httpx.Client) -> None:
    assert client.get(f"{index_server.json_url}/alpha/1.0/json").status_code == 404
    srv = make_index(per_version_json=True)
    data = client.get(f"{srv.json_url}/alpha/1.0/json").json()
    assert data["info"]["version"] == "1.0" and data["info"]["requires_dist"] == ["beta<2,>=1"]
    assert [f["filename"] for f in data["urls"]] == ["alpha-1.0.tar.gz",
                                                      "alpha-1.0-py3-none-any.whl"]
    assert "releases" not in data
    assert client.get(f"{srv.json_url}/alpha/9.9/json").status_code == 404


# --- simple API ----------------------------------------------------------------------------


def test_simple_index_in_json_and_html(index_server: IndexServer, client: httpx.Client) -> None:
    data = client.get(index_server.simple_url, headers={"Accept": JSON_ACCEPT}).json()
    assert data["meta"]["api-version"] == "1.1"
    assert {"alpha", "Clicky_CLI"} <= {p["name"] for p in data["projects"]}
    page = client.get(index_server.simple_url)
    assert page.headers["Content-Type"] == "text/html"
    assert '<a href="/simple/clicky-cli/">Clicky_CLI</a>' in page.text


def test_simple_project_json(index_server: IndexServer, client: httpx.Client) -> None:
    resp = client.get(f"{index_server.simple_url}yanky/", headers={"Accept": PIP_ACCEPT})
    assert resp.headers["Content-Type"] == JSON_ACCEPT
    data = resp.json()
    assert data["meta"]["api-version"] == "1.1" and data["name"] == "yanky"
    assert data["versions"] == ["1.0", "1.1", "1.2"]
    by_name = {f["filename"]: f for f in data["files"]}
    wheel = by_name["yanky-1.2-py3-none-any.whl"]
    assert wheel["yanked"] == "broken build" and by_name["yanky-1.1.tar.gz"]["yanked"] is False
    meta = client.get(wheel["url"] + ".metadata").content
    assert wheel["core-metadata"] == wheel["data-dist-info-metadata"] == {
        "sha256": hashlib.sha256(meta).hexdigest()}
    assert by_name["yanky-1.2.tar.gz"]["core-metadata"] is False
    body = client.get(wheel["url"]).content
    assert wheel["hashes"] == {"sha256": hashlib.sha256(body).hexdigest()}
    assert wheel["size"] == len(body) and wheel["upload-time"] == "2024-01-03T00:00:00.000000Z"
    modern = client.get(f"{index_server.simple_url}modern/", headers={"Accept": JSON_ACCEPT})
    assert {f["requires-python"] for f in modern.json()["files"]} == {">=3.8", ">=3.12"}


def test_simple_project_html(index_server: IndexServer, client: httpx.Client) -> None:
    page = client.get(f"{index_server.simple_url}modern/",
                      headers={"Accept": "application/vnd.pypi.simple.v1+html"})
    assert page.headers["Content-Type"] == "application/vnd.pypi.simple.v1+html"
    assert '<meta name="pypi:repository-version" content="1.1">' in page.text
    sha, meta_sha = (index_server.files("modern")[3][1],
                     hashlib.sha256(index_server.metadata(
                         "modern", "modern-2.0-py3-none-any.whl")).hexdigest())
    assert (f'<a href="{index_server.url}/files/modern/modern-2.0-py3-none-any.whl#sha256={sha}"'
            f' data-requires-python="&gt;=3.12" data-dist-info-metadata="sha256={meta_sha}"'
            f' data-core-metadata="sha256={meta_sha}">modern-2.0-py3-none-any.whl</a>') in page.text
    yanky = client.get(f"{index_server.simple_url}yanky/").text
    assert 'data-yanked="broken build">yanky-1.2.tar.gz</a>' in yanky


@pytest.mark.parametrize(("accept", "expected"), [
    (None, "text/html"),
    ("*/*", "text/html"),
    ("text/html", "text/html"),
    (PIP_ACCEPT, JSON_ACCEPT),
    ("application/vnd.pypi.simple.v1+json;q=0.2, text/html;q=0.9", "text/html"),
    ("application/vnd.pypi.simple.latest+json", JSON_ACCEPT),
    ("application/vnd.pypi.simple.v1+html, application/vnd.pypi.simple.v1+json",
     "application/vnd.pypi.simple.v1+html"),
    ("application/xml", None),
])
def test_simple_content_negotiation(index_server: IndexServer, client: httpx.Client,
                                    accept: str | None, expected: str | None) -> None:
    headers = {"Accept": accept} if accept else {}
    if accept is None:
        client.headers.pop("Accept", None)
    resp = client.get(f"{index_server.simple_url}gamma/", headers=headers)
    if expected is None:
        assert resp.status_code == 406
    else:
        assert resp.status_code == 200 and resp.headers["Content-Type"] == expected
        assert resp.headers["Vary"] == "Accept"


@pytest.mark.parametrize(("path", "location"), [
    ("/simple/Clicky_CLI/", "/simple/clicky-cli/"),
    ("/simple/clicky.cli/", "/simple/clicky-cli/"),
    ("/simple/gamma", "/simple/gamma/"),
    ("/simple/Gamma", "/simple/gamma/"),
    ("/simple", "/simple/"),
])
def test_simple_redirects(index_server: IndexServer, client: httpx.Client, path: str,
                          location: str) -> None:
    resp = client.get(index_server.url + path)
    assert resp.status_code == 301 and resp.headers["Location"] == location
    assert client.get(index_server.url + path, follow_redirects=True).status_code == 200


def test_simple_unknown_project_404(index_server: IndexServer, client: httpx.Client) -> None:
    assert client.get(f"{index_server.simple_url}nonexistent/").status_code == 404
    assert client.head(f"{index_server.simple_url}gamma/").headers["Content-Length"] == \
        str(len(client.get(f"{index_server.simple_url}gamma/").content))
    with pytest.raises(KeyError, match="nonexistent"):
        index_server.files("nonexistent")
    assert client.get(f"{index_server.url}/elsewhere").status_code == 404


# --- files ---------------------------------------------------------------------------------


def test_files_ranges_and_head(index_server: IndexServer, client: httpx.Client) -> None:
    name = _wheel(index_server, "gamma", "1.2")
    url = index_server.file_url("gamma", name)
    data = index_server.file("gamma", name)
    full = client.get(url)
    assert full.content == data and full.headers["Content-Length"] == str(len(data))
    assert full.headers["Accept-Ranges"] == "bytes"
    part = client.get(url, headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == data[10:20]
    assert part.headers["Content-Range"] == f"bytes 10-19/{len(data)}"
    tail = client.get(url, headers={"Range": "bytes=-22"})
    assert tail.status_code == 206 and tail.content == data[-22:]
    rest = client.get(url, headers={"Range": f"bytes={len(data) - 5}-"})
    assert rest.content == data[-5:]
    bad = client.get(url, headers={"Range": f"bytes={len(data)}-"})
    assert bad.status_code == 416 and bad.headers["Content-Range"] == f"bytes */{len(data)}"
    head = client.head(url)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["Content-Length"] == str(len(data))
    assert client.get(index_server.file_url("gamma", "gamma-9.9.tar.gz")).status_code == 404


def test_metadata_files_and_the_per_package_switch(
        index_server: IndexServer, client: httpx.Client) -> None:
    wheel = _wheel(index_server, "alpha", "1.0")
    meta = client.get(index_server.file_url("alpha", wheel) + ".metadata")
    assert meta.status_code == 200 and meta.content == index_server.metadata("alpha", wheel)
    assert client.get(index_server.file_url("alpha", "alpha-1.0.tar.gz") + ".metadata"
                      ).status_code == 404
    nometa = _wheel(index_server, "nometa", "1.0")
    assert client.get(index_server.file_url("nometa", nometa) + ".metadata").status_code == 404
    page = client.get(f"{index_server.simple_url}nometa/", headers={"Accept": JSON_ACCEPT}).json()
    assert {f["core-metadata"] for f in page["files"]} == {False}
    assert "data-core-metadata" not in client.get(f"{index_server.simple_url}nometa/").text


# --- faults --------------------------------------------------------------------------------


def test_every_fault_name_is_accepted_and_unknown_ones_are_not(
        index_server: IndexServer) -> None:
    for fault in FAULTS:
        index_server.inject("alpha", fault)
    index_server.clear_faults()
    with pytest.raises(ValueError, match="unknown fault"):
        index_server.inject("alpha", "explode")


@pytest.mark.parametrize("status", ["404", "500", "503", "429"])
def test_status_faults_on_a_project_hit_its_pages_and_files(
        index_server: IndexServer, client: httpx.Client, status: str) -> None:
    index_server.inject("Alpha", status)
    wheel = index_server.file_url("alpha", _wheel(index_server, "alpha", "1.0"))
    for url in (f"{index_server.json_url}/alpha/json", f"{index_server.simple_url}alpha/", wheel):
        assert client.get(url).status_code == int(status)
    assert client.get(f"{index_server.json_url}/beta/json").status_code == 200
    index_server.clear_faults()
    assert client.get(wheel).status_code == 200


def test_fault_times_then_normal(index_server: IndexServer, client: httpx.Client) -> None:
    index_server.inject("gamma", "500", times=2)
    url = f"{index_server.json_url}/gamma/json"
    assert [client.get(url).status_code for _ in range(4)] == [500, 500, 200, 200]
    with pytest.raises(ValueError, match="times"):
        index_server.inject("gamma", "500", times=0)


def test_status_fault_with_headers(index_server: IndexServer, client: httpx.Client) -> None:
    index_server.inject("gamma", "429", times=1, headers={"Retry-After": "1"})
    resp = client.get(f"{index_server.simple_url}gamma/")
    assert resp.status_code == 429 and resp.headers["Retry-After"] == "1"


def test_fault_matching_by_filename_and_path_prefix(
        index_server: IndexServer, client: httpx.Client) -> None:
    wheel = _wheel(index_server, "gamma", "1.1")
    index_server.inject(wheel, "404")
    url = index_server.file_url("gamma", wheel)
    assert client.get(url).status_code == 404
    assert client.get(url + ".metadata").status_code == 404
    assert client.get(index_server.file_url("gamma", "gamma-1.1.tar.gz")).status_code == 200
    assert client.get(f"{index_server.simple_url}gamma/").status_code == 200
    index_server.clear_faults()
    index_server.inject(wheel + ".metadata", "500")
    assert client.get(url).status_code == 200 and client.get(url + ".metadata").status_code == 500
    index_server.clear_faults()
    index_server.inject("/pypi/", "503")
    assert client.get(f"{index_server.json_url}/gamma/json").status_code == 503
    assert client.get(f"{index_server.simple_url}gamma/").status_code == 200


def test_slow_fault_delays_the_answer(index_server: IndexServer, client: httpx.Client) -> None:
    index_server.inject("beta", "slow", delay=0.3)
    start = time.perf_counter()
    assert client.get(f"{index_server.json_url}/beta/json").status_code == 200
    assert time.perf_counter() - start >= 0.3
    with pytest.raises(httpx.ReadTimeout):
        client.get(f"{index_server.json_url}/beta/json", timeout=0.05)


def test_truncate_fault_closes_the_connection_early(
        index_server: IndexServer, client: httpx.Client) -> None:
    wheel = _wheel(index_server, "beta", "1.0")
    index_server.inject(wheel, "truncate", times=1)
    with pytest.raises(httpx.RemoteProtocolError):
        client.get(index_server.file_url("beta", wheel))
    assert client.get(index_server.file_url("beta", wheel)).content == \
        index_server.file("beta", wheel)
    conn = http.client.HTTPConnection("127.0.0.1", index_server.port, timeout=5)
    index_server.inject(wheel, "truncate", keep=10)
    conn.request("GET", f"/files/beta/{wheel}")
    resp = conn.getresponse()
    with pytest.raises(http.client.IncompleteRead) as exc:
        resp.read()
    assert len(exc.value.partial) == 10


def test_wrong_bytes_fault_keeps_the_length_but_breaks_the_hash(
        index_server: IndexServer, client: httpx.Client) -> None:
    wheel = _wheel(index_server, "beta", "2.0")
    index_server.inject(wheel, "wrong-bytes")
    body = client.get(index_server.file_url("beta", wheel)).content
    good = index_server.file("beta", wheel)
    assert len(body) == len(good) and body != good
    sha = {f: s for f, s, _ in index_server.files("beta")}[wheel]
    assert hashlib.sha256(body).hexdigest() != sha


def test_relative_urls_fault_resolves_against_the_page(
        index_server: IndexServer, client: httpx.Client) -> None:
    index_server.inject("gamma", "relative-urls")
    page_url = f"{index_server.json_url}/gamma/json"
    files = client.get(page_url).json()["releases"]["1.0"]
    assert all(f["url"].startswith("../../files/gamma/") for f in files)
    for f in files:
        body = client.get(httpx.URL(page_url).join(f["url"])).content
        assert hashlib.sha256(body).hexdigest() == f["digests"]["sha256"]
    simple = f"{index_server.simple_url}gamma/"
    entry = client.get(simple, headers={"Accept": JSON_ACCEPT}).json()["files"][0]
    assert entry["url"].startswith("../../files/")
    assert client.get(httpx.URL(simple).join(entry["url"])).status_code == 200
    assert 'href="../../files/gamma/' in client.get(simple).text


def test_requires_dist_faults(index_server: IndexServer, client: httpx.Client) -> None:
    url = f"{index_server.json_url}/alpha/json"
    index_server.inject("alpha", "no-requires-dist", times=1)
    assert client.get(url).json()["info"]["requires_dist"] is None
    index_server.inject("alpha", "bad-requires-dist", times=1)
    assert client.get(url).json()["info"]["requires_dist"] == ["nonexistent-dependency>=1"]
    index_server.inject("alpha", "bad-requires-dist", value=["zeta"])
    assert client.get(url).json()["info"]["requires_dist"] == ["zeta"]


def test_no_metadata_fault_per_file(index_server: IndexServer, client: httpx.Client) -> None:
    wheel = _wheel(index_server, "gamma", "1.0")
    index_server.inject(wheel, "no-metadata")
    files = client.get(f"{index_server.simple_url}gamma/",
                       headers={"Accept": JSON_ACCEPT}).json()["files"]
    advertised = {f["filename"]: f["core-metadata"] is not False for f in files}
    assert advertised == {"gamma-1.0.tar.gz": False, wheel: False, "gamma-1.1.tar.gz": False,
                          "gamma-1.1-py3-none-any.whl": True, "gamma-1.2.tar.gz": False,
                          "gamma-1.2-py3-none-any.whl": True}
    html_page = client.get(f"{index_server.simple_url}gamma/").text
    assert html_page.count("data-core-metadata") == 2
    assert client.get(index_server.file_url("gamma", wheel) + ".metadata").status_code == 404
    assert client.get(index_server.file_url("gamma", wheel)).status_code == 200


def test_no_range_fault_returns_the_whole_file(
        index_server: IndexServer, client: httpx.Client) -> None:
    wheel = _wheel(index_server, "gamma", "1.0")
    index_server.inject("gamma", "no-range")
    resp = client.get(index_server.file_url("gamma", wheel), headers={"Range": "bytes=-10"})
    assert resp.status_code == 200 and resp.content == index_server.file("gamma", wheel)
    assert "Accept-Ranges" not in resp.headers


def test_junk_fault_serves_garbage_with_200(index_server: IndexServer,
                                            client: httpx.Client) -> None:
    index_server.inject("beta", "junk")
    resp = client.get(f"{index_server.json_url}/beta/json")
    assert resp.status_code == 200 and resp.headers["Content-Type"] == "application/json"
    with pytest.raises(json.JSONDecodeError):
        resp.json()
    assert "<a " not in client.get(f"{index_server.simple_url}beta/").text


def test_auth_fault_requires_basic_credentials(
        index_server: IndexServer, client: httpx.Client) -> None:
    index_server.inject("/", "auth", user="alice", password="s3cret")
    url = f"{index_server.simple_url}alpha/"
    denied = client.get(url)
    assert denied.status_code == 401
    assert denied.headers["WWW-Authenticate"] == 'Basic realm="fixture-index"'
    assert client.get(url, auth=("alice", "wrong")).status_code == 401
    assert client.get(url, auth=("alice", "s3cret")).status_code == 200
    log = index_server.requests
    assert [(r.status, r.headers.get("authorization")) for r in log] == [
        (401, None), (401, "present"), (200, "present")]
    assert all("s3cret" not in repr(r) for r in log)


# --- request log and live reload ----------------------------------------------------------


def test_request_log(index_server: IndexServer, client: httpx.Client) -> None:
    assert index_server.requests == []
    client.get(f"{index_server.simple_url}alpha/?x=1", headers={"Accept": JSON_ACCEPT})
    client.head(index_server.file_url("alpha", _wheel(index_server, "alpha", "1.0")),
                headers={"Range": "bytes=0-9"})
    log = index_server.requests
    assert [(r.method, r.path, r.status) for r in log] == [
        ("GET", "/simple/alpha/?x=1", 200),
        ("HEAD", "/files/alpha/alpha-1.0-py3-none-any.whl", 206)]
    assert log[0].headers["accept"] == JSON_ACCEPT and log[1].headers["range"] == "bytes=0-9"
    log.clear()
    assert len(index_server.requests) == 2
    index_server.clear_log()
    assert index_server.requests == []


def test_load_publishes_a_new_universe_on_the_same_port(
        make_index: MakeIndex, client: httpx.Client) -> None:
    srv = make_index({"pub": {"1.0": {}}})
    url = f"{srv.json_url}/pub/json"
    assert client.get(url).json()["info"]["version"] == "1.0"
    srv.load({"pub": {"1.0": {}, "1.1": {}}})
    assert client.get(url).json()["info"]["version"] == "1.1"


# --- the build backend -------------------------------------------------------------------


def _project(tmp_path: Path, pyproject: str, module: str = "demo") -> Path:
    root = tmp_path / "proj"
    (root / "src" / module).mkdir(parents=True)
    (root / "src" / module / "__init__.py").write_text("VALUE = 1\n")
    (root / "pyproject.toml").write_text(pyproject)
    return root


DEMO = """\
[build-system]
requires = ["lockenv-fixture-backend"]
build-backend = "lockenv_fixture_backend"

[project]
name = "Demo.Pkg"
version = "0.3"
requires-python = ">=3.10"
dynamic = ["dependencies"]
optional-dependencies = { x = ["beta; python_version < '3.12'"] }

[tool.fixture]
module = "demo"
dependencies = [
    "alpha>=1",  # comment
    'gamma',
]
"""


def test_backend_hooks_build_wheel_sdist_editable_and_metadata(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _project(tmp_path, DEMO)
    monkeypatch.chdir(root)
    out = tmp_path / "out"
    out.mkdir()
    assert backend.get_requires_for_build_wheel() == backend.get_requires_for_build_sdist() == \
        backend.get_requires_for_build_editable() == []
    info = backend.prepare_metadata_for_build_wheel(str(out))
    meta = _meta((out / info / "METADATA").read_text())
    assert info == "demo_pkg-0.3.dist-info" and meta["Name"] == ["Demo.Pkg"]
    assert meta["Requires-Dist"] == ["alpha>=1", "gamma",
                                     "beta; (python_version < '3.12') and extra == \"x\""]
    wheel = backend.build_wheel(str(out))
    with zipfile.ZipFile(out / wheel) as zf:
        assert "demo/__init__.py" in zf.namelist()
    editable = backend.build_editable(str(out))
    with zipfile.ZipFile(out / editable) as zf:
        pth = zf.read("__editable__.demo_pkg-0.3.pth").decode().strip()
    assert Path(pth) == (root / "src").resolve()
    sdist = backend.build_sdist(str(out))
    with tarfile.open(out / sdist) as tf:
        assert sorted(tf.getnames()) == ["demo_pkg-0.3/PKG-INFO", "demo_pkg-0.3/pyproject.toml",
                                         "demo_pkg-0.3/src/demo/__init__.py"]
    first = (out / sdist).read_bytes()
    assert (out / backend.build_sdist(str(out))).read_bytes() == first


def test_backend_failure_prints_stderr_and_raises(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(_project(tmp_path, DEMO + 'fail = "no compiler found"\n'))
    with pytest.raises(RuntimeError, match="no compiler found"):
        backend.build_wheel(str(tmp_path))
    assert "error: no compiler found" in capsys.readouterr().err


def test_backend_mini_toml_parser_matches_tomllib() -> None:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    texts = [DEMO, DEMO.replace("0.3", "1.0") + '\n[x]\nn = 3\nflag = true\ns = "a\\"b"\n']
    texts += [builder._pyproject(r) for p in load_universe("base").packages for r in p.releases]
    for text in texts:
        assert backend._MiniToml(text).parse() == tomllib.loads(text)


# --- real clients ---------------------------------------------------------------------------


def _pip(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull}
    return subprocess.run([sys.executable, "-m", "pip", *args, "--no-cache-dir",
                           "--disable-pip-version-check"],
                          env=env, capture_output=True, text=True, timeout=240)


def test_pip_downloads_with_require_hashes(index_server: IndexServer, tmp_path: Path) -> None:
    shas = {f: s for name in ("alpha", "sddynamic") for f, s, _ in index_server.files(name)}
    req = tmp_path / "req.txt"
    req.write_text(f"alpha==1.1 --hash=sha256:{shas['alpha-1.1-py3-none-any.whl']}\n"
                   f"sddynamic==1.0 --hash=sha256:{shas['sddynamic-1.0.tar.gz']}\n")
    out = tmp_path / "out"
    proc = _pip("download", "--no-deps", "--require-hashes", "-r", str(req),
                "--index-url", index_server.simple_url, "-d", str(out))
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["alpha-1.1-py3-none-any.whl",
                                                     "sddynamic-1.0.tar.gz"]
    for path in out.iterdir():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == shas[path.name]
    paths = {r.path for r in index_server.requests}
    # the sdist's metadata came from a PEP 517 build with the backend fetched from the index
    assert "/files/lockenv-fixture-backend/lockenv_fixture_backend-1.0-py3-none-any.whl" in paths

    req.write_text("alpha==1.1 --hash=sha256:" + "0" * 64 + "\n")
    proc = _pip("download", "--no-deps", "--require-hashes", "-r", str(req),
                "--index-url", index_server.simple_url, "-d", str(tmp_path / "bad"))
    assert proc.returncode != 0 and "THESE PACKAGES DO NOT MATCH THE HASHES" in proc.stderr


def test_pip_shows_the_broken_sdist_build_output(index_server: IndexServer,
                                                 tmp_path: Path) -> None:
    proc = _pip("download", "--no-deps", "sdbroken", "--index-url", index_server.simple_url,
                "-d", str(tmp_path))
    assert proc.returncode != 0
    assert "missing header file: fakelib.h" in proc.stdout + proc.stderr


def _uv_env() -> dict[str, str]:
    """The hermetic environment, and uv must never fetch an interpreter from the network."""
    return {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "UV_NO_CONFIG": "1"}


def _uv() -> str:
    uv = Path(sys.executable).with_name("uv")
    found = str(uv) if uv.exists() else shutil.which("uv")
    if not found:
        pytest.skip("uv is not installed")
    return found


def test_uv_resolves_the_scenarios(index_server: IndexServer, tmp_path: Path) -> None:
    reqs = tmp_path / "req.in"
    reqs.write_text("diamond\nmodern\nsddynamic\nfeat[all]\nyanky\n")

    def compile_for(python: str) -> dict[str, str]:
        proc = subprocess.run(
            [_uv(), "pip", "compile", str(reqs), "--index-url", index_server.simple_url,
             "--python", sys.executable, "--python-version", python, "--no-header",
             "--no-annotate", "--quiet"],
            capture_output=True, text=True, timeout=240, env=_uv_env())
        assert proc.returncode == 0, proc.stderr
        return dict(line.split("==") for line in proc.stdout.split() if "==" in line)

    pins = compile_for("3.11")
    assert pins == {"diamond": "1.0", "left": "1.0", "right": "1.0", "cee": "2.0",
                    "modern": "1.5", "sddynamic": "1.0", "beta": "1.0", "gamma": "1.2",
                    "feat": "1.0", "clicky-cli": "1.0", "yanky": "1.1"}
    assert compile_for("3.12")["modern"] == "2.0"


def test_uv_installs_from_the_index(index_server: IndexServer, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([_uv(), "venv", str(venv), "--python", sys.executable, "--quiet"],
                   check=True, capture_output=True, timeout=120, env=_uv_env())
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    proc = subprocess.run([_uv(), "pip", "install", "--python", str(python), "--index-url",
                           index_server.simple_url, "marked", "sdlegacy"],
                          capture_output=True, text=True, timeout=240, env=_uv_env())
    assert proc.returncode == 0, proc.stderr
    out = subprocess.run([str(python), "-c", "import marked, sdlegacy, gamma; print("
                          "marked.__build__, sdlegacy.__build__, gamma.__version__)"],
                         capture_output=True, text=True)
    assert out.stdout.split() == ["py3-none-any", "sdist", "1.2"]


# --- by hand ------------------------------------------------------------------------------


def test_cli_files_lists_hashes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["files", "base"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("alpha-1.0-py3-none-any.whl  sha256=") for line in lines)
    assert main(["files", "nope"]) == 2


def test_cli_serve_prints_urls_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "fixtures.index", "serve", "base"],
                            cwd=Path(__file__).parent.parent, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(4)]
        simple = lines[2].split()[-1]
        assert simple.startswith("http://127.0.0.1:") and simple.endswith("/simple/")
        assert httpx.get(simple + "alpha/").status_code == 200
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

"""IndexClient against the fixture index (real HTTP on 127.0.0.1, real wheels and sdists):
both APIs, the metadata chain step by step, faults, credentials, caching and prefetch."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import pytest
from fixtures.index import IndexServer
from helpers import verbose_reporter as verbose

from lockenv import build
from lockenv.cache import Cache
from lockenv.dists import Distributions
from lockenv.errors import PackageIndexError, IntegrityError, NetworkError, PackageNotFoundError
from lockenv.index import IndexClient
from lockenv.models import DistFile
from lockenv.ops.dispatch import distributions
from lockenv.ui import NullReporter, Reporter


@pytest.fixture
def cache(tmp_path: Path) -> Cache:
    return Cache(tmp_path / "cache")


@contextmanager
def open_dists(url: str, *, cache: Cache, reporter: Reporter | None = None
               ) -> Iterator[Distributions]:
    """The metadata layer (builds dispatched as `lock` does) over a client of `url`."""
    reporter = reporter or NullReporter()
    with IndexClient(url, cache=cache, reporter=reporter) as client, \
            distributions(client, cache=cache, reporter=reporter) as dists:
        yield dists


def paths(srv: IndexServer, method: str | None = None) -> list[str]:
    return [r.path for r in srv.requests if method is None or r.method == method]


def wheel(client: IndexClient, name: str, version: str | None = None) -> DistFile:
    files = [f for f in client.project(name).files if f.is_wheel]
    return next(f for f in reversed(files) if version is None or str(f.version) == version)


def sdist(client: IndexClient, name: str) -> DistFile:
    return next(f for f in client.project(name).files if not f.is_wheel)


# -- pages ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["alpha", "native", "yanky", "Clicky_CLI"])
def test_json_and_simple_apis_list_the_same_files(index_server: IndexServer, cache: Cache,
                                                  name: str) -> None:
    srv = index_server
    with IndexClient(srv.json_url, cache=cache) as c:
        via_json = c.project(name)
    with IndexClient(srv.simple_url, cache=cache) as c:
        via_simple = c.project(name)
    key = [(f.filename, f.url, f.sha256, f.size, f.upload_time, f.requires_python, f.yanked,
            f.yanked_reason) for f in via_json.files]
    assert key == [(f.filename, f.url, f.sha256, f.size, f.upload_time, f.requires_python,
                    f.yanked, f.yanked_reason) for f in via_simple.files]
    assert [(f, s, z) for f, s, z in srv.files(name)] == [
        (f.filename, f.sha256, f.size) for f in via_json.files]
    assert {f.index for f in via_json.files} == {srv.simple_url}


def test_html_simple_page_matches(index_server: IndexServer, cache: Cache) -> None:
    srv = index_server
    with IndexClient(srv.json_url, cache=cache) as c:
        via_json = c.project("yanky").files
    with IndexClient(srv.simple_url, cache=cache) as c:
        # Ask like a PEP 503-only client would by reading the HTML parser's output directly.
        c_html = c._http.request("GET", f"{srv.simple_url}yanky/", headers={"Accept": "text/html"})
    from lockenv.index.pages import parse_simple_html

    records = parse_simple_html(c_html.content, str(c_html.url))
    assert [(r[0], r[1], r[2], r[5], r[6], r[7]) for r in records] == [
        (f.filename, f.url, f.sha256, f.requires_python, f.yanked, f.yanked_reason)
        for f in via_json]


def test_relative_urls_fault(index_server: IndexServer, cache: Cache) -> None:
    srv = index_server
    srv.inject("beta", "relative-urls")
    with IndexClient(srv.json_url, cache=cache) as c:
        files = c.project("beta").files
        assert all(f.url.startswith(f"{srv.url}/files/beta/") for f in files)
        path = c.download(files[0])
    assert path.read_bytes() == srv.file("beta", files[0].filename)


def test_name_is_normalised_and_redirects_followed(index_server: IndexServer,
                                                   cache: Cache) -> None:
    with IndexClient(index_server.simple_url, cache=cache) as c:
        project = c.project("Clicky.CLI")
    assert project.name == "clicky-cli" and project.files
    assert paths(index_server) == ["/simple/clicky-cli/"]


def test_exclude_newer(index_server: IndexServer, cache: Cache) -> None:
    cutoff = datetime(2024, 6, 3, tzinfo=timezone.utc)
    with IndexClient(index_server.json_url, cache=cache, exclude_newer=cutoff) as c:
        names = [f.filename for f in c.project("timely").files]
    assert sorted(names) == ["timely-1.0-py3-none-any.whl", "timely-1.0.tar.gz",
                             "timely-1.1.tar.gz"]


def test_unknown_project(index_server: IndexServer, cache: Cache) -> None:
    url = index_server.json_url.replace("http://", "http://me:pa55word@")
    with IndexClient(url, cache=cache) as c, pytest.raises(PackageNotFoundError) as info:
        c.project("no-such-thing")
    assert str(info.value) == (
        f"`no-such-thing` was not found on the index {index_server.json_url}")
    assert "pa55word" not in repr((info.value.hint, info.value.context))


def test_junk_page(index_server: IndexServer, cache: Cache) -> None:
    index_server.inject("alpha", "junk")
    for url in (index_server.json_url, index_server.simple_url):
        with IndexClient(url, cache=cache) as c, pytest.raises(PackageIndexError) as info:
            c.project("alpha")
        assert "is not usable" in str(info.value) and "/alpha/" in str(info.value)


def test_truncated_page_retried(index_server: IndexServer, cache: Cache) -> None:
    index_server.inject("alpha", "truncate", times=1)
    with IndexClient(index_server.json_url, cache=cache) as c:
        assert c.project("alpha").files
    assert paths(index_server) == ["/pypi/alpha/json"] * 2


def test_always_truncated_page(index_server: IndexServer, cache: Cache,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCKENV_HTTP_RETRIES", "1")
    index_server.inject("alpha", "truncate")
    with IndexClient(index_server.json_url, cache=cache) as c, pytest.raises(PackageIndexError) as info:
        c.project("alpha")
    assert str(info.value) == (f"the transfer of {index_server.json_url}/alpha/json was cut "
                               "short (after retries)")


@pytest.mark.parametrize("name", ["alpha", "native", "yanky"])
def test_gzip_encoded_pages_read_as_plain_ones(index_server: IndexServer, tmp_path: Path,
                                               name: str) -> None:
    """PyPI sends its pages gzip-encoded; lockenv inflates them itself (isal), not httpx."""
    for api, url in enumerate((index_server.json_url, index_server.simple_url)):
        with IndexClient(url, cache=Cache(tmp_path / f"plain-{api}")) as c:
            plain = c.project(name).files
        index_server.inject(name, "gzip")
        with IndexClient(url, cache=Cache(tmp_path / f"gzip-{api}")) as c:
            assert c.project(name).files == plain
        index_server.clear_faults()
        assert plain and "gzip" in index_server.requests[-1].headers["accept-encoding"]


def test_gzip_stream_cut_short_is_retried(index_server: IndexServer, cache: Cache,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A body that ends inside its gzip stream (Content-Length honest) is a transfer cut
    short: retried, and reported as such when it stays short, never parsed."""
    index_server.inject("alpha", "gzip", times=1, cut=12)
    index_server.inject("alpha", "gzip")  # the retry: the whole stream
    with IndexClient(index_server.json_url, cache=cache) as c:
        assert c.project("alpha").files
    assert paths(index_server) == ["/pypi/alpha/json"] * 2
    index_server.clear_faults()
    monkeypatch.setenv("LOCKENV_HTTP_RETRIES", "1")
    index_server.inject("beta", "gzip", cut=12)
    with IndexClient(index_server.json_url, cache=cache) as c, pytest.raises(PackageIndexError) as info:
        c.project("beta")
    assert str(info.value) == (f"the transfer of {index_server.json_url}/beta/json was cut "
                               "short (after retries)")


def test_gzip_body_that_does_not_inflate(index_server: IndexServer, cache: Cache) -> None:
    index_server.inject("alpha", "gzip", bad=True)
    with IndexClient(index_server.simple_url, cache=cache) as c, pytest.raises(PackageIndexError) as info:
        c.project("alpha")
    assert str(info.value).startswith(f"cannot use the answer for {index_server.simple_url}alpha/: "
                                      "the gzip-encoded body does not inflate")
    assert info.value.hint.startswith("check the index URL")
    assert paths(index_server) == ["/simple/alpha/"]


# -- retries, timeouts ----------------------------------------------------------------------

def test_500_twice_then_success(index_server: IndexServer, cache: Cache) -> None:
    index_server.inject("alpha", "500", times=2)
    with IndexClient(index_server.json_url, cache=cache) as c:
        assert c.project("alpha").files
    assert [r.status for r in index_server.requests] == [500, 500, 200]


def test_persistent_503(index_server: IndexServer, cache: Cache) -> None:
    index_server.inject("alpha", "503")
    with IndexClient(index_server.simple_url, cache=cache) as c, \
            pytest.raises(PackageIndexError) as info:
        c.project("alpha")
    assert "HTTP 503" in str(info.value) and f"{index_server.simple_url}alpha/" in str(info.value)
    assert len(index_server.requests) == 4


def test_slow_index_times_out(index_server: IndexServer, cache: Cache,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCKENV_HTTP_TIMEOUT", "0.3")
    monkeypatch.setenv("LOCKENV_HTTP_RETRIES", "1")
    index_server.inject("alpha", "slow", delay=2)
    with IndexClient(index_server.json_url, cache=cache) as c, pytest.raises(NetworkError) as info:
        c.project("alpha")
    assert str(info.value) == f"cannot reach {index_server.json_url}/alpha/json: timed out"


def test_nothing_listening(cache: Cache, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCKENV_HTTP_RETRIES", "0")
    with IndexServer("base") as srv:
        url = srv.json_url
    with IndexClient(url, cache=cache) as c, pytest.raises(NetworkError) as info:
        c.project("alpha")
    assert str(info.value).startswith(f"cannot reach {url}/alpha/json: ")


# -- credentials ----------------------------------------------------------------------------

def test_basic_auth_from_the_url(index_server: IndexServer, cache: Cache) -> None:
    index_server.inject("/", "auth", user="alice", password="0pen-sesame")
    url = index_server.simple_url.replace("http://", "http://alice:0pen-sesame@")
    reporter, err = verbose()
    with open_dists(url, cache=cache, reporter=reporter) as c:
        assert c.simple_index_url == index_server.simple_url
        w = wheel(c, "alpha")
        assert c.metadata(w).requires_dist
        assert c.download(w).exists()
    assert all(r.headers.get("authorization") == "present" for r in index_server.requests)
    assert "0pen-sesame" not in err.getvalue() and "alice" not in err.getvalue()


def test_basic_auth_from_netrc(index_server: IndexServer, cache: Cache, tmp_path: Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    index_server.inject("/", "auth", user="bob", password="n3trc")
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine 127.0.0.1 login bob password n3trc\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    with IndexClient(index_server.json_url, cache=cache) as c:
        assert c.project("alpha").files


def test_missing_credentials(index_server: IndexServer, cache: Cache) -> None:
    index_server.inject("/", "auth", user="alice", password="right")
    url = index_server.json_url.replace("http://", "http://alice:wr0ng@")
    reporter, err = verbose()
    with IndexClient(url, cache=cache, reporter=reporter) as c, \
            pytest.raises(PackageIndexError) as info:
        c.project("alpha")
    exc = info.value
    assert str(exc) == (f"the default index ({index_server.json_url}): credentials from the "
                        "index URL were rejected: 401 Unauthorized")
    assert "did not retry" in exc.hint
    assert len([r for r in index_server.requests if r.status == 401]) == 1
    shown = repr((str(exc), exc.hint, exc.context, exc.details)) + err.getvalue()
    assert "wr0ng" not in shown and "alice" not in shown


# -- metadata chain -------------------------------------------------------------------------

def test_metadata_step1_pep658(index_server: IndexServer, cache: Cache) -> None:
    with open_dists(index_server.json_url, cache=cache) as c:
        w = wheel(c, "alpha", "2.0")
        index_server.clear_log()
        meta = c.metadata(w)
    assert (meta.name, meta.version, meta.source) == ("alpha", "2.0", "pep658")
    assert meta.requires_dist == ("beta>=2",) and meta.requires_python == ">=3.8"
    assert paths(index_server) == [f"/files/alpha/{w.filename}.metadata"]


def test_metadata_step2_range(index_server: IndexServer, cache: Cache) -> None:
    with open_dists(index_server.simple_url, cache=cache) as c:
        w = wheel(c, "nometa", "1.1")
        assert w.metadata is False  # the simple index says there is none: not even tried
        index_server.clear_log()
        meta = c.metadata(w)
    assert meta.source == "range" and meta.requires_dist == ("gamma>=1.1",)
    assert all(r.headers.get("range") for r in index_server.requests)
    assert not any(p.endswith(".metadata") for p in paths(index_server))


def test_metadata_step3_whole_wheel_when_range_ignored(index_server: IndexServer,
                                                       cache: Cache) -> None:
    index_server.inject("nometa", "no-range")
    with open_dists(index_server.json_url, cache=cache) as c:
        w = wheel(c, "nometa", "1.0")
        index_server.clear_log()
        meta = c.metadata(w)
        assert meta.source == "wheel" and meta.requires_dist == ("gamma",)
        assert c.download(w).read_bytes() == index_server.file("nometa", w.filename)
    # .metadata (404), then one GET whose full body became the cached wheel.
    assert paths(index_server) == [f"/files/nometa/{w.filename}.metadata",
                                   f"/files/nometa/{w.filename}"]


def test_metadata_step4_static_sdist(index_server: IndexServer, cache: Cache) -> None:
    with open_dists(index_server.json_url, cache=cache) as c:
        meta = c.metadata(sdist(c, "sdstatic"))
    assert meta.source == "sdist" and meta.requires_dist == ("gamma>=1.1",)


@pytest.mark.parametrize("name", ["sddynamic", "sdlegacy"])
def test_metadata_step5_build(index_server: IndexServer, cache: Cache, name: str,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, object]] = []

    def prepare_metadata(path: Path, *, context: object, cache: Cache) -> str:
        seen.append((path.name, context))
        version = "1.0" if name == "sddynamic" else "0.5"
        return f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nRequires-Dist: built\n\n"

    monkeypatch.setattr(build, "prepare_metadata", prepare_metadata)
    with open_dists(index_server.json_url, cache=cache) as c:
        s = sdist(c, name)
        meta = c.metadata(s)
        assert seen == [(s.filename, c.build_context)]
    assert meta.source == "build" and meta.requires_dist == ("built",)


def test_bad_requires_dist_in_json_info_is_ignored(index_server: IndexServer,
                                                   cache: Cache) -> None:
    index_server.inject("alpha", "bad-requires-dist")
    index_server.inject("alpha", "no-requires-dist")
    with open_dists(index_server.json_url, cache=cache) as c:
        assert c.metadata(wheel(c, "alpha", "1.1")).requires_dist == ("beta<2,>=1",)


def test_per_version_endpoint_is_never_used(index_server: IndexServer, cache: Cache) -> None:
    with open_dists(index_server.json_url, cache=cache) as c:
        for name in ("alpha", "nometa", "sdstatic"):
            for f in c.project(name).files:
                c.metadata(f)
    assert all(p.count("/") <= 3 or not p.startswith("/pypi/") for p in paths(index_server))


# -- downloads ------------------------------------------------------------------------------

def test_wrong_bytes_refused(index_server: IndexServer, cache: Cache) -> None:
    with IndexClient(index_server.json_url, cache=cache) as c:
        w = wheel(c, "gamma")
        index_server.inject(w.filename, "wrong-bytes")
        with pytest.raises(IntegrityError) as info:
            c.download(w)
    assert f"expected sha256: {w.sha256}" in info.value.details
    assert [d for d in info.value.details if d.startswith("actual sha256:")]
    assert not [p for p in (cache.root / "files-v1").rglob("*") if p.is_file()]


def test_truncated_download_retried(index_server: IndexServer, cache: Cache) -> None:
    with IndexClient(index_server.json_url, cache=cache) as c:
        w = wheel(c, "gamma")
        index_server.inject(w.filename, "truncate", times=2)
        assert c.download(w).read_bytes() == index_server.file("gamma", w.filename)


def test_download_many_in_parallel(index_server: IndexServer, cache: Cache) -> None:
    with IndexClient(index_server.json_url, cache=cache) as c:
        files = [f for name in ("native", "alpha") for f in c.project(name).files]
        result = c.download_many(files)
    assert sorted(result) == sorted(f.filename for f in files)
    assert all(result[f.filename].stat().st_size == f.size for f in files)


# -- cache and prefetch ---------------------------------------------------------------------

def test_prefetch_one_request_per_page(index_server: IndexServer, cache: Cache) -> None:
    index_server.inject("/", "slow", delay=0.1)
    names = index_server.projects
    with IndexClient(index_server.json_url, cache=cache) as c:
        c.prefetch(names)
        c.prefetch(names)
        workers = [threading.Thread(target=c.project, args=(n,)) for n in names]
        for t in workers:
            t.start()
        for n in names:
            c.project(n)
        for t in workers:
            t.join()
    assert sorted(paths(index_server)) == sorted(f"/pypi/{n}/json" for n in names)


def test_second_client_uses_the_page_cache(index_server: IndexServer, cache: Cache) -> None:
    with IndexClient(index_server.json_url, cache=cache) as c:
        first = c.project("alpha")
    index_server.clear_log()
    with IndexClient(index_server.json_url, cache=cache) as c:
        assert c.project("alpha") == first
    assert index_server.requests == []
    with IndexClient(index_server.json_url, cache=cache, refresh=True) as c:
        c.project("alpha")
    assert paths(index_server) == ["/pypi/alpha/json"]


def test_metadata_step5_real_pep517_build(index_server: IndexServer, cache: Cache) -> None:
    """The whole chain with the real `lockenv.build` and the fixtures' build backend."""
    with open_dists(index_server.json_url, cache=cache) as c:
        meta = c.metadata(sdist(c, "sddynamic"))
    assert meta.source == "build"
    assert meta.requires_dist == ("beta<2", 'cee; extra == "more"')
    assert meta.provides_extra == ("more",)


def test_metadata_build_failure_is_a_build_error(index_server: IndexServer,
                                                 cache: Cache) -> None:
    from lockenv.errors import BuildError

    with open_dists(index_server.json_url, cache=cache) as c, \
            pytest.raises(BuildError) as info:
        c.metadata(sdist(c, "sdbroken"))
    assert "sdbroken" in str(info.value)

"""IndexClient (and the Distributions metadata chain over it) against an in-process fake index
(httpx.MockTransport): pages, metadata chain,
downloads, retries, errors, credentials, caching and prefetch."""

from __future__ import annotations

import io
import subprocess
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import verbose_reporter as verbose
from packaging.version import Version

from lockenv import build
from lockenv.cache import Cache
from lockenv.dists import Distributions
from lockenv.errors import (
    BrokenDistributionError,
    IntegrityError,
    NetworkError,
    PackageIndexError,
    PackageNotFoundError,
)
from lockenv.index import IndexClient
from lockenv.index.client import PROBE_TRIES
from lockenv.models import CoreMetadata, DistFile, PackedFile
from lockenv.ui import TerminalReporter
from lockenv.urls import DEFAULT_INDEX_URL, redact_url
from fixtures import builder
from fixtures.backend.lockenv_fixture_backend import core_metadata
from fixtures.mock_index import FILES_HOST, HOST, FakeIndex

JSON_URL = f"http://{HOST}/pypi"
SIMPLE_URL = f"http://{HOST}/simple/"


@pytest.fixture
def fake() -> FakeIndex:
    idx = FakeIndex()
    idx.add_release("alpha", "1.0", ["beta>=1"], day=1)
    idx.add_release("alpha", "2.0", ["beta>=2", "gamma; extra == 'fast'"], day=5,
                    requires_python=">=3.8", extras=["fast"], yanked="broken build")
    idx.add_release("beta", "1.0", day=1)
    idx.add_release("beta", "2.0", day=2)
    return idx


@pytest.fixture
def cache(tmp_path: Path) -> Cache:
    return Cache(tmp_path / "cache")


def client(fake: FakeIndex, cache: Cache, url: str = JSON_URL, **kwargs: object) -> IndexClient:
    # The fake hosts are plain http and not this machine: allowed, as a user would allow them.
    kwargs.setdefault("allow_insecure_hosts", (HOST,))
    return IndexClient(url, cache=cache, transport=httpx.MockTransport(fake.handler),
                       **kwargs)


@contextmanager
def dists(fake: FakeIndex, cache: Cache, url: str = JSON_URL,
          build_context: Callable[[Distributions], Any] | None = None,
          **kwargs: Any) -> Iterator[Distributions]:
    """The metadata layer over a client of the fake index (same reporter for both)."""
    with client(fake, cache, url, **kwargs) as c, \
            Distributions(c, cache=cache, reporter=kwargs.get("reporter"),
                          build_context=build_context) as d:
        yield d


def comparable(files: tuple) -> list[tuple]:
    return [(f.filename, f.url, f.sha256, f.requires_python, f.yanked, f.yanked_reason)
            for f in files]


# -- pages ----------------------------------------------------------------------------------

def test_json_api_lists_every_release_file(fake: FakeIndex, cache: Cache) -> None:
    with client(fake, cache) as c:
        project = c.project("Alpha")
    names = [f.filename for f in project.files]
    assert names == ["alpha-1.0-py3-none-any.whl", "alpha-1.0.tar.gz",
                     "alpha-2.0-py3-none-any.whl", "alpha-2.0.tar.gz"]
    wheel = project.files[2]
    source = fake.file(wheel.filename)
    assert wheel.sha256 == source.sha256 and wheel.size == len(source.content)
    assert wheel.upload_time == datetime(2024, 1, 5, tzinfo=timezone.utc)
    assert wheel.requires_python == ">=3.8"
    assert wheel.yanked and wheel.yanked_reason == "broken build"
    assert wheel.url == f"http://{FILES_HOST}/files/{wheel.filename}"
    assert wheel.index == f"http://{HOST}/simple/"
    assert project.index_url == f"http://{HOST}/pypi/alpha/json"
    # The name is normalised before the request.
    assert [r.path for r in fake.log] == ["/pypi/alpha/json"]


@pytest.mark.parametrize("warm", [False, True])
def test_a_versions_files_are_made_when_first_used(fake: FakeIndex, cache: Cache,
                                                   warm: bool) -> None:
    """A page's versions are known at once (and whether each is all yanked); the files of
    one are made (from the cache: checked again) only when asked for, and then kept."""
    if warm:
        with client(fake, cache) as c:
            c.project("alpha")
    with client(fake, cache) as c:
        project = c.project("alpha")
    assert project.from_cache == warm
    assert [(v.text, v.all_yanked, v.made) for v in project.versions] == [
        ("1.0", False, False), ("2.0", True, False)]
    old, new = project.versions
    assert [f.filename for f in new] == ["alpha-2.0-py3-none-any.whl", "alpha-2.0.tar.gz"]
    assert new.made and not old.made
    assert new[0] is new.files[0] and new[0].yanked and new[0].version == Version("2.0")
    assert project.files[2:] == new.files and old.made


@pytest.mark.parametrize("html_only", [False, True])
def test_simple_api_gives_the_same_files_as_the_json_api(fake: FakeIndex, cache: Cache,
                                                         html_only: bool) -> None:
    with client(fake, cache) as c:
        via_json = c.project("alpha")
    fake.html_only = html_only
    with client(fake, cache, SIMPLE_URL) as c:
        via_simple = c.project("alpha")
        assert c.simple_index_url == SIMPLE_URL
    assert comparable(via_simple.files) == comparable(via_json.files)
    if html_only:  # PEP 503 HTML has no size or upload time
        assert all(f.size is None and f.upload_time is None for f in via_simple.files)
        assert via_simple.files[0].metadata is True
    else:
        assert [f.size for f in via_simple.files] == [f.size for f in via_json.files]
        assert [f.upload_time for f in via_simple.files] == [f.upload_time for f in via_json.files]
    accept = fake.requests_to("/simple/alpha/")[0].headers["accept"]
    assert accept.startswith("application/vnd.pypi.simple.v1+json")


@pytest.mark.parametrize("relative", [False, True])
def test_files_at_digest_paths_keep_their_urls(fake: FakeIndex, cache: Cache,
                                               relative: bool) -> None:
    """PyPI's `/packages/ab/cd/<60 hex>/<name>` URLs are kept packed (memory) and come back
    whole: the same files, equal and hashing alike, whether fresh or from the cache; they
    download, and their metadata is read, from those URLs."""
    fake.digest_paths = True
    fake.relative = relative
    origin = f"http://{HOST}" if relative else f"http://{FILES_HOST}"
    expected = {f.filename: f"{origin}/{fake.file_path(f)}" for f in fake.projects["beta"]}
    seen = []
    for _ in range(2):  # fetched, then from the cache
        with dists(fake, cache) as d:
            files = d.client.project("beta").files
            assert all(isinstance(f, PackedFile) for f in files)  # the packed path is taken
            assert {f.filename: f.url for f in files} == expected
            plain = [replace(f, url=f.url) for f in files]
            assert files == tuple(plain) and list(map(hash, files)) == list(map(hash, plain))
            wheel = next(f for f in files if f.is_wheel)
            assert d.metadata(wheel).version == wheel.version.public
            assert d.client.download(wheel).read_bytes() == fake.file(wheel.filename).content
            seen.append(files)
    assert seen[0] == seen[1]
    assert len(fake.requests_to("/pypi/beta/json")) == 1
    assert fake.requests_to("/packages/")


def test_packed_files_equal_plain_ones_and_unpack_only_exact_shapes() -> None:
    """A file kept with its URL and sha256 packed is the same file as the plain one (equality,
    hash, replace, pickling); URLs not of the `ab/cd/<60 lower-case hex>/<filename>` shape stay
    plain, and so does a sha256 that is not 64 lower-case hex digits."""
    import pickle

    name = "x-1.0-py3-none-any.whl"
    digest = "0123456789abcdef" * 4
    url = f"https://h/packages/{digest[:2]}/{digest[2:4]}/{digest[4:]}/{name}"
    for sha in ("ab" * 32, "AB" * 32, None, "zz" * 32, "ab" * 31 + " a", "ab" * 33):
        rest = (1, None, ">=3.8", True, "why", None, "https://h/simple/")
        packed = PackedFile.make(name, url, sha, *rest, bases={})
        plain = DistFile(name, url, sha, *rest)
        assert packed == plain and hash(packed) == hash(plain) and packed.sha256 == sha
    args = ("ab" * 32, 1, None, ">=3.8", True, "why", None, "https://h/simple/")
    packed = PackedFile.make(name, url, *args, bases={})
    plain = DistFile(name, url, *args)
    assert isinstance(packed, PackedFile) and packed == plain and hash(packed) == hash(plain)
    assert packed.url == url and repr(plain).endswith(repr(packed).split("(", 1)[1])
    assert pickle.loads(pickle.dumps(packed)) == plain
    assert replace(packed, size=2) == replace(plain, size=2) != plain
    with pytest.raises(AttributeError):
        getattr(packed, "nothing")
    for other in (url.replace("/01/", "/0A/"), url.replace(f"/{name}", "/y-1.0.tar.gz"),
                  f"https://h/files/{name}", url.replace(digest[4:], digest[5:]),
                  f"{digest[:2]}/{digest[2:4]}/{digest[4:]}/{name}"):
        made = PackedFile.make(name, other, *args, bases={})
        assert type(made) is DistFile and made.url == other


def test_relative_file_urls_are_resolved_against_the_page(fake: FakeIndex, cache: Cache) -> None:
    fake.relative = True
    with client(fake, cache) as c:
        files = c.project("beta").files
        assert files[0].url == f"http://{HOST}/files/beta-1.0-py3-none-any.whl"
        path = c.download(files[0])
    assert path.read_bytes() == fake.file("beta-1.0-py3-none-any.whl").content


def _json_page(name: str, requires: object) -> dict:
    """A JSON API page of one wheel of `name` 1.0, whose `info.requires_dist` is `requires`."""
    filename = f"{name}-1.0-py3-none-any.whl"
    return {"info": {"name": name, "requires_dist": requires},
            "releases": {"1.0": [{"filename": filename, "url": f"http://{FILES_HOST}/f/{filename}",
                                  "digests": {"sha256": "ab" * 32}, "size": 10}]}}


@pytest.mark.parametrize("requires, hinted", [
    (["Beta>=2", 'gamma; extra == "fast"', 'delta ; sys_platform == "win32"', "Zeta_Pkg[x] (>=1)",
      "!! not a name", "beta"], ["beta", "delta", "zeta-pkg"]),
    (None, []), ("beta", []), (["beta", 5], []),
])
def test_a_fetched_json_api_page_names_what_its_newest_release_requires(
        cache: Cache, requires: object, hinted: list[str]) -> None:
    """A lock starts those pages a round trip before the release's metadata names them: the
    names its newest release requires, except for an extra, normalised; nothing from an `info`
    that is not the API's shape (the page itself is still read), and nothing from the cache."""
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=_json_page("alpha", requires))

    seen: list[str] = []
    for _ in range(2):  # the second time from the cache: no request, no hint
        with IndexClient(JSON_URL, cache=cache, transport=httpx.MockTransport(handler),
                         on_requires=seen.extend) as c:
            assert [f.filename for f in c.project("alpha").files] == ["alpha-1.0-py3-none-any.whl"]
    assert seen == hinted


def test_hinted_pages_never_hold_up_a_page_asked_for(cache: Cache) -> None:
    """The pages a page's newest release names are fetched beside the page workers, a few at
    a time: ten slow ones (more than there are page workers) do not delay a page the crawler
    asks for, and none is fetched twice (one asked for later waits for its hint's request).
    Hints still queued when the lock ends are dropped."""
    release = threading.Event()
    arrived: dict[str, threading.Event] = {"other": threading.Event()}
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        name = request.url.path.split("/")[-2]
        asked.append(name)
        if name.startswith("slow"):
            release.wait(120)
        arrived.setdefault(name, threading.Event()).set()
        requires = [f"slow{i}" for i in range(10)] if name == "app" else []
        return httpx.Response(200, json=_json_page(name, requires))

    with IndexClient(JSON_URL, cache=cache, transport=httpx.MockTransport(handler)) as c:
        c.on_requires = c.hint
        c.project("app")
        c.prefetch(["other"])
        try:
            assert arrived["other"].wait(20), sorted(asked)
        finally:
            release.set()
        assert [f.filename for f in c.project("slow9").files] == ["slow9-1.0-py3-none-any.whl"]
    assert len(asked) == len(set(asked)) and {"app", "other", "slow9"} <= set(asked)


def test_a_lock_starts_the_pages_a_page_names_on_the_index_each_name_is_routed_to(
        tmp_path: Path) -> None:
    """`follow_requires` (the lock's) starts the pages `info.requires_dist` names, through the
    routing rule: a name pinned to another index is asked there only, never on the index whose
    page named it (dependency confusion); without it (other commands), none is started."""
    from lockenv.index.routing import IndexRouter
    from lockenv.models import IndexConfig, IndexSettings

    asked: list[str] = []
    arrived = {"beta": threading.Event(), "secret-pkg": threading.Event()}

    def handler(request: httpx.Request) -> httpx.Response:
        name = request.url.path.split("/")[-2]
        asked.append(f"{request.url.host} {name}")
        if name in arrived:
            arrived[name].set()
        requires = ["secret-pkg>=1", "beta"] if name == "app" else []
        return httpx.Response(200, json=_json_page(name, requires))

    settings = IndexSettings(search=(IndexConfig(name=None, url="http://public.test/pypi"),),
                             named=(IndexConfig(name="corp", url="http://corp.test/pypi", explicit=True),),
                             sources={"secret-pkg": "corp"},
                             allow_insecure_hosts=("public.test", "corp.test"))
    with IndexRouter(settings, cache=Cache(tmp_path / "other"),
                     transport=httpx.MockTransport(handler)) as router:
        router.project("app")
    assert asked == ["public.test app"]
    asked.clear()
    with IndexRouter(settings, cache=Cache(tmp_path / "cache"), transport=httpx.MockTransport(handler),
                     follow_requires=True) as router:
        router.project("app")
        for event in arrived.values():
            assert event.wait(30), sorted(asked)
    assert sorted(asked) == ["corp.test secret-pkg", "public.test app", "public.test beta"]


def test_offline_prefetch_records_every_missing_page_before_it_returns(fake: FakeIndex,
                                                                         cache: Cache) -> None:
    """`lock --offline` fails at the resolver's first miss naming every page the crawl asked
    for: under `offline` a prefetch looks at the cache before it returns (a page thread could
    otherwise look only after that error was made). A cached page is served, no request sent."""
    with client(fake, cache) as c:
        c.project("beta")
    fake.log.clear()
    with client(fake, cache, offline=True) as c:
        c.prefetch(["alpha", "beta", "Gamma_X"])
        assert c.missing == [f"the index page of `alpha` ({JSON_URL}/alpha/json)",
                             f"the index page of `gamma-x` ({JSON_URL}/gamma-x/json)"]
        assert [f.filename for f in c.project("beta").files][0] == "beta-1.0-py3-none-any.whl"
    assert fake.log == []


def test_files_with_unknown_names_are_ignored(cache: Cache) -> None:
    page = ('<html><body><a href="/f/x-1.0.egg">x-1.0.egg</a>'
            '<a href="/f/x-1.0.exe">x-1.0.exe</a>'
            f'<a href="/f/x-1.0-py3-none-any.whl#sha256={"AB" * 32}">x-1.0-py3-none-any.whl</a>'
            '<a href="/f/x-1.0.tar.gz" data-requires-python="&gt;=3.9" data-yanked="">'
            'x-1.0.tar.gz</a></body></html>')

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text=page, headers={"Content-Type": "text/html"})

    with IndexClient(SIMPLE_URL, cache=cache, transport=httpx.MockTransport(handler)) as c:
        files = c.project("x").files
    assert [f.filename for f in files] == ["x-1.0-py3-none-any.whl", "x-1.0.tar.gz"]
    assert files[0].sha256 == "ab" * 32 and files[0].url == f"http://{HOST}/f/x-1.0-py3-none-any.whl"
    assert files[1].requires_python == ">=3.9"  # HTML-unescaped
    assert files[1].yanked and files[1].yanked_reason is None


def test_exclude_newer_drops_later_and_undated_files(fake: FakeIndex, cache: Cache) -> None:
    cutoff = datetime(2024, 1, 3, tzinfo=timezone.utc)
    with client(fake, cache, exclude_newer=cutoff) as c:
        assert [f.filename for f in c.project("alpha").files] == [
            "alpha-1.0-py3-none-any.whl", "alpha-1.0.tar.gz"]
    fake.html_only = True  # no upload times at all
    reporter, err = verbose()
    with client(fake, cache, SIMPLE_URL, exclude_newer=cutoff, reporter=reporter) as c:
        assert c.project("alpha").files == ()
    assert "dropped 4 file(s) without an upload time" in err.getvalue()


def test_exclude_newer_lists_the_same_versions_without_making_their_files(cache: Cache) -> None:
    """A cut-off decides which versions are listed from the records' upload times and checks
    alone; files are made when the lock looks at a version (under -v, all at once: the same
    answer)."""
    fake = FakeIndex()
    for version, day in [("1.0", 1), ("2.0", 2), ("3.0", 3), ("4.0", 9)]:
        fake.add_release("lazy", version, day=day)
    wheel3, sdist3 = fake.projects["lazy"][4:6]
    wheel3.yanked, sdist3.upload_time = "bad wheel", "2024-01-20T00:00:00Z"  # only a yanked file before the cut-off
    sdist2 = fake.projects["lazy"][3]
    sdist2.upload_time = None  # undated: dropped, the wheel stays
    cutoff = datetime(2024, 1, 5, tzinfo=timezone.utc)
    reporter, _ = verbose()
    with client(fake, cache, exclude_newer=cutoff, reporter=reporter) as c:
        eager = c.project("lazy")
    with client(fake, cache, exclude_newer=cutoff) as c:
        lazy = c.project("lazy")
        assert not any(v.made for v in lazy.versions)
        assert [(v.text, v.all_yanked) for v in lazy.versions] == [
            (v.text, v.all_yanked) for v in eager.versions] == [("1.0", False), ("2.0", False), ("3.0", True)]
        assert [v.files for v in lazy.versions] == [v.files for v in eager.versions]
        assert [f.filename for f in lazy.versions[1].files] == ["lazy-2.0-py3-none-any.whl"]


def test_unknown_project_names_the_index_without_credentials(fake: FakeIndex,
                                                              cache: Cache) -> None:
    url = f"http://me:s3cret-pw@{HOST}/pypi"
    with client(fake, cache, url) as c, pytest.raises(PackageNotFoundError) as info:
        c.project("nope")
    exc = info.value
    assert str(exc) == f"`nope` was not found on the index http://{HOST}/pypi"
    assert "spelling" in exc.hint
    assert "s3cret" not in repr((str(exc), exc.hint, exc.context, exc.details))


@pytest.mark.parametrize("body, content_type, where", [
    (b"<html>Service unavailable</html>", "text/html", "pypi"),
    (b'{"info": {}}', "application/json", "pypi"),
    (b'{"releases": []}', "application/json", "pypi"),
    (b'{"files": "nope"}', "application/vnd.pypi.simple.v1+json", "simple"),
    (b"<html><body><a href='/login'>Log in</a></body></html>", "text/html", "simple"),
    (b"\x89PNG\r\n", "image/png", "simple"),
])
def test_junk_pages_are_a_clear_error(cache: Cache, body: bytes, content_type: str,
                                      where: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"Content-Type": content_type})

    url = JSON_URL if where == "pypi" else SIMPLE_URL
    with IndexClient(url, cache=cache, transport=httpx.MockTransport(handler)) as c:
        with pytest.raises(PackageIndexError) as info:
            c.project("alpha")
    assert "is not usable" in str(info.value)
    assert f"http://{HOST}/{where}/alpha/" in str(info.value)
    assert info.value.hint


def test_truncated_page_is_retried_then_reported(fake: FakeIndex, cache: Cache,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCKENV_HTTP_RETRIES", "1")

    def truncated(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b'{"releases": {', headers={"Content-Length": "500"})

    fake.faults["/pypi/beta/json"] = [truncated]
    with client(fake, cache) as c:  # one truncated answer, then a good one
        assert len(c.project("beta").files) == 4
    fake.faults["/pypi/alpha/json"] = [truncated, truncated]
    with client(fake, cache) as c, pytest.raises(PackageIndexError) as info:
        c.project("alpha")
    assert "cut short" in str(info.value) and f"http://{HOST}/pypi/alpha/json" in str(info.value)


# -- retries and network errors -------------------------------------------------------------

def test_transient_500s_are_retried(fake: FakeIndex, cache: Cache) -> None:
    fake.faults["/pypi/alpha/json"] = [500, 503]
    with client(fake, cache) as c:
        assert len(c.project("alpha").files) == 4
    assert [r.status for r in fake.requests_to("/pypi/alpha/json")] == [500, 503, 200]


def test_persistent_500_is_a_clear_error_after_a_short_backoff(
        fake: FakeIndex, cache: Cache, monkeypatch: pytest.MonkeyPatch) -> None:
    """Three retries, each after a growing pause, and under 2.5 s of pauses in all (the delays
    asked of `time.sleep`, not the wall clock: a loaded machine must not fail this)."""
    slept: list[float] = []
    clock = types.SimpleNamespace(**{n: getattr(time, n) for n in dir(time) if not n.startswith("_")})
    clock.sleep = slept.append  # this module's sleeps only: the fake index's threads keep theirs
    monkeypatch.setattr("lockenv.index.http.time", clock)
    fake.faults["/pypi/alpha/json"] = [500] * 10
    with client(fake, cache) as c, pytest.raises(PackageIndexError) as info:
        c.project("alpha")
    assert len(slept) == 3 and slept == sorted(slept) and slept[0] >= 0.2 and sum(slept) < 2.5
    assert len(fake.requests_to("/pypi/alpha/json")) == 4  # 1 + 3 retries
    assert "HTTP 500" in str(info.value) and f"http://{HOST}/pypi/alpha/json" in str(info.value)
    assert not isinstance(info.value, NetworkError)


def _recorded_sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The pauses lockenv's HTTP client asks of `time.sleep`, which then returns at once (the
    fake index's threads keep the real one)."""
    slept: list[float] = []
    clock = types.SimpleNamespace(**{n: getattr(time, n) for n in dir(time) if not n.startswith("_")})
    clock.sleep = slept.append
    monkeypatch.setattr("lockenv.index.http.time", clock)
    return slept


def _limited(status: int, retry_after: str) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(status, headers={"Retry-After": retry_after})


def test_retry_after_is_waited_as_the_index_asks(
        fake: FakeIndex, cache: Cache, monkeypatch: pytest.MonkeyPatch) -> None:
    """A rate-limited index (429, or 503 while it restarts) is asked again when it says, in
    seconds or as an HTTP-date, and the user is told why lockenv waits; a Retry-After shorter
    than the usual pause, one on another status, or one that is neither form changes nothing."""
    slept = _recorded_sleeps(monkeypatch)
    reporter, err = verbose()
    fake.faults["/pypi/alpha/json"] = [_limited(429, "7")]
    with client(fake, cache, reporter=reporter) as c:
        assert len(c.project("alpha").files) == 4
        assert slept == [7.0]
        assert f"http://{HOST}/pypi/alpha/json answered HTTP 429 and asked to wait 7s" in err.getvalue()

        slept.clear()
        wheel = wheel_of(c, "beta", "1.0")
        when = datetime.fromtimestamp(time.time() + 30, timezone.utc)
        fake.faults[f"/files/{wheel.filename}"] = [
            _limited(503, when.strftime("%a, %d %b %Y %H:%M:%S GMT"))]
        assert c.download(wheel).read_bytes() == fake.file(wheel.filename).content
        assert len(slept) == 1 and 25 <= slept[0] <= 30

    slept.clear()  # the usual pause wins over a shorter ask; junk and other statuses are ignored
    fake.faults["/pypi/beta/json"] = [_limited(429, "0"), _limited(503, "soon"),
                                      _limited(500, "9")]
    with client(fake, Cache(cache.root.with_name("fresh"))) as c:  # beta's page not cached
        assert len(c.project("beta").files) == 4
    assert len(slept) == 3 and all(s < 1.5 for s in slept)


@pytest.mark.parametrize("retry_after", ["3600", "Fri, 01 Jan 2100 00:00:00 GMT"])
def test_retry_after_beyond_a_minute_fails_at_once_saying_what_was_asked(
        fake: FakeIndex, cache: Cache, monkeypatch: pytest.MonkeyPatch, retry_after: str) -> None:
    """Waiting an hour (or until 2100) would hang a CI job: the error says what the index asked
    and that lockenv waits up to a minute, with no retry sent and no pause taken."""
    slept = _recorded_sleeps(monkeypatch)
    fake.faults["/pypi/alpha/json"] = [_limited(429, retry_after)]
    with client(fake, cache) as c, pytest.raises(PackageIndexError) as info:
        c.project("alpha")
    message = str(info.value)
    assert message.startswith(f"the index answered HTTP 429 Too Many Requests for "
                              f"http://{HOST}/pypi/alpha/json and asked to wait ")
    assert "(lockenv waits up to 60s)" in message and "try again later" in info.value.hint
    assert slept == [] and len(fake.requests_to("/pypi/alpha/json")) == 1

    with client(fake, cache) as c:  # a download, with its partial state cleaned up
        wheel = wheel_of(c, "beta", "1.0")
        fake.faults[f"/files/{wheel.filename}"] = [_limited(503, retry_after)]
        with pytest.raises(PackageIndexError, match="HTTP 503 Service Unavailable .* asked to wait"):
            c.download(wheel)
    assert slept == [] and len(fake.requests_to(f"/files/{wheel.filename}")) == 1
    assert [p for p in (cache.root / "files-v1").rglob("*") if p.is_file()] == []


def test_a_retry_after_date_just_beyond_a_minute_is_told_as_asked_however_slow_the_machine(
        fake: FakeIndex, cache: Cache, monkeypatch: pytest.MonkeyPatch) -> None:
    """An HTTP-date 61 s away is refused with the wait it asked for, even when the clock moves
    on before the error is worded (a loaded machine): the wait is read once, not again under
    the minute, which gave the generic "(after retries)" for the same refusal."""
    slept = _recorded_sleeps(monkeypatch)
    clock = sys.modules["lockenv.index.http"].time  # (_recorded_sleeps' stand-in for `time`)
    start = float(int(time.time()))  # a whole second: the HTTP-date below has no fraction
    ticks = iter(range(1000))
    clock.time = lambda: start + 2 * next(ticks)  # every read of the clock 2 s later
    when = datetime.fromtimestamp(start + 61, timezone.utc).strftime("%a, %d %b %Y %H:%M:%S GMT")
    fake.faults["/pypi/alpha/json"] = [_limited(429, when)]
    with client(fake, cache) as c, pytest.raises(PackageIndexError) as info:
        c.project("alpha")
    assert "asked to wait 61s before trying again (lockenv waits up to 60s)" in str(info.value), info.value
    assert slept == [] and len(fake.requests_to("/pypi/alpha/json")) == 1


def test_a_rate_limit_is_told_once_per_host_and_the_rest_under_verbose(
        fake: FakeIndex, cache: Cache, monkeypatch: pytest.MonkeyPatch) -> None:
    """Many downloads limited at once (a sync fetches on 14 threads) say so in one line; -v
    shows every wait."""
    _recorded_sleeps(monkeypatch)
    for verbose_run, shown in ((False, 1), (True, 2)):
        err = io.StringIO()
        reporter = TerminalReporter(verbose=verbose_run, out=io.StringIO(), err=err)
        with client(fake, Cache(cache.root.with_name(f"c{verbose_run}")), reporter=reporter) as c:
            wheels = [wheel_of(c, "beta", "1.0"), wheel_of(c, "beta", "2.0")]
            for wheel in wheels:
                fake.faults[f"/files/{wheel.filename}"] = [_limited(429, "5")]
            for wheel in wheels:
                c.download(wheel)
        waits = [line for line in err.getvalue().splitlines() if "asked to wait 5s" in line]
        assert len(waits) == shown, waits
        assert wheels[0].filename in waits[0] and "warning" in waits[0]


def test_unreachable_index_is_a_network_error(cache: Cache,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCKENV_HTTP_RETRIES", "1")

    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"[Errno 111] Connection refused for {request.url}")

    url = f"http://user:hunter2@{HOST}/pypi"
    with IndexClient(url, cache=cache, transport=httpx.MockTransport(handler),
                     allow_insecure_hosts=(HOST,)) as c:
        with pytest.raises(NetworkError) as info:
            c.project("alpha")
    exc = info.value
    assert str(exc).startswith(f"cannot reach http://{HOST}/pypi/alpha/json: ")
    assert "Connection refused" in str(exc) and "proxy" in exc.hint
    assert "hunter2" not in repr((str(exc), exc.hint, exc.context))


# -- credentials ----------------------------------------------------------------------------

def test_url_credentials_go_to_the_index_host_only(fake: FakeIndex, cache: Cache) -> None:
    fake.auth = ("me", "s3cret")
    reporter, err = verbose()
    with client(fake, cache, f"http://me:s3cret@{HOST}/simple/", reporter=reporter) as c:
        files = c.project("beta").files
        assert all("@" not in f.url and "@" not in f.index for f in files)
        c.download(files[0])
    page, download = fake.log
    assert page.host == HOST and page.headers["authorization"].startswith("Basic ")
    assert download.host == FILES_HOST and "authorization" not in download.headers
    assert f"GET http://{HOST}/simple/beta/ (streamed) -> 200" in err.getvalue()
    assert "s3cret" not in err.getvalue()


def test_netrc_credentials(fake: FakeIndex, cache: Cache, tmp_path: Path,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    fake.auth = ("robot", "n3trc-pw")
    fake.same_host = True
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine {HOST} login robot password n3trc-pw\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    with client(fake, cache) as c:
        files = c.project("beta").files
        c.download(files[0])  # same host: credentials go along
    assert [r.status for r in fake.log] == [200, 200]


def test_f20_a_netrc_default_entry_is_never_sent(fake: FakeIndex, cache: Cache, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """F20: a netrc `default` entry would go to every host the user ever names; only an exact
    `machine` entry is used, so the index gets no credentials and says which sources it tried."""
    fake.auth = ("robot", "d3fault-pw")
    netrc = tmp_path / "netrc"
    netrc.write_text("default login robot password d3fault-pw\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    with client(fake, cache) as c:
        with pytest.raises(PackageIndexError) as info:
            c.project("alpha")
    assert all("authorization" not in {k.lower() for k in r.headers} for r in fake.log)
    assert "d3fault-pw" not in repr((str(info.value), info.value.hint, info.value.details))


def test_wrong_credentials_say_so_without_leaking_them(fake: FakeIndex, cache: Cache) -> None:
    fake.auth = ("me", "right")
    reporter, err = verbose()
    with client(fake, cache, f"http://me:wr0ng-pw@{HOST}/pypi", reporter=reporter) as c:
        with pytest.raises(PackageIndexError) as info:
            c.project("alpha")
    exc = info.value
    assert str(exc) == (f"the default index (http://{HOST}/pypi): credentials from the index URL "
                        "were rejected: 401 Unauthorized")
    assert exc.exit_code == 2 and "the index URL" in exc.hint
    everything = repr((str(exc), exc.hint, exc.context, exc.details)) + err.getvalue()
    assert "wr0ng-pw" not in everything and "me:" not in everything


def test_redact_url() -> None:
    assert redact_url("https://u:p@h.example:8443/simple/?q=1") == "https://h.example:8443/simple/?q=1"
    assert redact_url("https://token@h/x") == "https://h/x"
    assert redact_url("https://h/x") == "https://h/x"
    assert DEFAULT_INDEX_URL.endswith("/pypi")


# -- metadata -------------------------------------------------------------------------------

def wheel_of(c: IndexClient, name: str, version: str):
    return next(f for f in c.project(name).files if f.is_wheel and str(f.version) == version)


def sdist_of(c: IndexClient, name: str, version: str):
    return next(f for f in c.project(name).files if not f.is_wheel and str(f.version) == version)


def test_metadata_from_pep658_file_even_when_not_advertised(fake: FakeIndex,
                                                            cache: Cache) -> None:
    with dists(fake, cache) as c:  # the JSON API does not advertise .metadata
        wheel = wheel_of(c, "alpha", "2.0")
        assert wheel.metadata is None
        meta = c.metadata(wheel)
    assert meta.source == "pep658"
    assert meta.requires_dist == ("beta>=2", 'gamma; extra == "fast"')
    assert meta.requires_python == ">=3.8" and meta.provides_extra == ("fast",)
    assert [r.path for r in fake.log][-1].endswith(".whl.metadata")


def _twelve_wheels_metadata(fake: FakeIndex, cache: Cache) -> list[CoreMetadata]:
    """The metadata of twelve one-wheel projects (each needing `beta`), read concurrently."""
    names = [f"pkg{i}" for i in range(12)]
    for name in names:
        fake.add_release(name, "1.0", ["beta"])
    with dists(fake, cache) as c:
        wheels = [next(f for f in c.project(n).files if f.is_wheel) for n in names]
        c.prefetch_metadata(wheels)
        return [c.metadata(w) for w in wheels]


def test_a_host_without_unadvertised_metadata_files_is_probed_a_few_times(cache: Cache) -> None:
    """The JSON API advertises no `.metadata` file: probes on a host decide, one at a time.
    Where three 404 (none found), the other wheels (read concurrently) wait for those answers
    and then each take one suffix range request, instead of a wave of 404s on the crawl's
    critical path."""
    fake = FakeIndex(serve_metadata=False, delay=0.02)
    metas = _twelve_wheels_metadata(fake, cache)
    assert [m.requires_dist for m in metas] == [("beta",)] * 12
    probes = [r for r in fake.log if r.path.endswith(".metadata")]
    assert len(probes) == PROBE_TRIES and {r.status for r in probes} == {404}
    ranged = [r for r in fake.log if r.path.endswith(".whl")]
    assert len(ranged) == 12 and all(r.headers["range"].startswith("bytes=-") for r in ranged)
    assert sum(m.source == "range" for m in metas) == 12


def test_a_host_serving_unadvertised_metadata_files_is_asked_first(cache: Cache) -> None:
    fake = FakeIndex(delay=0.02)
    metas = _twelve_wheels_metadata(fake, cache)
    assert {m.source for m in metas} == {"pep658"}
    assert len([r for r in fake.log if r.path.endswith(".metadata")]) == 12
    assert not [r for r in fake.log if r.path.endswith(".whl")]


def test_pep658_hash_from_the_simple_index_is_checked(fake: FakeIndex, cache: Cache) -> None:
    with dists(fake, cache, SIMPLE_URL) as c:
        wheel = wheel_of(c, "beta", "1.0")
        fake.file(wheel.filename).metadata = core_metadata("beta", "1.0", dependencies=["evil"])
        with pytest.raises(IntegrityError) as info:
            c.metadata(wheel)
    assert "does not match" in str(info.value)
    assert any(d.startswith("expected sha256:") for d in info.value.details)


def test_metadata_by_range_requests(fake: FakeIndex, cache: Cache) -> None:
    fake.serve_metadata = False
    fake.add_release("big", "1.0", ["beta"], padding=300_000)
    with dists(fake, cache) as c:
        meta = c.metadata(wheel_of(c, "big", "1.0"))
    assert meta.source == "range" and meta.requires_dist == ("beta",)
    gets = fake.requests_to("big-1.0-py3-none-any.whl", "GET")
    ranged = [r for r in gets if not r.path.endswith(".metadata")]
    assert ranged and all("range" in r.headers for r in ranged)
    assert len(ranged) >= 2  # the tail, then METADATA's bytes near the start


def test_long_central_directory_takes_two_range_requests(cache: Cache) -> None:
    fake = FakeIndex(serve_metadata=False)
    fake.add_release("wide", "1.0", ["beta"], entries=1500)
    assert len(fake.file("wide-1.0-py3-none-any.whl").content) > 200_000
    with dists(fake, cache) as c:
        meta = c.metadata(wheel_of(c, "wide", "1.0"))
    assert meta.source == "range" and meta.requires_dist == ("beta",)
    ranged = [r for r in fake.requests_to("wide-1.0-py3-none-any.whl", "GET")
              if "range" in r.headers]
    assert len(ranged) == 2


def _odd_wheel(entries: list[tuple[str, bytes, int]]) -> bytes:
    """A zip of (name, bytes, compression) entries, in that order."""
    import io
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data, method in entries:
            zf.writestr(name, data, compress_type=method)
    return out.getvalue()


@pytest.mark.parametrize("shape", ["stored", "vendored-first", "bad-crc"])
def test_range_read_of_odd_wheels_gives_what_zipfile_gives(cache: Cache, shape: str) -> None:
    """The central directory is walked without `zipfile` (its per-entry objects were half the
    CPU of reading metadata); a stored METADATA, another project's dist-info listed first, or a
    METADATA whose CRC does not match all end as `zipfile` decides (the last: not readable,
    so the whole wheel is read, and refused)."""
    import zipfile

    fake = FakeIndex(serve_metadata=False)
    fake.add_release("odd", "1.0", ["beta"])
    wheel = fake.file("odd-1.0-py3-none-any.whl")
    own = core_metadata("odd", "1.0", metadata_version="2.1", dependencies=["beta"]).encode()
    other = core_metadata("vendored", "9.0", metadata_version="2.1", dependencies=["x"]).encode()
    deflated, stored = zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED
    entries = {
        "stored": [("odd/__init__.py", b"", deflated), ("odd-1.0.dist-info/METADATA", own, stored)],
        "vendored-first": [("vendored-9.0.dist-info/METADATA", other, deflated),
                           ("odd-1.0.dist-info/METADATA", own, deflated)],
        "bad-crc": [("odd-1.0.dist-info/METADATA", own, stored)],
    }[shape]
    content = _odd_wheel(entries)
    if shape == "bad-crc":
        content = content.replace(b"Requires-Dist: beta", b"Requires-Dist: evil", 1)
    wheel.content = content
    with dists(fake, cache) as c:
        file = wheel_of(c, "odd", "1.0")
        if shape == "bad-crc":
            with pytest.raises(BrokenDistributionError):
                c.metadata(file)
            return
        meta = c.metadata(file)
    assert meta.source == "range" and meta.requires_dist == ("beta",)


def test_metadata_when_the_server_ignores_range(fake: FakeIndex, cache: Cache) -> None:
    fake.serve_metadata = False
    fake.ranges = False
    with dists(fake, cache) as c:
        wheel = wheel_of(c, "alpha", "1.0")
        meta = c.metadata(wheel)
        assert meta.source == "wheel" and meta.requires_dist == ("beta>=1",)
        path = c.download(wheel)  # the 200 body became the cached wheel
    assert path.read_bytes() == fake.file(wheel.filename).content
    assert len(fake.requests_to(wheel.filename + "", "GET")) == 2  # .metadata 404 + one GET


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_metadata_body_is_not_read_as_headers(fake: FakeIndex, cache: Cache, newline: str) -> None:
    """Only METADATA's headers are parsed (the body, a long description, is cut at the first
    blank line, unread): lines in the body that look like headers stay description."""
    fake.add_release("described", "1.0", ["beta"])
    wheel = fake.file("described-1.0-py3-none-any.whl")
    head = core_metadata("described", "1.0", metadata_version="2.1", dependencies=["beta"])
    body = "# described\n\nRequires-Dist: evil\nName: other\n\n" + "words " * 5000 + "\n"
    text = head.rstrip("\n") + "\n\n" + body
    fake.file(wheel.filename).metadata = text.replace("\n", newline)
    with dists(fake, cache) as c:
        meta = c.metadata(wheel_of(c, "described", "1.0"))
    assert (meta.name, meta.source, meta.requires_dist) == ("described", "pep658", ("beta",))


def test_metadata_from_static_sdist(fake: FakeIndex, cache: Cache) -> None:
    with dists(fake, cache) as c:
        meta = c.metadata(sdist_of(c, "alpha", "2.0"))
    assert meta.source == "sdist" and meta.requires_dist == ("beta>=2", 'gamma; extra == "fast"')


@pytest.mark.parametrize("kind", ["dynamic", "legacy"])
def test_dynamic_or_legacy_sdist_metadata_is_built(fake: FakeIndex, cache: Cache, kind: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    fake.add_release("dyn", "1.0", ["alpha"], wheel=False, sdist=kind)
    calls = []

    def prepare_metadata(sdist: Path, *, context: object, cache: Cache) -> str:
        calls.append(sdist.name)
        return core_metadata("dyn", "1.0", dependencies=["alpha", "beta"])

    monkeypatch.setattr(build, "prepare_metadata", prepare_metadata)
    with dists(fake, cache, build_context=lambda d: types.SimpleNamespace()) as c:
        meta = c.metadata(sdist_of(c, "dyn", "1.0"))
    assert calls == ["dyn-1.0.tar.gz"]
    assert meta.source == "build" and meta.requires_dist == ("alpha", "beta")


def _no_build(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []

    def prepare_metadata(sdist: Path, *, context: object, cache: Cache) -> str:
        calls.append(sdist.name)
        name, version = sdist.name[:-len(".tar.gz")].rsplit("-", 1)
        return core_metadata(name, version, dependencies=["built"])

    monkeypatch.setattr(build, "prepare_metadata", prepare_metadata)
    return calls


def test_static_pyproject_of_an_sdist_is_read_without_a_build(
        fake: FakeIndex, cache: Cache, monkeypatch: pytest.MonkeyPatch) -> None:
    """PKG-INFO older than 2.2 says nothing reliable; a `[project]` table that lists neither
    dependencies, optional-dependencies nor requires-python as dynamic is what the backend must
    write (PEP 621), so no build runs (uv reads it the same way): an sdist whose build needs the
    network or a compiler still locks."""
    pyproject = b"""[build-system]
requires = ["anything"]
build-backend = "downloads_at_build_time"

[project]
name = "Static_Py"
version = "1.0"
requires-python = ">=3.9"
dynamic = ["version", "readme"]
dependencies = ["alpha>=1", "beta; sys_platform == 'win32'"]

[project.optional-dependencies]
Fast = ["gamma", "delta[x]>=2; python_version < '3.12'"]
"""
    fake.add_release("static-py", "1.0", wheel=False, sdist="pyproject", pyproject=pyproject)
    calls = _no_build(monkeypatch)
    reporter, err = verbose()
    with dists(fake, cache, reporter=reporter, build_context=lambda d: types.SimpleNamespace()) as c:
        meta = c.metadata(sdist_of(c, "static-py", "1.0"))
    assert calls == []
    assert (meta.name, meta.version, meta.source) == ("static-py", "1.0", "pyproject")
    assert meta.requires_python == ">=3.9" and meta.provides_extra == ("fast",)
    assert meta.requires_dist == (
        "alpha>=1", 'beta; sys_platform == "win32"', 'gamma; extra == "fast"',
        'delta[x]>=2; python_version < "3.12" and extra == "fast"')
    assert "static metadata from pyproject.toml" in err.getvalue()


@pytest.mark.parametrize("pyproject", [
    b'[project]\nname = "dyn"\nversion = "1.0"\ndynamic = ["dependencies"]\n',
    b'[project]\nname = "dyn"\nversion = "1.0"\ndynamic = ["optional-dependencies"]\n',
    b'[project]\nname = "dyn"\nversion = "1.0"\ndynamic = ["requires-python"]\n',
    b'[project]\nname = "dyn"\nversion = "1.0"\n\n[tool.poetry.dependencies]\npython = "^3.9"\n',
    b'[project]\nversion = "1.0"\n',
    b'[project]\nname = "dyn"\n',
    b'[project]\nname = "dyn"\nversion = "1.0"\ndependencies = "alpha"\n',
    b'[project\nname = "dyn"\n',
    b'\xff\xfe',
], ids=["dynamic-deps", "dynamic-extras", "dynamic-python", "poetry", "no-name", "no-version",
        "deps-not-a-list", "not-toml", "not-utf8"])
def test_sdist_pyproject_that_does_not_say_is_built(
        fake: FakeIndex, cache: Cache, monkeypatch: pytest.MonkeyPatch, pyproject: bytes) -> None:
    fake.add_release("dyn", "1.0", wheel=False, sdist="pyproject", pyproject=pyproject)
    calls = _no_build(monkeypatch)
    with dists(fake, cache, build_context=lambda d: types.SimpleNamespace()) as c:
        meta = c.metadata(sdist_of(c, "dyn", "1.0"))
    assert calls == ["dyn-1.0.tar.gz"] and meta.source == "build"


def test_sdist_pyproject_naming_another_version_is_refused(fake: FakeIndex, cache: Cache) -> None:
    """Static metadata is held to the file name like any other (the build would say 9.9)."""
    fake.add_release("odd", "1.0", wheel=False, sdist="pyproject",
                     pyproject=b'[project]\nname = "odd"\nversion = "9.9"\n')
    with dists(fake, cache) as c, pytest.raises(BrokenDistributionError) as info:
        c.metadata(sdist_of(c, "odd", "1.0"))
    assert "odd-1.0.tar.gz" in str(info.value) and "9.9" in str(info.value)


def test_invalid_requires_dist_is_ignored(cache: Cache) -> None:
    fake = FakeIndex()
    fake.add_release("odd", "1.0", ["beta>=1", "this is not a requirement!!", "gamma"])
    reporter, err = verbose()
    with dists(fake, cache, reporter=reporter) as c:
        meta = c.metadata(wheel_of(c, "odd", "1.0"))
    assert meta.requires_dist == ("beta>=1", "gamma")
    assert "ignoring invalid Requires-Dist" in err.getvalue()


def test_metadata_that_disagrees_with_the_file_name_is_refused(fake: FakeIndex,
                                                               cache: Cache) -> None:
    fake.serve_metadata = False
    with dists(fake, cache) as c:
        wheel = wheel_of(c, "beta", "2.0")
        fake.file(wheel.filename).content = builder.wheel(
            "beta", "2.0", metadata=core_metadata("beta", "9.9"))[1]
        wheel = replace(wheel, sha256=None, size=None)
        with pytest.raises(BrokenDistributionError) as info:
            c.metadata(wheel)
    assert wheel.filename in str(info.value) and "9.9" in str(info.value)


def test_a_broken_metadata_file_falls_back_to_the_wheels_own(fake: FakeIndex,
                                                             cache: Cache) -> None:
    """The index's `.metadata` copy names another version: the wheel's METADATA is read."""
    with dists(fake, cache) as c:
        wheel = wheel_of(c, "beta", "2.0")
        fake.file(wheel.filename).metadata = core_metadata("beta", "9.9")
        meta = c.metadata(wheel)
    assert (meta.version, meta.source) == ("2.0", "range")


def test_metadata_is_cached_by_sha256(fake: FakeIndex, cache: Cache) -> None:
    with dists(fake, cache) as c:
        wheel = wheel_of(c, "alpha", "1.0")
        first = c.metadata(wheel)
    fake.log.clear()
    with dists(fake, cache) as c:
        assert c.metadata(wheel) == first
    assert fake.log == []


# -- downloads ------------------------------------------------------------------------------

def test_download_is_verified_and_cached(fake: FakeIndex, cache: Cache) -> None:
    with client(fake, cache) as c:
        files = c.project("alpha").files
        paths = c.download_many(files)
        assert set(paths) == {f.filename for f in files}
        for f in files:
            assert paths[f.filename].name == f.filename
            assert paths[f.filename].read_bytes() == fake.file(f.filename).content
        fake.log.clear()
        assert c.download(files[0]) == paths[files[0].filename]
    assert fake.log == []


def test_wrong_bytes_are_refused_and_not_cached(fake: FakeIndex, cache: Cache) -> None:
    with client(fake, cache) as c:
        wheel = wheel_of(c, "beta", "1.0")
        fake.faults[f"/files/{wheel.filename}"] = [
            lambda r: httpx.Response(200, content=b"not the wheel")]
        with pytest.raises(IntegrityError) as info:
            c.download(wheel)
    exc = info.value
    assert wheel.filename in str(exc)
    assert f"expected sha256: {wheel.sha256}" in exc.details
    assert any(d.startswith("actual sha256:") and wheel.sha256 not in d for d in exc.details)
    files = [p for p in (cache.root / "files-v1").rglob("*") if p.is_file()]
    assert files == []


def test_tampered_cache_entry_is_refused_and_removed(fake: FakeIndex, cache: Cache) -> None:
    with client(fake, cache) as c:
        wheel = wheel_of(c, "beta", "1.0")
        path = c.download(wheel)
    path.write_bytes(b"tampered")
    with client(fake, cache) as c:
        with pytest.raises(IntegrityError) as info:
            c.download(wheel)
    exc = info.value
    assert exc.context.file == str(path)
    assert f"expected sha256: {wheel.sha256}" in exc.details
    assert "run the command again" in exc.hint
    assert not path.exists()
    with client(fake, cache) as c:  # the next run downloads it afresh
        assert c.download(wheel).read_bytes() == fake.file(wheel.filename).content


def test_truncated_download_is_retried(fake: FakeIndex, cache: Cache) -> None:
    with client(fake, cache) as c:
        wheel = wheel_of(c, "beta", "1.0")
        data = fake.file(wheel.filename).content

        def truncated(request: httpx.Request) -> httpx.Response:
            return httpx.Response(200, content=data[:100],
                                  headers={"Content-Length": str(len(data))})

        fake.faults[f"/files/{wheel.filename}"] = [truncated, 502]
        assert c.download(wheel).read_bytes() == data


def test_ensure_size_uses_head_for_html_indexes(fake: FakeIndex, cache: Cache) -> None:
    fake.html_only = True
    with client(fake, cache, SIMPLE_URL) as c:
        wheel = wheel_of(c, "beta", "1.0")
        assert wheel.size is None
        sized = c.ensure_size(wheel)
    assert sized.size == len(fake.file(wheel.filename).content)
    assert replace(sized, size=None) == wheel
    assert fake.log[-1].method == "HEAD"


def test_download_many_reports_bytes(fake: FakeIndex, cache: Cache) -> None:
    class Counter:
        total = 0

        def advance(self, n: float = 1) -> None:
            self.total += n

    counter = Counter()
    with client(fake, cache) as c:
        files = c.project("alpha").files
        c.download_many(files, progress=counter)
    assert counter.total == sum(f.size for f in files)


# -- caching and concurrency ----------------------------------------------------------------

def test_pages_are_cached_for_a_bounded_time(fake: FakeIndex, cache: Cache,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    with client(fake, cache) as c:
        c.project("alpha")
    with client(fake, cache) as c:  # a second client reuses the cached page
        assert len(c.project("alpha").files) == 4
    assert len(fake.requests_to("/pypi/alpha/json")) == 1
    with client(fake, cache, refresh=True) as c:
        c.project("alpha")
    assert len(fake.requests_to("/pypi/alpha/json")) == 2
    monkeypatch.setenv("LOCKENV_INDEX_TTL", "0")
    time.sleep(0.01)
    with client(fake, cache) as c:
        c.project("alpha")
    assert len(fake.requests_to("/pypi/alpha/json")) == 3


def test_exclude_newer_applies_to_cached_pages(fake: FakeIndex, cache: Cache) -> None:
    with client(fake, cache) as c:
        c.project("alpha")
    with client(fake, cache, exclude_newer=datetime(2024, 1, 2)) as c:  # naive = UTC
        assert len(c.project("alpha").files) == 2


def test_prefetch_sends_one_request_per_page(cache: Cache) -> None:
    fake = FakeIndex(delay=0.05)
    names = [f"pkg{i}" for i in range(20)]
    for name in names:
        fake.add_release(name, "1.0")
    with dists(fake, cache) as c:
        c.prefetch(names + names)
        threads = [threading.Thread(target=c.project, args=(n,)) for n in names]
        for t in threads:
            t.start()
        results = [c.project(n) for n in names]
        for t in threads:
            t.join()
        c.prefetch_metadata(r.files[0] for r in results)
        metas = [c.metadata(r.files[0]) for r in results]
    assert sorted(r.path for r in fake.log if r.path.startswith("/pypi/")) == sorted(
        f"/pypi/{n}/json" for n in names)
    assert [m.name for m in metas] == names
    assert len([r for r in fake.log if r.path.endswith(".metadata")]) == 20


def test_prefetch_is_concurrent(cache: Cache) -> None:
    """Several pages are fetched at once (counted by the index, not timed: a loaded machine
    made the old wall-clock bound fail)."""
    fake = FakeIndex(delay=0.3)
    names = [f"pkg{i}" for i in range(16)]
    for name in names:
        fake.add_release(name, "1.0", wheel=False)
    with client(fake, cache) as c:
        c.prefetch(names)
        for n in names:
            c.project(n)
    assert len(fake.requests_to("/pypi/")) == 16
    assert fake.peak >= 4, f"at most {fake.peak} page requests were in flight at once"


def test_no_op_path_imports_stay_light() -> None:
    code = ("import sys, lockenv.cache; from lockenv.urls import DEFAULT_INDEX_URL; "
            "sys.exit('httpx' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_exported_api() -> None:
    import lockenv.index

    assert sorted(lockenv.index.__all__) == ["IndexClient"]
    assert all(getattr(lockenv.index, name) for name in lockenv.index.__all__)


def test_redirect_loop_is_a_clear_error(cache: Cache) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"Location": str(request.url)})

    with IndexClient(JSON_URL, cache=cache, transport=httpx.MockTransport(handler)) as c:
        with pytest.raises(PackageIndexError) as info:
            c.project("alpha")
    assert str(info.value).startswith(f"cannot use the answer for http://{HOST}/pypi/alpha/json")


def test_html_base_href_and_odd_range_answers(cache: Cache) -> None:
    page = ('<html><head><base href="http://mirror.test/pool/"></head><body>'
            '<a href="x-1.0-py3-none-any.whl">x-1.0-py3-none-any.whl</a></body></html>')

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/x/"):
            return httpx.Response(200, text=page, headers={"Content-Type": "text/html"})
        if request.url.path.endswith(".metadata"):
            return httpx.Response(404)
        if "range" in request.headers:  # a server that answers a suffix range from byte 0
            return httpx.Response(206, content=b"PK", headers={"Content-Range": "bytes 0-1/9"})
        return httpx.Response(200, content=b"not a zip")

    with IndexClient(SIMPLE_URL, cache=cache, transport=httpx.MockTransport(handler)) as c, \
            Distributions(c, cache=cache) as d:
        (file,) = c.project("x").files
        assert file.url == "http://mirror.test/pool/x-1.0-py3-none-any.whl"
        with pytest.raises(PackageIndexError) as info:  # falls back to the whole "wheel"
            d.metadata(file)
    assert "not a readable zip file" in str(info.value)


# -- F16: an https index never continues over plain http ----------------------------------------

def test_f16_an_https_index_redirecting_to_plain_http_is_refused(fake: FakeIndex, cache: Cache) -> None:
    """F16: a redirect from https to http (here to another origin, as a hostile mirror or proxy
    would send it) is refused naming both URLs, before anything is read from the http side;
    before, it was followed silently and the lock recorded what came over plain http."""
    fake.faults["/pypi/alpha/json"] = [
        lambda request: httpx.Response(302, headers={"Location": f"http://{FILES_HOST}/pypi/alpha/json"})]
    with client(fake, cache, f"https://{HOST}/pypi") as c, pytest.raises(PackageIndexError) as info:
        c.project("alpha")
    message = str(info.value)
    assert f"https://{HOST}/pypi/alpha/json" in message and f"http://{FILES_HOST}/pypi/alpha/json" in message
    assert "plain http" in message and "refused" in message
    assert not fake.requests_to("/pypi/alpha/json")[1:], "the http side was asked"


def test_f16_an_https_to_https_redirect_is_followed(fake: FakeIndex, cache: Cache) -> None:
    """F16's counterpart: moving to another https host (a CDN) is fine."""
    fake.faults["/pypi/alpha/json"] = [
        lambda request: httpx.Response(302, headers={"Location": f"https://{FILES_HOST}/pypi/alpha/json"})]
    with client(fake, cache, f"https://{HOST}/pypi") as c:
        assert len(c.project("alpha").files) == 4


_ODD_HEADERS = [
    "Metadata-Version: 2.1\nName: a\nVersion: 1\nRequires-Dist: beta>=1\nRequires-Dist: gamma; extra == 'x'\n"
    "Provides-Extra: X\nRequires-Python: >=3.8\nDynamic: license\n\nRequires-Dist: evil\n",
    "name: a\nVERSION:\t1\nrequires-dist:  beta \nLicense: MIT\n  and more\nSummary: caf\u00e9\n",
    "Name: a\nVersion: 1\nRequires-Dist: beta;\n  extra == 'x'\n",  # folded: the email parser joins it
    "Name: a\nVersion: 1\nRequires-Python: >=3.8,\n <4\n", "Name: a\nVersion: 1\n .0\n",
    "Name: a\r\nVersion: 1\r\nRequires-Dist: beta\r\n\r\nRequires-Dist: evil\r\n",
    "Name: a\rVersion: 1\rRequires-Dist: beta\r\rRequires-Dist: evil\r",
    "Name: a\nVersion: 1\nnot a header\nRequires-Dist: evil\n",  # the headers end there
    "Name: a\nVersion: 1\nRequires-Dist: b\u00e9ta\n",
    "Name: a\nName: b\nVersion: 1\n",  # a second Name: none
    "From somebody\nName: a\nVersion: 1\n",
    " folded\nName: a\nVersion: 1\nRequires-Python: \n",
]


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
@pytest.mark.parametrize("kind", [bytes, str])
def test_plain_metadata_with_a_body_is_read_without_the_email_parser(newline: str, kind: type) -> None:
    from lockenv.index import metadata

    text = (f"Metadata-Version: 2.4{newline}Name: a{newline}Version: 1{newline}"
            f"Requires-Dist: beta>=1{newline}{newline}# a{newline}{newline}words{newline}")
    given = text.encode() if kind is bytes else text
    assert metadata._plain_fields(metadata._headers(given)) == {
        "metadata_version": "2.4", "name": "a", "version": "1", "requires_dist": ["beta>=1"]}


@pytest.mark.parametrize("text", _ODD_HEADERS)
@pytest.mark.parametrize("kind", [bytes, str])
def test_metadata_headers_read_as_the_email_parser_reads_them(text: str, kind: type,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Plain headers are read without the email parser (it was most of parsing's CPU); what
    they say is what `packaging.metadata.parse_email` says, for odd headers too."""
    from lockenv.index import metadata

    given = text.encode() if kind is bytes else text

    def parsed() -> tuple[object, ...]:
        try:
            meta, dynamic, version = metadata.parse_metadata(given, "pep658")
        except metadata.MetadataProblem as exc:
            return ("problem", str(exc))
        return meta, dynamic, version

    fast = parsed()
    monkeypatch.setattr(metadata, "_plain_fields", lambda _block: None)
    assert fast == parsed()
    if text.startswith("Metadata-Version"):
        assert fast[0] == CoreMetadata(name="a", version="1", requires_dist=("beta>=1", 'gamma; extra == "x"'),
                                       requires_python=">=3.8", provides_extra=("x",), source="pep658")
        assert fast[1:] == ({"license"}, "2.1")

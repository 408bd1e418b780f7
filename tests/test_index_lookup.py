"""Host lookups shared by a client's connections, and hedged (`lockenv.index.lookup`): a
resolver that drops some of many concurrent queries makes glibc wait 5 s before asking again."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fixtures.index import IndexServer

from lockenv.cache import Cache
from lockenv.errors import NetworkError
from lockenv.index import IndexClient, lookup
from lockenv.ui import NullReporter

Lookups = list[tuple[str, int]]


def watch_lookups(monkeypatch: pytest.MonkeyPatch,
                  answer: Callable[[int, str, int], Any] | None = None) -> Lookups:
    """Every getaddrinfo of a host name (not of a numeric address) is recorded; `answer(n,
    host, port)` may replace the n-th (0-based) one's result or raise."""
    calls: Lookups = []
    real = socket.getaddrinfo
    guard = threading.Lock()

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            socket.inet_pton(socket.AF_INET6 if ":" in str(host) else socket.AF_INET, str(host))
            return real(host, port, *args, **kwargs)  # an address: no lookup
        except OSError:
            pass
        with guard:
            n = len(calls)
            calls.append((host, port))
        if answer is not None:
            result = answer(n, host, port)
            if result is not None:
                return result
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return calls


@pytest.fixture
def no_hedge(monkeypatch: pytest.MonkeyPatch) -> None:
    """No second query while a test runs: a loaded machine's slow lookup would hedge, and the
    test counts queries."""
    monkeypatch.setattr(lookup, "HEDGE", 60.0)


def test_concurrent_connections_share_one_lookup(index_server: IndexServer, cache: Cache,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 no_hedge: None) -> None:
    """Pages fetched at once over many connections to `localhost`: the host is looked up once
    (httpcore alone looks it up per connection)."""
    calls = watch_lookups(monkeypatch)
    url = index_server.json_url.replace("127.0.0.1", "localhost")
    names = index_server.projects
    assert len(names) >= 12
    with IndexClient(url, cache=cache) as client:
        client.prefetch(names)
        assert all(client.project(name).files is not None for name in names)
        connections = {r for r in client._http.client._transport._pool.connections}  # type: ignore[attr-defined]
    assert len(connections) > 1
    assert calls == [("localhost", index_server.port)]


def test_a_lookup_that_stalls_is_asked_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first query is dropped (it would answer after glibc's 5 s); the second, started
    HEDGE seconds later, answers every waiter."""
    release = threading.Event()

    def answer(n: int, host: str, port: int) -> Any:
        if n == 0:
            release.wait(10)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("192.0.2.7", port))]

    calls = watch_lookups(monkeypatch, answer)
    resolver = lookup.Resolver(log=(logged := []).append)
    found: list[list[str]] = []
    started = time.monotonic()
    waiters = [threading.Thread(target=lambda: found.append(resolver.addresses("example.test", 443)))
               for _ in range(8)]
    for waiter in waiters:
        waiter.start()
    for waiter in waiters:
        waiter.join(5)
    took = time.monotonic() - started
    release.set()
    _join_lookups()
    assert found == [["192.0.2.7"]] * 8
    # The stalled query and its hedge: one hedge for all eight waiters (a third query only if
    # the hedge's thread waited 0.25 s for a core), never more than ATTEMPTS.
    asked = len(calls)
    assert calls == [("example.test", 443)] * asked and 2 <= asked <= lookup.ATTEMPTS
    assert took < 2  # not the stalled query's time
    assert logged and logged[0].startswith("looking up example.test took 0.")
    assert logged[0].endswith(("(2 attempts)", "(3 attempts)"))
    assert resolver.addresses("example.test", 443) == ["192.0.2.7"]  # kept: not asked again
    _join_lookups()
    assert len(calls) == asked


def _join_lookups() -> None:
    for thread in threading.enumerate():
        if thread.name == "lockenv-lookup":
            thread.join(5)


def test_a_failed_lookup_is_not_kept(monkeypatch: pytest.MonkeyPatch, no_hedge: None) -> None:
    def answer(n: int, host: str, port: int) -> Any:
        if n == 0:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("192.0.2.8", port))]

    calls = watch_lookups(monkeypatch, answer)
    resolver = lookup.Resolver()
    with pytest.raises(socket.gaierror):
        resolver.addresses("flaky.test", 80)
    assert resolver.addresses("flaky.test", 80) == ["192.0.2.8"]
    assert len(calls) == 2


def test_an_unknown_host_is_a_clear_error(cache: Cache, monkeypatch: pytest.MonkeyPatch,
                                          no_hedge: None) -> None:
    def answer(n: int, host: str, port: int) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setenv("LOCKENV_HTTP_RETRIES", "1")
    calls = watch_lookups(monkeypatch, answer)
    with IndexClient("https://index.invalid/simple/", cache=cache, reporter=NullReporter()) as client, \
            pytest.raises(NetworkError) as info:
        client.project("alpha")
    assert str(info.value) == ("cannot reach https://index.invalid/simple/alpha/: "
                               "[Errno -2] Name or service not known")
    assert calls == [("index.invalid", 443)] * 2  # the retry asked again


def test_the_address_that_answered_is_tried_first(index_server: IndexServer,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  no_hedge: None) -> None:
    """An address that refuses (here an unused port's twin: nothing listens on 127.0.0.2's
    fixture port) is skipped, as `socket.create_connection` skips it, and the next connection
    starts with the one that answered."""
    port = index_server.port

    def answer(n: int, host: str, p: int) -> Any:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.3", p)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", p))]

    watch_lookups(monkeypatch, answer)
    backend = lookup.ResolvingBackend()
    if _listening("127.0.0.3", port):
        pytest.skip("something listens on 127.0.0.3 here")
    stream = backend.connect_tcp("fixture.test", port, timeout=5)
    stream.close()
    assert backend.resolver.addresses("fixture.test", port) == ["127.0.0.1", "127.0.0.3"]


def _listening(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        return False
    return True


def test_the_transports_are_the_ones_expected(monkeypatch: pytest.MonkeyPatch) -> None:
    """httpx's transports take no network backend: `install` replaces their pools'. This fails
    when a new httpx or httpcore moves them (each connection would look its host up again)."""
    import httpx

    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.test:3128")
    client = httpx.Client(trust_env=True)
    assert lookup.install(client)
    proxied = [t for t in client._mounts.values() if t is not None]
    assert proxied
    for transport in (client._transport, *proxied):
        assert isinstance(transport._pool._network_backend, lookup.ResolvingBackend)
    assert not lookup.install(client)  # installed once
    client.close()


@pytest.fixture
def cache(tmp_path: Path) -> Cache:
    return Cache(tmp_path / "cache")

"""Host name lookups shared by every connection of one client, and hedged.

httpcore looks the host up again for each new connection (`socket.create_connection`). A lock
opens a dozen or more at once to the index and as many to its file host, and resolvers that
drop some of many concurrent queries are common (a container's or a cluster's resolver behind
conntrack, a NAT): glibc then waits its 5 s timeout before asking again. Measured on this
project's CI machine: of 32 concurrent lookups of one host, 7-8 took 5.0 s; of 40 one after
another, 1. A cold lock of `data` took 9.6 s instead of 5.7 s when its first page requests met
such stalls, and every request waiting on a stalled connection waited with them.

So each client's connections share one lookup per (host, port), kept for the client's life
(one command), and a lookup that has not answered within `HEDGE` seconds is asked again beside
it, up to `ATTEMPTS` at once; the first answer serves every waiter. A failed lookup is not
kept: the next connection (a retry) asks afresh.

`ResolvingBackend` is httpcore's own synchronous network backend with only the lookup changed:
it connects to the addresses found, in the order the system gave them (the one that answered
last tried first), as `socket.create_connection` would, and TLS still checks the host name.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import httpcore

HEDGE = 0.25
"""Seconds a lookup may take before another of the same host is started beside it: an answer
from a working resolver takes about a millisecond, a dropped query 5 s."""
ATTEMPTS = 3


class _Lookup:
    """One host's lookup in flight: up to ATTEMPTS threads asking, the first answer kept."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.done = threading.Event()
        self.addresses: list[str] | None = None
        self.error: OSError | None = None
        self._lock = threading.Lock()
        self._started = 0
        self._failed = 0
        self._last = float("-inf")

    @property
    def attempts(self) -> int:
        return self._started

    def start(self) -> None:
        """Ask (again, in a thread of its own) unless ATTEMPTS are asking already, or the
        last attempt started less than HEDGE seconds ago (many waiters hedge once, not each)."""
        with self._lock:
            now = time.monotonic()
            if self._started >= ATTEMPTS or self.done.is_set() or now - self._last < HEDGE:
                return
            self._started += 1
            self._last = now
        threading.Thread(target=self._ask, name="lockenv-lookup", daemon=True).start()

    def _ask(self) -> None:
        try:
            infos = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
            found = _numeric(info[4] for info in infos)
            error = None if found else OSError(f"no address found for {self.host}")
        except OSError as exc:
            found, error = [], exc
        with self._lock:
            if self.done.is_set():
                return
            if found:
                self.addresses = found
                self.done.set()
                return
            self._failed += 1
            if self.error is None:
                self.error = error
            if self._failed == self._started:  # every attempt so far failed: say so
                self.done.set()


def _numeric(sockaddrs: Iterable[Any]) -> list[str]:
    """Each address once, as text a lookup of its own answers at once (an IPv6 address keeps its
    scope: `fe80::1%eth0`)."""
    out: dict[str, None] = {}
    for sockaddr in sockaddrs:
        try:
            text = socket.getnameinfo(sockaddr, socket.NI_NUMERICHOST | socket.NI_NUMERICSERV)[0]
        except OSError:
            text = str(sockaddr[0])
        out.setdefault(text, None)
    return list(out)


class Resolver:
    """(host, port) → its addresses, looked up once and kept (see the module's docstring)."""

    def __init__(self, log: Callable[[str], None] | None = None) -> None:
        self.log = log
        """Told of a lookup that took more than HEDGE seconds (under --verbose)."""
        self._lock = threading.Lock()
        self._known: dict[tuple[str, int], list[str]] = {}
        self._pending: dict[tuple[str, int], _Lookup] = {}

    def addresses(self, host: str, port: int) -> list[str]:
        """The addresses of `host`, best first; raises the lookup's OSError when every attempt
        failed (nothing kept: the next call asks again)."""
        key = (host, port)
        with self._lock:
            known = self._known.get(key)
            if known is not None:
                return list(known)
            lookup = self._pending.get(key)
            if lookup is None:
                lookup = self._pending[key] = _Lookup(host, port)
                lookup.start()
        started = time.monotonic()
        while not lookup.done.wait(HEDGE):
            lookup.start()
        took = time.monotonic() - started
        if took > HEDGE and self.log is not None:
            self.log(f"looking up {host} took {took:.2f}s ({lookup.attempts} attempts)")
        with self._lock:
            if self._pending.get(key) is lookup:
                del self._pending[key]
            if lookup.addresses is not None:
                self._known.setdefault(key, lookup.addresses)
                return list(self._known[key])
        assert lookup.error is not None
        raise lookup.error

    def worked(self, host: str, port: int, address: str) -> None:
        """`address` answered: later connections try it first."""
        key = (host, port)
        with self._lock:
            known = self._known.get(key)
            if known is not None and known[0] != address and address in known:
                known.remove(address)
                known.insert(0, address)


class ResolvingBackend(httpcore.SyncBackend):
    """httpcore's synchronous backend, connecting through one `Resolver`."""

    def __init__(self, resolver: Resolver | None = None) -> None:
        self.resolver = resolver or Resolver()

    def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                    local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        if _is_address(host):
            return super().connect_tcp(host, port, timeout, local_address, socket_options)
        try:
            addresses = self.resolver.addresses(host, port)
        except OSError as exc:  # as httpcore maps the lookup's failure
            raise httpcore.ConnectError(exc) from exc
        first: Exception | None = None
        for address in addresses:
            try:
                stream = super().connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                first = first or exc
                continue
            self.resolver.worked(host, port, address)
            return stream
        assert first is not None
        raise first


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        return False
    return True


def install(client: Any, log: Callable[[str], None] | None = None) -> bool:
    """Make an `httpx.Client`'s transports (the direct one, and those httpx made for the
    environment's proxies) connect through one `ResolvingBackend`. httpx takes no network
    backend for the transports it makes, so their pools' are replaced; False (and the direct
    transport left as it was: a lookup per connection) when it is not the one expected."""
    backend = ResolvingBackend(Resolver(log))
    direct = _install(getattr(client, "_transport", None), backend)
    for transport in (getattr(client, "_mounts", None) or {}).values():
        _install(transport, backend)
    return direct


def _install(transport: Any, backend: ResolvingBackend) -> bool:
    pool = getattr(transport, "_pool", None)
    if not isinstance(pool, httpcore.ConnectionPool) \
            or type(getattr(pool, "_network_backend", None)) is not httpcore.SyncBackend:
        return False
    pool._network_backend = backend
    return True

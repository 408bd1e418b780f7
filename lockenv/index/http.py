"""The one pooled HTTP client lockenv talks to indexes with: retries, credentials, redaction."""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable, Generator, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from lockenv import __version__
from lockenv.errors import NetworkError, OfflineError, PackageIndexError
from lockenv.index.auth import CredentialLookup, Credentials, origin
from lockenv.index.tls import certificate_error, certificate_failure, ssl_context
from lockenv.urls import redact_url

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
BACKOFF = (0.2, 0.5, 1.0)
"""Seconds before retry 1, 2, 3 (then 1 s each); jitter is added. Short on purpose: a mirror
that is down stays down, and tests must stay fast."""
RETRY_AFTER_STATUSES = frozenset({429, 503})
"""Statuses whose `Retry-After` is obeyed (RFC 9110 15.6.4, RFC 6585 4): a rate-limited index
(a private one limiting a CI's concurrent downloads) is waited for as it asks, not hit again
after 0.2 s and failed after 1.7 s."""
MAX_RETRY_AFTER = 60.0
"""The longest `Retry-After` waited (seconds). A longer one fails at once, saying what the
index asked: a hostile or misconfigured index must not hang a sync for a day."""
USER_AGENT = f"lockenv/{__version__}"


def _build_tls_quietly() -> None:
    """`ssl_context()` for its cache; a failure is left to the caller's own call to report."""
    try:
        ssl_context()
    except Exception:  # noqa: BLE001 - raised again where the client is made
        pass


def ready_client_imports() -> None:
    """Import what the first client needs and load the CA store, ahead of it: for a caller
    waiting on other work anyway (the CA store's load mostly releases the GIL)."""
    tls = threading.Thread(target=_build_tls_quietly, name="lockenv-tls", daemon=True)
    tls.start()
    try:
        import httpx  # noqa: F401

        from lockenv.index import lookup  # noqa: F401
    finally:
        tls.join()


class _LazyHttpx:
    """httpx, imported on the first attribute read: with `urllib.request`, `http.client` and
    `email` it is ~30-65 ms of start-up, and a warm lock (every page and metadata file cached)
    sends no request at all. `import` is thread-safe; each name read is kept."""

    def __getattr__(self, name: str) -> Any:
        import httpx as module

        value = getattr(module, name)
        setattr(self, name, value)
        return value


if TYPE_CHECKING:
    import httpx
else:
    httpx = _LazyHttpx()


class IndexAuth:
    """Basic auth for one index: its credentials go only to its own origin (scheme, host,
    port), never to a file host, a redirect target or another index (even one on the same
    host: each index has its own `IndexAuth`, used only for that index's requests).

    At most two requests per URL: the first with the credentials known up front (or none);
    after a 401 with none sent, one more with what the keyring gives. A 401/403 to
    credentials that were sent is an `AuthError` naming their source, never retried."""

    def __init__(self, lookup: CredentialLookup) -> None:
        self.lookup = lookup
        self._lock = threading.Lock()
        self._creds = lookup.eager()
        self._asked = False
        if self._creds is not None:
            self._check_secure(self._creds)

    def _check_secure(self, creds: Credentials) -> None:
        if self.lookup.insecure and not self.lookup.insecure_allowed:
            raise self.lookup.refuse_insecure(creds)

    def _after_401(self) -> Credentials | None:
        with self._lock:
            if not self._asked:
                self._asked = True
                found = self.lookup.after_401()
                if found is not None:
                    self._check_secure(found)
                    self._creds = found
            return self._creds

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if origin(str(request.url)) != self.lookup.origin:
            yield request
            return
        creds = self._creds
        if creds is not None:
            request.headers["Authorization"] = creds.header()
        response = yield request
        status = response.status_code
        if status not in (401, 403):
            return
        if creds is not None:
            raise self.lookup.rejected(creds, status, response.reason_phrase)
        if status == 403:
            return  # not a request for credentials (object stores say 403 for "no such key")
        creds = self._after_401()
        if creds is None:
            raise self.lookup.missing(status)
        request.headers["Authorization"] = creds.header()
        response = yield request
        if response.status_code in (401, 403):
            raise self.lookup.rejected(creds, response.status_code, response.reason_phrase)


def _httpx_auth(auth: IndexAuth) -> httpx.Auth:
    """`auth` as the `httpx.Auth` the client takes (a subclass made here, when httpx is first
    needed: defining `IndexAuth` on it would import httpx with this module)."""
    import httpx as module

    class _Auth(module.Auth):
        def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
            return (yield from auth.auth_flow(request))

    return _Auth()


def _env_float(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name, ""))
    except ValueError:
        return default
    return value if value > 0 else default


def _env_int(name: str, default: int) -> int:
    try:
        value = int(os.environ.get(name, ""))
    except ValueError:
        return default
    return value if value >= 0 else default


class RetryableStatus(Exception):
    """Internal: a response status worth retrying."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def retry_after(response: httpx.Response) -> float | None:
    """Seconds the response's `Retry-After` asks to wait (0 for a date already past), or None
    when it has none, has one that is not delay-seconds or an HTTP-date, or is not a 429/503."""
    if response.status_code not in RETRY_AFTER_STATUSES:
        return None
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isascii() and value.isdigit():
        return float(value)
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # an HTTP-date is GMT; one without a zone is taken as such
        from datetime import timezone

        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - time.time())


class Http:
    """A thread-safe pooled client (HTTP/1.1: measured faster than HTTP/2 for many small
    pages) with retries and mapping of failures to lockenv errors."""

    def __init__(
        self,
        auth: IndexAuth | None,
        *,
        transport: httpx.BaseTransport | None = None,
        max_connections: int = 24,
        log: Callable[[str], None] | None = None,
        notice: Callable[[str], None] | None = None,
        offline: bool = False,
    ) -> None:
        self.auth = auth
        self.offline = offline
        """No network at all: every request fails at once (no retries) with an OfflineError,
        and its URL is remembered in `missing` so the final error can name them all."""
        self._missing: dict[str, None] = {}
        self._missing_lock = threading.Lock()
        self._told_waits: set[str] = set()
        """Hosts whose rate limit the user was told of (`backoff`): once each, the rest -v."""
        self._told_lock = threading.Lock()
        self.log = log or (lambda _message: None)
        self.notice = notice or self.log
        """Said to the user (not only under --verbose): a stalled index must not mean silence."""
        self.retries = _env_int("LOCKENV_HTTP_RETRIES", 3)
        read = _env_float("LOCKENV_HTTP_TIMEOUT", 20.0)
        self.read_timeout = read
        """Seconds a read may stall (the client's `httpx.Timeout` is made with the client)."""
        self._transport = transport
        self._max_connections = max_connections
        self._client: httpx.Client | None = None
        self._client_lock = threading.Lock()

    @property
    def client(self) -> httpx.Client:
        """The pooled client, made on the first request: building it loads the CA store
        (~0.05-0.1 s), and a warm lock (every page and metadata file cached) sends none."""
        client = self._client
        if client is None:
            with self._client_lock:
                client = self._client
                if client is None:
                    client = self._client = self._make_client()
        return client

    def _make_client(self) -> httpx.Client:
        # The CA store loads on a thread (~0.05 s, mostly outside the GIL) while httpx is
        # imported here (~0.05 s under it): `ssl_context()` below waits for that build, or
        # builds (and reports a failure) itself.
        threading.Thread(target=_build_tls_quietly, name="lockenv-tls", daemon=True).start()
        kwargs: dict[str, object] = {}
        if self._transport is not None:
            kwargs["transport"] = self._transport
        client = httpx.Client(
            auth=_httpx_auth(self.auth) if self.auth is not None else None,
            timeout=httpx.Timeout(self.read_timeout, connect=min(10.0, self.read_timeout),
                                  pool=max(60.0, self.read_timeout)),
            limits=httpx.Limits(max_connections=self._max_connections,
                                max_keepalive_connections=self._max_connections),
            follow_redirects=True,
            event_hooks={"response": [refuse_downgrade]},
            verify=ssl_context(),
            trust_env=True,  # proxies (HTTP_PROXY, HTTPS_PROXY, NO_PROXY) from the environment
            headers={"User-Agent": USER_AGENT},
            **kwargs,  # type: ignore[arg-type]
        )
        if self._transport is None:  # its connections share their host lookups
            from lockenv.index import lookup

            if not lookup.install(client, self.log):
                self.log("host lookups: httpx's transport is not the one expected; each "
                         "connection looks its host up")
        return client

    def close(self) -> None:
        with self._client_lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    @property
    def missing(self) -> list[str]:
        """The (redacted) URLs refused so far because of `offline`, in the order asked."""
        with self._missing_lock:
            return list(self._missing)

    def refuse(self, url: str, what: str | None = None) -> OfflineError:
        """Remember `url` (or `what`, a description) as missing; the error to raise."""
        shown = what or redact_url(url)
        with self._missing_lock:
            self._missing.setdefault(shown, None)
        return offline_error([shown])

    def backoff(self, attempt: int, last: Exception | None = None, url: str = "") -> None:
        """Wait before retry `attempt + 1` (0-based `attempt`): the growing pause, or longer
        when `last`, the failure retried, is a 429/503 whose `Retry-After` asks for it (up to
        MAX_RETRY_AFTER; a longer one raises its error now, see `failure`)."""
        delay = BACKOFF[min(attempt, len(BACKOFF) - 1)]
        delay += random.uniform(0, delay / 4)
        if isinstance(last, RetryableStatus):
            asked = retry_after(last.response)
            if asked is not None and asked > MAX_RETRY_AFTER:
                raise failure(last, url, asked=asked)  # (an HTTP-date read again could be under)
            if asked is not None and asked > delay:
                delay = asked
                message = (f"{redact_url(url)} answered HTTP {last.response.status_code} and "
                           f"asked to wait {asked:.0f}s; retrying then ({attempt + 1}/{self.retries})")
                host = urlsplit(url).netloc.rpartition("@")[2]
                with self._told_lock:  # 14 download threads limited at once: one line
                    first = host not in self._told_waits
                    self._told_waits.add(host)
                (self.notice if first else self.log)(message)
        time.sleep(delay)

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        ok: frozenset[int] | tuple[int, ...] = (200,),
    ) -> httpx.Response:
        """Send, read the whole body, retry transient failures. Returns the response when its
        status is in `ok`; otherwise raises the matching lockenv error."""
        if self.offline:
            raise self.refuse(url)
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                self.backoff(attempt - 1, last, url)
            try:
                response = self.client.request(method, url, headers=headers)
                _check_length(response)
                _unbind(response)
            except httpx.TransportError as exc:
                self.log(f"{method} {redact_url(url)}: {type(exc).__name__}")
                check_certificate(exc, url)
                last = exc
                if isinstance(exc, httpx.TimeoutException) and attempt < self.retries:
                    self.notice(f"{redact_url(url)} did not answer within {self.read_timeout:.0f}s; "
                                f"retrying ({attempt + 1}/{self.retries})")
                continue
            except (httpx.RequestError, httpx.InvalidURL) as exc:
                raise unusable(exc, url) from None
            self.log(f"{method} {redact_url(url)} -> {response.status_code}")
            if response.status_code in ok:
                return response
            if response.status_code in RETRY_STATUSES:
                last = RetryableStatus(response)
                continue
            raise status_error(response, url)
        raise failure(last, url)

    @contextmanager
    def stream(self, url: str, *, headers: Mapping[str, str] | None = None
               ) -> Iterator[httpx.Response]:
        """One streamed GET without retries (the caller loops, because a retry must restart
        whatever consumed the body)."""
        if self.offline:
            raise self.refuse(url)
        try:
            with self.client.stream("GET", url, headers=headers) as response:
                self.log(f"GET {redact_url(url)} (streamed) -> {response.status_code}")
                yield response
        except httpx.TransportError as exc:
            check_certificate(exc, url)
            raise


def refuse_downgrade(response: httpx.Response) -> None:
    """F16: an https request redirected to plain http is refused before the redirect is
    followed: what comes back (hashes that go into the lock included) could be read and
    altered on the way. httpx calls this for every response, redirects included."""
    location = response.headers.get("Location")
    if not response.is_redirect or location is None or response.request.url.scheme != "https":
        return
    try:
        target = response.request.url.join(location)
    except (httpx.InvalidURL, ValueError):
        return  # httpx refuses it on its own
    if target.scheme != "http":
        return
    shown, to = redact_url(str(response.request.url)), redact_url(str(target))
    raise PackageIndexError(
        f"{shown} redirected to plain http ({to}); refused: what comes over plain http can be "
        "read and altered on the way",
        hint="fix the index URL or the server's redirect; an http index on a trusted network can "
             "be named directly (with `allow-insecure-host` in [tool.lockenv] for its credentials)",
        context={"url": shown},
    )


def check_certificate(exc: BaseException, url: str) -> None:
    """Raise the certificate message when `exc` is a failed verification (not retried)."""
    cause = certificate_failure(exc)
    if cause is not None:
        parts = urlsplit(url)
        raise certificate_error(parts.hostname or redact_url(url), cause) from None


def _unbind(response: httpx.Response) -> None:
    """httpx binds a response's stream back to the response (a reference cycle, which keeps
    the whole body alive until the cycle collector runs). The body is read: a plain stream of
    it breaks the cycle, so the response and its body go as soon as the caller drops them
    (a `lock` collects cycles rarely: `ops/lock.py`)."""
    response.stream = httpx.ByteStream(response.content)


def _check_length(response: httpx.Response) -> None:
    """A body shorter than its Content-Length is a truncated transfer (retried)."""
    expected = response.headers.get("Content-Length")
    if expected is None or response.headers.get("Content-Encoding", "identity") != "identity":
        return
    try:
        want = int(expected)
    except ValueError:
        return
    if response.request.method != "HEAD" and len(response.content) != want:
        raise httpx.RemoteProtocolError(
            f"body has {len(response.content)} bytes, Content-Length says {want}",
            request=response.request,
        )


def offline_error(missing: list[str]) -> OfflineError:
    """What `--offline` could not find in the cache, every item named (sorted: stable output)."""
    missing = sorted(set(missing))
    count = len(missing)
    head = missing[0] if count == 1 else f"{count} pages or files"
    return OfflineError(
        f"--offline: the cache does not hold {head}",
        details=[f"missing: {m}" for m in missing] if count > 1 else (),
        hint="run the same command once without --offline (with the network) to fill the cache",
    )


def status_error(response: httpx.Response, url: str) -> PackageIndexError:
    """The lockenv error for a final bad status (404 is decided by the caller)."""
    shown = redact_url(url)
    code = response.status_code
    if code in (401, 403):
        return PackageIndexError(
            f"the index refused access to {shown} (HTTP {code}): credentials are missing or wrong",
            hint="put the credentials in the index URL (https://user:password@host/...) or in "
                 "your netrc file (NETRC or ~/.netrc) for this host",
            context={"url": shown, "status": code},
        )
    return PackageIndexError(
        f"the index answered HTTP {code} {response.reason_phrase} for {shown}",
        hint="the index may be having trouble; try again later, or check the index URL",
        context={"url": shown, "status": code},
    )


def failure(exc: Exception | None, url: str, *, asked: float | None = None) -> PackageIndexError:
    """The lockenv error once retries are exhausted, or at once for a 429/503 whose Retry-After
    asks for longer than MAX_RETRY_AFTER (`asked`: that wait, as the caller read it)."""
    shown = redact_url(url)
    if isinstance(exc, RetryableStatus):
        response = exc.response
        if asked is None:
            asked = retry_after(response)
        if asked is not None and asked > MAX_RETRY_AFTER:
            return PackageIndexError(
                f"the index answered HTTP {response.status_code} {response.reason_phrase} for "
                f"{shown} and asked to wait {asked:.0f}s before trying again (lockenv waits "
                f"up to {MAX_RETRY_AFTER:.0f}s)",
                hint="try again later; if the index limits how many requests it takes, ask "
                     "its administrator about the limit",
                context={"url": shown, "status": response.status_code},
            )
        return PackageIndexError(
            f"the index answered HTTP {response.status_code} {response.reason_phrase} for "
            f"{shown} (after retries)",
            hint="the index is having trouble; try again later",
            context={"url": shown, "status": response.status_code},
        )
    if isinstance(exc, httpx.TimeoutException):
        reason = "timed out"
    elif isinstance(exc, httpx.RemoteProtocolError):
        return PackageIndexError(
            f"the transfer of {shown} was cut short (after retries)",
            hint="the connection to the index is unreliable; try again, or check the proxy",
            context={"url": shown},
        )
    else:
        reason = _reason(exc)
    return NetworkError(
        f"cannot reach {shown}: {reason}",
        hint="check the network connection, the index URL and any proxy settings "
             "(HTTPS_PROXY, SSL_CERT_FILE)",
        context={"url": shown},
    )


def unusable(exc: Exception, url: str) -> PackageIndexError:
    """Not transient, so not retried: too many redirects, an undecodable body, a bad URL."""
    shown = redact_url(url)
    return PackageIndexError(
        f"cannot use the answer for {shown}: {_reason(exc)}",
        hint="check the index URL; if it is right, the index or a proxy is misbehaving",
        context={"url": shown},
    )


def _reason(exc: Exception | None) -> str:
    """A short reason that cannot contain credentials (httpx messages may include URLs)."""
    if exc is None:
        return "unknown error"
    text = str(exc) or type(exc).__name__
    # Strip anything that looks like user-info from embedded URLs.
    out = []
    for word in text.split():
        out.append(redact_url(word) if "://" in word else word)
    return " ".join(out)

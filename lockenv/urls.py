"""URLs below every stage: the default index and a URL type that cannot print its secret.

Standard library only: the manifest, the lockfile reader and the no-op path import it.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

DEFAULT_INDEX_URL = "https://pypi.org/pypi"
"""PyPI's JSON API. The only place a registry host name appears in lockenv."""


def redact_url(url: str) -> str:
    """The URL without its user-info: `https://user:pw@host/x` → `https://host/x`.

    The user name is dropped too: with token-based indexes the user name is often the secret.
    Used for every message, log line and lock entry."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid URL>"
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


class SafeUrl:
    """A URL whose `str()`, `repr()` and f-string form are redacted (uv's `DisplaySafeUrl`).

    The full URL, credentials included, is only reachable as `.secret`, so it can be handed to
    the HTTP layer but never lands in a message, a log line, a lock or a cache key by accident."""

    __slots__ = ("secret",)

    def __init__(self, url: str | SafeUrl) -> None:
        self.secret: str = url.secret if isinstance(url, SafeUrl) else url

    @property
    def redacted(self) -> str:
        return redact_url(self.secret)

    def __str__(self) -> str:
        return self.redacted

    def __repr__(self) -> str:
        return f"SafeUrl({self.redacted!r})"

    def __format__(self, spec: str) -> str:
        return format(self.redacted, spec)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SafeUrl) and other.secret == self.secret

    def __hash__(self) -> int:
        return hash(self.secret)

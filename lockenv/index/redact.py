"""`redact_url`, in a module light enough for the no-op path (the lockfile reader needs it
and must not import httpx)."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


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

"""Package indexes: the PyPI JSON API and the simple API (PEP 691/503), core metadata and
verified downloads, behind one thread-safe `IndexClient`.

`IndexClient` and `redact_url` are loaded on first use, so `lockenv.index.defaults` (and
`DEFAULT_INDEX_URL`) can be imported without httpx."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lockenv.index.defaults import DEFAULT_INDEX_URL

if TYPE_CHECKING:
    from lockenv.index.client import IndexClient
    from lockenv.index.redact import redact_url

__all__ = ["DEFAULT_INDEX_URL", "IndexClient", "redact_url"]


def __getattr__(name: str) -> Any:
    if name == "IndexClient":
        from lockenv.index.client import IndexClient

        return IndexClient
    if name == "redact_url":
        from lockenv.index.redact import redact_url

        return redact_url
    raise AttributeError(f"module 'lockenv.index' has no attribute {name!r}")

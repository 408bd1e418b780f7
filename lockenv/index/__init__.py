"""Package indexes: the PyPI JSON API and the simple API (PEP 691/503), core metadata and
verified downloads, behind one thread-safe `IndexClient`."""

from __future__ import annotations

from lockenv.index.client import DEFAULT_INDEX_URL, IndexClient
from lockenv.index.http import redact_url

__all__ = ["DEFAULT_INDEX_URL", "IndexClient", "redact_url"]

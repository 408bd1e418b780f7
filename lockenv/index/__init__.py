"""Package indexes: the PyPI JSON API and the simple API (PEP 691/503), PEP 658 metadata files,
range reads and verified downloads, behind one thread-safe `IndexClient` (loaded on first use,
so importing this package costs nothing until a client is needed). HTTP and index formats only:
turning files into core metadata or wheels is `lockenv.dists`'s job."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lockenv.index.client import IndexClient

__all__ = ["IndexClient"]


def __getattr__(name: str) -> Any:
    if name == "IndexClient":
        from lockenv.index.client import IndexClient

        return IndexClient
    raise AttributeError(f"module 'lockenv.index' has no attribute {name!r}")

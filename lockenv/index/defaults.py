"""The default index, in a module light enough for the no-op path (no httpx)."""

from __future__ import annotations

DEFAULT_INDEX_URL = "https://pypi.org/pypi"
"""PyPI's JSON API. The only place a registry host name appears in lockenv."""

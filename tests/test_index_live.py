"""The index client (and the metadata chain over it) against PyPI itself (opt-in: `pytest --live`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lockenv.cache import Cache
from lockenv.index import IndexClient
from lockenv.ops.dispatch import distributions
from lockenv.ui import NullReporter
from lockenv.urls import DEFAULT_INDEX_URL

pytestmark = pytest.mark.live


def test_json_and_simple_api_agree_on_pypi(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    simple = DEFAULT_INDEX_URL.rsplit("/", 1)[0] + "/simple/"
    with IndexClient(DEFAULT_INDEX_URL, cache=cache) as c:
        via_json = c.project("httpx")
        assert c.simple_index_url == simple
    with IndexClient(simple, cache=cache) as c:
        via_simple = c.project("httpx")
    assert {(f.filename, f.sha256, f.size) for f in via_json.files} == {
        (f.filename, f.sha256, f.size) for f in via_simple.files}


def test_metadata_and_download_from_pypi(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    with IndexClient(DEFAULT_INDEX_URL, cache=cache) as client, \
            distributions(client, cache=cache, reporter=NullReporter()) as c:
        files = c.project("idna").files
        wheel = next(f for f in files if f.filename == "idna-3.10-py3-none-any.whl")
        sdist = next(f for f in files if f.filename == "idna-3.10.tar.gz")
        assert c.metadata(wheel).requires_python == ">=3.6"
        assert c.metadata(sdist).name == "idna"
        assert c.download(wheel).stat().st_size == wheel.size


def test_big_page_is_parsed(tmp_path: Path) -> None:
    with IndexClient(DEFAULT_INDEX_URL, cache=Cache(tmp_path)) as c:
        files = c.project("pydantic-core").files
    assert len(files) > 5000
    assert all(f.url.startswith("https://") and f.sha256 for f in files)

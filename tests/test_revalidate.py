"""Index pages past their TTL are revalidated, not refetched: the cached page's ETag goes back
as If-None-Match, a 304 keeps the page (fresh for another TTL), a changed page is fetched and
used, and an index that gives no validators is simply asked again (as before)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from helpers import env_for, lock, run_lockenv, write_project


def _relock(project: Path, index_server: Any, **env: str) -> bytes:
    (project / "pylock.toml").unlink()
    index_server.clear_log()
    result = run_lockenv("lock", cwd=project, env=env_for(index_server, **env))
    assert result.code == 0, result.output
    return (project / "pylock.toml").read_bytes()


def _pages(index_server: Any) -> dict[str, tuple[int, str | None]]:
    return {r.path.split("/")[2]: (r.status, r.headers.get("if-none-match"))
            for r in index_server.requests if r.path.startswith("/pypi/")}


def test_an_expired_page_is_revalidated_and_kept_while_the_index_says_unchanged(
        project: Path, index_server: Any) -> None:
    write_project(project, ["alpha"])
    lock(project, index_server)
    locked = (project / "pylock.toml").read_bytes()
    assert set(_pages(index_server)) == {"alpha", "beta", "gamma"}

    assert _relock(project, index_server, LOCKENV_INDEX_TTL="0") == locked
    pages = _pages(index_server)
    assert set(pages) == {"alpha", "beta", "gamma"}
    assert all(status == 304 and etag for status, etag in pages.values()), pages
    assert not [r for r in index_server.requests if r.path.startswith("/files/")], \
        "a revalidated page's metadata came from the cache too"

    # Revalidated: fresh for another TTL, so a lock within it asks nothing.
    assert _relock(project, index_server) == locked
    assert _pages(index_server) == {}

    # A page that changed (its body, so its ETag): fetched whole and used.
    index_server.inject("alpha", "relative-urls")
    assert _relock(project, index_server, LOCKENV_INDEX_TTL="0") == locked
    pages = _pages(index_server)
    assert pages["alpha"][0] == 200 and pages["alpha"][1] is not None, pages
    assert pages["beta"][0] == 304 and pages["gamma"][0] == 304, pages


def test_an_index_without_validators_is_asked_again_in_full(project: Path, index_server: Any) -> None:
    index_server.inject("/pypi/", "no-etag")  # as a mirror that strips caching headers
    write_project(project, ["alpha"])
    lock(project, index_server)
    locked = (project / "pylock.toml").read_bytes()
    assert _relock(project, index_server, LOCKENV_INDEX_TTL="0") == locked
    pages = _pages(index_server)
    assert set(pages) == {"alpha", "beta", "gamma"}
    assert all(status == 200 and etag is None for status, etag in pages.values()), pages

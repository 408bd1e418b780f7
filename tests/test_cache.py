"""The on-disk cache: where it lives, buckets, atomic writes, page freshness, keys."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from lockenv.cache import MAP_PAGES_FROM, Bucket, Cache, file_sha256, page_ttl, write_atomic


def test_root_comes_from_lockenv_cache_dir(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCKENV_CACHE_DIR", str(tmp_path / "c"))
    assert Cache().root == tmp_path / "c"
    monkeypatch.delenv("LOCKENV_CACHE_DIR")
    root = Cache().root
    assert root.name == "lockenv" and str(root).startswith(os.environ["XDG_CACHE_HOME"])


def test_bucket_is_created(tmp_path: Path) -> None:
    bucket = Cache(tmp_path).bucket(Bucket.BUILT_WHEELS)
    assert bucket == tmp_path / "built-wheels-v1" and bucket.is_dir()


def test_bucket_names_are_unique() -> None:
    names = [bucket.value for bucket in Bucket]
    assert len(names) == len(set(names))


def test_atomic_write_leaves_no_temporary_files(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b.json"
    write_atomic(target, b"one")
    write_atomic(target, b"two")
    assert target.read_bytes() == b"two"
    assert sorted(p.name for p in target.parent.iterdir()) == ["b.json"]


def test_concurrent_writers_never_expose_partial_files(tmp_path: Path) -> None:
    target = tmp_path / "x"
    blobs = [bytes([i]) * 200_000 for i in range(8)]
    seen: set[bytes] = set()
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            if target.exists():
                data = target.read_bytes()
                seen.add(data[:1] * len(data) if len(set(data)) == 1 else b"torn")

    t = threading.Thread(target=reader)
    t.start()
    writers = [threading.Thread(target=write_atomic, args=(target, b)) for b in blobs]
    for w in writers:
        w.start()
    for w in writers:
        w.join()
    stop.set()
    t.join()
    assert b"torn" not in seen
    assert target.read_bytes() in blobs


def test_pages_expire(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = Cache(tmp_path)
    cache.write_page("http://i/simple", "alpha", b"page")
    assert cache.read_page("http://i/simple", "alpha") == b"page"
    assert cache.read_page("http://other/simple", "alpha") is None
    path = cache.page_path("http://i/simple", "alpha")
    old = time.time() - 601
    os.utime(path, (old, old))
    assert cache.read_page("http://i/simple", "alpha") is None
    monkeypatch.setenv("LOCKENV_INDEX_TTL", "3600")
    assert page_ttl() == 3600
    assert cache.read_page("http://i/simple", "alpha") == b"page"
    monkeypatch.setenv("LOCKENV_INDEX_TTL", "soon")
    assert page_ttl() == 600


@pytest.mark.parametrize("count", [0, 3, 255, 256, 257, 70_000])
def test_big_pages_are_written_in_pieces_and_read_through_a_map(tmp_path: Path,
                                                                 count: int) -> None:
    """A page's msgpack written piece by piece is the one-piece encoding, byte for byte (the
    array headers of every length class included); a big one reads back through a map, and
    every version's records come back as they went in."""
    from lockenv.index.pages import (
        cached_page, decode_cached, decode_version, encode_cached, encode_chunks)

    files = [(f"n-{i // 3}.0.tar.gz" if i % 3 == 0 else f"n-{i // 3}.0-py3-none-any.whl",
              f"https://h/packages/{i:06d}/n-{i}.0.tar.gz", "ab" * 32, i,
              None, ">=3.8" if i % 2 else None, bool(i % 3 == 0), None, None, None)
             for i in range(count)]
    page = cached_page("https://h/pypi/n/json", files, ["a skipped note"])
    assert len(page.versions) == (count + 2) // 3
    pieces = list(encode_chunks(page))
    assert b"".join(pieces) == encode_cached(page)
    assert max(map(len, pieces)) < 128 * 1024
    cache = Cache(tmp_path)
    cache.write_page("u", "n", iter(pieces))
    data = cache.read_page("u", "n")
    assert data is not None
    assert isinstance(data, bytes) == (len(b"".join(pieces)) < MAP_PAGES_FROM)
    read = decode_cached(data)
    del data
    assert read is not None and read.url == page.url and read.skipped == page.skipped
    assert [(v.text, v.all_yanked) for v in read.versions] == [
        (v.text, v.all_yanked) for v in page.versions]
    assert [rec for v in read.versions for rec in decode_version(read, v, "n")] == files
    path = cache.page_path("u", "n")
    path.write_bytes(path.read_bytes()[:-5])  # a torn big entry is a miss, mapped or not
    assert decode_cached(cache.read_page("u", "n")) is None


def test_unreadable_entries_are_misses(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    from lockenv.index.pages import cached_page, decode_cached, encode_cached

    good = encode_cached(cached_page("https://h/pypi/n/json", [(
        "n-1.0.tar.gz", "https://h/n-1.0.tar.gz", "ab" * 32, 3, None, None, False, None, None,
        None)]))
    cache.write_page("u", "n", good[:-5])
    data = cache.read_page("u", "n")
    assert data is not None and decode_cached(data) is None
    assert decode_cached(good) is not None
    cache.write_metadata("a" * 64, {"name": "x"})
    assert cache.read_metadata("a" * 64) == {"name": "x"}
    cache.metadata_path("a" * 64).write_text("")
    assert cache.read_metadata("a" * 64) is None


def test_a_write_after_the_cache_was_cleaned_makes_its_directory_again(tmp_path: Path) -> None:
    # write_atomic remembers the directories it made; one removed since (`cache clean` by
    # another run) must not make the next write fail.
    import shutil

    cache = Cache(tmp_path)
    cache.write_metadata("b" * 64, {"name": "x"})
    shutil.rmtree(tmp_path / Bucket.METADATA.value)
    cache.write_metadata("b" * 64, {"name": "y"})
    assert cache.read_metadata("b" * 64) == {"name": "y"}
    assert [p.name for p in cache.metadata_path("b" * 64).parent.iterdir()] == ["b" * 64 + ".json"]


def test_keys(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    sha = "0123456789abcdef" * 4
    assert cache.artifact_path(sha, "x-1.0.tar.gz") == (
        tmp_path / "files-v1" / "01" / sha / "x-1.0.tar.gz")
    by_url = cache.artifact_path("http://h/x-1.0.tar.gz", "x-1.0.tar.gz")
    assert by_url.name == "x-1.0.tar.gz" and "http" not in str(by_url.parent)
    assert cache.metadata_path("http://h/x.whl") != cache.metadata_path("http://h/y.whl")


def test_file_sha256(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    assert file_sha256(path) == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")


def test_a_verified_artifact_is_returned_and_a_damaged_one_removed(tmp_path: Path) -> None:
    import hashlib

    from lockenv.error_context import ErrorContext
    from lockenv.errors import IntegrityError

    cache = Cache(tmp_path)
    data = b"wheel bytes"
    sha = hashlib.sha256(data).hexdigest()
    path = cache.artifact_path(sha, "x-1.0-py3-none-any.whl")
    write_atomic(path, data)
    assert cache.verified_artifact(path, sha256=sha, size=len(data)) == path
    with pytest.raises(IntegrityError) as info:
        cache.verified_artifact(path, sha256=sha, size=len(data) + 1)
    assert info.value.details == (f"expected sha256: {sha}", f"actual sha256:   {sha}",
                                  f"expected size: {len(data) + 1}", f"actual size:   {len(data)}")
    assert info.value.context == ErrorContext(file=str(path))
    assert path.exists()  # the right bytes: the size given is wrong, not the file (F28)
    path.write_bytes(b"wheel bytez")
    with pytest.raises(IntegrityError, match="damaged"):
        cache.verified_artifact(path, sha256=sha, size=len(data))
    assert not path.exists()


def test_lock_files_stay_out_of_buckets(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    target = cache.artifact_path("f" * 64, "x-1.0.tar.gz")
    with cache.lock(target):
        pass
    assert not target.parent.exists()


def test_importing_the_cache_is_cheap() -> None:
    code = ("import sys, lockenv.cache; heavy = {'httpx', 'filelock', 'platformdirs'} & "
            "set(sys.modules); sys.exit(str(heavy) if heavy else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_safe_url_never_prints_its_credentials() -> None:
    from lockenv.urls import SafeUrl

    url = SafeUrl("https://user:s3cret@example.test/simple/")
    shown = [str(url), repr(url), f"{url}", f"{url:>40}"]
    assert all("s3cret" not in text and "user" not in text for text in shown)
    assert url.secret == "https://user:s3cret@example.test/simple/"
    assert SafeUrl(url) == url


def test_sha256_after_gives_the_digests_of_fresh_hashes() -> None:
    """The kept hash state (a sync hashes one lock several times) is copied, never shared, and
    used only for the same bytes: another lock of the same length hashes afresh."""
    import hashlib

    from lockenv.cache import sha256_after

    lock, other = b"lock-version = '1.0'\n" * 1000, b"lock-version = '1.1'\n" * 1000
    first = sha256_after(lock)
    first.update(b"\0options")
    assert first.hexdigest() == hashlib.sha256(lock + b"\0options").hexdigest()
    assert sha256_after(lock).hexdigest() == hashlib.sha256(lock).hexdigest()
    assert sha256_after(other).hexdigest() == hashlib.sha256(other).hexdigest()
    assert sha256_after(bytearray(lock)).hexdigest() == hashlib.sha256(lock).hexdigest()

"""lockenv's on-disk cache: versioned buckets, atomic writes, file locks, sha256-keyed artifacts.

Layout under the root (`LOCKENV_CACHE_DIR`, else the platform user cache dir):

    pages-v4/<index key>/<name>.msgpack   parsed index pages (msgpack), fresh for LOCKENV_INDEX_TTL s
    metadata-v1/<aa>/<key>.json           parsed core metadata of one file, forever
    files-v1/<aa>/<sha256>/<filename>     downloaded wheels and sdists, forever, verified on use
    unpacked-v1/<aa>/<sha256>/            wheels unpacked and checked against RECORD (sync/install/tree.py)
    installs-v1/<aa>/<key>.json           what installing one of those into one venv wrote (sync/install/replay.py)
    installs-v1/whole/<aa>/<key>          what a whole sync into an empty venv did, one sealed
                                          plan (sync/install/whole.py)

Downloaded files are checked (sha256 and size) on every use, cache hits included (a cached
wheel is used by a sync when it is read: see sync/apply.py `UnreadWheel`): a damaged
entry is removed and refused with an `IntegrityError` naming it (never silently re-fetched, so
a tampered cache is noticed); the next run downloads the file afresh. A failed download leaves
nothing behind. A format change bumps a bucket's version suffix instead of migrating. Writes go to a temporary
file in the same directory and are renamed into place, so readers never see half a file and
concurrent processes at worst do the same work twice. This module is on the no-op path: it
imports nothing heavy (no httpx).
"""

from __future__ import annotations

import enum
import hashlib
import json
import os
import time
from pathlib import Path
from collections.abc import Iterable

from lockenv.project import FRESH_LOCKS as FRESH_LOCKS_NAME, cache_root, replace_file

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing: see `lockenv.fastpath`
if TYPE_CHECKING:
    from typing import Any

    from lockenv.errors import CacheError, IntegrityError



MAP_PAGES_FROM = 1 << 17
"""Cached pages this big or bigger are read through a map (`Cache.read_page`)."""


class Bucket(str, enum.Enum):
    """Every directory of the cache, in one place. A format change bumps the suffix (uv's
    `CacheBucket`): old buckets are then simply never read again, and `cache prune` removes them."""

    PAGES = "pages-v4"
    """parsed index pages (msgpack, index/pages.py's CachedPage), fresh for LOCKENV_INDEX_TTL s"""
    METADATA = "metadata-v1"
    """parsed core metadata of one file (by sha256), forever"""
    FILES = "files-v1"
    """downloaded wheels and sdists, by sha256, verified on every use"""
    UNPACKED = "unpacked-v1"
    """wheels unpacked and checked against RECORD"""
    INSTALLS = "installs-v1"
    """what installing an unpacked wheel into a venv wrote (replayed on the next install)"""
    PARSED_LOCKS = "parsed-locks-v1"
    """pickled parses of pylock.toml, keyed by its bytes (restricted unpickler)"""
    SELECTIONS = "selections-v1"
    """what a lock selects for given options and interpreter (sealed JSON, keyed by the lock's bytes)"""
    PROBE = "probe-v1"
    """what an interpreter said about itself (markers, tags, paths)"""
    BUILD_ENVS = "build-envs-v1"
    """isolated PEP 517 build environments, by build requirement set"""
    BUILT_WHEELS = "built-wheels-v1"
    """wheels built from sdists (and the project's editable wheels)"""
    PROJECT_LOCKS = "project-locks"
    """file locks that keep two `lock` runs of one project apart"""
    VENV_LOCKS = "venv-locks-v1"
    """file locks that keep two `sync` runs of one venv apart"""
    FRESH_LOCKS = FRESH_LOCKS_NAME
    """markers that a lock was checked fresh against its pyproject.toml (the no-op path), and
    that a requires-python admits a Python version (`environment._admits`)"""
    LOCKS = "locks"
    """file locks guarding cache entries while they are written"""

    def __str__(self) -> str:
        return self.value


PAGES = Bucket.PAGES.value
METADATA = Bucket.METADATA.value
FILES = Bucket.FILES.value
DEFAULT_PAGE_TTL = 600.0


def default_root() -> Path:
    return cache_root()


def page_ttl() -> float:
    """Seconds an index page stays fresh (`LOCKENV_INDEX_TTL`, default 600)."""
    try:
        value = float(os.environ.get("LOCKENV_INDEX_TTL", ""))
    except ValueError:
        return DEFAULT_PAGE_TTL
    return value if value >= 0 else DEFAULT_PAGE_TTL


_MADE_DIRS: set[str] = set()
"""Directories `write_atomic` has made (or found) in this process: a cold lock writes one
metadata entry per file it reads (hundreds), and a mkdir plus a stat each time was a third of
the system calls of such a write."""


def write_atomic(path: Path, data: bytes | Iterable[bytes]) -> None:
    """Write `data` to `path` so that no reader ever sees a partial file: a temporary beside it
    (mode 0600, as before), renamed over it. A directory removed since it was made (`cache
    clean`) is made again."""
    directory = str(path.parent)
    if directory not in _MADE_DIRS:
        path.parent.mkdir(parents=True, exist_ok=True)
        _MADE_DIRS.add(directory)
    try:
        replace_file(path, data)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        replace_file(path, data)


def remove_stale(directory: Path, max_age: float, *, prefix: str = "", suffix: str = "") -> None:
    """Remove the entries of `directory` named `prefix…suffix` that nothing has written to for
    `max_age` seconds: what killed runs left (F30). A live run writes far more often, so its
    entries are never taken; errors (a concurrent removal) are ignored."""
    import shutil
    import time

    now = time.time()
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return
    for entry in entries:
        if not (entry.name.startswith(prefix) and entry.name.endswith(suffix)):
            continue
        try:
            if now - entry.stat(follow_symlinks=False).st_mtime <= max_age:
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                os.unlink(entry.path)
        except OSError:
            pass


def file_sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        if hasattr(hashlib, "file_digest"):  # 3.11+: reads into one reused buffer
            return hashlib.file_digest(fh, "sha256").hexdigest()
        digest = hashlib.sha256()
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


_last_hashed: list[tuple[bytes, Any]] = []


def sha256_after(data: bytes) -> Any:
    """A new sha256 object that has hashed `data` already (to be updated further). One sync
    hashed the same lock up to six times (its no-op question before and after taking the venv
    lock, the fingerprint it records, the fresh-lock marker, the selection cache's key): 0.56
    MB on web, ~2.5 ms of CPU each here. The state after the last bytes hashed is kept and
    copied when the same bytes come again (compared, byte for byte: a lock read again may have
    changed); the digests are the ones `hashlib.sha256(data)` gives."""
    last = _last_hashed[0] if _last_hashed else None  # one read: another thread may replace it
    if last is not None and last[0] == data:
        return last[1].copy()
    done = hashlib.sha256(data)
    _last_hashed[:] = [(data, done)]
    return done.copy()


def mismatch_details(sha256: str | None, actual: str | None, size: int | None,
                     actual_size: int) -> list[str]:
    """The expected and actual hash and size of a file, as an IntegrityError's details (each
    pair only when something was expected)."""
    details = []
    if sha256:
        details += [f"expected sha256: {sha256}", f"actual sha256:   {actual}"]
    if size is not None:
        details += [f"expected size: {size}", f"actual size:   {actual_size}"]
    return details


def refuse_damaged(path: Path, details: list[str]) -> IntegrityError:
    """Remove a cache entry that is not what its key promises and return the error that says so
    (the next run downloads the file afresh; a tampered cache is never silently re-fetched)."""
    from lockenv.errors import IntegrityError

    try:
        path.unlink()
    except OSError:
        pass
    return IntegrityError(
        f"the cached copy of {path.name} is damaged and was refused",
        hint="the damaged cache entry has been removed; run the command again to "
             "download the file afresh",
        context={"file": str(path)},
        details=details,
    )


def out_of_space(exc: OSError, root: Path) -> CacheError | None:
    """The cache's error for a write that failed because its disk is full (or a quota is
    reached), else None: a full disk is said as such, never as a damaged wheel (F27)."""
    import errno

    if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
        return None
    from lockenv.errors import CacheError

    return CacheError(
        f"no space left in the cache at {root}",
        hint="free some space on that disk (`lockenv cache prune` removes what lockenv no "
             "longer uses), or set LOCKENV_CACHE_DIR to a directory on another disk",
        context={"file": str(root)},
    )


def explain_os_error(exc: OSError) -> CacheError | None:
    """The cache's clear error for an OSError about a path inside the cache (a read-only
    shared cache, a full disk), else None (F24, F27)."""
    import errno

    filename = exc.filename if isinstance(exc.filename, str) else None
    root = str(default_root())
    if filename is None or not (filename == root or filename.startswith(root.rstrip(os.sep) + os.sep)):
        return None
    full = out_of_space(exc, Path(root))
    if full is not None:
        return full
    if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
        return None
    from lockenv.errors import CacheError

    return CacheError(
        f"the cache directory {root} is not writable: {filename}",
        hint="lockenv writes its cache (downloads, lock files) as it works: set "
             "LOCKENV_CACHE_DIR to a directory you may write (a shared cache must be writable "
             "by every user of it)",
        context={"file": filename},
    )


SEAL = b"lockenv-sealed-1\n"
"""What starts an entry `Cache.seal` authenticated."""


def _key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Cache:
    """The cache directory. Cheap to create; creates directories on demand."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_root()
        self._files_checked = False
        if self.root.exists() and not self.root.is_dir():
            raise self._unusable(self.root, "is a file, not a directory")

    def _unusable(self, path: Path, why: str) -> Exception:
        from lockenv.errors import CacheError

        where = "LOCKENV_CACHE_DIR" if os.environ.get("LOCKENV_CACHE_DIR") else "the cache directory"
        return CacheError(
            f"the cache directory {self.root} cannot be used: {path} {why}",
            hint=f"remove {path}, or set LOCKENV_CACHE_DIR to a directory lockenv may write"
                 if where == "the cache directory" else
                 f"set LOCKENV_CACHE_DIR to a directory lockenv may write (or remove {path})",
            context={"file": str(path)},
        )

    def _mkdir(self, path: Path) -> None:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except (NotADirectoryError, FileExistsError):
            blocker = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), path)
            raise self._unusable(blocker, "is a file, not a directory") from None
        except PermissionError:
            raise self._unusable(path, "cannot be created (permission denied)") from None

    def bucket(self, name: Bucket) -> Path:
        """The directory of one bucket, created."""
        path = self.root / Bucket(name).value
        self._mkdir(path)
        return path

    def lock(self, path: Path) -> Any:
        """An inter-process lock guarding `path` (a `filelock.FileLock`). Lock files live in
        `locks/`, not beside the entries, so a bucket only ever holds finished entries."""
        import filelock

        return filelock.FileLock(str(self.lock_path(path)))

    def lock_path(self, path: Path) -> Path:
        """The lock file `lock(path)` locks (its directory created)."""
        locks = self.root / Bucket.LOCKS.value
        self._mkdir(locks)
        return locks / f"{_key(str(path))[:32]}.lock"

    # -- sealed entries -------------------------------------------------------------------
    def seal(self, data: bytes) -> bytes | None:
        """`data` with an HMAC under the user's key, kept outside the cache: entries that say
        what to install (parsed locks, replay records, a sync's whole install plan) are derived,
        so anyone who can write the cache could forge them; a sealed entry cannot be (F4). The
        HMAC covers `data` alone, not where it is kept: an entry whose meaning depends on its
        key holds that key inside `data` (a sealed entry moved to another key is refused). None
        when there is no key."""
        key = _user_key()
        if key is None:
            return None
        import hmac

        return SEAL + hmac.new(key, data, "sha256").digest() + data

    def unseal(self, blob: bytes) -> bytes | None:
        """The data `seal` authenticated, or None when `blob` was not sealed under this user's
        key (forged, damaged, another user's or an older lockenv's)."""
        key = _user_key()
        if key is None or not blob.startswith(SEAL):
            return None
        import hmac

        mac, data = blob[len(SEAL):len(SEAL) + 32], blob[len(SEAL) + 32:]
        return data if hmac.compare_digest(mac, hmac.new(key, data, "sha256").digest()) else None

    # -- index pages ------------------------------------------------------------------------
    def page_path(self, index_url: str, name: str) -> Path:
        """Where the parsed page of `name` on the index at (redacted) `index_url` lives."""
        return self.root / PAGES / _key(index_url)[:16] / f"{name}.msgpack"

    def read_page(self, index_url: str, name: str, max_age: float | None = None) -> Any:
        """The cached parsed page's bytes (the index client decodes them), or None when
        absent, older than `max_age` s, or unreadable. A big page comes as a read-only map of
        the file (bytes-like; unmapped when dropped): a multi-MB read buffer, once freed, would
        raise glibc's mmap threshold and fragment the heap. Writers replace the file by rename,
        so the map never changes under the reader."""
        path = self.page_path(index_url, name)
        ttl = page_ttl() if max_age is None else max_age
        try:
            with open(path, "rb") as fh:
                info = os.fstat(fh.fileno())
                if time.time() - info.st_mtime > ttl:
                    return None
                if info.st_size < MAP_PAGES_FROM:
                    return fh.read()
                import mmap

                return mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):
            return None

    def write_page(self, index_url: str, name: str, data: bytes | Iterable[bytes]) -> None:
        """`data` may come in pieces (written one after the other): see `read_page`."""
        write_atomic(self.page_path(index_url, name), data)

    def touch_page(self, index_url: str, name: str) -> None:
        """The cached page is current again (the index answered 304): fresh for another TTL."""
        try:
            os.utime(self.page_path(index_url, name))
        except OSError:
            pass  # gone meanwhile: the next run fetches it again

    # -- metadata ---------------------------------------------------------------------------
    def metadata_path(self, key: str) -> Path:
        """`key` is a file's sha256, or any text (a URL) that is hashed first."""
        if len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
            key = "url-" + _key(key)
        return self.root / METADATA / key[-2:] / f"{key}.json"

    def read_metadata(self, key: str) -> Any | None:
        try:
            return json.loads(self.metadata_path(key).read_bytes())
        except (OSError, ValueError):
            return None

    def write_metadata(self, key: str, data: Any) -> None:
        write_atomic(self.metadata_path(key), json.dumps(data, sort_keys=True).encode("utf-8"))

    # -- artifacts --------------------------------------------------------------------------
    def verified_artifact(self, path: Path, *, sha256: str | None, size: int | None) -> Path:
        """`path`, a cache entry, when its sha256 and size are the expected ones (what is not
        expected is not checked). A damaged entry is removed and refused with an IntegrityError
        naming it: never silently fetched again, so a tampered cache is noticed, and the next
        run downloads the file afresh."""
        actual_size = path.stat().st_size
        actual = file_sha256(path) if sha256 else None
        if (size is None or actual_size == size) and actual == sha256:
            return path
        if sha256 and actual == sha256:  # the bytes are the right ones: the size given is wrong (F28)
            from lockenv.errors import IntegrityError

            raise IntegrityError(
                f"{path.name} has the expected sha256 but not the size it was given; the cached "
                "file is kept",
                details=mismatch_details(sha256, actual, size, actual_size),
                context={"file": str(path)},
                hint="the size recorded for it (in the lock, or by the index) is wrong: run "
                     "`lockenv lock` again",
            )
        raise refuse_damaged(path, mismatch_details(sha256, actual, size, actual_size))

    def artifact_path(self, key: str, filename: str) -> Path:
        """Where a downloaded file lives: `key` is its sha256 (or a URL when the index gave no
        hash). The file keeps its real name, which installers and build tools need."""
        if len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
            key = "url-" + _key(key)  # never a path made of an unchecked string (F2)
        if not self._files_checked:  # a bucket that is a file is the cache's clear error (F29)
            self.bucket(Bucket.FILES)
            self._files_checked = True
        return self.root / FILES / key[:2] / key / filename


_USER_KEY: list[bytes | None] = []


def _user_key() -> bytes | None:
    """A secret of this user's, made once (`<user data dir>/cache-key`, mode 0600), never in
    the cache: whoever can write the cache cannot read it. None when it can be neither read
    nor made (sealed entries are then not used)."""
    if not _USER_KEY:
        import platformdirs

        path = Path(platformdirs.user_data_dir("lockenv", appauthor=False)) / "cache-key"
        _USER_KEY.append(_read_or_make_key(path))
    return _USER_KEY[0]


def _read_or_make_key(path: Path) -> bytes | None:
    try:
        key = path.read_bytes()
        if len(key) == 32:
            return key
    except OSError:
        pass
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        import tempfile  # once per user, ever: not on every run's import path

        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".cache-key.")
        try:
            os.write(fd, os.urandom(32))
            os.close(fd)
            try:
                os.link(tmp, path)  # never replaces a key another process made first
            except FileExistsError:
                pass
        finally:
            os.unlink(tmp)
        key = path.read_bytes()
    except OSError:
        return None
    return key if len(key) == 32 else None

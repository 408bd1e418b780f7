"""The `fetch` use case: for an air-gapped machine, the one file the universal lock selects per
package for another platform and Python, downloaded, verified and written to a directory with a
copy of pylock.toml; `sync --find-links DIR` then installs from that directory alone.

Nothing like it exists in pip, uv or PDM: `pip download --platform` resolves again (and may
choose other versions than the lock); this reads the lock's own selection.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lockenv.errors import IntegrityError, LockfileError, ManifestError, SyncError
from lockenv.ops.wanted import Selection, lock_path
from lockenv.resolve.targets import PLATFORMS, Platform, Target
from lockenv.ui import Reporter

MUSL = "linux-musl-x86_64"


@dataclass(frozen=True)
class FetchOptions(Selection):
    platform: str = ""
    python: str = ""
    dest: Path = field(default_factory=Path)


def platforms() -> list[str]:
    """The names `--platform` accepts: the lock's targets, plus musl Linux."""
    return [p.key for p in PLATFORMS] + [MUSL]


def target_for(platform: str, python: str, requires_python: str | None) -> Any:
    """The resolve Target (marker environment and wheel tags) of `--platform`/`--python`."""
    from packaging.specifiers import SpecifierSet

    parts = python.strip().split(".")
    if len(parts) != 2 or parts[0] != "3" or not parts[1].isdigit():
        raise ManifestError(f"--python `{python}`: give a Python minor version such as 3.12",
                            hint="fetch selects for one CPython version: --python 3.12")
    minor = int(parts[1])
    spec = SpecifierSet(requires_python or "")
    full = next((f"3.{minor}.{p}" for p in range(40) if spec.contains(f"3.{minor}.{p}",
                                                                       prereleases=True)), None)
    if full is None:
        raise SyncError(f"the lock's requires-python `{requires_python}` excludes Python "
                        f"3.{minor}", hint="pass a --python the lock supports")
    by_key = {p.key: p for p in PLATFORMS}
    if platform == MUSL:
        return Target((3, minor), full, MuslPlatform(MUSL, "linux", "Linux", "posix", "x86_64"))
    if platform not in by_key:
        raise ManifestError(f"unknown platform `{platform}`",
                            hint="use one of: " + ", ".join(platforms()))
    return Target((3, minor), full, by_key[platform])


@dataclass(frozen=True)
class MuslPlatform(Platform):
    """Linux with musl libc (Alpine): musllinux wheels instead of manylinux ones."""

    def wheel_platforms(self) -> list[str]:
        return [f"musllinux_1_{minor}_{self.machine}" for minor in range(2, -1, -1)] + \
            [f"linux_{self.machine}"]


def fetch(options: FetchOptions, *, reporter: Reporter) -> int:
    """Write the selected files and a copy of the lock to `options.dest`."""
    from lockenv.cache import Cache
    from lockenv.sync.selection import build_request, load_lock, select

    cache = Cache()  # the one cache of this fetch: the parsed lock, the pages, the files
    path = lock_path(options)
    if not path.is_file():
        raise SyncError(f"no {path.name} in {path.parent}",
                        hint="run `lockenv lock` first; fetch copies what the lock selects")
    lock = load_lock(path, cache)
    target = target_for(options.platform, options.python,
                        str(lock.requires_python) if lock.requires_python else None)
    request = build_request(lock, extras=options.extras, all_extras=options.all_extras,
                            groups=options.groups, only_groups=options.only_groups,
                            no_default_groups=options.no_default_groups,
                            all_groups=options.all_groups)
    try:
        wanted = select(lock, path, request, markers=target.environment, tags=target.tags,
                        project_root=options.project)
    except LockfileError as exc:
        raise _for_platform(exc, options.platform, target.name) from None
    files = [w for w in wanted if w.file is not None]
    for w in wanted:
        if w.file is None and not w.is_project:
            reporter.warn(f"`{w.name}` is a local {w.kind}, not a file: it is not fetched")
    dest = options.dest
    dest.mkdir(parents=True, exist_ok=True)
    router = _router(lock, options, path, cache, reporter)
    try:
        remote = [w.file for w in files if w.file is not None and not w.local_path]
        downloaded = router.download_many(remote) if remote else {}  # in parallel, each verified
        for w in files:
            _place(w, downloaded, dest)
            reporter.debug(f"{w.label}: {w.file.filename if w.file else ''}")
    finally:
        router.close()
    _copy(path, dest / path.name)
    reporter.status(f"Fetched {len(files)} file{'s' if len(files) != 1 else ''} for "
                    f"{target.name} into {dest} (with a copy of {path.name})")
    return 0


def _for_platform(exc: LockfileError, platform: str, name: str) -> LockfileError:
    """The selection's error for the platform fetch was asked for. musl Linux is never one of
    the lock's targets (a lock serves it only where a pure wheel, an sdist or a musllinux wheel
    happens to be listed), so the usual hint about a platform left unserved would mislead."""
    if platform != MUSL:
        return exc.with_prefix(f"fetch for {name}")
    return LockfileError(
        f"fetch for {name} (musl Linux): {exc.message}", context=exc.context,
        hint="musl Linux is not one of the lock's targets: a package has a file there only when "
             "the lock lists a pure wheel, an sdist or a musllinux wheel of it; fetch for a "
             "manylinux platform (`linux-x86_64`), or require a version with an sdist")


def _router(lock: Any, options: FetchOptions, path: Path, cache: Any, reporter: Reporter) -> Any:
    """The indexes' clients, each file fetched with its own index's credentials."""
    from lockenv.errors import LockenvError
    from lockenv.index.routing import IndexRouter, with_default
    from lockenv.ops.sync import _index_url

    spec = None
    try:
        from lockenv import manifest

        spec = manifest.load(options.project)
    except LockenvError:
        spec = None  # fetch only needs the lock; pyproject.toml adds index credentials
    settings = with_default(getattr(spec, "indexes", None), _index_url(lock, spec, path))
    return IndexRouter(settings, cache=cache, reporter=reporter)


def _place(want: Any, downloaded: dict[str, Path], dest: Path) -> None:
    file = want.file
    if want.local_path:
        source = Path(want.local_path)
        if _sha256(source) != file.sha256:
            raise IntegrityError(f"{source} ({want.label}) does not match its sha256 in the lock",
                                 hint="relock, or put back the file the lock was made from",
                                 context={"file": str(source), "package": want.name})
    else:
        source = downloaded[file.filename]
    name = Path(file.filename).name
    if name != file.filename or name in ("", ".", ".."):
        raise IntegrityError(f"`{want.name}`: unsafe file name {file.filename!r} in the lock",
                             context={"package": want.name})
    _copy(source, dest / name)


def _copy(source: Path, target: Path) -> None:
    """Atomic: a killed fetch leaves no half file under a final name."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()

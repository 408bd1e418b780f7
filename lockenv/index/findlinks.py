"""A directory as the only source of files (`sync --find-links DIR`, after `lockenv fetch`):
each file the lock selects is taken from DIR by its file name, checked against the lock's
sha256 and size while it is copied into the cache, and never looked for anywhere else."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from lockenv.cache import Cache
from lockenv.errors import IntegrityError, SyncError
from lockenv.models import DistFile
from lockenv.ui import Progress


class FindLinks:
    """Downloads, as `IndexClient` does them, from a local directory only."""

    def __init__(self, directory: Path, *, cache: Cache) -> None:
        self.directory = Path(directory)
        self.cache = cache
        self.index_url = self.directory.as_uri()
        if not self.directory.is_dir():
            raise SyncError(f"--find-links {self.directory} is not a directory",
                            hint="pass the directory `lockenv fetch -d DIR` wrote")

    def download(self, file: DistFile, *, on_bytes: Callable[[int], None] | None = None) -> Path:
        name = Path(file.filename).name
        source = self.directory / name
        package = f"`{file.project_name}`" if _parses(file) else f"`{file.filename}`"
        if name != file.filename or not source.is_file():
            raise SyncError(
                f"{package} needs {file.filename}, which is not in {self.directory}",
                hint="fetch it again on a machine with network: `lockenv fetch --platform ... "
                     f"--python ... -d {self.directory.name}` for this platform and Python",
                context={"file": str(source)},
            )
        if not file.sha256:
            raise IntegrityError(f"{package}: {file.filename} has no sha256 in the lock",
                                 hint="relock; lockenv verifies every file by sha256")
        dest = self.cache.artifact_path(file.sha256, file.filename)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".findlinks-", suffix=".tmp")
        digest, size = hashlib.sha256(), 0
        try:
            with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
                for chunk in iter(lambda: src.read(1 << 20), b""):
                    out.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
            if digest.hexdigest() != file.sha256 or (file.size is not None and size != file.size):
                raise IntegrityError(
                    f"{package}: {source} does not match the lock (altered or another file)",
                    hint="fetch it again; every file is checked against the lock's sha256",
                    context={"file": str(source)},
                    details=(f"expected sha256: {file.sha256}",
                             f"actual sha256:   {digest.hexdigest()}"),
                )
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        if on_bytes is not None:
            on_bytes(size)
        return dest

    def require_cached(self, files: Iterable[DistFile]) -> None:
        """Before anything is installed: every file is in the directory, else one error naming
        each missing package and file (the name `--offline` uses for its own check)."""
        missing = [f for f in files if not (self.directory / Path(f.filename).name).is_file()]
        if missing:
            first = missing[0]
            raise SyncError(
                f"`{_name(first)}` needs {first.filename}, which is not in {self.directory}"
                + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""),
                hint="fetch again on a machine with network: `lockenv fetch --platform ... "
                     f"--python ... -d {self.directory.name}` for this platform and Python",
                context={"file": str(self.directory / first.filename)},
                details=[f"`{_name(f)}`: {f.filename}" for f in missing],
            )

    def download_many(self, files: Sequence[DistFile], progress: Progress | None = None
                      ) -> dict[str, Path]:
        return {f.filename: self.download(f, on_bytes=progress.advance if progress else None)
                for f in files}

    def project(self, name: str) -> None:
        raise SyncError(
            f"`{name}` would have to come from an index, but --find-links installs from "
            f"{self.directory} alone",
            hint="building an sdist needs its build requirements: fetch for a platform with "
                 "wheels, or sync with network",
        )

    def close(self) -> None:
        pass


def _name(file: DistFile) -> str:
    return str(file.project_name) if _parses(file) else file.filename


def _parses(file: DistFile) -> bool:
    try:
        file.project_name
    except ValueError:
        return False
    return True

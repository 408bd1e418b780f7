"""Wheels unpacked once into the cache, validated while unpacking, and installed from there.

Unpacking checks every member against the wheel's RECORD (hash and size) and refuses unsafe
paths, so a tree in the cache is a validated wheel. Installing goes through `installer`
(`TreeSource` is its WheelSource, `LinkingDestination` its destination): files are hard-linked
from the tree into the venv (copied when linking is impossible, or with
`LOCKENV_LINK_MODE=copy`), so a warm sync costs a few syscalls per file instead of decompressing
and hashing. Each tree records every file's size and mtime; a tree file changed since (say, a
hard-linked file edited in place in some venv) is detected before linking and the tree is
unpacked again from the verified wheel.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import os
import posixpath
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from lockenv.cache import Bucket
from lockenv.errors import IntegrityError

if TYPE_CHECKING:
    from lockenv.cache import Cache

UNPACKED = Bucket.UNPACKED
MANIFEST = "manifest.json"


class TreeChanged(Exception):
    """A file of an unpacked tree is not as it was unpacked."""


@dataclass(frozen=True)
class Tree:
    """A wheel unpacked into the cache."""

    root: Path
    """The directory holding the wheel's members."""
    sha256: str
    wheel_name: str
    dist_info_dir: str
    data_dir: str
    entries: tuple[dict[str, Any], ...]
    """{"path", "hash" ('sha256=…'), "size", "exec", "mtime"} per member, in wheel order."""

    def read_dist_info(self, filename: str) -> str:
        return (self.root / self.dist_info_dir / filename).read_text(encoding="utf-8")


def _b64(digest: bytes) -> str:
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _unsafe(name: str) -> bool:
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return True
    return ".." in name.replace("\\", "/").split("/")


def unpack(wheel: Path, sha256: str, *, name: str, cache: Cache, discard: bool = False) -> Tree:
    """The validated tree of `wheel` (whose sha256 the caller verified), unpacking it on first
    use. IntegrityError names the wheel and the member when it is unsafe or does not match its
    RECORD."""
    bucket = cache.bucket(UNPACKED)
    final = bucket / sha256[:2] / sha256
    if discard and final.exists():
        shutil.rmtree(final, ignore_errors=True)
    tree = _load(final, sha256)
    if tree is not None:
        return tree
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".unpack-", dir=final.parent))
    try:
        dist_info, data_dir, entries = _extract(wheel, tmp / "files", name)
        manifest = {"wheel": wheel.name, "dist_info": dist_info, "data_dir": data_dir,
                    "entries": entries}
        (tmp / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
        try:
            os.rename(tmp, final)
        except OSError:  # another process unpacked it first
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    tree = _load(final, sha256)
    if tree is None:
        raise IntegrityError(f"could not unpack {wheel.name} into the cache at {final}")
    return tree


def _load(final: Path, sha256: str) -> Tree | None:
    try:
        data = json.loads((final / MANIFEST).read_bytes())
    except (OSError, ValueError):
        return None
    return Tree(root=final / "files", sha256=sha256, wheel_name=data["wheel"],
                dist_info_dir=data["dist_info"], data_dir=data["data_dir"],
                entries=tuple(data["entries"]))


def _extract(wheel: Path, dest: Path, name: str) -> tuple[str, str, list[dict[str, Any]]]:
    from installer.sources import WheelFile

    try:
        with WheelFile.open(wheel) as source:
            dist_info, data_dir = source.dist_info_dir, source.data_dir
            record_text = source.read_dist_info("RECORD")
            # installer's WheelFile has no public way to read members; one pass needs the zip.
            zf: zipfile.ZipFile = source._zipfile
            return dist_info, data_dir, _extract_members(wheel, zf, dest, name, dist_info, record_text)
    except IntegrityError:
        raise
    except (zipfile.BadZipFile, OSError, KeyError, ValueError) as exc:
        raise IntegrityError(f"{wheel.name} is not a readable wheel: {exc}",
                             context={"package": name}) from None


def _extract_members(wheel: Path, zf: zipfile.ZipFile, dest: Path, name: str, dist_info: str,
                     record_text: str) -> list[dict[str, Any]]:
    infos = [i for i in zf.infolist() if not i.filename.endswith("/")]
    for info in infos:
        if _unsafe(info.filename):
            raise IntegrityError(
                f"{wheel.name} contains an unsafe path `{info.filename}` and was refused",
                hint="the wheel tries to write outside its install directory",
                context={"package": name},
            )
    records = {}
    for row in csv.reader(io.StringIO(record_text)):
        if row and row[0]:
            if _unsafe(row[0]):
                raise IntegrityError(f"{wheel.name}'s RECORD lists an unsafe path `{row[0]}`; refused",
                                     context={"package": name})
            records[row[0]] = row
    issues: list[str] = []
    entries: list[dict[str, Any]] = []
    base = str(dest)
    made: set[str] = set()
    record_path = f"{dist_info}/RECORD"
    for info in infos:
        member = info.filename
        data = zf.read(info)
        row = records.get(member)
        is_signature = (member.startswith(dist_info + "/")
                        and posixpath.basename(member) in ("RECORD.jws", "RECORD.p7s"))
        sha = _b64(hashlib.sha256(data).digest())
        if member != record_path and not is_signature:
            if row is None:
                issues.append(f"{member} is not listed in RECORD")
            else:
                algorithm, _, expected = (row[1] if len(row) > 1 else "").partition("=")
                size = row[2] if len(row) > 2 else ""
                if not algorithm or algorithm not in hashlib.algorithms_guaranteed or \
                        algorithm in ("md5", "sha1"):
                    issues.append(f"{member} has no usable hash in RECORD")
                elif (sha if algorithm == "sha256" else
                      _b64(hashlib.new(algorithm, data).digest())) != expected:
                    issues.append(f"{member}: content does not match its RECORD hash")
                elif size and size != str(len(data)):
                    issues.append(f"{member}: size {len(data)} does not match RECORD's {size}")
        target = os.path.join(base, *member.split("/"))
        parent = os.path.dirname(target)
        if parent not in made:
            os.makedirs(parent, exist_ok=True)
            made.add(parent)
        mode = info.external_attr >> 16
        executable = bool(mode and stat.S_ISREG(mode) and mode & 0o111)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o755 if executable else 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            mtime = os.fstat(fd).st_mtime_ns
        finally:
            os.close(fd)
        entries.append({"path": member, "hash": "sha256=" + sha,
                        "size": len(data), "exec": executable, "mtime": mtime})
    if issues:
        raise IntegrityError(
            f"{wheel.name} does not match its own RECORD and was refused",
            details=issues[:10],
            context={"package": name},
            hint="the wheel was altered after it was built; nothing was installed",
        )
    return entries


# -- installer seams --------------------------------------------------------------------------
def _source_class() -> type:
    from installer.sources import WheelSource

    class TreeSource(WheelSource):
        """installer's view of an unpacked tree; streams are real files (they have a name)."""

        validation_error = IntegrityError  # type: ignore[assignment]

        def __init__(self, tree: Tree) -> None:
            distribution, _, version = tree.dist_info_dir[: -len(".dist-info")].partition("-")
            super().__init__(distribution, version)
            self.tree = tree

        @property
        def dist_info_dir(self) -> str:
            return self.tree.dist_info_dir

        @property
        def data_dir(self) -> str:
            return self.tree.data_dir

        @property
        def dist_info_filenames(self) -> list[str]:
            prefix = self.tree.dist_info_dir + "/"
            return [e["path"][len(prefix):] for e in self.tree.entries if e["path"].startswith(prefix)]

        def read_dist_info(self, filename: str) -> str:
            return self.tree.read_dist_info(filename)

        def validate_record(self, *, validate_contents: bool = True) -> None:
            """Validated when unpacked."""

        def get_contents(self) -> Iterator[tuple[tuple[str, str, str], BinaryIO, bool]]:
            root = str(self.tree.root)
            for entry in self.tree.entries:
                stream = _LazyFile(os.path.join(root, *entry["path"].split("/")))
                try:
                    yield (entry["path"], entry["hash"], str(entry["size"])), stream, entry["exec"]  # type: ignore[misc]
                finally:
                    stream.close()

    return TreeSource


class _LazyFile:
    """A file stream opened only if read: linking needs just its name (opening ~3000 files
    costs more than linking them)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._fh: BinaryIO | None = None

    def _open(self) -> BinaryIO:
        if self._fh is None:
            self._fh = open(self.name, "rb")  # closed by close()
        return self._fh

    def read(self, size: int = -1) -> bytes:
        return self._open().read(size)

    def readline(self, size: int = -1) -> bytes:
        return self._open().readline(size)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._open().seek(offset, whence)

    def tell(self) -> int:
        return self._open().tell()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def TreeSource(tree: Tree) -> Any:  # a factory named like the class it returns
    """installer's WheelSource over an unpacked tree."""
    return _source_class()(tree)


def tree_destination(tree: Tree, scheme: Mapping[str, str], python: str,
                     ops: list[dict[str, Any]] | None = None) -> Any:
    """installer's destination that hard-links (or copies) tree files instead of writing them.
    With `ops`, every write is also recorded there (see `replay`)."""
    from installer.destinations import SchemeDictionaryDestination
    from installer.records import Hash, RecordEntry
    from installer.utils import get_launcher_kind

    by_source = {str(tree.root.joinpath(*e["path"].split("/"))): e for e in tree.entries}
    mode = os.environ.get("LOCKENV_LINK_MODE", "hardlink")

    made: set[str] = set()

    from lockenv.sync.replay import link_op, write_op

    class LinkingDestination(SchemeDictionaryDestination):
        link = mode != "copy"
        in_script = False

        def write_to_fs(self, scheme: Any, path: str, stream: BinaryIO, is_executable: bool) -> Any:
            src = getattr(stream, "name", None)
            entry = by_source.get(src) if isinstance(src, str) else None
            if entry is None:
                if ops is None:
                    return super().write_to_fs(scheme, path, stream, is_executable)
                data = stream.read()
                written = super().write_to_fs(scheme, path, io.BytesIO(data), is_executable)
                target = os.path.abspath(os.path.join(self.scheme_dict[scheme], path))
                ops.append(write_op(target, data, executable=is_executable, script=self.in_script))
                return written
            base = os.path.abspath(self.scheme_dict[scheme])
            target = os.path.abspath(os.path.join(base, path))
            if not (target + os.sep).startswith(base + os.sep):
                raise IntegrityError(f"{tree.wheel_name}: `{path}` would be written outside {base}")
            st = os.stat(src)
            if st.st_size != entry["size"] or st.st_mtime_ns != entry["mtime"]:
                raise TreeChanged(src)
            parent = os.path.dirname(target)
            if parent not in made:
                os.makedirs(parent, exist_ok=True)
                made.add(parent)
            if self.link:
                try:
                    os.link(src, target)
                except FileExistsError:
                    os.unlink(target)
                    os.link(src, target)
                except OSError:
                    type(self).link = False
            if not self.link:
                if os.path.lexists(target):
                    os.unlink(target)
                shutil.copyfile(src, target)
                if is_executable:
                    os.chmod(target, 0o755)
            if ops is not None:
                ops.append(link_op(target, entry["path"]))
            algorithm, _, digest = entry["hash"].partition("=")
            return RecordEntry(path, Hash(algorithm, digest), entry["size"])

        def write_script(self, name: str, module: str, attr: str, section: Any) -> Any:
            self.in_script = True  # installer chmods scripts once more after writing them
            try:
                return super().write_script(name, module, attr, section)
            finally:
                self.in_script = False

    return LinkingDestination(
        dict(scheme), interpreter=python, script_kind=get_launcher_kind(),
        bytecode_optimization_levels=(), overwrite_existing=True,
    )

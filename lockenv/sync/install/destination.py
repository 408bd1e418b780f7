"""installer's seams over an unpacked tree: `TreeSource` is its WheelSource, `LinkingDestination`
its destination (files linked from the tree instead of written, every write recorded for
`replay`), and `PlannedTargets` a destination that writes nothing and only notes where each
file would go, so the install's paths come from installer's own scheme logic.

Imports installer at module level: only an install that is not replayed (and wheel
validation) loads this module, never the no-op path.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
from collections.abc import Iterator, Mapping
from typing import Any, BinaryIO

from installer.destinations import SchemeDictionaryDestination
from installer.records import Hash, RecordEntry
from installer.scripts import Script
from installer.sources import WheelSource
from installer.utils import Scheme, get_launcher_kind

from lockenv.errors import IntegrityError
from lockenv.sync.install.replay import normal_under
from lockenv.sync.install.tree import Linker, Member, Tree


class TreeSource(WheelSource):
    """installer's view of an unpacked tree; streams are real files (they have a name)."""

    validation_error = IntegrityError

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
        for entry in self.tree.entries:
            stream = _LazyFile(self.tree.path_of(entry["path"]))
            try:
                yield (entry["path"], entry["hash"], str(entry["size"])), stream, entry["exec"]  # type: ignore[misc]
            finally:
                stream.close()


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


def write_op(target: str, data: bytes, *, executable: bool, script: bool) -> dict[str, Any]:
    """A recorded write (see `replay`): bytes installer generated (a script, RECORD…)."""
    import base64

    return {"op": "write", "target": target, "data": base64.b64encode(data).decode("ascii"),
            "exec": executable, "script": script}


def link_op(target: str, member: str) -> dict[str, Any]:
    """A recorded link (see `replay`): a member of the tree placed at `target`."""
    return {"op": "link", "target": target, "member": member}


class LinkingDestination(SchemeDictionaryDestination):
    """installer's destination that hard-links (or copies) tree files instead of writing them,
    and records every write in `ops` (see `replay`)."""

    def __init__(self, tree: Tree, scheme: Mapping[str, str], python: str, *, link: bool,
                 ops: list[dict[str, Any]]) -> None:
        super().__init__(dict(scheme), interpreter=python, script_kind=get_launcher_kind(),
                         bytecode_optimization_levels=(), overwrite_existing=True)
        self.tree = tree
        self.ops = ops
        self.linker = Linker(tree, link=link)
        self.by_source: dict[str, Member] = {tree.path_of(e["path"]): e for e in tree.entries}
        self.in_script = False

    def write_to_fs(self, scheme: Scheme, path: str, stream: BinaryIO,
                    is_executable: bool) -> RecordEntry:
        src = getattr(stream, "name", None)  # a tree file (_LazyFile), or bytes installer made
        entry = self.by_source.get(src) if isinstance(src, str) else None
        base = os.path.abspath(self.scheme_dict[scheme])
        target = os.path.abspath(os.path.join(base, path))
        if entry is None:
            data = stream.read()
            if os.path.lexists(target):  # never write through a symlink or into a linked inode
                os.unlink(target)
            written = super().write_to_fs(scheme, path, io.BytesIO(data), is_executable)
            self.ops.append(write_op(target, data, executable=is_executable, script=self.in_script))
            return written
        if not (target + os.sep).startswith(base + os.sep):
            raise IntegrityError(f"{self.tree.wheel_name}: `{path}` would be written outside {base}")
        self.linker.place(entry, target)
        self.ops.append(link_op(target, entry["path"]))
        algorithm, _, digest = entry["hash"].partition("=")
        return RecordEntry(path, Hash(algorithm, digest), entry["size"])

    def write_script(self, name: str, module: str, attr: str, section: Any) -> RecordEntry:
        self.in_script = True  # installer chmods scripts once more after writing them
        try:
            return super().write_script(name, module, attr, section)
        finally:
            self.in_script = False


class RecordingDestination(SchemeDictionaryDestination):
    """installer's destination that writes nothing and records what `LinkingDestination` would
    do: the same `ops` (links of tree files, bytes installer made) and, like `PlannedTargets`,
    each file's (scheme key, path). Run where a wheel is unpacked on a cold sync, so the link
    stage replays the record instead of running installer a second time."""

    def __init__(self, tree: Tree, scheme: Mapping[str, str], python: str) -> None:
        super().__init__(dict(scheme), interpreter=python, script_kind=get_launcher_kind(),
                         bytecode_optimization_levels=(), overwrite_existing=True)
        self.tree = tree
        self.ops: list[dict[str, Any]] = []
        self.targets: list[tuple[str, str]] = []
        self.by_source: dict[str, Member] = {tree.path_of(e["path"]): e for e in tree.entries}
        self.bases = {key: os.path.abspath(d) + os.sep for key, d in scheme.items()}
        self.in_script = False

    def write_to_fs(self, scheme: Scheme, path: str, stream: BinaryIO,
                    is_executable: bool) -> RecordEntry:
        src = getattr(stream, "name", None)
        entry = self.by_source.get(src) if isinstance(src, str) else None
        base = self.bases[scheme]
        # What LinkingDestination's abspath(join(base, path)) gives, without the calls for the
        # usual (already normal) path: 18,000 files on data.
        target = base + path if normal_under(base, path) else os.path.abspath(base + path)
        self.targets.append((str(scheme), path))
        if entry is None:
            self._path_with_destdir(scheme, path)  # installer's own check (ValueError outside)
            data = stream.read()
            self.ops.append(write_op(target, data, executable=is_executable, script=self.in_script))
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).decode("ascii")
            return RecordEntry(path, Hash("sha256", digest.rstrip("=")), len(data))
        if not (target + os.sep).startswith(base):
            raise IntegrityError(f"{self.tree.wheel_name}: `{path}` would be written outside {base}")
        self.ops.append(link_op(target, entry["path"]))
        algorithm, _, digest = entry["hash"].partition("=")
        return RecordEntry(path, Hash(algorithm, digest), entry["size"])

    def write_script(self, name: str, module: str, attr: str, section: Any) -> RecordEntry:
        script_name, data = Script(name, module, attr, section).generate(
            self.interpreter, self.script_kind)
        self.in_script = True
        try:
            return self.write_to_fs(Scheme("scripts"), script_name, io.BytesIO(data), True)
        finally:
            self.in_script = False


class PlannedTargets(SchemeDictionaryDestination):
    """installer's destination that writes nothing: it notes every file an install would write
    (root-is-purelib, `.data` schemes, scripts, metadata, RECORD) as installer decides them: the
    scheme key and the path under it, which do not depend on where the scheme's directories
    are (so one dry run serves every venv)."""

    def __init__(self, scheme: Mapping[str, str]) -> None:
        super().__init__(dict(scheme), interpreter="python", script_kind=get_launcher_kind(),
                         bytecode_optimization_levels=(), overwrite_existing=True)
        self.targets: list[tuple[str, str]] = []

    def write_to_fs(self, scheme: Scheme, path: str, stream: BinaryIO,
                    is_executable: bool) -> RecordEntry:
        self.targets.append((str(scheme), path))
        return RecordEntry(path, None, None)

    def write_script(self, name: str, module: str, attr: str, section: Any) -> RecordEntry:
        script_name, _data = Script(name, module, attr, section).generate(
            self.interpreter, self.script_kind)
        return self.write_to_fs(Scheme("scripts"), script_name, io.BytesIO(), True)

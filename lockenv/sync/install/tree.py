"""Wheels unpacked once into the cache, validated while unpacking, and linked out from there.

Unpacking checks every member against the wheel's RECORD (hash and size) and refuses unsafe
paths, so a tree in the cache is a validated wheel. Tree files are read-only (no write bit for
anyone): a venv's file is the same inode (a hard link), so an editor or `cp -p` writing to it in
place is refused (EACCES) instead of silently editing the cache and every venv linked to it
(F8). Each tree also records every file's size and mtime; a tree file changed since anyway
(root ignores file modes) is detected before it is linked (`Linker.place`) and the tree is
unpacked again from the verified wheel. An edit that puts size and mtime back, by root, is
left to `verify` (a ctime check would hash every file after any venv is deleted: unlinking
moves the ctime of the cached inode too). `Linker` is the one place files leave a tree: a hard link, a few syscalls per file
instead of decompressing and hashing, or a copy when linking is impossible or
`LOCKENV_LINK_MODE=copy`. Used by installer's destination and by replayed installs alike.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import posixpath
import shutil
import stat
import struct
import tempfile
import zipfile
from collections.abc import Callable, Collection, Generator, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from lockenv.cache import Bucket
from lockenv.errors import IntegrityError
from lockenv.inflate import inflater
from lockenv.sync.install.fs import make_dirs as _make_dirs
from lockenv.sync.install.fs import write_new

if TYPE_CHECKING:
    from lockenv.cache import Cache

MANIFEST = "manifest.json"
SEAL = "manifest.seal"
"""Beside the manifest: the user's seal over the tree's sha256 and the manifest's bytes. A tree
whose seal holds was unpacked and checked by this user's lockenv, so its manifest is trusted
without opening the wheel again (reading the zip's directory and RECORD to compare was ~0.1 s
of CPU per warm sync of `data`); any other tree is checked against the wheel's RECORD (F4)."""
CHUNK = 1 << 20
"""Bytes read from a wheel member at a time: unpacking memory is bounded by this."""


class TreeChanged(Exception):
    """A file of an unpacked tree is not as it was unpacked."""

    def __init__(self, path: str, member: str = "") -> None:
        super().__init__(path)
        self.member = member


class Member(TypedDict):
    """One file of an unpacked wheel, as the tree's manifest records it."""

    path: str
    """The member's path in the wheel ('/'-separated)."""
    hash: str
    """RECORD's form: 'sha256=<urlsafe b64>'."""
    size: int
    exec: bool
    mtime: int
    """st_mtime_ns of the unpacked file, to notice it changed."""


@dataclass(frozen=True)
class Tree:
    """A wheel unpacked into the cache."""

    root: Path
    """The directory holding the wheel's members."""
    sha256: str
    wheel_name: str
    dist_info_dir: str
    data_dir: str
    entries: tuple[Member, ...]
    """Every member, in wheel order."""
    token: str = ""
    """Unique to one unpacking: a tree unpacked again (by any process) has another."""

    def read_dist_info(self, filename: str) -> str:
        return (self.root / self.dist_info_dir / filename).read_text(encoding="utf-8")

    def path_of(self, member: str) -> str:
        """Where the member's file is in the cache (members are '/'-separated, checked safe)."""
        base = str(self.root) + os.sep
        return base + (member if os.sep == "/" else member.replace("/", os.sep))


class Linker:
    """Puts tree members into a venv: hard links, falling back to copies for the rest of the
    install once linking fails (another file system). One per install: not shared by threads;
    `made`, the directories known to exist, may be (one set per sync: installs share parents,
    site-packages and bin/ above all, which each install asked for again)."""

    def __init__(self, tree: Tree, *, link: bool, made: set[str] | None = None) -> None:
        self.tree = tree
        self.link = link
        self._made = made if made is not None else set()

    def parent_of(self, target: str) -> None:
        """Create `target`'s directory (once per directory and install). `target` is absolute
        and normalised (its parent is what precedes the last separator)."""
        parent = target[:target.rindex(os.sep)] or os.sep
        if parent not in self._made:
            _make_dirs(parent, self._made)
            self._made.add(parent)

    def make_parents(self, targets: Iterable[str], roots: Collection[str] = ()) -> None:
        """Create the directories of `targets` (absolute, normalised) and those between them
        and `roots` (the scheme directories), parents first, each once: in a new venv one
        mkdir per directory, none failing (jedi's stubs: 98 directories holding only
        directories, each a failed mkdir first)."""
        made, sep = self._made, os.sep
        dirs = {t[:t.rindex(sep)] or sep for t in targets}
        for d in list(dirs):
            up = d[:d.rindex(sep)] or sep
            while up not in dirs and up not in roots and up not in made and up != sep:
                dirs.add(up)
                up = up[:up.rindex(sep)] or sep
        for parent in sorted(dirs):
            if parent not in made:
                _make_dirs(parent, made)
                made.add(parent)

    def place(self, entry: Member, target: str) -> None:
        """Link (or copy) `entry` to `target`, replacing what is there. TreeChanged when the
        tree's file is not as it was unpacked: it must not reach the venv."""
        src = self.tree.path_of(entry["path"])
        _unchanged(src, entry)
        self.parent_of(target)
        try:
            self._put(src, target, entry["exec"])
        except FileNotFoundError:  # the target's directory was just made: the tree's file is
            raise TreeChanged(src) from None  # what went (replaced by another process meanwhile)

    def place_all(self, links: Sequence[tuple[Member, str]]) -> None:
        """`place` for each (entry, target), their directories made (`make_parents`): per file
        the F8 check (one stat) and one link, with as little Python as possible between the
        system calls (they release the GIL: two install threads overlap them). Anything but a
        new hard link (a target in the way, another file system) takes `place`."""
        if os.sep != "/":
            for entry, target in links:
                self.place(entry, target)
            return
        base = str(self.tree.root) + os.sep
        unchanged, link = _unchanged, os.link
        for i, (entry, target) in enumerate(links):
            if not self.link:  # copying from now on
                for rest in links[i:]:
                    self.place(*rest)
                return
            src = base + entry["path"]
            unchanged(src, entry)
            try:
                link(src, target)
            except FileExistsError:
                self.place(entry, target)
            except FileNotFoundError:  # its directory is made: the tree's file went meanwhile
                raise TreeChanged(src) from None
            except OSError:
                self.place(entry, target)

    def _put(self, src: str, target: str, executable: bool) -> None:
        if self.link:
            try:
                os.link(src, target)
                return
            except FileExistsError:
                os.unlink(target)
                try:
                    os.link(src, target)
                    return
                except FileNotFoundError:
                    raise
                except OSError:
                    self.link = False
            except FileNotFoundError:
                raise
            except OSError:
                self.link = False
        if os.path.lexists(target):  # never write through a hard link into the cache
            os.unlink(target)
        shutil.copyfile(src, target)
        if executable:
            os.chmod(target, 0o755)


def _unchanged(src: str, entry: Member) -> None:
    """The F8 check before a tree file leaves the tree (one stat): TreeChanged unless its size
    and mtime are as unpacked; a tree from before trees were read-only is made read-only."""
    try:
        st = os.stat(src)
    except OSError:  # removed by a cache cleaner, or the tree was replaced (F13, F12)
        raise TreeChanged(src) from None
    if st.st_size != entry["size"] or st.st_mtime_ns != entry["mtime"]:
        raise TreeChanged(src, entry["path"])
    if st.st_mode & 0o222:
        _read_only(src, st.st_mode)


def _read_only(path: str, mode: int) -> None:
    try:
        os.chmod(path, stat.S_IMODE(mode) & ~0o222)
    except OSError:
        pass  # a cache of another user's: linking still works


def _b64(digest: bytes) -> str:
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _unsafe(name: str) -> bool:
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return True
    return ".." in name and ".." in name.replace("\\", "/").split("/")


_handover: dict[tuple[str, str], Any] | None = None
"""What this process wrote into the cache during one sync (`handing_over`), by (kind, path)."""


@contextmanager
def handing_over() -> Iterator[dict[tuple[str, str], Any]]:
    """Within one sync, hand what its fetch stage wrote into the cache (a fresh tree, an
    install's replay record, its planned targets) to the later stages in memory instead of
    reading it back (unsealing and parsing: ~0.1 s of a cold sync of data). Only what this
    process wrote, after the write succeeded; each handed over once (`take_over`), the rest
    dropped when the sync ends, so nothing outlives the sync (a later one reads the cache).
    Yields what is handed over, by (kind, path): an unpacking worker process sends it back."""
    global _handover
    _handover = {}
    try:
        yield _handover
    finally:
        _handover = None


def hand_over(kind: str, path: Path, value: Any) -> None:
    """Keep `value`, exactly what was just written at `path`, for `take_over` (in a sync)."""
    if _handover is not None:
        _handover[(kind, str(path))] = value


def take_over(kind: str, path: Path) -> Any:
    """What this sync wrote at `path` (see `hand_over`), once; None when it did not."""
    return None if _handover is None else _handover.pop((kind, str(path)), None)


def unpack(wheel: Path, sha256: str, *, name: str, cache: Cache, stale: Tree | None = None,
           verify: Callable[[], None] | None = None) -> Tree:
    """The validated tree of `wheel` (whose sha256 the caller verified, or `verify` checks: it
    is called before the wheel is first read, and raises when the wheel is not the one of
    `sha256`), unpacking it on first use. IntegrityError names the wheel and the member when it
    is unsafe or does not match its RECORD. A sealed tree never reads the wheel: what it holds
    was checked against RECORD while unpacking a wheel whose sha256 was `sha256`.

    A tree in the cache is used only when its manifest is well-formed and sealed by this user
    (SEAL), or agrees with the wheel's own RECORD (member names, sha256 and sizes: a tampered
    manifest is never trusted, F4); any other tree, or `stale` (one found changed while installing from it), is unpacked
    afresh. That happens under the cache's lock for the tree, into a temporary directory that
    is renamed over the published tree (the old one renamed aside first): a tree another
    process is linking from is never emptied in place (F12), and a damaged one heals (F13)."""
    # The bucket is made (cache.bucket: a failing mkdir per wheel of a warm sync) only to unpack.
    final = cache.root / Bucket.UNPACKED.value / sha256[:2] / sha256
    if stale is None:
        tree = take_over("tree", final) or _load(final, sha256, wheel, cache, verify)
        if tree is not None:
            return tree
    cache.bucket(Bucket.UNPACKED)
    final.parent.mkdir(parents=True, exist_ok=True)
    with cache.lock(final):
        tree = _load(final, sha256, wheel, cache, verify)
        if tree is not None and (stale is None or tree.token != stale.token):
            return tree  # another process unpacked it (again) meanwhile
        if verify is not None:
            verify()
        _sweep(final)
        tmp = Path(tempfile.mkdtemp(prefix=f".unpack-{sha256}-", dir=final.parent))
        try:
            dist_info, data_dir, entries = _extract(wheel, tmp / "files", name, cache=cache)
            manifest = {"wheel": wheel.name, "dist_info": dist_info, "data_dir": data_dir,
                        "entries": entries, "token": os.urandom(8).hex()}
            _write_manifest(tmp / MANIFEST, tmp / SEAL, manifest, sha256, cache)
            if os.path.lexists(final):
                os.rename(final, final.parent / f".retired-{sha256}-{manifest['token']}")
            os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        _sweep(final)
        # Its entries are the members just checked and written: not checked again.
        tree = _tree(final, sha256, manifest, checked=True)
    if tree is None:
        raise IntegrityError(f"could not unpack {wheel.name} into the cache at {final}")
    hand_over("tree", final, tree)  # the manifest just written: prepare need not read it back
    return tree


def replaced(tree: Tree) -> bool:
    """Whether the tree in the cache is no longer `tree` (another process unpacked it again:
    a change found in `tree` is then that one's, not an edit of the cache)."""
    try:
        data = json.loads((tree.root.parent / MANIFEST).read_bytes())
    except (OSError, ValueError):
        return True
    return not isinstance(data, dict) or data.get("token", "") != tree.token


def _sweep(final: Path) -> None:
    """Remove what unpacking this tree left behind: a killed unpack's temporary directory, a
    tree renamed aside (F30). Called under the tree's lock, so none of it is in use."""
    prefix = final.name
    try:
        names = os.listdir(final.parent)
    except OSError:
        return
    for entry in names:
        if entry.startswith((f".unpack-{prefix}-", f".retired-{prefix}-")):
            shutil.rmtree(final.parent / entry, ignore_errors=True)


def _write_manifest(path: Path, seal_path: Path, manifest: dict[str, Any], sha256: str,
                    cache: Cache) -> None:
    """The manifest and its seal, written before the tree is published. Not fsynced: a power
    loss that leaves either empty or cut short leaves a tree `_load` does not trust (the seal
    does not match, and the manifest is ill-formed or disagrees with RECORD), so it is
    unpacked again (the member files were never fsynced either: one cut short fails the size
    check when linked). The fsync of the manifest alone cost a cold sync of web 42 fsyncs,
    0.42 s on the two unpack threads (strace -T), data ~106."""
    data = json.dumps(manifest).encode("utf-8")
    write_new(path, data)
    seal = cache.seal(_seal_input(sha256, data))
    if seal is not None:  # no user key: the tree is checked against the wheel on each use
        write_new(seal_path, seal)


def _seal_input(sha256: str, manifest: bytes) -> bytes:
    """What a tree's seal covers: its wheel's sha256 (a sealed tree moved under another wheel's
    name is not trusted) and the manifest's bytes."""
    return f"{sha256}\0{hashlib.sha256(manifest).hexdigest()}".encode("ascii")


def _sealed(final: Path, sha256: str, manifest: bytes, cache: Cache) -> bool:
    try:
        blob = (final / SEAL).read_bytes()
    except OSError:
        return False
    return cache.unseal(blob) == _seal_input(sha256, manifest)


def _load(final: Path, sha256: str, wheel: Path, cache: Cache,
          verify: Callable[[], None] | None = None) -> Tree | None:
    """The tree at `final` if its manifest is sealed (see SEAL), or well-formed and agreeing
    with `wheel`'s RECORD (`verify`ed first); None when it is absent, damaged or tampered with
    (it is unpacked afresh)."""
    try:
        raw = (final / MANIFEST).read_bytes()
        data = json.loads(raw)
    except (OSError, ValueError):
        return None
    # Sealed only by an unpack (entries it made from checked members) or below, once `_tree`
    # and `_agrees_with` accepted it: a sealed manifest's entries are not checked again.
    if _sealed(final, sha256, raw, cache):
        return _tree(final, sha256, data, checked=True)
    tree = _tree(final, sha256, data)
    if tree is None:
        return None
    if verify is not None:
        verify()
    if not _agrees_with(tree, wheel):
        return None
    seal = cache.seal(_seal_input(sha256, raw))  # a tree unpacked before trees were sealed
    if seal is not None:
        from lockenv.cache import write_atomic

        try:
            write_atomic(final / SEAL, seal)
        except OSError:
            pass  # a read-only cache: checked against the wheel each time
    return tree


def _tree(final: Path, sha256: str, data: Any, *, checked: bool = False) -> Tree | None:
    """A Tree from a manifest, or None when the manifest is not one lockenv writes. `checked`:
    its entries passed this check before it was sealed (not checked again: 18,000 entries
    were ~0.01-0.02 s of a warm sync of data)."""
    if not isinstance(data, dict):
        return None
    wheel, dist_info, data_dir = data.get("wheel"), data.get("dist_info"), data.get("data_dir")
    entries, token = data.get("entries"), data.get("token", "")
    if not (isinstance(wheel, str) and isinstance(dist_info, str) and isinstance(data_dir, str)
            and isinstance(token, str) and isinstance(entries, list)):
        return None
    for e in () if checked else entries:
        if not (isinstance(e, dict) and isinstance(e.get("path"), str) and not _unsafe(e["path"])
                and isinstance(e.get("hash"), str) and type(e.get("size")) is int
                and isinstance(e.get("exec"), bool) and type(e.get("mtime")) is int):
            return None
    return Tree(root=final / "files", sha256=sha256, wheel_name=wheel, dist_info_dir=dist_info,
                data_dir=data_dir, entries=tuple(entries), token=token)


def _agrees_with(tree: Tree, wheel: Path) -> bool:
    """Whether the tree's manifest says what the wheel (verified by its sha256) says: the same
    members in order, its one dist-info directory (and data directory, if it has one), and each member's sha256 and
    size as RECORD gives them (RECORD itself: its own sha256). What a member's file holds is
    checked when it is linked (size and mtime); this makes the manifest unforgeable."""
    try:
        with zipfile.ZipFile(wheel) as zf:
            names = [i.filename for i in zf.infolist() if not i.filename.endswith("/")]
            record_path = f"{tree.dist_info_dir}/RECORD"
            record_bytes = zf.read(record_path)
    except Exception:  # noqa: BLE001 - any trouble reading it: unpack afresh, which reports it
        return False
    if names != [e["path"] for e in tree.entries]:
        return False
    top = {name.split("/", 1)[0] for name in names}
    if {d for d in top if d.endswith(".dist-info")} != {tree.dist_info_dir} \
            or not {d for d in top if d.endswith(".data")} <= {tree.data_dir}:
        return False
    import csv

    rows: dict[str, list[str]] = {}
    for line in csv.reader(io.StringIO(record_bytes.decode("utf-8", "replace"))):
        if line and line[0]:
            rows[line[0]] = line
    for entry in tree.entries:
        path = entry["path"]
        if path == record_path:
            if entry["hash"] != "sha256=" + _b64(hashlib.sha256(record_bytes).digest()) \
                    or entry["size"] != len(record_bytes):
                return False
            continue
        row = rows.get(path)
        if row is None:
            if not path.startswith(tree.dist_info_dir + "/"):  # only signatures lack a row
                return False
            continue
        digest = row[1] if len(row) > 1 else ""
        if digest.startswith("sha256=") and digest != entry["hash"]:
            return False
        if len(row) > 2 and row[2].isdigit() and int(row[2]) != entry["size"]:
            return False
    return True


def _extract(wheel: Path, dest: Path, name: str, *, cache: Cache) -> tuple[str, str, list[Member]]:
    from installer.sources import WheelFile

    from lockenv.cache import out_of_space

    try:
        # One pass over the zip: installer's WheelFile (over the zip we opened) names the
        # dist-info and data directories and reads RECORD; the members are read from the zip.
        with zipfile.ZipFile(wheel) as zf:
            source = WheelFile(zf)
            dist_info, data_dir = source.dist_info_dir, source.data_dir
            record_text = source.read_dist_info("RECORD")
            return dist_info, data_dir, _extract_members(wheel, zf, dest, name, dist_info, record_text)
    except IntegrityError:
        raise
    except OSError as exc:
        full = out_of_space(exc, cache.root)  # the cache's disk, not the wheel (F27)
        if full is not None:
            raise full from None
        raise IntegrityError(f"{wheel.name} is not a readable wheel: {exc}",
                             context={"package": name}) from None
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise IntegrityError(f"{wheel.name} is not a readable wheel: {exc}",
                             context={"package": name}) from None


def _extract_members(wheel: Path, zf: zipfile.ZipFile, dest: Path, name: str, dist_info: str,
                     record_text: str) -> list[Member]:
    infos = [i for i in zf.infolist() if not i.filename.endswith("/")]
    for info in infos:
        if _unsafe(info.filename):
            raise IntegrityError(
                f"{wheel.name} contains an unsafe path `{info.filename}` and was refused",
                hint="the wheel tries to write outside its install directory",
                context={"package": name},
            )
    import csv  # not at module level: a warm sync reads no RECORD

    records: dict[str, list[str]] = {}
    for line in csv.reader(io.StringIO(record_text)):
        if line and line[0]:
            if _unsafe(line[0]):
                raise IntegrityError(f"{wheel.name}'s RECORD lists an unsafe path `{line[0]}`; refused",
                                     context={"package": name})
            records[line[0]] = line
    issues: list[str] = []
    entries: list[Member] = []
    base = str(dest)
    made: set[str] = set()
    record_path = f"{dist_info}/RECORD"
    for info in infos:
        member = info.filename
        row = records.get(member)
        is_signature = (member.startswith(dist_info + "/")
                        and posixpath.basename(member) in ("RECORD.jws", "RECORD.p7s"))
        checked = member != record_path and not is_signature
        algorithm, _, expected = (row[1] if row is not None and len(row) > 1 else "").partition("=")
        size = row[2] if row is not None and len(row) > 2 else ""
        if checked and row is None:
            issues.append(f"{member} is not listed in RECORD")
            continue
        if checked and (not algorithm or algorithm not in hashlib.algorithms_guaranteed
                        or algorithm in ("md5", "sha1")):
            issues.append(f"{member} has no usable hash in RECORD")
            continue
        target = base + os.sep + (member if os.sep == "/" else member.replace("/", os.sep))
        parent = os.path.dirname(target)
        if parent not in made:
            _make_new_dirs(parent, made)
        mode = info.external_attr >> 16
        executable = bool(mode and stat.S_ISREG(mode) and mode & 0o111)
        limit = int(size) if checked and size.isdigit() else None
        sha, other, written, mtime = _copy_member(zf, info, target, executable, limit,
                                                  algorithm if checked else "sha256")
        if checked:
            if (sha if algorithm == "sha256" else other) != expected:
                issues.append(f"{member}: content does not match its RECORD hash")
            elif size and size != str(written):
                issues.append(f"{member}: size {written}{'+' if limit is not None and written > limit else ''} "
                              f"does not match RECORD's {size}")
        entries.append({"path": member, "hash": "sha256=" + sha,
                        "size": written, "exec": executable, "mtime": mtime})
    if issues:
        raise IntegrityError(
            f"{wheel.name} does not match its own RECORD and was refused",
            details=issues[:10],
            context={"package": name},
            hint="the wheel was altered after it was built; nothing was installed",
        )
    return entries


def _make_new_dirs(path: str, made: set[str]) -> None:
    """Create `path` and what is missing above it in a new tree (`made`: what this unpacking
    created): one mkdir per directory, no stat first (os.makedirs stats each parent)."""
    parent = os.path.dirname(path)
    if parent not in made and parent != path and not os.path.isdir(parent):
        _make_new_dirs(parent, made)
    try:
        os.mkdir(path)
    except FileExistsError:  # a case-insensitive file system: `Foo/` and `foo/`
        if not os.path.isdir(path):
            raise
    made.add(path)


def _copy_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: str, executable: bool,
                 limit: int | None, algorithm: str) -> tuple[str, str, int, int]:
    """Write one member to `target`, hashing it; stops one byte past `limit` (RECORD's size:
    it is refused then). Returns the sha256 and `algorithm` digests (urlsafe b64), the bytes
    written and the file's mtime. A member of at most CHUNK bytes (packed and unpacked: ~all of
    them) is read, inflated, hashed and written whole (`_small_member`), the rest in chunks."""
    if algorithm == "sha256" and info.file_size <= CHUNK and info.compress_size <= CHUNK \
            and info.compress_type in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        data = _small_member(zf, info)
        if limit is not None and len(data) > limit:
            data = data[: limit + 1]
        digest = _b64(hashlib.sha256(data).digest())
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o555 if executable else 0o444)
        try:
            if data:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
            mtime = os.fstat(fd).st_mtime_ns
        finally:
            os.close(fd)
        return digest, digest, len(data), mtime
    return _stream_member(zf, info, target, executable, limit, algorithm)


def _stream_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: str, executable: bool,
                   limit: int | None, algorithm: str) -> tuple[str, str, int, int]:
    """`_copy_member` in CHUNK pieces: bounded memory, whatever the member's size."""
    sha = hashlib.sha256()
    other = hashlib.new(algorithm) if algorithm != "sha256" else None
    written = 0
    # Created read-only (F8): the open descriptor may still write it.
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o555 if executable else 0o444)
    try:
        chunks = _member_bytes(zf, info)
        try:
            for chunk in chunks:
                if limit is not None and written + len(chunk) > limit:
                    chunk = chunk[: limit + 1 - written]
                sha.update(chunk)
                if other is not None:
                    other.update(chunk)
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view):]
                written += len(chunk)
                if limit is not None and written > limit:
                    break
        finally:
            chunks.close()
        mtime = os.fstat(fd).st_mtime_ns
    finally:
        os.close(fd)
    sha_b64 = _b64(sha.digest())
    return sha_b64, (_b64(other.digest()) if other is not None else sha_b64), written, mtime


def _read_at(zf: zipfile.ZipFile, size: int, offset: int) -> bytes:
    """Up to `size` bytes of the archive at `offset`: one pread where there is one (it moves
    no file position, so the two unpack threads' archives need no lock either way)."""
    fh = zf.fp
    assert fh is not None
    if _pread is not None:
        return _pread(fh.fileno(), size, offset)
    fh.seek(offset)  # pragma: no cover - Windows
    return fh.read(size)  # pragma: no cover


_pread = getattr(os, "pread", None)


def _small_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """A stored or deflated member of at most CHUNK bytes, packed and unpacked: its local
    header, name and data in one read, inflated in one call bounded by the directory's size.
    The same checks as `_member_bytes` (it streams the bigger ones): unpacking data's 18,221
    members through that generator cost ~40 us of Python each."""
    if info.flag_bits & 0x1:
        raise zipfile.BadZipFile(f"{info.filename} is encrypted")
    # The local extra field may differ from the directory's: read what it usually is plus
    # some slack, and the rest only when that was not enough.
    guess = _LOCAL_HEADER.size + 2 * len(info.orig_filename) + len(info.extra) + 64
    head = _read_at(zf, guess + info.compress_size, info.header_offset)
    if len(head) < _LOCAL_HEADER.size or head[:4] != b"PK\x03\x04":
        raise zipfile.BadZipFile(f"{info.filename}: bad local file header")
    _, name_length, extra_length = _LOCAL_HEADER.unpack_from(head)
    start = _LOCAL_HEADER.size + name_length + extra_length
    _check_local_name(info, head[_LOCAL_HEADER.size:_LOCAL_HEADER.size + name_length])
    end = start + info.compress_size
    if len(head) < end:
        head += _read_at(zf, end - len(head), info.header_offset + len(head))
        if len(head) < end:
            raise zipfile.BadZipFile(f"{info.filename} is cut short")
    packed = memoryview(head)[start:end]
    if info.compress_type == zipfile.ZIP_STORED:
        out = bytes(packed)
    else:
        decompressobj, inflate_error = inflater()
        inflate = decompressobj(-15)
        try:
            out = inflate.decompress(packed, info.file_size + 1)
        except inflate_error as exc:
            raise zipfile.BadZipFile(f"{info.filename}: {exc}") from None
        if len(out) <= info.file_size and not inflate.eof:
            raise zipfile.BadZipFile(f"{info.filename} is cut short")
    if len(out) > info.file_size:
        raise zipfile.BadZipFile(f"{info.filename} is larger than its directory entry says")
    if len(out) != info.file_size:
        raise zipfile.BadZipFile(f"{info.filename} is smaller than its directory entry says")
    return out


def _check_local_name(info: zipfile.ZipInfo, raw: bytes) -> None:
    """The local header's name must be the directory's, as zipfile checks it."""
    # ASCII names (nearly all) skip the cp437 codec, which is Python code: 5% of unpacking.
    name = raw.decode("ascii" if raw.isascii() else "utf-8" if info.flag_bits & 0x800 else "cp437")
    if name != info.orig_filename:
        raise zipfile.BadZipFile(f"{info.filename}: its directory entry and header name "
                                 f"differ ({name!r})")


_LOCAL_HEADER = struct.Struct("<4s22xHH")
"""A zip local file header: signature, 22 bytes lockenv does not need, name and extra lengths."""


def _member_bytes(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> Generator[bytes, None, None]:
    """A member's bytes, read and inflated straight from the archive in CHUNK pieces, so that
    inflating is isal's (zipfile's reader always uses zlib): unpacking data's 471 MB of
    members took 1.92 s of CPU through zipfile, 1.44 s through this with zlib, 0.84 s with
    isal. The local header is checked as zipfile checks it (signature, the directory's name);
    zipfile's CRC-32 is not computed: every byte written is checked against RECORD's sha256,
    and the wheel against the lock's. Never more than the directory's size (a member
    inflating past it is refused); anything but stored or deflated goes through zipfile."""
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        with zf.open(info) as src:
            yield from iter(lambda: src.read(CHUNK), b"")
        return
    if info.flag_bits & 0x1:
        raise zipfile.BadZipFile(f"{info.filename} is encrypted")
    fh = zf.fp
    assert fh is not None
    fh.seek(info.header_offset)
    header = fh.read(_LOCAL_HEADER.size)
    if len(header) != _LOCAL_HEADER.size or header[:4] != b"PK\x03\x04":
        raise zipfile.BadZipFile(f"{info.filename}: bad local file header")
    _, name_length, extra_length = _LOCAL_HEADER.unpack(header)
    _check_local_name(info, fh.read(name_length))
    fh.seek(extra_length, os.SEEK_CUR)
    left, produced = info.compress_size, 0
    decompressobj, inflate_error = inflater()
    inflate = decompressobj(-15) if info.compress_type == zipfile.ZIP_DEFLATED else None
    while True:
        data = inflate.unconsumed_tail if inflate is not None else b""
        if not data and left > 0:
            data = fh.read(min(CHUNK, left))
            if not data:
                raise zipfile.BadZipFile(f"{info.filename} is cut short")
            left -= len(data)
        try:
            out = inflate.decompress(data, CHUNK) if inflate is not None else data
        except inflate_error as exc:
            raise zipfile.BadZipFile(f"{info.filename}: {exc}") from None
        produced += len(out)
        if produced > info.file_size:
            raise zipfile.BadZipFile(f"{info.filename} is larger than its directory entry says")
        if out:
            yield out
        if inflate is None and left == 0 or inflate is not None and inflate.eof:
            break
        if not out and not data:  # nothing in, nothing out: the deflate stream ends early
            raise zipfile.BadZipFile(f"{info.filename} is cut short")
    if produced != info.file_size:
        raise zipfile.BadZipFile(f"{info.filename} is smaller than its directory entry says")

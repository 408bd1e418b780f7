"""The install layer on a real venv: transactional apply (an error mid-way puts everything back),
RECORD removal that never leaves the venv, and lockenv's own runtime never planned away."""

from __future__ import annotations

import hashlib
import io
import sys
from typing import Any
from pathlib import Path

import pytest
from fixtures.builder import write_wheel
from helpers import snapshot

from lockenv.cache import Cache
from lockenv.environment import plan_venv, probe, realize_venv
from lockenv.errors import SyncError
from lockenv.models import DistFile
from lockenv.ops.wanted import own_runtime
from lockenv.sync.apply import apply, fetch, prepare
from lockenv.sync.install.remove import Stash, remove_distribution
from lockenv.sync.install.wheel import FreshInstall, install_with_installer
from lockenv.sync.plan import plan
from lockenv.sync.scan import scan
from lockenv.sync.selection import Wanted
from lockenv.ui import TerminalReporter


def _reporter() -> TerminalReporter:
    return TerminalReporter(out=io.StringIO(), err=io.StringIO())


def _wanted(wheel: Path, *, downloaded: bool = False) -> Wanted:
    """A locked wheel: a local file, or (`downloaded`) one fetched through the client."""
    sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
    name = wheel.name.split("-")[0]
    f = DistFile(wheel.name, wheel.as_uri(), sha, wheel.stat().st_size, None, None)
    return Wanted(name, "1.0", "wheel", file=f, local_path=None if downloaded else str(wheel), sha256=sha)


class _Downloads:
    """The index client's download, for wheels already on disk (their `file://` URL)."""

    def download(self, file: DistFile, *, on_bytes: Any = None) -> Path:
        from urllib.request import url2pathname

        return Path(url2pathname(file.url.removeprefix("file://")))


def _sync(venv_path: Path, wanted: list[Wanted], fresh: FreshInstall | None = None) -> None:
    venv = realize_venv(plan_venv(venv_path.parent, request=None, requires_python=None,
                                  reporter=_reporter()), _reporter())
    assert venv is not None
    info = probe(venv.python, cache=None)
    p = plan(wanted, scan(info.site_dirs))
    cache = Cache()
    files = fetch(p, cache=cache, lock_path=venv_path.parent / "pylock.toml",
                  client_factory=_Downloads, reporter=_reporter(), probe=info)
    prepared = prepare(p, files, probe=info, venv=venv.path, cache=cache, builder=lambda w, a: a)  # type: ignore[arg-type, return-value]
    apply(p, prepared, probe=info, venv=venv.path, cache=cache, reporter=_reporter(), fresh=fresh)


@pytest.fixture
def wheels(tmp_path: Path) -> dict[str, Path]:
    d = tmp_path / "wheels"
    d.mkdir()
    return {n: write_wheel(d, n, {f"{n}/__init__.py": f"NAME = {n!r}\n".encode(), f"{n}/sub/data.txt": b"x"})
            for n in ("one", "two", "three")}


def test_an_error_mid_apply_puts_the_venv_back(tmp_path: Path, wheels: dict[str, Path]) -> None:
    venv = tmp_path / "proj" / ".venv"
    _sync(venv, [_wanted(wheels["one"])])
    before = snapshot(venv)
    calls = []

    def failing(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full")
        return install_with_installer(*args, **kwargs)

    with pytest.raises(SyncError, match="disk full; the environment was left as it was"):
        _sync(venv, [_wanted(wheels["two"]), _wanted(wheels["three"])], fresh=failing)
    assert len(calls) == 2
    assert snapshot(venv) == before
    assert not (venv / ".lockenv-sync.json").exists()
    assert not list(venv.glob(".lockenv-stash-*"))


def test_removal_follows_record_and_never_leaves_the_venv(tmp_path: Path, wheels: dict[str, Path]) -> None:
    venv = tmp_path / "proj" / ".venv"
    _sync(venv, [_wanted(wheels["one"])])
    info = probe(venv / "bin" / "python", cache=None)
    site = Path(info.paths["purelib"])
    outside = tmp_path / "precious.txt"
    outside.write_text("keep me")
    record = site / "one-1.0.dist-info" / "RECORD"
    rel = Path("..") / ".." / ".." / ".." / ".." / "precious.txt"
    assert (site / rel).resolve() == outside.resolve()
    record.write_text(record.read_text() + f"{rel.as_posix()},,\n")
    (site / "one" / "__pycache__").mkdir()
    (site / "one" / "__pycache__" / "__init__.cpython-311.pyc").write_bytes(b"")
    warnings: list[str] = []
    stash = Stash(venv)
    remove_distribution(site / "one-1.0.dist-info", venv=venv, stash=stash,
                        keep_dirs=[str(site)], warn=warnings.append)
    stash.commit()
    assert outside.read_text() == "keep me"
    assert warnings and "outside the venv; left alone" in warnings[0]
    assert not (site / "one").exists() and not (site / "one-1.0.dist-info").exists()
    assert site.is_dir()


def test_stash_rollback_restores_removed_files(tmp_path: Path, wheels: dict[str, Path]) -> None:
    venv = tmp_path / "proj" / ".venv"
    _sync(venv, [_wanted(wheels["one"])])
    before = snapshot(venv)
    site = Path(probe(venv / "bin" / "python", cache=None).paths["purelib"])
    stash = Stash(venv)
    remove_distribution(site / "one-1.0.dist-info", venv=venv, stash=stash, keep_dirs=[str(site)])
    assert not (site / "one").exists()
    stash.rollback()
    assert snapshot(venv) == before


def test_lockenv_runtime_is_protected_only_in_its_own_venv(tmp_path: Path) -> None:
    own = own_runtime(Path(sys.prefix))
    assert {"lockenv", "packaging", "httpx", "installer"} <= own
    assert own_runtime(tmp_path) == set()


def _tool_wheel(tmp_path: Path) -> Path:
    """A wheel whose install writes more than links: a console script and a `#!python` script
    (both name the venv's interpreter), next to plain modules."""
    d = tmp_path / "tool-wheels"
    d.mkdir(exist_ok=True)
    return write_wheel(d, "tool", {
        "tool/__init__.py": b"def main():\n    print('tool says hi')\n",
        "tool/pkg/deep/data.txt": b"data\n",
        "tool-1.0.dist-info/entry_points.txt": b"[console_scripts]\ntool-hi = tool:main\n",
        "tool-1.0.data/scripts/tool-raw": b"#!python\nprint('raw script')\n",
    })


def _records() -> list[Path]:
    import os

    root = Path(os.environ["LOCKENV_CACHE_DIR"]) / "installs-v1"
    return sorted(root.glob("*/*.json"))


def _run(path: Path) -> str:
    import subprocess

    proc = subprocess.run([str(path)], capture_output=True, text=True, cwd="/")
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def _no_installer(*args: object, **kwargs: object) -> list[dict[str, object]]:
    raise AssertionError("installer ran although the install was recorded")


def test_a_repeated_install_is_replayed_exactly(tmp_path: Path) -> None:
    import shutil

    wheel = _tool_wheel(tmp_path)
    venv = tmp_path / "proj" / ".venv"
    _sync(venv, [_wanted(wheel)])
    first = snapshot(venv)
    assert len(_records()) == 1
    shutil.rmtree(venv)
    _sync(venv, [_wanted(wheel)], fresh=_no_installer)
    assert snapshot(venv) == first  # same files, bytes and modes (RECORD and scripts included)
    assert _run(venv / "bin" / "tool-hi") == "tool says hi"
    assert (venv / "bin" / "tool-raw").read_text() == f"#!{venv / 'bin' / 'python'}\nprint('raw script')\n"
    assert (venv / "bin" / "tool-hi").read_text().startswith(f"#!{venv / 'bin' / 'python'}")


def test_a_downloaded_wheel_goes_through_installer_once(tmp_path: Path) -> None:
    """A wheel downloaded by the sync is run through installer while it is unpacked, writing
    nothing but a record of the install; the link stage replays it (installer does not run
    again), and the venv holds exactly what installer itself writes there."""
    import shutil

    wheel = _tool_wheel(tmp_path)
    venv = tmp_path / "proj" / ".venv"
    _sync(venv, [_wanted(wheel, downloaded=True)], fresh=_no_installer)
    assert len(_records()) == 1
    recorded = snapshot(venv)
    assert _run(venv / "bin" / "tool-hi") == "tool says hi"
    shutil.rmtree(venv)
    for record in _records():
        record.unlink()
    _sync(venv, [_wanted(wheel)])  # a local file: installer installs it in the link stage
    assert snapshot(venv) == recorded


def test_a_venv_at_another_path_replays_the_record_moved_there(tmp_path: Path) -> None:
    """Records are keyed on venv-relative paths: a venv at a new path replays the record
    (installer does not run) and gets exactly what installer writes there: scripts naming its
    own interpreter, RECORD rows matching them."""
    import shutil

    wheel = _tool_wheel(tmp_path)
    one, two = tmp_path / "one" / ".venv", tmp_path / "two-longer" / ".venv"
    _sync(one, [_wanted(wheel)])
    _sync(two, [_wanted(wheel)], fresh=_no_installer)
    assert len(_records()) == 1
    replayed = snapshot(two)
    shutil.rmtree(two)
    for record in _records():
        record.unlink()
    _sync(two, [_wanted(wheel)])  # installer itself, at the same path
    assert snapshot(two) == replayed
    for venv in (one, two):
        assert (venv / "bin" / "tool-raw").read_text().startswith(f"#!{venv / 'bin' / 'python'}\n")
        assert _run(venv / "bin" / "tool-hi") == "tool says hi"


def test_a_record_is_not_moved_where_installer_writes_scripts_differently(tmp_path: Path) -> None:
    """A venv path with a space gets installer's `/bin/sh` trampoline scripts, not a rewritten
    `#!` line: installer runs for it, and the record made there is not moved back either."""
    wheel = _tool_wheel(tmp_path)
    plain, spaced = tmp_path / "plain" / ".venv", tmp_path / "with space" / ".venv"
    _sync(plain, [_wanted(wheel)])
    _sync(spaced, [_wanted(wheel)])
    assert (spaced / "bin" / "tool-hi").read_text().startswith("#!/bin/sh\n")
    assert _run(spaced / "bin" / "tool-hi") == "tool says hi"
    other = tmp_path / "other" / ".venv"
    _sync(other, [_wanted(wheel)])
    assert (other / "bin" / "tool-hi").read_text().startswith(f"#!{other / 'bin' / 'python'}\n")
    assert _run(other / "bin" / "tool-hi") == "tool says hi"


@pytest.mark.parametrize("tamper", ["outside", "not-a-member", "garbage", "ill-typed"])
def test_a_bad_install_record_is_never_replayed(tmp_path: Path, tamper: str) -> None:
    import json
    import shutil

    wheel = _tool_wheel(tmp_path)
    venv = tmp_path / "proj" / ".venv"
    _sync(venv, [_wanted(wheel)])
    first = snapshot(venv)
    [record] = _records()
    outside = tmp_path / "outside.txt"
    cache = Cache()  # records are sealed with the user's key: these are sealed too, so the
    # record's own checks are what refuses them (an unsealed one is never even read)

    def read() -> Any:
        return json.loads(cache.unseal(record.read_bytes()) or b"null")

    if tamper == "garbage":
        record.write_bytes(cache.seal(b"{not json") or b"")
    else:
        data = read()
        if tamper == "outside":
            data["ops"].append({"op": "write", "target": str(outside), "data": "eA==", "exec": False})
        elif tamper == "ill-typed":  # sealed, so only our own bugs could write it: no crash
            links = [op for op in data["ops"] if op["op"] == "link"]
            links[0]["member"] = ["tool/__init__.py"]
            links[-1]["target"] = {"path": links[-1]["target"]}
        else:
            link = next(op for op in data["ops"] if op["op"] == "link")
            link["member"] = "../../../../etc/passwd"
        record.write_bytes(cache.seal(json.dumps(data).encode()) or b"")
    shutil.rmtree(venv)
    _sync(venv, [_wanted(wheel)])
    assert not outside.exists()
    assert snapshot(venv) == first
    ops = read()["ops"]  # installer ran and recorded afresh
    assert all(op["target"].startswith(str(venv)) for op in ops)
    assert all(op.get("member", "").startswith("tool") for op in ops if op["op"] == "link")


def test_a_replayed_install_copies_in_copy_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    wheel = _tool_wheel(tmp_path)
    venv = tmp_path / "proj" / ".venv"
    _sync(venv, [_wanted(wheel)])
    first = snapshot(venv)
    module = Path(probe(venv / "bin" / "python", cache=None).paths["purelib"]) / "tool" / "__init__.py"
    assert module.stat().st_nlink >= 2  # linked from the unpacked tree
    shutil.rmtree(venv)
    monkeypatch.setenv("LOCKENV_LINK_MODE", "copy")
    _sync(venv, [_wanted(wheel)], fresh=_no_installer)
    assert module.stat().st_nlink == 1
    # the same files and bytes; a copy keeps its write bits (only the cache's files lose them, F8)
    def without_write_bits(snap: dict[str, tuple[int, bytes]]) -> dict[str, tuple[int, bytes]]:
        return {path: (mode & ~0o222, data) for path, (mode, data) in snap.items()}

    assert without_write_bits(snapshot(venv)) == without_write_bits(first)


@pytest.mark.parametrize(("paths", "quick"), [
    (["pkg/__init__.py", "pkg/sub/data.txt", "pkg-1.0.dist-info/RECORD", "x"], True),
    (["pkg/.hidden"], False), ([".pth"], False), (["pkg/./x.py"], False), (["pkg//x.py"], False),
    (["pkg/"], False), ([""], False), (["/abs/x.py"], False), (["pkg/../../escape.py"], False),
    (["ok.py", "../escape.py"], False), (["ok.py", "pkg/x\0/../../y"], False),
])
def test_the_all_at_once_path_test_passes_only_paths_that_join_unchanged(
        paths: list[str], quick: bool) -> None:
    """`all_normal` (the quick test of a wheel's planned paths, all at once) holds only when
    every path joined to a venv directory is already what abspath makes of it and starts with
    no dot: anything with an empty, `.` or `..` component or a leading or trailing separator
    (even behind a NUL) takes the exact test, path by path."""
    import os

    from lockenv.sync.install.replay import all_normal

    assert all_normal(paths) is quick
    base = "/venv/lib/python3.12/site-packages/"
    if quick:
        assert all(os.path.abspath(base + p) == base + p for p in paths)

"""The security review's install findings (issue 10; `reviews/security-2026-12.md`), each as a
test named after its finding: hostile wheels built with the fixture builder, installed through
the public sync API into real venvs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from fixtures.builder import write_wheel
from test_sync_install import _sync, _wanted

from lockenv.errors import IntegrityError


def _wheels(tmp_path: Path) -> Path:
    d = tmp_path / "wheels"
    d.mkdir(exist_ok=True)
    return d


def test_f1_console_script_never_writes_through_a_symlink_out_of_the_venv(tmp_path: Path) -> None:
    """bin/python3.X of a venv is a symlink to the base interpreter: a console script of that
    name must not be written through it (here a stand-in symlink, never the real interpreter)."""
    d = _wheels(tmp_path)
    harmless = write_wheel(d, "harmless", {"harmless/__init__.py": b""})
    evil = write_wheel(d, "evilpy", {
        "evilpy/__init__.py": b"def main():\n    pass\n",
        "evilpy-1.0.dist-info/entry_points.txt": b"[console_scripts]\npython-base = evilpy:main\n",
    })
    refuses_script_over_base_link(tmp_path, harmless, evil)


def refuses_script_over_base_link(tmp_path: Path, harmless: Path, evil: Path) -> None:
    """Sync `harmless`, then also `evil`, whose console script is named like the venv's
    symlink to the base interpreter (a stand-in): refused, and the stand-in untouched."""
    venv = tmp_path / "proj" / ".venv"
    _sync(venv, [_wanted(harmless)])
    base = tmp_path / "base-python"
    base.write_bytes(b"\x7fELF the base interpreter")
    (venv / "bin" / "python-base").symlink_to(base)
    with pytest.raises(IntegrityError, match="would replace .*python-base.* outside the venv"):
        _sync(venv, [_wanted(harmless), _wanted(evil)])
    assert base.read_bytes() == b"\x7fELF the base interpreter"
    assert (venv / "bin" / "python-base").resolve() == base.resolve()


def test_f3_console_script_never_writes_into_another_wheels_hard_linked_file(tmp_path: Path) -> None:
    d = _wheels(tmp_path)
    xpkg = write_wheel(d, "xpkg", {
        "xpkg/__init__.py": b"",
        "xpkg-1.0.data/scripts/tool": b"#!/bin/sh\necho this is xpkg tool\n",
    })
    ypkg = write_wheel(d, "ypkg", {
        "ypkg/__init__.py": b"def main():\n    pass\n",
        "ypkg-1.0.dist-info/entry_points.txt": b"[console_scripts]\ntool = ypkg:main\n",
    })
    other, venv = tmp_path / "other" / ".venv", tmp_path / "proj" / ".venv"
    _sync(other, [_wanted(xpkg)])
    _sync(venv, [_wanted(xpkg)])
    _sync(venv, [_wanted(xpkg), _wanted(ypkg)])
    xtool = b"#!/bin/sh\necho this is xpkg tool\n"
    assert (other / "bin" / "tool").read_bytes() == xtool
    cache = Path(os.environ["LOCKENV_CACHE_DIR"])
    [cached] = list(cache.glob("unpacked-v1/*/*/files/xpkg-1.0.data/scripts/tool"))
    assert cached.read_bytes() == xtool
    assert (venv / "bin" / "tool").read_bytes().startswith(b"#!")
    assert (venv / "bin" / "tool").read_bytes() != xtool


def _site(venv: Path) -> Path:
    from lockenv.environment import probe

    return Path(probe(venv / "bin" / "python", cache=None).paths["purelib"])


def test_f9_a_failed_install_restores_what_kept_distributions_had(tmp_path: Path) -> None:
    from test_sync_install import install_with_installer

    from lockenv.errors import SyncError

    d = _wheels(tmp_path)
    nsa = write_wheel(d, "nsa", {"ns/__init__.py": b"# shared\n", "ns/a.py": b"A = 1\n"})
    nsb = write_wheel(d, "nsb", {"ns/__init__.py": b"# shared\n", "ns/b.py": b"B = 1\n"})
    bad = write_wheel(d, "bad", {"bad/__init__.py": b""})
    venv = tmp_path / "proj" / ".venv"
    _sync(venv, [_wanted(nsa)])
    calls: list[int] = []

    def failing(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full")
        return install_with_installer(*args, **kwargs)

    with pytest.raises(SyncError, match="the environment was left as it was"):
        _sync(venv, [_wanted(nsa), _wanted(nsb), _wanted(bad)], fresh=failing)
    ns = _site(venv) / "ns"
    assert sorted(p.name for p in ns.iterdir() if p.name != "__pycache__") == ["__init__.py", "a.py"]
    assert (ns / "__init__.py").read_bytes() == b"# shared\n"


def test_f19_a_record_that_lists_a_directory_never_removes_it(tmp_path: Path) -> None:
    d = _wheels(tmp_path)
    nsa = write_wheel(d, "nsa", {"ns/a.py": b"A = 1\n"})
    nsb = write_wheel(d, "nsb", {"ns/b.py": b"B = 1\n"})
    venv = tmp_path / "proj" / ".venv"
    _sync(venv, [_wanted(nsa), _wanted(nsb)])
    record = _site(venv) / "nsa-1.0.dist-info" / "RECORD"
    record.write_text(record.read_text() + "ns,,\n")  # as a foreign tool might
    _sync(venv, [_wanted(nsb)])
    ns = _site(venv) / "ns"
    assert (ns / "b.py").read_bytes() == b"B = 1\n"
    assert not (ns / "a.py").exists()
    assert not (_site(venv) / "nsa-1.0.dist-info").exists()


def test_f11_a_download_stops_at_the_locked_size(project: Path, index_server: Any) -> None:
    from helpers import lock, sync, write_project

    write_project(project, ["alpha==2.0"])
    lock(project, index_server)
    index_server.inject("alpha-2.0-py3-none-any.whl", "endless", mb=64)
    result = sync(project, index_server)
    assert result.code == 2, result.output
    assert "alpha-2.0-py3-none-any.whl" in result.stderr and "expected size: " in result.stderr
    [params] = index_server.fault_params("endless")
    assert params["sent"] < 16 << 20  # the client hung up at the locked size, not after 64 MiB
    cache = Path(os.environ["LOCKENV_CACHE_DIR"])
    assert not list(cache.rglob(".download-*"))


def _bomb(directory: Path, megabytes: int) -> Path:
    """A valid wheel with one member of `megabytes` MiB of zeros (deflated to a few hundred KiB),
    written in chunks so the test itself never holds it."""
    import base64
    import hashlib
    import zipfile

    path = directory / "bomb-1.0-py3-none-any.whl"
    chunk = bytes(1 << 20)
    digest = hashlib.sha256()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("bomb/data.bin", "w", force_zip64=True) as out:
            for _ in range(megabytes):
                out.write(chunk)
                digest.update(chunk)
        meta = {"bomb/__init__.py": b"",
                "bomb-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: bomb\nVersion: 1.0\n",
                "bomb-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
        rows = [f"bomb/data.bin,sha256={base64.urlsafe_b64encode(digest.digest()).rstrip(b'=').decode()},{megabytes << 20}"]
        for name, data in meta.items():
            zf.writestr(name, data)
            h = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            rows.append(f"{name},sha256={h},{len(data)}")
        zf.writestr("bomb-1.0.dist-info/RECORD", "\n".join(rows + ["bomb-1.0.dist-info/RECORD,,"]) + "\n")
    return path


def test_f10_unpacking_streams_members_in_bounded_memory(tmp_path: Path) -> None:
    import subprocess
    import sys

    wheel = _bomb(_wheels(tmp_path), 256)
    script = (
        "import hashlib, resource, sys\n"
        "from pathlib import Path\n"
        "from lockenv.cache import Cache\n"
        "from lockenv.sync.install.tree import unpack\n"
        "p = Path(sys.argv[1])\n"
        "tree = unpack(p, hashlib.sha256(p.read_bytes()).hexdigest(), name='bomb', cache=Cache())\n"
        "assert any(e['path'] == 'bomb/data.bin' and e['size'] == 256 << 20 for e in tree.entries)\n"
        # VmHWM, not ru_maxrss: ru_maxrss survives exec, so a child forked from a big pytest
        # worker reports the worker's size (173 MB seen in a full suite run).
        "status = Path('/proc/self/status')\n"
        "hwm = [l for l in status.read_text().splitlines() if l.startswith('VmHWM:')] if status.exists() else []\n"
        "print(hwm[0].split()[1] if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n")
    proc = subprocess.run([sys.executable, "-c", script, str(wheel)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout) < 128 << 10  # KiB: well under the 256 MiB member

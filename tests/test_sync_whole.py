"""A sync into an empty venv keeps one sealed install plan of what it did, and the next one with
the same wheels and interpreter (at any venv path) installs from that plan alone (no per-wheel manifest,
planned targets or replay record is read). The plan is trusted as the entries it replaces: a
forged or moved one is refused, a changed tree file is caught before it is linked (F8), a
killed replay is repaired, and the venv it makes is the per-wheel install's, byte for byte."""

from __future__ import annotations

import marshal
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    env_for,
    installed,
    lock,
    pyenv_pythons,
    run_lockenv,
    site_packages,
    snapshot,
    spy_venv_shape,
    sync,
    write_project,
)


def _cache() -> Path:
    return Path(os.environ["LOCKENV_CACHE_DIR"])


def _plans() -> list[Path]:
    return sorted(p for p in (_cache() / "installs-v1" / "whole").rglob("*") if p.is_file())


def _per_wheel_entries() -> list[Path]:
    """The per-wheel replay records and planned targets (not the sealed plans)."""
    return [p for p in (_cache() / "installs-v1").rglob("*.json") if "whole" not in p.parts]


def _venv_files(venv: Path) -> dict[str, tuple[int, bytes]]:
    """Every file of the venv but the no-op's state (its shape holds inode numbers)."""
    files = snapshot(venv)
    files.pop(".lockenv-state.json")
    return files


def _synced(project: Path, srv: Any, deps: list[str], **kwargs: Any) -> dict[str, tuple[int, bytes]]:
    write_project(project, deps, **kwargs)
    lock(project, srv)
    result = sync(project, srv)
    assert result.code == 0, result.output
    return _venv_files(project / ".venv")


def _verified(project: Path, srv: Any) -> None:
    result = run_lockenv("verify", cwd=project, env=env_for(srv))
    assert result.code == 0, result.output


def _split(path: Path) -> tuple[bytes, Any]:
    """A plan file: (the seal and key line before the plan, the plan as marshal reads it)."""
    blob = path.read_bytes()
    start = blob.index(path.name.encode()) + len(path.name) + 1
    return blob[:start], marshal.loads(blob[start:])


def test_a_sync_into_an_empty_venv_installs_from_the_sealed_plan_alone(
        project: Path, index_server: Any) -> None:
    """The second sync into an empty venv reads no per-wheel record (none is there, and none is
    written again: installer did not run), and its venv is the first one's byte for byte:
    every file's bytes and mode, RECORD, INSTALLER, the console script."""
    before = _synced(project, index_server, ["alpha", "feat[fast]"])
    assert len(_plans()) == 1
    assert "bin/alpha-cli" in before
    shutil.rmtree(project / ".venv")
    for entry in _per_wheel_entries():
        entry.unlink()
    result = sync(project, index_server)
    assert result.code == 0, result.output
    assert result.stdout.splitlines() == ["+ alpha==2.0", "+ beta==2.0", "+ feat==1.0", "+ gamma==1.2"]
    assert not _per_wheel_entries()
    assert _venv_files(project / ".venv") == before
    _verified(project, index_server)
    assert sync(project, index_server).stderr.startswith("Environment is up to date")


def test_a_forged_plan_is_refused_and_the_sync_installs_wheel_by_wheel(
        project: Path, index_server: Any) -> None:
    """F4: a plan rewritten to install other bytes (its seal kept) is not used: the sync
    installs wheel by wheel, the venv gets the wheels' own files, and verify agrees."""
    before = _synced(project, index_server, ["alpha"])
    shutil.rmtree(project / ".venv")
    (path,) = _plans()
    head, plan = _split(path)
    evil = b"#!/bin/sh\necho owned by a poisoned cache\n"
    writes = [(target, evil if target.endswith("alpha-cli") else data, exe, script)
              for target, data, exe, script in plan[4]]
    assert writes != plan[4]
    path.write_bytes(head + marshal.dumps((*plan[:4], writes, *plan[5:])))
    result = sync(project, index_server)
    assert result.code == 0, result.output
    assert _venv_files(project / ".venv") == before
    assert b"owned" not in (project / ".venv" / "bin" / "alpha-cli").read_bytes()
    _verified(project, index_server)
    assert b"owned" not in path.read_bytes()  # the sync sealed its own plan again


def test_a_plan_is_used_only_for_its_own_selection(project: Path, index_server: Any) -> None:
    """A plan is keyed by what the sync installs: another selection (an extra) gets its own
    plan, each sync installs its own selection, and a plan moved to another selection's key
    (sealed, but for another key) is refused."""
    _synced(project, index_server, ["alpha"], extras={"fast": ["feat[fast]"]})
    plain = installed(project / ".venv")
    assert "feat" not in plain
    shutil.rmtree(project / ".venv")
    assert sync(project, index_server, "--extra", "fast").code == 0
    assert installed(project / ".venv") == {"alpha": "2.0", "beta": "2.0", "feat": "1.0", "gamma": "1.2"}
    plans = _plans()
    assert len(plans) == 2
    shutil.rmtree(project / ".venv")
    assert sync(project, index_server).code == 0
    assert installed(project / ".venv") == plain
    shutil.rmtree(project / ".venv")
    with_extra = next(p for p in plans if "feat" in _split(p)[1][1])
    without = next(p for p in plans if p != with_extra)
    shutil.copyfile(with_extra, without)  # the bigger selection's plan under the smaller's key
    result = sync(project, index_server)
    assert result.code == 0, result.output
    assert installed(project / ".venv") == plain
    _verified(project, index_server)


def _tree_file(member: str) -> Path:
    for manifest in (_cache() / "unpacked-v1").glob("*/*/manifest.json"):
        path = manifest.parent / "files" / member
        if path.is_file():
            return path
    raise AssertionError(f"no unpacked tree holds {member}")


def test_a_tree_file_changed_under_a_plan_is_never_linked(project: Path, index_server: Any) -> None:
    """F8: a tree file edited after the plan was made (the plan's size and mtime no longer
    hold) is not linked: the sync installs wheel by wheel, which unpacks the tree again from
    the verified wheel and says so; the venv holds the wheel's bytes."""
    before = _synced(project, index_server, ["alpha", "feat[fast]"])
    shutil.rmtree(project / ".venv")
    changed = _tree_file("alpha/__init__.py")
    original = changed.read_bytes()
    changed.chmod(0o644)
    changed.write_bytes(b"print('edited in the cache')\n")
    result = sync(project, index_server)
    assert result.code == 0, result.output
    assert "was changed since it was unpacked" in result.stderr
    assert (site_packages(project / ".venv") / "alpha" / "__init__.py").read_bytes() == original
    assert _venv_files(project / ".venv") == before
    _verified(project, index_server)


def test_a_killed_replay_of_a_plan_is_repaired_by_the_next_sync(project: Path, index_server: Any) -> None:
    """A sync killed while it installs from a plan (after the journal, between two wheels) is
    repaired by the next, which installs from the plan again (no per-wheel record is read or
    written by either)."""
    before = _synced(project, index_server, ["alpha", "feat[fast]"])
    shutil.rmtree(project / ".venv")
    for entry in _per_wheel_entries():
        entry.unlink()
    result = sync(project, index_server, LOCKENV_TEST_CRASH_AFTER="2")
    assert result.code == -9, result.output
    assert (project / ".venv" / ".lockenv-sync.json").exists()
    assert run_lockenv("verify", cwd=project, env=env_for(index_server)).code == 1
    result = sync(project, index_server)
    assert result.code == 0, result.output
    assert "did not finish" in result.stderr
    assert not _per_wheel_entries()
    assert _venv_files(project / ".venv") == before
    _verified(project, index_server)


def test_a_plan_is_used_only_for_its_own_interpreter(project: Path, index_server: Any) -> None:
    """A venv of another Python (at the same path) gets its own plan: each sync installs into
    its own interpreter's site-packages, and one interpreter's plan moved to the other's key
    (sealed, but for another key) is refused."""
    minors = [Path(p).parent.parent.name.rsplit(".", 1)[0] for p in pyenv_pythons("3.1[0-9]")]
    if len(set(minors)) < 2:
        pytest.skip("needs two Pythons 3.10+ under pyenv")
    first, second = sorted(set(minors))[-2:]
    write_project(project, ["alpha"])
    lock(project, index_server)
    for minor in (first, second):
        shutil.rmtree(project / ".venv", ignore_errors=True)
        result = sync(project, index_server, "--python", minor)
        assert result.code == 0, result.output
        assert site_packages(project / ".venv").parent.name == f"python{minor}"
    plans = _plans()
    assert len(plans) == 2
    mine = max(plans, key=lambda p: p.stat().st_mtime_ns)  # the second Python's
    other = next(p for p in plans if p != mine)
    shutil.copyfile(other, mine)
    shutil.rmtree(project / ".venv")
    result = sync(project, index_server, "--python", second)
    assert result.code == 0, result.output
    assert site_packages(project / ".venv").parent.name == f"python{second}"
    assert "alpha" in installed(project / ".venv")
    _verified(project, index_server)


def test_a_cache_keeps_the_newest_plans_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             index_server: Any) -> None:
    """Each selection has its own plan (every lock change makes a new one): a cache keeps the
    newest MAX_PLANS plans, not one more per selection for ever."""
    from lockenv.ops.sync import SyncOptions, sync as sync_api
    from lockenv.sync.install import whole
    from helpers import verbose_reporter

    monkeypatch.setattr(whole, "MAX_PLANS", 2)
    monkeypatch.setenv("LOCKENV_INDEX_URL", index_server.json_url)
    sizes = []
    for i, deps in enumerate([["alpha"], ["gamma"], ["beta"], ["alpha", "gamma"]]):
        project = write_project(tmp_path / f"checkout{i}", deps)
        lock(project, index_server)
        reporter, _ = verbose_reporter()
        assert sync_api(SyncOptions(project=project), reporter=reporter) == 0
        assert deps[0] in installed(project / ".venv")
        sizes.append(len(_plans()))
    assert sizes == [1, 2, 2, 2]


def test_no_plan_is_kept_where_the_install_copies(project: Path, monkeypatch: pytest.MonkeyPatch,
                                                  index_server: Any) -> None:
    """Where the cache cannot be linked from (another file system: the install copies), no plan
    is kept, and one kept before is forgotten: a plan would try to link, fail and fall back on
    every sync."""
    import errno

    from lockenv.ops.sync import SyncOptions, sync as sync_api
    from helpers import verbose_reporter

    write_project(project, ["alpha", "feat[fast]"])
    lock(project, index_server)
    monkeypatch.setenv("LOCKENV_INDEX_URL", index_server.json_url)
    real_link = os.link

    def cross_device(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        if str(src).startswith(str(_cache())):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        real_link(src, dst, *args, **kwargs)

    def synced(copies: bool) -> None:
        shutil.rmtree(project / ".venv", ignore_errors=True)
        with monkeypatch.context() as patched:
            if copies:
                patched.setattr(os, "link", cross_device)
            assert sync_api(SyncOptions(project=project), reporter=verbose_reporter()[0]) == 0
        module = site_packages(project / ".venv") / "alpha" / "__init__.py"
        assert (module.stat().st_nlink == 1) == copies

    synced(copies=True)
    assert not _plans()
    synced(copies=False)
    assert len(_plans()) == 1
    synced(copies=True)  # the plan's first link fails: wheel by wheel, copies, plan forgotten
    assert not _plans()
    _verified(project, index_server)


def test_a_plan_made_at_one_path_serves_a_venv_at_another_byte_for_byte(
        tmp_path: Path, index_server: Any) -> None:
    """A plan is venv-relative: a copy of the project at a new path (a CI runner's new
    checkout) installs from the first one's plan at once (no per-wheel record is read or
    written), and gets exactly the venv the per-wheel install makes there: every file's bytes
    and mode, the console script's `#!` line naming its own interpreter, RECORD's row for it."""
    first = write_project(tmp_path / "a", ["alpha", "feat[fast]"])
    lock(first, index_server)
    assert sync(first, index_server).code == 0
    assert len(_plans()) == 1
    second = tmp_path / "elsewhere" / "b"
    shutil.copytree(first, second, ignore=shutil.ignore_patterns(".venv"))
    for entry in _per_wheel_entries():
        entry.unlink()
    result = sync(second, index_server)
    assert result.code == 0, result.output
    assert not _per_wheel_entries()  # the plan alone served it
    assert len(_plans()) == 1
    script = (second / ".venv" / "bin" / "alpha-cli").read_bytes()
    assert script.startswith(f"#!{second / '.venv' / 'bin' / 'python'}\n".encode())
    served = _venv_files(second / ".venv")
    _verified(second, index_server)
    # The same project synced wheel by wheel at that path: the same venv, byte for byte.
    for plan in _plans():
        plan.unlink()
    shutil.rmtree(second / ".venv")
    assert sync(second, index_server).code == 0
    assert _per_wheel_entries()
    assert _venv_files(second / ".venv") == served
    assert all(str(first) not in data.decode("utf-8", "replace") for _, data in served.values())


def test_writes_go_with_the_wheel_that_makes_their_directory_unless_two_targets_are_one() -> None:
    """The linking threads make each wheel's writes (RECORD, INSTALLER, scripts) beside its
    links, and list the subtrees it alone makes; when a write's target is another wheel's
    linked file (or another write's), every write waits for every link, in the plan's order,
    as the per-wheel install ordered them, and no subtree is listed before its writes."""
    from lockenv.sync.install import whole

    sp = "lib/python3.12/site-packages"
    wheels: list[Any] = [
        ("/t/a/files/", sp + "/", [("a/x.py", 1, 1, None)], (0, 0, 0, 0),
         ["lib", "lib/python3.12", f"{sp}/a", f"{sp}/a-1.dist-info", "share", "share/x"]),
        ("/t/b/files/", sp + "/", [("b/y.py", 1, 1, None), ("b/sub/z.py", 1, 1, None)], (0, 0, 0, 0),
         [f"{sp}/b", f"{sp}/b/sub", f"{sp}/b-1.dist-info", "share", "share/x", "share/x/b"]),
    ]
    writes: list[Any] = [(f"{sp}/a-1.dist-info/RECORD", b"a", False, False),
                         ("bin/a-cli", b"#!", True, True),
                         (f"{sp}/b-1.dist-info/RECORD", b"b", False, False)]
    roots = frozenset({"lib", "lib/python3.12", sp, "bin"})
    tasks, after = whole._tasks(wheels, writes, roots, True)
    assert after == []
    assert [(t[0], t[1], sorted(t[2])) for t in tasks] == [
        (wheels[0], [writes[0]], [f"{sp}/a", f"{sp}/a-1.dist-info"]),
        (wheels[1], [writes[2]], [f"{sp}/b", f"{sp}/b-1.dist-info", "share/x/b"]),
        (None, [writes[1]], []),
    ]
    clash = [*writes, (f"{sp}/b/y.py", b"mine", False, False)]  # b's linked file, written over
    tasks, after = whole._tasks(wheels, clash, roots, True)
    assert after == clash
    assert [(t[0], t[1], t[2]) for t in tasks] == [(wheels[0], [], []), (wheels[1], [], [])]


_TWO_PROCESSES = """
import json, os, sys, time
from lockenv.sync.install import whole
root, marks = sys.argv[1], sys.argv[2]
parent, fail_in_child, call = os.getpid(), [], ["first"]
def task(i, ok=True):
    d = f"pkg{i}" if ok else f"missing{i}/below"
    return (None, [(f"{d}/f{j}.py", b"x" * j, False, False) for j in range(i + 1)], [f"pkg{i}"] if ok else [])
do_task = whole._do_task
def recorded(task, root, walked):  # which process did each task
    here = os.path.join(marks, call[0])
    os.makedirs(here, exist_ok=True)
    name = task[1][0][0].split("/")[0]
    open(os.path.join(here, f"{name}.{os.getpid()}"), "w").close()
    deadline, mine = time.monotonic() + 10, f".{os.getpid()}"
    while time.monotonic() < deadline and all(m.endswith(mine) for m in os.listdir(here)):
        time.sleep(0.005)  # until the other process has taken a task of this call too (however
        # slow the child is to start, or the parent to take its first task under load)
    if fail_in_child and os.getpid() != parent:
        raise FileNotFoundError(2, "No such file or directory", f"{root}/{name}/in-the-child")
    do_task(task, root, walked)
whole._do_task = recorded
for i in range(12):
    os.makedirs(os.path.join(root, f"pkg{i}"))
walked = {}
done = whole._in_two_processes([task(i) for i in range(12)], root, walked)
out = {"done": done, "walked": sorted(walked), "parent": parent,
       "marks": sorted(os.listdir(os.path.join(marks, "first")))}
call[0] = "second"
try:
    whole._in_two_processes([task(i) for i in range(12)] + [task(20, ok=False)], root, {})
except FileNotFoundError as exc:
    out["error"] = [exc.errno, exc.filename]
call[0] = "third"
fail_in_child.append(True)
try:
    whole._in_two_processes([task(i) for i in range(12)], root, {})
except FileNotFoundError as exc:
    out["child_error"] = exc.filename
print(json.dumps(out))
"""


def test_a_plan_is_placed_by_two_processes_and_the_failing_one_s_error_is_raised(tmp_path: Path) -> None:
    """A process running no other thread places a plan's tasks with a child forked from it:
    each task is done once, by one of the two (both take some); the subtrees the child listed
    for the no-op's shape come back; and an error of a task is raised as that task raised it,
    whichever process took it (a write into a directory that does not exist), the child's
    too."""
    import json
    import subprocess
    import sys

    root, marks = tmp_path / "venv", tmp_path / "marks"
    root.mkdir()
    marks.mkdir()
    result = subprocess.run([sys.executable, "-c", _TWO_PROCESSES, str(root), str(marks)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["done"] is True
    assert out["walked"] == sorted(f"{root}/pkg{i}" for i in range(12))
    done_by = {mark.split(".")[0]: int(mark.split(".")[1]) for mark in out["marks"]}
    assert len(out["marks"]) == len(done_by) == 12  # each task once
    assert out["parent"] in done_by.values() and len(set(done_by.values())) == 2
    for i in range(12):
        assert sorted(p.name for p in (root / f"pkg{i}").iterdir()) == sorted(f"f{j}.py" for j in range(i + 1))
        assert (root / f"pkg{i}" / f"f{i}.py").read_bytes() == b"x" * i
    assert out["error"] == [2, f"{root}/missing20/below/f0.py"]
    assert out["child_error"].startswith(f"{root}/pkg") and out["child_error"].endswith("/in-the-child")


def test_what_a_forked_share_says_comes_back_as_it_was_raised(tmp_path: Path) -> None:
    """The child's outcome, marshalled through a pipe: what it collected, or its error (an
    OSError with its errno and file name, a known class as that class, anything else as an
    internal error, nothing said as Lost), so the undo and the message are the ones a
    thread's error would give."""
    import os

    from lockenv.sync.install import forks, whole

    def outcome(do: Any, collect: Any = lambda: None) -> object:
        queue_read, queue_write = os.pipe()
        os.write(queue_write, b"".join(i.to_bytes(4, "little") for i in range(3)))
        os.close(queue_write)
        answer_read, answer_write = os.pipe()
        forks._child(queue_read, do, collect, (whole.Unusable,), answer_write)
        os.close(queue_read)
        with os.fdopen(answer_read, "rb") as answer:
            said = answer.read()
        try:
            return forks._outcome(said, (whole.Unusable,))
        except Exception as exc:  # noqa: BLE001 - the test looks at it
            return exc

    seen: list[int] = []
    assert outcome(seen.append, lambda: {"a": [1, "x"]}) == {"a": [1, "x"]} and seen == [0, 1, 2]

    def missing(i: int) -> None:
        open(tmp_path / "nowhere" / "x.py", "rb")

    error = outcome(missing)
    assert isinstance(error, FileNotFoundError) and error.filename == str(tmp_path / "nowhere" / "x.py")

    def stale(i: int) -> None:
        raise whole.Unusable("unpacked again")

    error = outcome(stale)
    assert type(error) is whole.Unusable and str(error) == "unpacked again"

    def bug(i: int) -> None:
        raise KeyError("x")

    error = outcome(bug)
    assert type(error) is RuntimeError and "KeyError" in str(error)
    try:
        forks._outcome(b"", ())
    except forks.Lost:
        pass
    else:
        raise AssertionError("a child that said nothing is Lost")


def test_a_plan_moves_a_script_only_with_the_one_record_that_lists_it_as_written() -> None:
    """A script's `#!` line is rewritten for another venv root only with the RECORD row that
    lists it as written (its path from RECORD's scheme directory, its sha256 and size): in none,
    in two, or with another hash, the plan cannot be moved. RECORD rows of a CRLF or quoted
    form, and RECORDs of other wheels, are told apart from it."""
    import base64
    import hashlib

    from lockenv.sync.install import whole

    root, sp = "/v", "lib/python3.12/site-packages"
    python = root + "/bin/python"
    script = f"#!{python}\nimport a\n".encode()

    def row(data: bytes, path: str = "../../../bin/a-cli", end: bytes = b"\n") -> bytes:
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
        return path.encode() + b",sha256=" + digest + b",%d" % len(data) + end

    def plan(*records: bytes) -> list[Any]:
        writes: list[Any] = [(f"{sp}/w{i}-1.dist-info/RECORD", text, False, False)
                             for i, text in enumerate(records)]
        return [*writes, ("bin/a-cli", script, True, True)]

    other = b"w1/x.py,sha256=abc,3\n"
    assert whole._movable(plan(b"a/__init__.py,,\n" + row(script), other), root, python) == [(2, 0)]
    assert whole._movable(plan(other, row(script)), root, python) == [(2, 1)]
    assert whole._movable(plan(other, row(script, end=b"")), root, python) is None  # no "\n" end
    assert whole._movable(plan(other, other), root, python) is None  # listed nowhere
    assert whole._movable(plan(row(script), row(script)), root, python) is None  # twice over
    assert whole._movable(plan(row(b"other bytes"), other), root, python) is None
    assert whole._movable(plan(b'"../../../bin/a-cli",sha256=x,1\n', other), root, python) is None
    assert whole._movable(plan(row(script, path="../../bin/a-cli"), other), root, python) is None
    # The row with CRLF is found (and fixed_record then decides: it wants LF rows).
    assert whole._movable(plan(row(script, end=b"\r\n"), other), root, python) is None


def test_a_full_sync_from_a_plan_keeps_the_shape_its_threads_listed(
        project: Path, monkeypatch: pytest.MonkeyPatch, index_server: Any) -> None:
    """The full sync installing from a plan (no warm entry asked) also keeps the subtrees its
    linking threads listed for the no-op's shape: the shape equals a full walk of the venv, and
    the next sync is a no-op."""
    from lockenv import cache
    from lockenv.ops.sync import SyncOptions, sync as sync_api
    from lockenv.sync import state
    from helpers import verbose_reporter

    monkeypatch.setattr(cache, "_USER_KEY", [])
    write_project(project, ["alpha", "feat[fast]"])
    lock(project, index_server)
    monkeypatch.setenv("LOCKENV_INDEX_URL", index_server.json_url)
    given, full_walk = spy_venv_shape(monkeypatch)
    for _ in range(2):  # wheel by wheel (the plan kept), then from the plan
        shutil.rmtree(project / ".venv", ignore_errors=True)
        assert sync_api(SyncOptions(project=project), reporter=verbose_reporter()[0]) == 0
    assert len(_plans()) == 1
    assert given[0] == 0 and given[-1] > 0
    kept = state.read_state(project / ".venv")
    assert kept is not None and kept["shape"] == full_walk(project / ".venv")
    assert sync(project, index_server).stderr.startswith("Environment is up to date")


def test_only_targets_outside_an_empty_site_directory_are_looked_for_in_the_way(tmp_path: Path) -> None:
    """A plan's targets under a site directory found empty cannot be in the way, so they are
    not asked about one by one; once that directory holds anything, every target is."""
    from lockenv.sync.install import whole

    site, scripts = tmp_path / "lib" / "site-packages", tmp_path / "bin"
    site.mkdir(parents=True)
    scripts.mkdir()
    paths = {"purelib": str(site), "platlib": str(site), "scripts": str(scripts)}
    targets = [f"{site}/a/__init__.py", f"{site}/a-1.dist-info/RECORD", f"{scripts}/a-cli"]
    assert whole._may_be_there(targets, paths) == [f"{scripts}/a-cli"]
    (site / "stray.pth").write_text("")
    assert whole._may_be_there(targets, paths) == targets
    assert whole._may_be_there(targets, {**paths, "purelib": str(tmp_path / "missing"),
                                         "platlib": str(tmp_path / "missing")}) == targets

"""`lockenv lock` through the CLI against the fixture index: output, relocks, freshness, bad
input, index failures, and interop with pip and uv."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.pylock import Pylock

from helpers import run_fastpath_main, run_lockenv
from fixtures.index import IndexServer
from lockenv.index.client import PROBE_TRIES

PYPROJECT = """\
[project]
name = "app"
version = "0.1"
requires-python = ">=3.10,<3.14"
dependencies = {deps}
"""


def write(project: Path, deps: list[str], extra: str = "") -> None:
    (project / "pyproject.toml").write_text(PYPROJECT.format(deps=repr(deps).replace("'", '"')) + extra)


def lock(project: Path, srv: IndexServer, *args: str, url: str | None = None):  # type: ignore[no-untyped-def]
    return run_lockenv("lock", *args, cwd=project, env={"LOCKENV_INDEX_URL": url or srv.json_url})


def pins(project: Path) -> dict[str, list[str]]:
    data = tomllib.loads((project / "pylock.toml").read_text())
    out: dict[str, list[str]] = {}
    for p in data["packages"]:
        out.setdefault(p["name"], []).append(p["version"])
    return out


def test_lock_writes_a_valid_deterministic_pylock(index_server: IndexServer, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "deeper" / "b"
    for d in (a, b):
        d.mkdir(parents=True)
        write(d, ["alpha", "marked", "native"], '\n[project.optional-dependencies]\nfeat = ["feat[all]"]\n')
    ra = lock(a, index_server)
    assert ra.code == 0, ra.output
    assert "Resolved" in ra.stderr and "+ alpha==2.0 (`app` requires `alpha`)" in ra.stderr
    rb = lock(b, index_server)
    assert rb.code == 0, rb.output
    text = (a / "pylock.toml").read_text()
    assert text == (b / "pylock.toml").read_bytes().decode(), "same inputs must give identical bytes"
    data = tomllib.loads(text)
    lock_obj = Pylock.from_dict(data)
    lock_obj.validate()
    assert data["created-by"] == "lockenv"
    assert data["requires-python"]
    assert "environments" not in data
    assert data["extras"] == ["feat"]
    assert all(p["name"] != "app" for p in data["packages"])
    for p in data["packages"]:
        for f in [*p.get("wheels", []), *([p["sdist"]] if "sdist" in p else [])]:
            assert {"name", "url", "size", "upload-time", "hashes"} <= set(f)
            assert len(f["hashes"]["sha256"]) == 64
    assert "lockenv 0" not in text and "generated" not in text.lower()
    assert data["tool"]["lockenv"]["dependencies"] == ["alpha", "marked", "native"]


def test_json_and_simple_api_give_the_same_lock(index_server: IndexServer, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        d.mkdir()
        write(d, ["alpha", "native", "timely"])
    assert lock(a, index_server).code == 0
    rb = lock(b, index_server, url=index_server.simple_url)
    assert rb.code == 0, rb.output
    pa = [(p["name"], p["version"], p.get("marker"), [w["hashes"]["sha256"] for w in p.get("wheels", [])])
          for p in tomllib.loads((a / "pylock.toml").read_text())["packages"]]
    pb = [(p["name"], p["version"], p.get("marker"), [w["hashes"]["sha256"] for w in p.get("wheels", [])])
          for p in tomllib.loads((b / "pylock.toml").read_text())["packages"]]
    assert pa == pb


def test_cold_lock_reads_each_wheel_s_metadata_with_one_request(index_server: IndexServer,
                                                                 project: Path) -> None:
    """The JSON API advertises no `.metadata` file; the fixture's file host serves them, but
    not `nometa`'s. Every wheel's metadata takes one request (a `.metadata` file, or one
    suffix range request), `nometa`'s at most two (a 404, then the range request)."""
    write(project, ["alpha", "native", "nometa"])
    result = lock(project, index_server)
    assert result.code == 0, result.output
    wheels: dict[str, list[tuple[str, int]]] = {}
    for r in index_server.requests:
        name = r.path.rsplit("/", 1)[-1]
        if ".whl" in name:
            kind = "metadata" if name.endswith(".metadata") else "range"
            assert kind == "metadata" or (r.headers.get("range") or "").startswith("bytes=-")
            wheels.setdefault(name.removesuffix(".metadata"), []).append((kind, r.status))
    assert len(wheels) >= 10
    for name, asked in wheels.items():
        if name.startswith("nometa-"):
            assert asked in ([("metadata", 404), ("range", 206)], [("range", 206)]), name
        else:
            assert asked in ([("metadata", 200)], [("range", 206)]), name


def test_cold_lock_on_a_host_without_metadata_files_probes_once(index_server: IndexServer,
                                                                 project: Path) -> None:
    """A file host that 404s every unadvertised `.metadata` (some mirrors do, slowly): a few
    probes, one at a time, decide, and every wheel is then read by one suffix range request.
    Before, every wheel read at once probed first (12 404s here)."""
    index_server.inject("/files/", "no-metadata")
    write(project, ["alpha", "native", "nometa"])
    result = lock(project, index_server)
    assert result.code == 0, result.output
    probes = [r for r in index_server.requests if r.path.endswith(".whl.metadata")]
    reads = [r for r in index_server.requests if r.path.endswith(".whl")]
    assert len(probes) == PROBE_TRIES and {r.status for r in probes} == {404}
    assert len(reads) >= 10 and len({r.path for r in reads}) == len(reads)
    assert all(r.status == 206 and (r.headers.get("range") or "").startswith("bytes=-")
               for r in reads)


def test_noop_relock_makes_no_request_and_no_write(index_server: IndexServer, project: Path) -> None:
    write(project, ["alpha"])
    assert lock(project, index_server).code == 0
    path = project / "pylock.toml"
    before = (path.stat().st_mtime_ns, path.read_bytes())
    index_server.clear_log()
    result = lock(project, index_server)
    assert result.code == 0
    assert "up to date" in result.stderr
    assert index_server.requests == []
    assert (path.stat().st_mtime_ns, path.read_bytes()) == before


def test_a_lock_process_ends_with_its_output_exit_code_and_exit_handlers(
        index_server: IndexServer, project: Path, tmp_path: Path) -> None:
    """A lock ends its process without the interpreter's teardown (`fastpath._exit_now`), as a
    sync does: what it printed into a pipe still arrives, its exit code is kept, and the exit
    handlers still run (atexit: weakref finalizers, filelock's), for a lock with work, a no-op
    and a failed lock alike."""
    write(project, ["alpha"])
    marker = tmp_path / "atexit-ran"
    env = {**os.environ, "LOCKENV_INDEX_URL": index_server.json_url}
    runs = [run_fastpath_main("lock", cwd=project, env=env, atexit_marker=marker)
            for _ in range(2)]  # a lock with work, then a no-op
    write(project, ["no-such-project"])
    runs.append(run_fastpath_main("lock", cwd=project, env=env, atexit_marker=marker))
    assert [r.returncode for r in runs] == [0, 0, 2], [r.stdout + r.stderr for r in runs]
    assert "Resolved 3 packages" in runs[0].stderr and "+ alpha==" in runs[0].stderr
    assert "pylock.toml is up to date" in runs[1].stderr
    assert "error: `no-such-project` was not found" in runs[2].stderr
    assert marker.read_text() == "ran\n" * 3


def test_a_full_cli_process_ends_with_its_output_exit_code_and_exit_handlers(
        index_server: IndexServer, project: Path, tmp_path: Path) -> None:
    """Shapes the fast path leaves to the full CLI end without the teardown too: output, exit
    code (1 for a stale lock under --check) and exit handlers are kept."""
    write(project, ["alpha"])
    marker = tmp_path / "atexit-ran"
    env = {**os.environ, "LOCKENV_INDEX_URL": index_server.json_url}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return run_fastpath_main(*args, cwd=project, env=env, atexit_marker=marker)

    upgraded = run("lock", "--upgrade")
    write(project, ["alpha", "gamma"])
    checked = run("lock", "--check")
    assert (upgraded.returncode, checked.returncode) == (0, 1), upgraded.stderr + checked.stderr
    assert "+ alpha==" in upgraded.stderr and "Resolved 3 packages" in upgraded.stderr
    assert "gamma" in checked.stderr and not checked.stdout
    assert marker.read_text() == "ran\n" * 2


def test_relock_keeps_pins_and_reports_changes(index_server: IndexServer, project: Path) -> None:
    write(project, ["alpha<2"])
    assert lock(project, index_server).code == 0
    assert pins(project)["alpha"] == ["1.1"] and pins(project)["beta"] == ["1.0"]
    # Loosening the requirement keeps the existing pin; adding one reports it with its reason.
    write(project, ["alpha", "cee"])
    result = lock(project, index_server)
    assert result.code == 0, result.output
    assert pins(project)["alpha"] == ["1.1"], "a pin that can stay must stay"
    assert "Locking: added `cee` to dependencies" in result.stderr
    assert "+ cee==2.0 (`app` requires `cee`)" in result.stderr
    # --upgrade-package moves that package and what must follow (beta 2 for alpha 2).
    result = lock(project, index_server, "--upgrade-package", "alpha")
    assert result.code == 0, result.output
    assert pins(project)["alpha"] == ["2.0"] and pins(project)["beta"] == ["2.0"]
    assert "~ alpha 1.1 -> 2.0 (--upgrade-package)" in result.stderr
    assert "~ beta 1.0 -> 2.0" in result.stderr
    # Removing a dependency reports it.
    write(project, ["alpha"])
    result = lock(project, index_server)
    assert "- cee==2.0 (no longer required)" in result.stderr


def test_change_reasons_name_the_cause(index_server: IndexServer, project: Path) -> None:
    write(project, ["alpha"])
    assert lock(project, index_server).code == 0
    write(project, ["alpha", "gamma<1.2"])
    result = lock(project, index_server)
    assert "~ gamma 1.2 -> 1.1 (requirement changed to `gamma<1.2`)" in result.stderr, result.stderr
    write(project, ["timely"])
    assert lock(project, index_server).code == 0
    result = lock(project, index_server, "--exclude-newer", "2024-03-01")
    assert "~ timely 1.2 -> 1.0 (exclude-newer is now 2024-03-01T00:00:00Z)" in result.stderr, result.stderr
    write(project, ["timely"], '\n[dependency-groups]\ndev = ["cee"]\n')
    result = lock(project, index_server)
    assert "+ cee==2.0 (`app` requires `cee` in group `dev`)" in result.stderr, result.stderr


def test_check_refuses_flags_that_would_change_the_lock(index_server: IndexServer, project: Path) -> None:
    write(project, ["alpha"])
    assert lock(project, index_server).code == 0
    result = lock(project, index_server, "--check", "--upgrade")
    assert result.code != 0 and "--check" in result.stderr and "--upgrade" in result.stderr


def test_upgrade_moves_everything(index_server: IndexServer, project: Path) -> None:
    write(project, ["alpha<2", "gamma<1.2"])
    assert lock(project, index_server).code == 0
    write(project, ["alpha", "gamma"])
    assert lock(project, index_server).code == 0
    assert pins(project)["gamma"] == ["1.1"]
    result = lock(project, index_server, "--upgrade")
    assert result.code == 0
    assert pins(project)["gamma"] == ["1.2"] and pins(project)["alpha"] == ["2.0"]
    assert "(--upgrade)" in result.stderr


def test_check_reports_typed_reasons_and_writes_nothing(index_server: IndexServer, project: Path) -> None:
    write(project, ["alpha"])
    assert lock(project, index_server, "--check").code == 1  # no lock yet
    assert lock(project, index_server).code == 0
    assert lock(project, index_server, "--check").code == 0
    before = (project / "pylock.toml").read_bytes()
    write(project, ["alpha", "cee>=1"])
    result = lock(project, index_server, "--check")
    assert result.code == 1
    assert "out of date" in result.stderr
    assert "added `cee>=1` to dependencies" in result.stderr
    assert "lockenv lock" in result.stderr
    assert (project / "pylock.toml").read_bytes() == before


def test_exclude_newer_is_recorded_and_reused(index_server: IndexServer, project: Path) -> None:
    write(project, ["timely"])
    assert lock(project, index_server, "--exclude-newer", "2024-03-01").code == 0
    assert pins(project)["timely"] == ["1.0"]
    text = (project / "pylock.toml").read_text()
    assert 'exclude-newer = "2024-03-01T00:00:00Z"\nexclude-newer-origin = "command line"' in text
    # Next relock (an added dependency) keeps the cut-off without the flag.
    write(project, ["timely", "cee"])
    assert lock(project, index_server).code == 0
    assert pins(project)["timely"] == ["1.0"]
    assert "2024-03-01T00:00:00Z" in (project / "pylock.toml").read_text()
    # A new value changes it.
    result = lock(project, index_server, "--exclude-newer", "2025-06-01T00:00:00Z", "--upgrade")
    assert result.code == 0
    assert pins(project)["timely"] == ["1.2"]


def test_bad_exclude_newer(index_server: IndexServer, project: Path) -> None:
    write(project, ["alpha"])
    result = lock(project, index_server, "--exclude-newer", "last tuesday")
    assert result.code != 0
    assert "last tuesday" in result.stderr and "--exclude-newer" in result.stderr
    assert not (project / "pylock.toml").exists()


def test_missing_requires_python_warns_with_the_line_to_add(index_server: IndexServer, project: Path) -> None:
    (project / "pyproject.toml").write_text('[project]\nname = "app"\nversion = "1"\ndependencies = ["gamma"]\n')
    result = lock(project, index_server)
    assert result.code == 0, result.output
    minor = sys.version_info[1]
    assert "warning:" in result.stderr and "requires-python" in result.stderr
    assert f'requires-python = ">=3.{minor}"' in result.stderr


@pytest.mark.parametrize(
    ("content", "fragments"),
    [
        ('[project\nname = "app"\n', ["pyproject.toml:1:9", "invalid TOML"]),
        ('[project]\nname = "app"\nversion = "1"\nrequires-python = ">=3.10"\ndependencies = ["alpha >>= 1"]\n',
         ["`alpha >>= 1`", "pyproject.toml:5"]),
        ('[project]\nname = "app"\nversion = "1"\nrequires-python = ">=3.10"\n[dependency-groups]\n'
         'dev = [{include-group = "nope"}]\n', ["nope"]),
        ('[project]\nname = "app"\nversion = "1"\nrequires-python = ">=3.10"\n[dependency-groups]\n'
         'a = [{include-group = "b"}]\nb = [{include-group = "a"}]\n', ["cycl"]),
        ('\ufeff[project]\nname = "app"\nversion = "1"\n',
         ["pyproject.toml:1: starts with a byte-order mark", "hint: save pyproject.toml as UTF-8 without"]),
    ],
    ids=["invalid-toml", "invalid-requirement", "unknown-include-group", "cyclic-include-group",
         "byte-order-mark"],
)
def test_bad_manifest_is_a_clear_error_and_writes_nothing(
    index_server: IndexServer, project: Path, content: str, fragments: list[str]
) -> None:
    (project / "pyproject.toml").write_text(content)
    result = lock(project, index_server)
    assert result.code == 2, "an error is exit 2; 1 means a stale lock"
    assert "Traceback" not in result.output
    assert result.stderr.startswith("error:")
    for fragment in fragments:
        assert fragment.lower() in result.stderr.lower(), result.stderr
    assert sorted(os.listdir(project)) == ["pyproject.toml"]


def test_missing_pyproject(index_server: IndexServer, project: Path) -> None:
    result = lock(project, index_server)
    assert result.code != 0
    assert "pyproject.toml" in result.stderr and "Traceback" not in result.output
    assert os.listdir(project) == []


def test_persistent_server_error_names_the_url(index_server: IndexServer, project: Path) -> None:
    write(project, ["alpha"])
    index_server.inject("alpha", "500")
    result = lock(project, index_server)
    assert result.code != 0
    assert "Traceback" not in result.output
    assert "/pypi/alpha/json" in result.stderr and "500" in result.stderr
    assert not (project / "pylock.toml").exists()


def test_transient_server_errors_are_retried(index_server: IndexServer, project: Path) -> None:
    write(project, ["alpha"])
    index_server.inject("alpha", "503", times=2)
    result = lock(project, index_server)
    assert result.code == 0, result.output


def test_a_rate_limited_index_is_waited_for_as_it_asks(index_server: IndexServer,
                                                      project: Path) -> None:
    write(project, ["alpha"])
    index_server.inject("alpha", "429", times=1, headers={"Retry-After": "1"})
    result = lock(project, index_server)
    assert result.code == 0, result.output
    assert "/pypi/alpha/json answered HTTP 429 and asked to wait 1s; retrying then (1/3)" \
        in result.stderr


def test_credentials_never_reach_lock_or_messages(index_server: IndexServer, project: Path) -> None:
    index_server.inject("/", "auth", user="alice", password="s3cret-pw")
    write(project, ["alpha"])
    url = index_server.json_url.replace("http://", "http://alice:s3cret-pw@")
    result = lock(project, index_server, url=url)
    assert result.code == 0, result.output
    text = (project / "pylock.toml").read_text()
    assert "s3cret-pw" not in text and "s3cret-pw" not in result.output
    # Wrong password: an error that names the index but not the secret.
    bad = index_server.json_url.replace("http://", "http://alice:wrong-pw@")
    write(project, ["alpha", "gamma"])
    result = run_lockenv("lock", "--refresh", cwd=project, env={"LOCKENV_INDEX_URL": bad})
    assert result.code != 0
    assert "wrong-pw" not in result.output
    assert "401" in result.stderr or "credential" in result.stderr.lower()


def test_relative_urls_and_lying_requires_dist(index_server: IndexServer, project: Path) -> None:
    index_server.inject("beta", "relative-urls")
    index_server.inject("alpha", "bad-requires-dist")
    write(project, ["alpha"])
    result = lock(project, index_server)
    assert result.code == 0, result.output
    data = tomllib.loads((project / "pylock.toml").read_text())
    names = {p["name"] for p in data["packages"]}
    assert names == {"alpha", "beta", "gamma"}, "info.requires_dist must never be used"
    for p in data["packages"]:
        for w in p.get("wheels", []):
            assert w["url"].startswith("http://127.0.0.1:")


def _venv(path: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    return path / "bin" / "python"


def _site_names(python: Path) -> set[str]:
    out = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print('\\n'.join(sorted(d.metadata['Name'].lower() for d in m.distributions())))"],
        capture_output=True, text=True, check=True,
    ).stdout
    return set(out.split())


def test_pip_installs_from_our_lock(index_server: IndexServer, project: Path, tmp_path: Path) -> None:
    write(project, ["alpha", "marked"])
    assert lock(project, index_server).code == 0
    python = _venv(tmp_path / "venv")
    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-r", str(project / "pylock.toml")],
        capture_output=True, text=True, env=env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert {"alpha", "beta", "gamma", "marked"} <= _site_names(python)


def test_uv_installs_from_our_lock(index_server: IndexServer, project: Path, tmp_path: Path) -> None:
    write(project, ["alpha", "marked", "native"])
    assert lock(project, index_server).code == 0
    python = _venv(tmp_path / "venv")
    uv = Path(sys.executable).parent / "uv"
    proc = subprocess.run(
        [str(uv), "pip", "sync", "--python", str(python), str(project / "pylock.toml")],
        capture_output=True, text=True, env={**os.environ, "UV_NO_CONFIG": "1"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert {"alpha", "beta", "gamma", "marked", "native"} <= _site_names(python)


def test_sync_locked_accepts_a_recorded_exclude_newer(index_server: IndexServer, project: Path) -> None:
    """A cut-off given once on the command line is part of the lock, not a change."""
    write(project, ["timely"])
    assert lock(project, index_server, "--exclude-newer", "2024-03-01").code == 0
    assert lock(project, index_server, "--check").code == 0
    result = run_lockenv("sync", "--locked", "--dry-run", cwd=project, env={"LOCKENV_INDEX_URL": index_server.json_url})
    assert result.code == 0, result.output
    assert "out of date" not in result.output
    assert "+ timely==1.0" in result.stdout


def test_exclude_newer_removed_from_pyproject_is_a_change(index_server: IndexServer, project: Path) -> None:
    write(project, ["timely"], '\n[tool.lockenv]\nexclude-newer = "2024-03-01"\n')
    assert lock(project, index_server).code == 0
    assert "exclude-newer-origin" not in (project / "pylock.toml").read_text()
    write(project, ["timely"])
    result = lock(project, index_server, "--check")
    assert result.code == 1 and "removed exclude-newer `2024-03-01T00:00:00Z`" in result.stderr


def test_noop_commands_answer_without_loading_the_cli_framework_or_httpx(
    index_server: IndexServer, project: Path
) -> None:
    """CI's `lock --check` and `sync --locked` with nothing to do: the entry point answers
    before typer, httpx or the resolver are imported (python -X importtime shows it)."""
    write(project, ["alpha"])
    env = {"LOCKENV_INDEX_URL": index_server.json_url}
    assert lock(project, index_server).code == 0
    assert run_lockenv("sync", cwd=project, env=env).code == 0
    index_server.clear_log()
    for args in (("lock", "--check"), ("sync", "--locked", "-q"), ("-q", "sync", "--frozen")):
        proc = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "lockenv", *args],
            cwd=project, env={**os.environ, **env}, capture_output=True, text=True,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
        assert not imported & {"typer", "httpx", "resolvelib", "installer", "rich"}, args
    assert index_server.requests == []


def test_a_plain_lock_with_work_to_do_runs_without_the_cli_framework(
    index_server: IndexServer, project: Path
) -> None:
    """`lockenv lock` (and `-q`, `-C`) that must resolve runs from the entry point, as a sync
    does: typer (~50-90 ms of a cold lock's start-up) is never imported, and what
    the user sees is the CLI's (same messages, exit codes, errors)."""
    write(project, ["alpha"])
    env = {**os.environ, "LOCKENV_INDEX_URL": index_server.json_url}
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "lockenv", "lock"],
                          cwd=project, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    assert "lockenv.ops.lock" in imported and not imported & {"typer", "lockenv.cli"}
    assert "+ alpha==2.0 (`app` requires `alpha`)" in proc.stderr
    assert "alpha" in pins(project)
    write(project, ["no-such-package-anywhere"])
    failed = subprocess.run([sys.executable, "-m", "lockenv", "-q", "lock"], cwd=project,
                            env=env, capture_output=True, text=True)
    via_cli = run_lockenv("-q", "lock", "--refresh", cwd=project, env=env)
    assert failed.returncode == via_cli.code == 2
    assert failed.stderr.startswith("error: ") and "Traceback" not in failed.stderr


def test_a_warm_lock_sends_no_request_and_never_loads_httpx(
    index_server: IndexServer, project: Path
) -> None:
    """With every page and metadata file cached, a lock without a lockfile resolves from the
    cache alone: no request, and httpx (with urllib.request, http.client, email: ~50 ms of
    start-up) is never imported. The lock is the one the cold run wrote."""
    write(project, ["alpha", "beta"])
    assert lock(project, index_server).code == 0
    cold = (project / "pylock.toml").read_text()
    (project / "pylock.toml").unlink()
    index_server.clear_log()
    env = {**os.environ, "LOCKENV_INDEX_URL": index_server.json_url}
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "lockenv", "lock"],
                          cwd=project, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    assert "lockenv.index.client" in imported and "httpx" not in imported
    assert index_server.requests == []
    assert (project / "pylock.toml").read_text() == cold


def test_a_noop_lock_after_lock_reads_no_toml_yet_sees_every_change(
    index_server: IndexServer, project: Path
) -> None:
    """`lock` remembers a fresh lock by the bytes of pyproject.toml and pylock.toml and the
    LOCKENV_* environment: the next no-op answers without parsing either (packaging is not even
    imported); a change to either file or to the index URL is checked in full again."""
    write(project, ["alpha"])
    assert lock(project, index_server).code == 0
    env = {**os.environ, "LOCKENV_INDEX_URL": index_server.json_url}
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "lockenv", "lock", "--check"],
                          cwd=project, env=env, capture_output=True, text=True)
    assert proc.returncode == 0 and "pylock.toml is up to date" in proc.stderr, proc.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    assert "lockenv.fastpath" in imported
    assert not imported & {"packaging", "lockenv.manifest", "tomllib", "lockenv.ops.lock"}
    other_index = lock(project, index_server, "--check", url=index_server.simple_url)
    assert other_index.code == 1 and "changed index-url" in other_index.stderr
    lock_text = (project / "pylock.toml").read_text()
    (project / "pylock.toml").write_text(lock_text.replace('name = "alpha"', 'name = "alpha2"', 1))
    edited = lock(project, index_server, "--check")
    assert edited.code == 1 and "changed by hand" in edited.stderr
    (project / "pylock.toml").write_text(lock_text)
    assert lock(project, index_server, "--check").code == 0
    write(project, ["alpha", "beta"])
    added = lock(project, index_server, "--check")
    assert added.code == 1 and "added `beta`" in added.stderr


def test_quiet_and_verbose_work_after_the_command(index_server: IndexServer, project: Path) -> None:
    write(project, ["alpha"])
    result = run_lockenv("lock", "-q", cwd=project, env={"LOCKENV_INDEX_URL": index_server.json_url})
    assert result.code == 0 and result.stderr == "" and result.stdout == ""
    (project / "pylock.toml").unlink()
    result = run_lockenv("lock", "-v", cwd=project, env={"LOCKENV_INDEX_URL": index_server.json_url})
    assert result.code == 0 and "debug: [" in result.stderr


def _corrupt_entry(path: Path, name: str, how: str) -> None:
    text = path.read_text()
    start = text.index(f'[[packages]]\nname = "{name}"')
    end = text.index("\n[[packages]]", start + 1) if "\n[[packages]]" in text[start + 1:] else text.index("\n[tool.lockenv]")
    if how == "delete":
        text = text[:start] + text[end + 1:]
    else:  # a merge conflict left in the file
        text = text[:start] + "<<<<<<< HEAD\n" + text[start:end] + "\n=======\n>>>>>>> branch\n" + text[end:]
    path.write_text(text)


@pytest.mark.parametrize("how", ["delete", "conflict"])
def test_a_hand_edited_lock_is_stale_and_lock_regenerates_it(
    index_server: IndexServer, project: Path, how: str
) -> None:
    write(project, ["alpha"])
    assert lock(project, index_server).code == 0
    good = (project / "pylock.toml").read_text()
    _corrupt_entry(project / "pylock.toml", "gamma", how)
    check = lock(project, index_server, "--check")
    assert check.code == 1
    assert "pylock.toml" in check.stderr and ("changed by hand" in check.stderr or "invalid" in check.stderr)
    env = {"LOCKENV_INDEX_URL": index_server.json_url}
    locked = run_lockenv("sync", "--locked", cwd=project, env=env)  # refused, not stale: exit 2
    assert locked.code == 2 and not (project / ".venv").exists()
    assert "lockenv lock" in locked.stderr
    relock = lock(project, index_server)
    assert relock.code == 0, relock.output
    assert (project / "pylock.toml").read_text() == good


def test_sync_refuses_a_lock_missing_a_dependency_entry(index_server: IndexServer, project: Path) -> None:
    write(project, ["alpha"])
    assert lock(project, index_server).code == 0
    _corrupt_entry(project / "pylock.toml", "gamma", "delete")
    result = run_lockenv("sync", "--frozen", cwd=project, env={"LOCKENV_INDEX_URL": index_server.json_url})
    assert result.code != 0
    assert "`beta 2.0` depends on `gamma`, which the lock does not contain" in result.stderr
    assert not list(project.glob(".venv/lib/*/site-packages/beta*")), "nothing may be installed"


def test_a_stalled_index_is_reported_not_silent(project: Path) -> None:
    """An index that accepts connections but never answers: the user hears about each retry."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    try:
        write(project, ["alpha"])
        result = run_lockenv(
            "lock", cwd=project,
            env={"LOCKENV_INDEX_URL": f"http://127.0.0.1:{port}/pypi", "LOCKENV_HTTP_TIMEOUT": "1",
                 "LOCKENV_HTTP_RETRIES": "1"},
        )
    finally:
        listener.close()
    assert result.code != 0
    assert "did not answer within 1s; retrying (1/1)" in result.stderr
    assert f"127.0.0.1:{port}" in result.stderr and "Traceback" not in result.output
    assert not (project / "pylock.toml").exists()


def test_commands_find_the_project_from_a_subdirectory_and_take_c_after_the_command(
    index_server: IndexServer, project: Path, tmp_path: Path
) -> None:
    write(project, ["alpha"])
    deeper = project / "src" / "pkg"
    deeper.mkdir(parents=True)
    env = {"LOCKENV_INDEX_URL": index_server.json_url}
    assert run_lockenv("lock", cwd=deeper, env=env).code == 0
    assert (project / "pylock.toml").exists() and not (deeper / "pylock.toml").exists()
    assert run_lockenv("lock", "--check", cwd=deeper, env=env).code == 0  # the fast path too
    assert run_lockenv("sync", cwd=deeper, env=env).code == 0
    assert (project / ".venv").is_dir()
    result = run_lockenv("verify", "-C", str(project), cwd=tmp_path, env=env)
    assert result.code == 0, result.output


def test_two_locks_at_once_write_one_lock(index_server: IndexServer, project: Path) -> None:
    """The second waits for the first, then finds the lock fresh instead of resolving again."""
    write(project, ["alpha", "native", "marked"])
    env = {**os.environ, "LOCKENV_INDEX_URL": index_server.json_url}
    procs = [subprocess.Popen([sys.executable, "-m", "lockenv", "lock"], cwd=project, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    stderr = [err for _out, err in outputs]
    assert sum("Resolved" in e for e in stderr) >= 1
    assert lock(project, index_server, "--check").code == 0
    Pylock.from_dict(tomllib.loads((project / "pylock.toml").read_text())).validate()


def test_only_group_with_an_extra_is_refused(index_server: IndexServer, project: Path) -> None:
    write(project, ["alpha"], '\n[project.optional-dependencies]\nfast = ["gamma"]\n[dependency-groups]\ndev = ["cee"]\n')
    assert lock(project, index_server).code == 0
    result = run_lockenv("sync", "--only-group", "dev", "--extra", "fast", cwd=project,
                         env={"LOCKENV_INDEX_URL": index_server.json_url})
    assert result.code != 0 and "--only-group" in result.stderr and "--extra" in result.stderr
    assert not (project / ".venv").exists()


def test_upgrade_package_to_a_given_version(index_server: IndexServer, project: Path) -> None:
    write(project, ["gamma"])
    assert lock(project, index_server).code == 0
    assert pins(project)["gamma"] == ["1.2"]
    result = lock(project, index_server, "-P", "gamma==1.0")
    assert result.code == 0, result.output
    assert pins(project)["gamma"] == ["1.0"]
    assert "~ gamma 1.2 -> 1.0 (--upgrade-package)" in result.stderr
    result = lock(project, index_server, "-P", "gamma==9.9")
    assert result.code == 0 and "`gamma` could not move to 9.9" in result.stderr
    assert lock(project, index_server, "-P", "gamma==banana").code == 2


def test_a_relock_diff_of_a_forked_package_shows_each_version_with_its_marker(
        index_server: IndexServer, project: Path) -> None:
    """Issue 9, point 10: modern 2.0 needs Python 3.12, so `modern` forks by python_version."""
    write(project, ["modern<2"])
    first = lock(project, index_server)
    assert "+ modern==1.5 (`app` requires `modern<2`)" in first.stderr, first.stderr
    write(project, ["modern"])
    result = lock(project, index_server, "--upgrade")
    assert result.code == 0, result.output
    assert ('~ modern 1.5 -> 1.5 ; python_version < "3.12", '
            '2.0 ; python_version >= "3.12" (--upgrade)') in result.stderr, result.stderr
    (project / "pylock.toml").unlink()
    fresh = lock(project, index_server)
    assert '+ modern==1.5 ; python_version < "3.12" (`app` requires `modern`)' in fresh.stderr, fresh.stderr
    assert '+ modern==2.0 ; python_version >= "3.12" (`app` requires `modern`)' in fresh.stderr


def test_an_extra_the_package_does_not_declare_is_warned_about(
        index_server: IndexServer, project: Path) -> None:
    """`feat[fsat]` (a typo) adds nothing: the lock still succeeds, but says so, naming the
    extras there are; a declared extra and an extra of a package without extras are told apart. A
    package locked at two versions (one per Python) is warned about once, naming both."""
    write(project, ["feat[fsat]", "gamma[anything]", "Clicky_CLI[color]", "modern[nope]"])
    result = lock(project, index_server)
    assert result.code == 0, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert lines == [
        "warning: `feat 1.0` has no extra `fsat` (its extras: `all`, `cli`, `fast`); "
        "the requirement `feat[fsat]` adds nothing",
        "warning: `gamma 1.2` has no extra `anything` (its extras: none); "
        "the requirement `gamma[anything]` adds nothing",
        "warning: `modern 1.5, 2.0` has no extra `nope` (its extras: none); "
        "the requirement `modern[nope]` adds nothing",
    ], result.stderr
    assert result.stderr.count("hint: check the extra's spelling") == 3, result.stderr
    assert "hint: check the extra's spelling where it is required" in result.stderr
    assert "feat" in pins(project) and "clicky-cli" in pins(project)

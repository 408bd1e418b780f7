"""`lockenv outdated` against a fixture index that gained newer releases after the lock was made:
locked, allowed (what `lock --upgrade` would choose) and latest; writes nothing; --json."""

from __future__ import annotations

import json
from pathlib import Path

from fixtures.index import IndexServer
from helpers import env_for, lock, run_lockenv, write_project

BEFORE = {
    "alpha": {"1.0": {"dependencies": ["beta"]}},
    "beta": {"1.0": {}},
    "gamma": {"1.0": {}},
}
AFTER = {
    "alpha": {"1.0": {"dependencies": ["beta"]}, "1.1": {"dependencies": ["beta<2"]}, "2.0": {}},
    "beta": {"1.0": {}, "1.5": {}, "2.0": {}, "3.0rc1": {}},
    "gamma": {"1.0": {}, "1.1": {"yanked": "broken"}},
}


def test_outdated_against_an_index_with_newer_releases(tmp_path: Path, make_index) -> None:  # type: ignore[no-untyped-def]
    srv: IndexServer = make_index(BEFORE)
    project = write_project(tmp_path / "p", ["alpha<2", "gamma"])
    lock(project, srv)
    before = (project / "pylock.toml").read_bytes()
    srv.load(AFTER)

    r = run_lockenv("outdated", cwd=project, env=env_for(srv))
    assert r.code == 0, r.output
    assert r.stdout.splitlines() == [
        "Package  Locked  Allowed  Latest",
        "alpha    1.0     1.1      2.0",
        "beta     1.0     1.5      2.0",  # alpha 1.1 caps beta below 2; 3.0rc1 is a pre-release
    ]
    assert "2 of 3 locked packages have a newer release" in r.stderr

    r = run_lockenv("outdated", "--json", cwd=project, env=env_for(srv))
    assert r.code == 0, r.output
    doc = json.loads(r.stdout)
    assert set(doc) == {"lockfile", "index_url", "packages"}
    rows = {p["name"]: p for p in doc["packages"]}
    assert set(rows) == {"alpha", "beta", "gamma"}
    assert all(set(p) == {"name", "locked", "marker", "allowed", "latest", "outdated", "upgradable"}
               for p in doc["packages"])
    assert rows["alpha"] == {"name": "alpha", "locked": "1.0", "marker": None, "allowed": "1.1",
                             "latest": "2.0", "outdated": True, "upgradable": True}
    assert rows["gamma"]["latest"] == "1.0" and rows["gamma"]["outdated"] is False  # 1.1 is yanked
    assert (project / "pylock.toml").read_bytes() == before, "outdated writes nothing"


def test_outdated_when_everything_is_current(tmp_path: Path, make_index) -> None:  # type: ignore[no-untyped-def]
    srv: IndexServer = make_index(BEFORE)
    project = write_project(tmp_path / "p", ["alpha"])
    lock(project, srv)
    r = run_lockenv("outdated", cwd=project, env=env_for(srv))
    assert r.code == 0, r.output
    assert r.stdout == "" and "All 2 locked packages are at the newest release" in r.stderr


def test_outdated_offline_answers_from_the_cache_and_names_what_it_lacks(tmp_path: Path, make_index) -> None:  # type: ignore[no-untyped-def]
    srv: IndexServer = make_index(BEFORE)
    project = write_project(tmp_path / "p", ["alpha<2", "gamma"])
    lock(project, srv)
    srv.load(AFTER)
    online = run_lockenv("outdated", cwd=project, env=env_for(srv))
    assert online.code == 0, online.output
    url = srv.json_url
    srv.stop()  # no network from here on: the warm cache must answer alone

    warm = run_lockenv("outdated", "--offline", cwd=project, env=env_for(srv))
    assert warm.code == 0, warm.output
    assert warm.stdout == online.stdout

    cold = run_lockenv("outdated", "--offline", cwd=project,
                       env=env_for(srv, LOCKENV_CACHE_DIR=str(tmp_path / "empty-cache")))
    assert cold.code == 2, cold.output
    assert "alpha" in cold.stderr and "Traceback" not in cold.stderr
    assert url.split("//")[1].split("/")[0] in cold.stderr or "offline" in cold.stderr

"""`--json` on `lock --check`, `sync --dry-run` and `verify`: stdout holds one JSON document with
the README's keys and nothing else; the exit codes stay those of the text output."""

from __future__ import annotations

import json
from pathlib import Path

from fixtures.index import IndexServer
from helpers import env_for, lock, run_lockenv, site_packages, sync, write_project


def test_lock_check_json(tmp_path: Path, index_server: IndexServer) -> None:
    project = write_project(tmp_path / "p", ["alpha"])
    lock(project, index_server)
    r = run_lockenv("lock", "--check", "--json", cwd=project, env=env_for(index_server))
    assert r.code == 0, r.output
    assert json.loads(r.stdout) == {"lockfile": str(project / "pylock.toml"), "fresh": True, "reasons": []}

    write_project(project, ["alpha", "marked"])
    r = run_lockenv("lock", "--check", "--json", cwd=project, env=env_for(index_server))
    assert r.code == 1, r.output
    doc = json.loads(r.stdout)
    assert doc["fresh"] is False
    assert doc["reasons"] == [{"kind": "dependency-added", "subject": "marked",
                               "detail": "added `marked` to dependencies"}]
    assert "out of date" in r.stderr

    r = run_lockenv("lock", "--json", cwd=project, env=env_for(index_server))
    assert r.code == 2 and "--json goes with --check" in r.stderr


def test_sync_dry_run_json_then_verify_json(tmp_path: Path, index_server: IndexServer) -> None:
    project = write_project(tmp_path / "p", ["alpha"])
    lock(project, index_server)
    r = run_lockenv("sync", "--dry-run", "--json", cwd=project, env=env_for(index_server))
    assert r.code == 0, r.output
    doc = json.loads(r.stdout)
    assert set(doc) == {"lockfile", "venv", "create_venv", "actions", "counts"}
    assert doc["create_venv"] is True and doc["venv"] == str(project / ".venv")
    assert [(a["kind"], a["name"], a["installed"], a["locked"]) for a in doc["actions"]] == [
        ("install", "alpha", None, "2.0"), ("install", "beta", None, "2.0"), ("install", "gamma", None, "1.2")]
    assert all(set(a) == {"kind", "name", "installed", "locked", "reason"} for a in doc["actions"])
    assert doc["counts"]["install"] == 3
    assert not (project / ".venv").exists()
    r = run_lockenv("sync", "--json", cwd=project, env=env_for(index_server))
    assert r.code == 2 and "--json goes with --dry-run" in r.stderr

    assert sync(project, index_server).code == 0
    r = run_lockenv("verify", "--json", cwd=project, env=env_for(index_server))
    assert r.code == 0, r.output
    doc = json.loads(r.stdout)
    assert set(doc) == {"lockfile", "venv", "matches", "problems", "packages", "files"}
    assert doc["matches"] is True and doc["problems"] == [] and doc["files"] > 0

    module = next(site_packages(project / ".venv").glob("gamma/__init__.py"))
    module.write_text("print('changed')\n")
    r = run_lockenv("verify", "--json", cwd=project, env=env_for(index_server))
    assert r.code == 1, r.output
    doc = json.loads(r.stdout)
    assert doc["matches"] is False
    assert [p["kind"] for p in doc["problems"]] == ["modified"]
    assert "gamma/__init__.py" in doc["problems"][0]["detail"]

    r = run_lockenv("sync", "--dry-run", "--json", cwd=project, env=env_for(index_server))
    doc = json.loads(r.stdout)
    assert doc["create_venv"] is False
    assert [(a["kind"], a["name"]) for a in doc["actions"] if a["kind"] != "keep"] == [("reinstall", "gamma")]

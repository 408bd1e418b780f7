"""plan() is a pure function: what to install, change, remove and keep, each with a reason."""

from __future__ import annotations

from lockenv.models import DistFile
from lockenv.sync.plan import SyncPlan, plan
from lockenv.sync.scan import Installed
from lockenv.sync.selection import Wanted


def want(name: str, version: str, sha: str = "a" * 64, **kw) -> Wanted:
    f = DistFile(f"{name}-{version}-py3-none-any.whl", f"http://x/{name}.whl", sha, 1, None, None)
    return Wanted(name, version, kw.pop("kind", "wheel"), file=f, sha256=sha, **kw)


def have(name: str, version: str, **kw) -> Installed:
    return Installed(name, version, f"/venv/site/{name}-{version}.dist-info", **kw)


def kinds(p: SyncPlan) -> dict[str, str]:
    return {a.name: a.kind for a in p.actions}


def test_fresh_venv_installs_everything_in_name_order() -> None:
    p = plan([want("beta", "2.0"), want("alpha", "1.0")], [])
    assert p.lines() == ["+ alpha==1.0", "+ beta==2.0"]
    assert all(a.reason == "not installed" for a in p.actions)


def test_up_to_date_is_empty() -> None:
    p = plan([want("alpha", "1.0")], [have("alpha", "1.0", archive_sha256="a" * 64)])
    assert p.is_empty and p.lines() == []
    assert p.actions[0].kind == "keep"


def test_upgrade_and_downgrade_lines() -> None:
    p = plan([want("alpha", "2.0"), want("beta", "1.0")],
             [have("alpha", "1.0"), have("beta", "1.5")])
    assert kinds(p) == {"alpha": "upgrade", "beta": "downgrade"}
    assert p.lines() == ["~ alpha 1.0 -> 2.0", "~ beta 1.5 -> 1.0"]
    assert p.actions[0].reason == "lock has 2.0, 1.0 installed"


def test_exact_removes_unselected_but_keeps_seed_packages() -> None:
    p = plan([want("alpha", "1.0")], [have("alpha", "1.0"), have("pip", "24.0"), have("gamma", "3"),
                                      have("setuptools", "68.0"), have("wheel", "0.41")])
    assert kinds(p) == {"alpha": "keep", "gamma": "remove", "pip": "keep", "setuptools": "keep",
                        "wheel": "keep"}
    assert p.lines() == ["- gamma==3", "= pip==24.0 (seed package, kept)",
                         "= setuptools==68.0 (seed package, kept)", "= wheel==0.41 (seed package, kept)"]
    assert [a.reason for a in p.of_kind("remove")] == ["not in the lock"]
    assert [a.name for a in p.changes] == ["gamma"]


def test_a_seed_package_the_lock_selects_gets_the_locks_version() -> None:
    p = plan([want("pip", "25.0")], [have("pip", "24.0"), have("setuptools", "68.0")])
    assert kinds(p) == {"pip": "upgrade", "setuptools": "keep"}
    assert p.lines() == ["~ pip 24.0 -> 25.0", "= setuptools==68.0 (seed package, kept)"]


def test_only_kept_seed_packages_is_an_empty_plan_that_still_lists_them() -> None:
    p = plan([want("alpha", "1.0")], [have("alpha", "1.0"), have("pip", "24.0")])
    assert p.is_empty
    assert p.lines() == ["= pip==24.0 (seed package, kept)"]


def test_inexact_keeps_unselected() -> None:
    p = plan([want("alpha", "1.0")], [have("gamma", "3"), have("pip", "24.0")], exact=False)
    assert kinds(p) == {"alpha": "install", "gamma": "keep", "pip": "keep"}
    assert p.lines() == ["+ alpha==1.0", "= pip==24.0 (seed package, kept)"]
    assert {a.name: a.reason for a in p.actions}["gamma"] == "not in the lock; kept (--inexact)"


def test_protected_runtime_is_never_removed() -> None:
    p = plan([], [have("httpx", "0.28"), have("gamma", "3")], protected={"httpx"})
    assert kinds(p) == {"gamma": "remove", "httpx": "keep"}
    assert p.actions[1].reason == "lockenv's own runtime"


def test_drift_same_version_reinstalls_with_the_problem_as_reason() -> None:
    p = plan([want("alpha", "1.0")], [have("alpha", "1.0", problems=("modified: alpha/__init__.py",))])
    assert kinds(p) == {"alpha": "reinstall"}
    assert p.lines() == ["~ alpha 1.0 -> 1.0 (modified: alpha/__init__.py)"]


def test_other_archive_of_same_version_reinstalls() -> None:
    p = plan([want("alpha", "1.0", sha="b" * 64)], [have("alpha", "1.0", archive_sha256="a" * 64)])
    assert kinds(p) == {"alpha": "reinstall"}
    assert "another archive" in p.actions[0].reason


def test_foreign_install_without_archive_hash_is_kept_by_version() -> None:
    p = plan([want("alpha", "1.0")], [have("alpha", "1.0", installer="pip")])
    assert p.is_empty


def test_installed_twice_reinstalls() -> None:
    p = plan([want("alpha", "1.0")], [have("alpha", "1.0"), have("alpha", "0.9")])
    assert kinds(p) == {"alpha": "reinstall"}
    assert p.actions[0].reason == "installed 2 times (1.0, 0.9)"
    assert len(p.actions[0].installed) == 2


def test_editable_project_goes_last_and_is_kept_when_current(tmp_path) -> None:
    proj = Wanted("zed-app", "0.1", "directory", local_path=str(tmp_path), editable=True, is_project=True)
    p = plan([proj, want("aardvark", "1")], [])
    assert [a.name for a in p.actions] == ["aardvark", "zed-app"]
    assert p.lines() == ["+ aardvark==1", "+ zed-app==0.1 (editable)"]
    current = have("zed-app", "0.1", editable_url=tmp_path.as_uri())
    assert plan([proj], [current]).is_empty
    regular = have("zed-app", "0.1")
    assert kinds(plan([proj], [regular])) == {"zed-app": "reinstall"}


def test_editable_install_of_a_locked_release_is_replaced() -> None:
    p = plan([want("alpha", "1.0")], [have("alpha", "1.0", editable_url="file:///src/alpha")])
    assert p.actions[0].kind == "reinstall"
    assert p.actions[0].reason == "installed editable; the lock has a release"


def test_full_check_leaves_file_problems_to_the_caller_and_compares_the_rest_alike() -> None:
    """verify's comparison: files were hashed and are reported one by one, so they decide no
    action; a different archive is still found, with the cause as data."""
    drifted = have("alpha", "1.0", archive_sha256="a" * 64, problems=("modified: alpha/x.py",))
    assert plan([want("alpha", "1.0")], [drifted], full_check=True).is_empty
    assert plan([want("alpha", "1.0")], [drifted]).actions[0].cause == "files"
    other = plan([want("alpha", "1.0", sha="b" * 64)], [drifted], full_check=True)
    assert [(a.kind, a.cause) for a in other.actions] == [("reinstall", "archive")]

"""Issue 9, point 4: bad index data is skipped, not fatal. Against the fixture index's
`realpypi` universe (malformed file names, unknown archive types, files without hashes) and
the page parsers directly (every field of a page entry is checked before use)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import msgspec
import pytest

from collections.abc import Callable

from helpers import installed, run_lockenv
from fixtures.index import IndexServer
from lockenv.index import pages

MakeIndex = Callable[..., IndexServer]
BAD_NAMES = ("pydantly-0.18.2-py36+-none-any.whl", "pydantly-0.18.2-py3-none-any-extra.whl",
             "other_project-0.18.2-py3-none-any.whl", "pydantly-0.18.x-py3-none-any.whl",
             "pydantly-0.18.2-x1-py3-none-any.whl", "pydantly-0.18.2.win32.exe",
             "pydantly-0.18.2-py2.7.egg", "pydantly-0.18.2.msi", "pydantly-0.18.2-1.noarch.rpm",
             "pydantly.tar.gz", "pydantly-0.18.2.tar.gz.asc", "pydantly-0.19.0-py36+-none-any.whl")


def _project(path: Path, *deps: str) -> Path:
    (path / "pyproject.toml").write_text(
        '[project]\nname = "app"\nversion = "0.1"\nrequires-python = ">=3.10,<3.14"\n'
        f"dependencies = {json.dumps(list(deps))}\n")
    return path


def _index_url(srv: IndexServer, api: str) -> str:
    return srv.json_url if api == "json" else srv.simple_url


@pytest.mark.parametrize("api", ["json", "simple"])
def test_malformed_names_and_unknown_archives_are_skipped(make_index: MakeIndex, project: Path,
                                                          api: str) -> None:
    srv = make_index("realpypi")
    _project(project, "pydantly")
    result = run_lockenv("lock", cwd=project, env={"LOCKENV_INDEX_URL": _index_url(srv, api)})
    assert result.code == 0, result.output
    assert "skipped" not in result.output  # a note for -v, not noise
    lock = tomllib.loads((project / "pylock.toml").read_text())
    (entry,) = [p for p in lock["packages"] if p["name"] == "pydantly"]
    # 0.19.0 has only a malformed wheel: no usable file, so 0.18.2 (its good files only).
    assert entry["version"] == "0.18.2"
    assert [w["name"] for w in entry["wheels"]] == ["pydantly-0.18.2-py3-none-any.whl"]
    assert entry["sdist"]["name"] == "pydantly-0.18.2.tar.gz"
    fetched = {r.path.rsplit("/", 1)[-1] for r in srv.requests}
    assert not fetched & {*BAD_NAMES, *(f"{n}.metadata" for n in BAD_NAMES)}


def test_skipped_files_are_named_under_verbose(make_index: MakeIndex, project: Path) -> None:
    srv = make_index("realpypi")
    _project(project, "pydantly")
    env = {"LOCKENV_INDEX_URL": srv.simple_url}
    result = run_lockenv("lock", "-v", cwd=project, env=env)
    assert result.code == 0, result.output
    for name in BAD_NAMES:
        assert f"pydantly: skipped {name}: " in result.stderr, name
    assert "invalid tag component" in result.stderr
    assert "a file of another project" in result.stderr
    # From the cached page, the notes are said again.
    (project / "pylock.toml").unlink()
    again = run_lockenv("lock", "-v", cwd=project, env=env)
    assert again.code == 0, again.output
    assert "index page from the cache" in again.stderr
    assert "pydantly: skipped pydantly-0.18.2.msi: " in again.stderr


@pytest.mark.parametrize("api", ["json", "simple"])
def test_of_a_wheels_builds_only_the_highest_is_locked(make_index: MakeIndex, project: Path,
                                                       api: str) -> None:
    """A wheel name with a build tag is valid (PEP 427), and of several builds of one tag an
    installer takes the highest: the lock lists that build alone (it was refused as "not a
    wheel file name", so a version with only such wheels looked like it had no files)."""
    srv = make_index("realpypi")
    _project(project, "rebuilt==1.0")
    result = run_lockenv("lock", cwd=project, env={"LOCKENV_INDEX_URL": _index_url(srv, api)})
    assert result.code == 0, result.output
    (entry,) = [p for p in tomllib.loads((project / "pylock.toml").read_text())["packages"]
                if p["name"] == "rebuilt"]
    assert [w["name"] for w in entry["wheels"]] == ["rebuilt-1.0-2-py3-none-any.whl"]


def test_a_version_whose_only_wheel_has_a_build_tag_is_locked_and_installed(
        make_index: MakeIndex, project: Path) -> None:
    srv = make_index("realpypi")
    _project(project, "rebuilt")
    env = {"LOCKENV_INDEX_URL": srv.json_url}
    result = run_lockenv("lock", cwd=project, env=env)
    assert result.code == 0, result.output
    (entry,) = [p for p in tomllib.loads((project / "pylock.toml").read_text())["packages"]
                if p["name"] == "rebuilt"]
    assert entry["version"] == "1.1"
    assert [w["name"] for w in entry["wheels"]] == ["rebuilt-1.1-1-py3-none-any.whl"]
    result = run_lockenv("sync", cwd=project, env=env)
    assert result.code == 0, result.output
    assert installed(project / ".venv")["rebuilt"] == "1.1"
    assert run_lockenv("verify", cwd=project, env=env).code == 0


@pytest.mark.parametrize("api", ["json", "simple"])
def test_files_without_hashes_are_hashed_from_the_download(make_index: MakeIndex, project: Path,
                                                           api: str) -> None:
    srv = make_index("realpypi")
    _project(project, "nohash")
    result = run_lockenv("lock", cwd=project, env={"LOCKENV_INDEX_URL": _index_url(srv, api)})
    assert result.code == 0, result.output
    lock = tomllib.loads((project / "pylock.toml").read_text())
    (entry,) = [p for p in lock["packages"] if p["name"] == "nohash"]
    locked = {f["name"]: (f["hashes"]["sha256"], f["size"])
              for f in [*entry["wheels"], entry["sdist"]]}
    assert locked == {name: (sha, size) for name, sha, size in srv.files("nohash")}


def test_the_fixture_index_lists_unhashed_files_without_any_hash(make_index: MakeIndex) -> None:
    """The test above would pass vacuously if the index still sent hashes."""
    import httpx

    srv = make_index("realpypi")
    page = httpx.get(f"{srv.json_url}/nohash/json").json()
    assert all(f["digests"] == {} for f in page["urls"])
    simple = httpx.get(f"{srv.simple_url}nohash/").text
    assert "#sha256=" not in simple and "nohash-1.0.tar.gz" in simple


def test_a_tampered_cached_page_is_fetched_again(make_index: MakeIndex, project: Path) -> None:
    srv = make_index("realpypi")
    _project(project, "nohash")
    env = {"LOCKENV_INDEX_URL": srv.json_url}
    assert run_lockenv("lock", cwd=project, env=env).code == 0
    cache = Path(__import__("os").environ["LOCKENV_CACHE_DIR"])
    pages_written = list(cache.rglob("nohash.msgpack"))
    assert pages_written
    for path in pages_written:
        # Well-formed msgpack of the right shape, but a record no page check would pass.
        path.write_bytes(msgspec.msgpack.encode(["x", [["../../etc/passwd", 3]]]))
    (project / "pylock.toml").unlink()
    srv.clear_log()
    result = run_lockenv("lock", cwd=project, env=env)
    assert result.code == 0, result.output
    assert any(r.path == "/pypi/nohash/json" for r in srv.requests)


@pytest.mark.parametrize(("api", "forgery"), [("simple", "name"), ("json", "name"),
                                              ("json", "moved"), ("json", "yanked")])
def test_a_cached_version_is_checked_when_the_lock_reads_it(make_index: MakeIndex,
                                                            project: Path, api: str,
                                                            forgery: str) -> None:
    """A page's cache entry is read version by version, each checked when the lock first
    looks at it (the cache is untrusted): a file filed under another version, flags its files
    contradict, or (on a page a parser checked) a file name that is not one: the entry is
    refused, named and removed, and the next run fetches the page again. A JSON API page is
    cached as the index gave it and checked like a fetched one: a bad name there is skipped
    (and named under -v), as it would be on the page."""
    srv = make_index("realpypi")
    _project(project, "pydantly")
    env = {"LOCKENV_INDEX_URL": _index_url(srv, api)}
    assert run_lockenv("lock", cwd=project, env=env).code == 0
    good = (project / "pylock.toml").read_text()
    (path,) = Path(__import__("os").environ["LOCKENV_CACHE_DIR"]).rglob("pydantly.msgpack")
    page = pages.decode_cached(path.read_bytes())
    assert page is not None and page.raw == (api == "json")
    (version,) = [v for v in page.versions if v.text == "0.18.2"]
    records = [list(r) for r in msgspec.msgpack.decode(version.records)]
    (wheel,) = [r for r in records if r[0] == "pydantly-0.18.2-py3-none-any.whl"]
    if forgery == "yanked":
        version.all_yanked = not version.all_yanked
    else:
        wheel[0] = "../../etc/passwd" if forgery == "name" else "pydantly-0.17.0-py3-none-any.whl"
        version.records = msgspec.Raw(msgspec.msgpack.encode(records))
    path.write_bytes(pages.encode_cached(page))
    (project / "pylock.toml").unlink()
    result = run_lockenv("lock", "-v", cwd=project, env=env)
    assert "Traceback" not in result.output
    if api == "json" and forgery == "name":
        assert result.code == 0, result.output
        assert "pydantly: skipped ../../etc/passwd: " in result.stderr
        assert "../../etc/passwd" not in (project / "pylock.toml").read_text()
        return
    assert result.code == 2, result.output
    assert "the cached copy of pydantly.msgpack is damaged and was refused" in result.stderr
    assert str(path) in result.stderr
    assert {"name": "'../../etc/passwd': ", "moved": "is listed under version '0.18.2'",
            "yanked": "its flags do not match its files"}[forgery] in result.stderr
    assert not path.exists() and not (project / "pylock.toml").exists()
    srv.clear_log()
    result = run_lockenv("lock", cwd=project, env=env)
    assert result.code == 0, result.output
    assert any(r.path.endswith("/pydantly/json") or r.path.endswith("/pydantly/")
               for r in srv.requests)
    assert (project / "pylock.toml").read_text() == good


# -- the parsers: every field of an entry is checked ------------------------------------------

GOOD = "x-1.0-py3-none-any.whl"
SHA = "ab" * 32


def _json_page(*entries: object) -> bytes:
    return json.dumps({"releases": {"1.0": list(entries)}}).encode()


def test_json_api_entries_with_bad_fields_are_skipped_with_a_reason() -> None:
    skipped: list[str] = []
    body = _json_page(
        {"filename": 3, "url": "https://h/x"},
        "not an object",
        {"filename": "x-1.0.tar.gz", "url": "file:///etc/passwd"},
        {"filename": "x-1.0.zip", "url": "javascript:alert(1)"},
        {"filename": "x-1.0.tar.bz2", "url": "https://h/x-1.0.tar.bz2",
         "digests": {"sha256": "AB"}},
        {"filename": "x-1.0.tgz", "url": "https://h/x-1.0.tgz", "digests": {"sha256": 7}},
        {"filename": GOOD, "url": f"https://h/{GOOD}", "digests": {"sha256": SHA.upper()},
         "size": -1, "requires_python": ">=3.x", "yanked": True, "yanked_reason": ["no"]},
    )
    records = pages.parse_json_api(body, "https://h/pypi/x/json", skipped)
    assert [r[0] for r in records] == [GOOD]
    (good,) = records
    assert good[2] == SHA and good[3] is None and good[5] is None
    assert good[6] is True and good[7] is None  # yanked, the non-string reason dropped
    text = "\n".join(skipped)
    assert "a file entry without filename or url" in text
    assert "x-1.0.tar.gz: its URL is not http(s)" in text
    assert "x-1.0.zip: its URL is not http(s)" in text
    assert "x-1.0.tar.bz2: its sha256 is not 64 hex digits" in text
    assert "x-1.0.tgz: its sha256 is not 64 hex digits" in text
    assert f"{GOOD}: ignoring its invalid size -1" in text
    assert f"{GOOD}: ignoring its invalid requires-python '>=3.x'" in text


def test_json_api_typed_and_loose_parsers_agree_on_every_check() -> None:
    """A page whose fields all have the API's types takes the typed (msgspec) decoder; every
    per-file check must still apply there, with the same records and notes as the loose one."""
    entries = [
        {"filename": "x-1.0.tar.gz", "url": "file:///etc/passwd"},
        {"filename": "x-1.0.exe", "url": "https://h/x-1.0.exe"},
        {"filename": "x-1.0-py36+-none-any.whl", "url": "https://h/a.whl"},
        {"filename": "x-1.0.tar.bz2", "url": "https://h/x-1.0.tar.bz2",
         "digests": {"sha256": "AB", "md5": "00"}},
        {"filename": "x-1.0.zip", "url": f"https://h/x-1.0.zip#sha256={SHA}", "digests": {},
         "upload_time": "2020-01-02T03:04:05", "yanked": True, "yanked_reason": ""},
        {"filename": GOOD, "url": f"https://h/{GOOD}", "digests": {"sha256": SHA.upper()},
         "size": -1, "requires_python": ">=3.x", "yanked": True, "yanked_reason": "bad",
         "upload_time_iso_8601": "2020-01-02T03:04:05.123456Z", "comment_text": None},
        {"filename": "x-2.0.tar.gz", "url": "../../files/x-2.0.tar.gz", "size": 10,
         "requires_python": "", "digests": {"sha256": None}},
    ]
    body = json.dumps({"info": {"name": "x"}, "releases": {"1.0": entries, "2.0": []},
                       "urls": [], "vulnerabilities": []}).encode()
    typed: list[str] = []
    loose: list[str] = []
    url = "https://h/pypi/x/json"
    records = pages.parse_json_api(body, url, typed)
    assert records == pages._parse_json_api_loose(body, url, loose)
    assert typed == loose and len(typed) == 6, typed
    assert [r[0] for r in records] == ["x-1.0.zip", GOOD, "x-2.0.tar.gz"]
    assert records[0][2] == SHA and records[0][4] == "2020-01-02T03:04:05Z"
    assert records[0][7] is None and records[1][7] == "bad"
    assert records[2][1] == "https://h/files/x-2.0.tar.gz"


def test_page_name_checks_give_the_models_verdict_and_message() -> None:
    """The pages' per-part (cached) file-name check accepts and refuses exactly what
    `models.filename_problem` does, with its message, in any order of names (a wheel name
    with a build tag included)."""
    from lockenv.models import filename_problem as expected

    names = [
        "x-1.0-py3-none-any.whl", "x-1.0-py36+-none-any.whl", "x-1.0.0.0-cp312-abi3-win_amd64.whl",
        "x-1.0-1-py3-none-any.whl", "x-1.0-1a-py3-none-any.whl", "x-1.0-a1-py3-none-any.whl", "x-1.0-py3-none-any.whl.zip", "x__y-1.0-py3-none-any.whl",
        "x-y-1.0-py3-none-any.whl", "x-1.0a-py3-none-any.whl", "x-one-py3-none-any.whl",
        "-1.0-py3-none-any.whl", "x--py3-none-any.whl", "x-1.0--none-any.whl", "x.whl",
        "x-1.0.tar.gz", "x-y-1.0.tar.gz", "x_y-1.0.zip", "x-1.0.tgz", "x-1.0.tar.bz2",
        "x-1.0.tar", "x-1.0.tar.zst", "x-1.0.exe", "x.tar.gz", "-1.0.tar.gz", "x-.tar.gz",
        "x-one.tar.gz", "x!-1.0.tar.gz", "x-1.0-2.0.tar.gz", "x-1.0+local.zip", "x-v1.0.tgz",
        "Foo.Bar-01.00.post1.dev2.tar.gz", "x-1.0-py2.py3-none-any.whl", "x-1.0-py3-none-.whl",
    ]
    for order in (names, names[::-1]):
        pages._wheel_part_problem.cache_clear()
        pages._version_ok.cache_clear()
        for name in order:
            assert pages.file_problem(name) == expected(name), name


def test_simple_json_and_html_entries_are_checked_the_same_way() -> None:
    skipped: list[str] = []
    body = json.dumps({"files": [
        {"filename": "x-1.0-py36+-none-any.whl", "url": "https://h/a.whl", "hashes": {}},
        {"filename": GOOD, "url": f"https://h/{GOOD}", "hashes": {"sha256": SHA},
         "size": "12", "core-metadata": {"sha256": "nothex"}, "requires-python": 3},
    ]}).encode()
    records = pages.parse_simple_json(body, "https://h/simple/x/", skipped)
    assert [(r[0], r[3], r[5], r[8], r[9]) for r in records] == [(GOOD, None, None, True, None)]
    assert any("invalid tag component" in s for s in skipped)

    skipped = []
    html = ('<!DOCTYPE html><html><body>'
            '<a href="https://h/x-1.0-py36+-none-any.whl">x-1.0-py36+-none-any.whl</a>'
            '<a href="https://h/x-1.0.exe">x-1.0.exe</a>'
            '<a href="ftp://h/x-1.0.tar.gz">x-1.0.tar.gz</a>'
            f'<a href="https://h/{GOOD}#sha256=zz" >{GOOD}</a>'
            f'<a href="https://h/{GOOD}#sha256={SHA}" data-requires-python="&gt;=3.x">{GOOD}</a>'
            '</body></html>').encode()
    records = pages.parse_simple_html(html, "https://h/simple/x/", skipped)
    assert [(r[0], r[2], r[5]) for r in records] == [(GOOD, SHA, None)]
    assert len(skipped) == 5, skipped

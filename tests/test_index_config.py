"""`[[tool.lockenv.index]]`, `[tool.lockenv.sources]` and the trust settings as pyproject.toml
gives them: which index is searched when, which one is the default, and what is an error."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from lockenv import manifest
from lockenv.errors import ManifestError
from lockenv.index.routing import Routes
from lockenv.urls import DEFAULT_INDEX_URL

HEAD = '[project]\nname = "app"\nversion = "0"\nrequires-python = ">=3.10"\n'


def load(project: Path, body: str, **env: str):
    (project / "pyproject.toml").write_text(HEAD + textwrap.dedent(body))
    return manifest.load(project, environ=env)


def names(configs) -> list[str | None]:
    return [c.name or c.url for c in configs]


def test_search_order_is_file_order_then_the_default(project: Path) -> None:
    spec = load(project, """
        [[tool.lockenv.index]]
        name = "first"
        url = "https://one.example/simple/"
        [[tool.lockenv.index]]
        name = "hidden"
        url = "https://two.example/simple/"
        explicit = true
        [[tool.lockenv.index]]
        name = "second"
        url = "https://three.example/pypi"
        [tool.lockenv.sources]
        Acme_Utils = { index = "hidden" }
        """)
    assert names(spec.indexes.search) == ["first", "second", DEFAULT_INDEX_URL]
    routes = Routes(spec.indexes)
    assert names(routes.candidates("acme-utils")) == ["hidden"]  # normalised name
    assert names(routes.candidates("other")) == ["first", "second", DEFAULT_INDEX_URL]
    assert spec.index_url == DEFAULT_INDEX_URL


def test_default_true_replaces_pypi_unless_explicit_or_overridden(project: Path) -> None:
    body = """
        [[tool.lockenv.index]]
        name = "corp"
        url = "https://corp.example/simple/"
        default = true
        """
    spec = load(project, body)
    assert names(spec.indexes.search) == ["corp"] and spec.index_url == "https://corp.example/simple/"
    spec = load(project, body, LOCKENV_INDEX_URL="https://mirror.example/simple/")
    assert names(spec.indexes.search) == ["https://mirror.example/simple/"]
    assert spec.indexes.by_name("corp") is not None  # still there for pins
    spec = load(project, body + "explicit = true\n")
    assert names(spec.indexes.search) == [DEFAULT_INDEX_URL]  # explicit: never searched


@pytest.mark.parametrize(("body", "message"), [
    ('[[tool.lockenv.index]]\nname = "a"\nurl = "https://a/simple/"\ndefault = true\n'
     '[[tool.lockenv.index]]\nname = "b"\nurl = "https://b/simple/"\ndefault = true\n',
     "indexes `a` and `b` are both `default = true`"),
    ('[tool.lockenv]\nindex-url = "https://m/simple/"\n'
     '[[tool.lockenv.index]]\nname = "a"\nurl = "https://a/simple/"\ndefault = true\n',
     "index `a` is `default = true` and `index-url` is set too"),
    ('[[tool.lockenv.index]]\nname = "a"\nurl = "https://a/simple/"\n'
     '[[tool.lockenv.index]]\nname = "a"\nurl = "https://b/simple/"\n', "two indexes are named `a`"),
    ('[[tool.lockenv.index]]\nname = "a"\nurl = "ftp://a/simple/"\n',
     "index `a` needs a `url` that is an http(s) URL"),
    ('[[tool.lockenv.index]]\nname = "a"\nurl = "https://a/"\nexplicit = "yes"\n',
     "`explicit` of index `a` must be true or false"),
    ('[[tool.lockenv.index]]\nurl = "https://a/"\n', "has no `name`"),
    ('[tool.lockenv.sources]\nx = "internal"\n', "`tool.lockenv.sources.x` must be"),
    ('[tool.lockenv.sources]\nx = { index = "internal" }\n',
     "`x` is pinned to index `internal`, which is not declared"),
    ('[tool.lockenv]\nkeyring-provider = "import"\n', "must be \"subprocess\" or \"disabled\""),
])
def test_configuration_errors_name_the_line_and_the_fix(project: Path, body: str,
                                                        message: str) -> None:
    with pytest.raises(ManifestError) as info:
        load(project, body)
    assert message in str(info.value)
    assert str(info.value).startswith(str(project / "pyproject.toml") + ":")
    assert info.value.hint


def test_keyring_provider_and_insecure_hosts(project: Path) -> None:
    body = '[tool.lockenv]\nallow-insecure-host = ["pypi.lan", "10.0.0.5:8080"]\n'
    spec = load(project, body)
    assert spec.indexes.keyring_provider is None
    assert spec.indexes.allow_insecure_hosts == ("pypi.lan", "10.0.0.5:8080")
    assert load(project, body, LOCKENV_KEYRING_PROVIDER="subprocess").indexes.keyring_provider \
        == "subprocess"
    spec = load(project, '[tool.lockenv]\nkeyring-provider = "subprocess"\n',
                LOCKENV_KEYRING_PROVIDER="disabled")
    assert spec.indexes.keyring_provider is None


def test_an_index_url_with_a_password_is_never_in_a_repr(project: Path) -> None:
    spec = load(project, '[[tool.lockenv.index]]\nname = "a"\n'
                         'url = "https://u:hunter2@a.example/simple/"\n')
    assert "hunter2" not in repr(spec.indexes)

"""pytest fixtures for the local fixture index: `index_server` (base universe) and `make_index`.

Loaded from tests/conftest.py with `pytest_plugins = ["fixtures_plugin"]`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from fixtures.index import IndexServer  # noqa: E402

MakeIndex = Callable[..., IndexServer]


@pytest.fixture
def index_server() -> Iterator[IndexServer]:
    """A running fixture index serving the base universe, stopped after the test."""
    with IndexServer("base") as srv:
        yield srv


@pytest.fixture
def make_index() -> Iterator[MakeIndex]:
    """`make_index(universe="base", *, port=0, per_version_json=False)` → a running
    IndexServer (universe: a name, a .toml Path, or a dict); all are stopped after the test."""
    started: list[IndexServer] = []

    def factory(universe: str | Path | dict[str, Any] = "base", **kwargs: Any) -> IndexServer:
        srv = IndexServer(universe, **kwargs).start()
        started.append(srv)
        return srv

    yield factory
    for srv in started:
        srv.stop()

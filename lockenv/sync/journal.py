"""Reading back the journal of an interrupted sync (`state.write_journal` wrote it): the repair's
work, on the full path only. Not in `state`, which the no-op and warm paths import without
`typing`: the journal is a NamedTuple."""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

from lockenv.sync.state import JOURNAL


class Journal(NamedTuple):
    """A sync in progress: what it was changing, so an interrupted one can be repaired."""

    names: tuple[str, ...] = ()
    """The distributions it was installing, replacing or removing."""
    paths: tuple[str, ...] = ()
    """Every file its installs write (deleted by the repair, then written again)."""
    removing: tuple[str, ...] = ()
    """The distributions it was removing (an `--inexact` repair finishes the removal)."""
    pid: int | None = None
    unreadable: bool = False
    """The journal exists but cannot be read: everything is suspect."""


def read_journal(venv: Path) -> Journal | None:
    """The journal `state.write_journal` left in `venv` (None: no sync was interrupted there);
    one that cannot be read or parsed is `unreadable`."""
    path = venv / JOURNAL
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_bytes())
        if isinstance(data, dict):
            pid = data.get("pid")
            return Journal(names=_strings(data.get("names")), paths=_strings(data.get("paths")),
                           removing=_strings(data.get("removing")),
                           pid=pid if isinstance(pid, int) else None)
    except (OSError, ValueError):
        pass
    return Journal(unreadable=True)


def _strings(value: object) -> tuple[str, ...]:
    """A list of strings from the journal (it is ours, but a damaged one must not crash)."""
    if not isinstance(value, list):
        return ()
    return tuple(v for v in value if isinstance(v, str))

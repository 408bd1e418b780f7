"""What the lock should put in the venv, shared by `sync` and `verify`: the selection options
(extras, groups, which lock), the lock's path, the project's own editable entry, lockenv's own
runtime (kept when syncing the venv lockenv runs from) and the interpreter request.

Stdlib-only at import time: `fastpath` reaches `ops.sync`, and with it this module, before the
CLI framework loads.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from lockenv.project import LOCK_NAME
from lockenv.sync.state import SELECTION_FILE, write_selection

if TYPE_CHECKING:
    from collections.abc import Callable

    from packaging.pylock import Pylock

    from lockenv.environment import Probe
    from lockenv.models import ProjectSpec
    from lockenv.sync.selection import LockSource, Wanted


@dataclass(frozen=True)
class Selection:
    """What to select from which lock: the options `sync` and `verify` share."""

    project: Path
    extras: tuple[str, ...] = ()
    all_extras: bool = False
    groups: tuple[str, ...] = ()
    only_groups: tuple[str, ...] = ()
    no_default_groups: bool = False
    all_groups: bool = False
    lockfile: Path | None = None
    install_project: bool = True


_SELECTION_FIELDS = {"extras": tuple, "all_extras": bool, "groups": tuple, "only_groups": tuple,
                     "no_default_groups": bool, "all_groups": bool, "install_project": bool}


def chose_nothing(options: Selection) -> bool:
    """True when no selection flag was given (verify then checks what the last sync chose)."""
    default = Selection(project=options.project, lockfile=options.lockfile)
    return all(getattr(options, f) == getattr(default, f) for f in _SELECTION_FIELDS)


def selection_bytes(options: Selection) -> bytes:
    """What `record_selection` writes for `options`."""
    import json

    data = {f: list(v) if isinstance(v := getattr(options, f), tuple) else v for f in _SELECTION_FIELDS}
    return json.dumps(data, sort_keys=True).encode()


def record_selection(venv: Path, options: Selection) -> None:
    """After a successful sync: what it selected, for `verify` to check the same selection
    (never before: a failed sync must leave the venv's files as they were)."""
    write_selection(venv, selection_bytes(options))


def recorded_selection(venv: Path, options: Selection) -> Selection | None:
    """`options` with the selection the venv's last sync recorded; None when there is none or
    it is not what sync writes (the venv's files are untrusted input too)."""
    import json

    try:
        data = json.loads((venv / SELECTION_FILE).read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    fields: dict[str, object] = {}
    for name, kind in _SELECTION_FIELDS.items():
        value = data.get(name)
        if kind is tuple and isinstance(value, list) and all(isinstance(v, str) for v in value):
            fields[name] = tuple(value)
        elif kind is bool and isinstance(value, bool):
            fields[name] = value
        else:
            return None
    return replace(options, **fields)  # type: ignore[arg-type]


def describe_selection(options: Selection) -> str:
    """The selection as the flags that ask for it (`--extra cli --no-default-groups`)."""
    parts = [f"--extra {e}" for e in options.extras] + (["--all-extras"] if options.all_extras else [])
    parts += [f"--group {g}" for g in options.groups] + [f"--only-group {g}" for g in options.only_groups]
    parts += ["--no-default-groups"] if options.no_default_groups else []
    parts += ["--all-groups"] if options.all_groups else []
    parts += ["--no-install-project"] if not options.install_project else []
    return " ".join(parts) or "the defaults"


def lock_path(options: Selection) -> Path:
    return options.lockfile or options.project / LOCK_NAME


def python_request(python: str | None) -> tuple[str | None, str]:
    """The interpreter asked for and where the request came from (for messages)."""
    if python:
        return python, "--python"
    return os.environ.get("LOCKENV_PYTHON") or None, "LOCKENV_PYTHON"


def own_runtime(venv: Path) -> set[str]:
    """lockenv and what it needs, when the target venv is the one lockenv runs from."""
    if os.path.realpath(venv) != os.path.realpath(sys.prefix):
        return set()
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    seen: set[str] = set()
    todo = ["lockenv"]
    while todo:
        name = str(canonicalize_name(todo.pop()))
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for text in requires:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return seen


def project_wanted(spec: ProjectSpec | None, options: Selection) -> Wanted | None:
    """The project itself, installed editable, when it has a build system and is asked for."""
    from lockenv.manifest import static_version
    from lockenv.sync.selection import Wanted

    if spec is None or not options.install_project or options.only_groups:
        return None
    if not spec.has_build_system:
        return None
    version = static_version(Path(spec.pyproject))
    return Wanted(spec.name, version, "directory", local_path=str(Path(spec.root)),
                  editable=True, is_project=True)


def select_all(options: Selection, spec: ProjectSpec | None | Callable[[], ProjectSpec | None],
               lock: Pylock | LockSource, probe: Probe) -> list[Wanted]:
    """Everything the lock selects for the interpreter `probe` describes, with the project. A
    `LockSource` may answer from its cached selection for the same options, interpreter and
    pyproject.toml; `spec` may then be a function that reads the project only on a miss."""
    from lockenv.sync.selection import LockSource

    spec_of = spec if callable(spec) else (lambda: spec)
    if not isinstance(lock, LockSource):
        return _with_project(options, spec_of(), _select(options, lock, probe))
    # The project's path is not in the key: its own row (installed editable from its
    # directory) is kept as PROJECT_ROOT, so a copy of the project at a new path (a CI runner's
    # checkout) is answered from the same entry.
    key = {"markers": probe.markers, "tags": list(probe.tags),
           "options": [options.extras, options.all_extras, options.groups, options.only_groups,
                       options.no_default_groups, options.all_groups, options.install_project],
           "project": [_digest_of(options.project / "pyproject.toml")]}
    here = str(options.project)

    def compute(pylock: Pylock) -> tuple[list[Wanted], bool]:
        from lockenv.sync.selection import is_remote_file

        selected = _select(options, pylock, probe)
        wanted = _with_project(options, spec_of(), selected)
        keep = all(map(is_remote_file, selected)) \
            and all(w.local_path == here for w in wanted if w.is_project)
        return [_rooted(w, here, PROJECT_ROOT) for w in wanted], keep
    return [_rooted(w, PROJECT_ROOT, here) for w in lock.select(key, compute)]


PROJECT_ROOT = "{project}"
"""The project's directory as a kept selection writes it (see `select_all`)."""


def _rooted(want: Wanted, old: str, new: str) -> Wanted:
    """The project's own entry with its directory `old` written as `new`; any other as it is."""
    return replace(want, local_path=new) if want.is_project and want.local_path == old else want


def _digest_of(path: Path) -> str | None:
    import hashlib

    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _with_project(options: Selection, spec: ProjectSpec | None, wanted: list[Wanted]) -> list[Wanted]:
    """The lock's selection with the project itself (editable), as the options ask."""
    from lockenv.manifest import static_version

    project = project_wanted(spec, options)
    if not options.install_project:
        wanted = [w for w in wanted if not w.is_project]
    # uv writes the project as a directory entry without a version: take it from pyproject.toml.
    wanted = [replace(w, version=static_version(Path(w.local_path or "") / "pyproject.toml"))
              if w.kind == "directory" and w.version is None else w for w in wanted]
    if project is not None and not any(w.name == project.name for w in wanted):
        wanted.append(project)
    return wanted


def _select(options: Selection, lock: Pylock, probe: Probe) -> list[Wanted]:
    from lockenv.sync.selection import build_request, group_requirements_of, select

    path = lock_path(options)
    request = build_request(
        lock, extras=options.extras, all_extras=options.all_extras, groups=options.groups,
        only_groups=options.only_groups, no_default_groups=options.no_default_groups,
        all_groups=options.all_groups,
    )
    return select(lock, path, request, markers=probe.markers, tags=probe.tag_objects(),
                  project_root=options.project,
                  group_requirements=group_requirements_of(path) if request.only_groups else None)

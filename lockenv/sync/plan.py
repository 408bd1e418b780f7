"""`plan()`: what to change in a venv so it holds exactly what the lock selects. A pure function
of plain data (what is wanted, what is installed); `apply` carries the plan out."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from lockenv.sync.scan import Installed
from lockenv.sync.selection import Wanted

SEED_PACKAGES = frozenset({"pip", "setuptools", "wheel"})
"""What `python -m venv` (or virtualenv) puts in a venv. Kept when the lock does not select
them, as `uv sync` keeps them (its `is_seed_package`); the plan lists them as kept
(`= pip==24.0 (seed package, kept)`). When the lock selects one, the lock's version wins."""

SEED_KEPT = "seed package, kept"

KINDS = ("install", "upgrade", "downgrade", "reinstall", "remove", "keep")

CAUSES = ("twice", "files", "editable", "release", "archive")
"""Why a reinstall: installed more than once; files differ from RECORD (or an interrupted sync
touched it); not installed editable from the lock's directory; installed editable where the
lock has a release; installed from another archive than the lock's."""


@dataclass(frozen=True)
class Action:
    """One step of a plan."""

    kind: str
    """One of KINDS."""
    name: str
    reason: str
    wanted: Wanted | None = None
    installed: tuple[Installed, ...] = ()
    """The installed distributions this replaces or removes (several if a name is installed
    twice)."""
    cause: str = ""
    """Which difference decided a reinstall, as data (one of CAUSES), so that `verify` words
    the same finding its own way without comparing again."""

    @property
    def old_version(self) -> str | None:
        return self.installed[0].version if self.installed else None

    @property
    def new_version(self) -> str | None:
        return self.wanted.version if self.wanted else None

    @property
    def is_seed_kept(self) -> bool:
        return self.kind == "keep" and self.wanted is None and self.reason == SEED_KEPT

    def line(self, *, with_reason: bool = False) -> str | None:
        """The user-facing plan line (`+ a==1`, `- b==2`, `~ c 1 -> 2`, `= pip==24.0 (seed
        package, kept)`); None for other keeps."""
        if self.is_seed_kept:
            return f"= {self.installed[0].label} ({SEED_KEPT})"
        if self.kind == "install":
            assert self.wanted is not None
            text = f"+ {self.wanted.label}"
        elif self.kind == "remove":
            text = f"- {self.installed[0].label}"
        elif self.kind in ("upgrade", "downgrade", "reinstall"):
            new = self.new_version or "?"
            suffix = " (editable)" if self.wanted and self.wanted.editable else ""
            text = f"~ {self.name} {self.old_version} -> {new}{suffix}"
            if self.kind == "reinstall" and not with_reason:
                text += f" ({self.reason})"
        else:
            return None
        if with_reason:
            text += f" ({self.reason})"
        return text


@dataclass(frozen=True)
class SyncPlan:
    """The plan: one action per distribution name, sorted by name (dependencies first is not
    needed: wheels install in any order; the project itself goes last)."""

    actions: tuple[Action, ...]

    def of_kind(self, *kinds: str) -> list[Action]:
        return [a for a in self.actions if a.kind in kinds]

    @property
    def changes(self) -> list[Action]:
        return [a for a in self.actions if a.kind != "keep"]

    @property
    def is_empty(self) -> bool:
        return not self.changes

    def lines(self, *, with_reason: bool = False) -> list[str]:
        """Plan lines: every change, and the seed packages kept."""
        return [line for a in self.actions if (a.kind != "keep" or a.is_seed_kept)
                and (line := a.line(with_reason=with_reason))]

    def summary_counts(self) -> dict[str, int]:
        counts = {k: 0 for k in KINDS}
        for action in self.actions:
            counts[action.kind] += 1
        return counts


def _version_key(version: str) -> object:
    from packaging.version import InvalidVersion, Version

    try:
        return Version(version)
    except InvalidVersion:
        return None


def plan(wanted: Sequence[Wanted], installed: Sequence[Installed], *, exact: bool = True,
         protected: Collection[str] = (), full_check: bool = False) -> SyncPlan:
    """Compare what the lock selects with what is installed.

    - not installed → install; another version → upgrade/downgrade;
    - same version but files differ from RECORD, another archive (sha256), installed twice,
      editable where the lock wants a regular install (or the reverse) → reinstall;
    - installed but not selected → remove when `exact`, else keep; names in `protected`
      (lockenv's own runtime, when syncing the venv lockenv runs from) and seed packages
      (pip, setuptools, wheel) are always kept.

    `full_check` is verify's comparison: the caller hashed every file and reports each one by
    name, so file problems do not decide an action here; every other fact is compared alike.
    """
    by_name: dict[str, list[Installed]] = {}
    for dist in installed:
        by_name.setdefault(dist.name, []).append(dist)
    actions: list[Action] = []
    wanted_names = set()
    for want in wanted:
        wanted_names.add(want.name)
        have = tuple(by_name.get(want.name, ()))
        actions.append(_compare(want, have, full_check=full_check))
    for name in sorted(set(by_name) - wanted_names):
        have = tuple(by_name[name])
        if name in protected:
            actions.append(Action("keep", name, "lockenv's own runtime", None, have))
        elif name in SEED_PACKAGES:
            actions.append(Action("keep", name, SEED_KEPT, None, have))
        elif exact:
            actions.append(Action("remove", name, "not in the lock", None, have))
        else:
            actions.append(Action("keep", name, "not in the lock; kept (--inexact)", None, have))
    # The project itself installs after its dependencies.
    actions.sort(key=lambda a: (bool(a.wanted and a.wanted.is_project), a.name))
    return SyncPlan(tuple(actions))


def _compare(want: Wanted, have: tuple[Installed, ...], *, full_check: bool) -> Action:
    if not have:
        reason = "the project, editable" if want.is_project else "not installed"
        return Action("install", want.name, reason, want, have)
    if len(have) > 1:
        versions = ", ".join(d.version for d in have)
        return Action("reinstall", want.name, f"installed {len(have)} times ({versions})", want, have,
                      "twice")
    dist = have[0]
    if want.version and dist.version != want.version:
        old, new = _version_key(dist.version), _version_key(want.version)
        kind = "upgrade"
        if old is not None and new is not None and new < old:  # type: ignore[operator]
            kind = "downgrade"
        return Action(kind, want.name, f"lock has {want.version}, {dist.version} installed", want, have)
    if dist.problems and not full_check:
        shown = "; ".join(dist.problems[:3])
        more = f" and {len(dist.problems) - 3} more" if len(dist.problems) > 3 else ""
        return Action("reinstall", want.name, shown + more, want, have, "files")
    if want.kind == "directory":
        url = Path(want.local_path or "").as_uri()
        if want.editable:
            if dist.editable_url != url:
                return Action("reinstall", want.name, f"not installed editable from {want.local_path}",
                              want, have, "editable")
            return Action("keep", want.name, "editable install up to date", want, have)
        return Action("keep", want.name, "installed from the directory", want, have)
    if dist.editable_url is not None:
        return Action("reinstall", want.name, "installed editable; the lock has a release", want, have,
                      "release")
    if dist.archive_sha256 and want.sha256 and dist.archive_sha256 != want.sha256:
        return Action("reinstall", want.name,
                      f"installed from another archive than the lock's (sha256 {dist.archive_sha256[:12]}…)",
                      want, have, "archive")
    return Action("keep", want.name, "up to date", want, have)

"""The results `lock --check`, `sync --dry-run` and `verify` hand to `--json`: frozen data
built from what those use cases already computed (their text output is unchanged)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Reason:
    kind: str
    """A `StaleReason` kind: missing, invalid, foreign, edited, requires-python, dependency-added, ..."""
    subject: str
    detail: str


@dataclass(frozen=True)
class LockCheck:
    lockfile: str
    fresh: bool
    reasons: tuple[Reason, ...]


def lock_check(path: Path, reasons: Iterable[Any]) -> LockCheck:
    found = tuple(Reason(r.kind, r.subject, r.detail) for r in reasons)
    return LockCheck(str(path), not found, found)


@dataclass(frozen=True)
class PlannedAction:
    kind: str
    """install, upgrade, downgrade, reinstall, remove, or keep (only seed packages are listed)."""
    name: str
    installed: str | None
    """The installed version it replaces or removes."""
    locked: str | None
    """The version the lock selects."""
    reason: str


@dataclass(frozen=True)
class SyncDryRun:
    lockfile: str
    venv: str
    create_venv: bool
    """The venv does not exist (or cannot be used) and would be made first."""
    actions: tuple[PlannedAction, ...]
    counts: dict[str, int]


def sync_dry_run(lock_path: Path, venv: Path, create_venv: bool, plan: Any) -> SyncDryRun:
    actions = tuple(
        PlannedAction(a.kind, a.name, a.old_version, a.new_version, a.reason)
        for a in plan.actions if a.kind != "keep" or a.is_seed_kept
    )
    counts = {k: v for k, v in plan.summary_counts().items() if k != "keep"}
    return SyncDryRun(str(lock_path), str(venv), create_venv, actions, counts)


@dataclass(frozen=True)
class Problem:
    kind: str
    """What the line starts with: modified, missing, no RECORD, extraneous file, extraneous
    package, missing package, wrong version, installed twice, different archive, ..."""
    detail: str
    """The whole line, as `verify` prints it."""


@dataclass(frozen=True)
class VerifyReport:
    lockfile: str
    venv: str
    matches: bool
    problems: tuple[Problem, ...]
    packages: int
    files: int


def verify_report(lock_path: Path, venv: Path, problems: Sequence[str], packages: int,
                  files: int) -> VerifyReport:
    found = tuple(Problem(line.split(":", 1)[0], line) for line in problems)
    return VerifyReport(str(lock_path), str(venv), not found, found, packages, files)

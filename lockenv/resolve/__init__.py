"""Resolution: pyproject.toml's requirements → one universal, marker-annotated graph.

Modules, bottom up: targets (the environments), markers (fork conditions), requirements
(identifiers, requirements, candidates, roots), source (the package source), prefetch (crawling
ahead), provider (resolvelib hooks), single (one environment, conflicts), graph (the universal
merge), universal (orchestration). This package imports no lockfile, sync, build or ops: the
use case (`ops/lock.py`) composes it with them. Importing it is cheap (resolvelib loads on use).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING

from lockenv.models import DistFile, LockInputs, ProjectSpec

if TYPE_CHECKING:
    from packaging.tags import Tag

    from lockenv.resolve.source import Index, PackageIndex
    from lockenv.resolve.universal import UniversalResolution
    from lockenv.ui import Reporter

__all__ = ["resolve", "resolve_single"]


def resolve(
    spec: ProjectSpec,
    inputs: LockInputs,
    index: PackageIndex,
    *,
    preferences: Mapping[str, Sequence[tuple[str, str | None]]] | None = None,
    upgrade: bool = False,
    upgrade_packages: Collection[str] = (),
    reporter: Reporter | None = None,
) -> UniversalResolution:
    """The universal resolution of a project: every target, one marker-annotated graph, and
    what the lock must serve. `inputs` is what the lock will record (`lockfile.inputs_from_spec`)."""
    from lockenv.resolve.universal import resolve_universal

    return resolve_universal(
        spec,
        inputs,
        index,
        preferences=preferences or {},
        upgrade=upgrade,
        upgrade_packages=upgrade_packages,
        reporter=reporter,
    )


def resolve_single(
    requirements: Sequence[str],
    index: Index,
    *,
    environment: Mapping[str, str],
    tags: Sequence[Tag],
) -> list[tuple[str, str, DistFile]]:
    """One environment (e.g. an isolated build env): (name, version, file to install)."""
    from lockenv.resolve import single

    return single.resolve_single(requirements, index, environment=environment, tags=tags)

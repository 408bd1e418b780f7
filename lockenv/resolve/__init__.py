"""Resolution: the resolvelib provider (`provider`), the lock's targets (`targets`), fork
conditions (`markers`) and the universal merge (`universal`)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.tags import Tag

from lockenv.errors import ManifestError
from typing import TYPE_CHECKING

from lockenv.models import DistFile, LockInputs, ProjectSpec

if TYPE_CHECKING:
    from lockenv.resolve.universal import UniversalResolution

__all__ = ["resolve", "resolve_single"]


def resolve(
    spec: ProjectSpec,
    inputs: LockInputs,
    client: Any,
    *,
    preferences: Mapping[str, Sequence[tuple[str, str | None]]] | None = None,
    upgrade: bool = False,
    upgrade_packages: Collection[str] = (),
    reporter: Any = None,
) -> UniversalResolution:
    """The universal resolution of a project: every target, one marker-annotated graph, and
    what the lock must serve. `inputs` is what the lock will record (`lockfile.inputs_from_spec`)."""
    from lockenv.resolve.universal import resolve_universal

    return resolve_universal(
        spec,
        inputs,
        client,
        preferences=preferences or {},
        upgrade=upgrade,
        upgrade_packages=upgrade_packages,
        reporter=reporter,
    )


def resolve_single(
    requirements: Sequence[str],
    client: Any,
    *,
    environment: Mapping[str, str],
    tags: Sequence[Tag],
) -> list[tuple[str, str, DistFile]]:
    """One environment (e.g. an isolated build env): (name, version, file to install)."""
    from lockenv.resolve.provider import Metadata, requirement_to_reqs
    from lockenv.resolve.universal import resolve_target

    roots = []
    for text in requirements:
        try:
            roots.extend(requirement_to_reqs(Requirement(text), "main"))
        except InvalidRequirement as exc:
            raise ManifestError(f"invalid requirement `{text}`: {exc}") from None
    env = dict(environment)
    meta = Metadata(client)
    try:
        pins, _edges = resolve_target(
        env,
            {tag: i for i, tag in enumerate(tags)},
            roots,
            meta,
            {},
            label=f"Python {env.get('python_version', '?')} build environment",
            project="build requirements",
            requires_python=f"=={env.get('python_full_version', '')}",
        )
    finally:
        meta.close()
    return sorted(
        ((c.name, str(c.version), c.file) for ident, c in pins.items() if "[" not in ident),
        key=lambda x: x[0],
    )

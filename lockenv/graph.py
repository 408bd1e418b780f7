"""The dependency graph a lock records, rebuilt from `pylock.toml` alone (no network, no venv):
for `tree`, `why` and `export`.

A lock records, per package entry, its marker (when *the entry* is installed) and which entries it
depends on (`dependencies`, with a version where the name is forked), but not the marker of each
edge; lockenv's locks also record the project's own requirements under `[tool.lockenv]`. So:

- an edge from the project (main dependencies, an extra, a group) carries its requirement's
  marker, exactly;
- an edge between packages carries the condition under which the child is installed alongside
  the parent: the child's marker simplified by what the parent's marker already implies. That
  is exact for a package with one parent, and never narrower than the package's own metadata
  otherwise (a child another parent needs everywhere shows as unconditional);
- an edge whose child can never be installed alongside the parent (a forked version on the
  other side of the fork) is left out, so forks show each version under its own condition.

Markers are handled with dep-logic (implication, simplification); the project's extras and
groups appear in lock markers as `'x' in extras` and `'g' in dependency_groups`.
"""

from __future__ import annotations

import operator
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import reduce
from typing import Any

from dep_logic.markers import AnyMarker, BaseMarker, EmptyMarker, MarkerUnion, MultiMarker, parse_marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from lockenv.models import LockInputs

__all__ = ["Edge", "LockGraph", "Node", "build", "given", "substitute"]

_CONTEXT = ("extras", "dependency_groups")


@dataclass(frozen=True)
class Node:
    """A package entry of the lock, or one of the project's roots."""

    id: int
    kind: str
    """'package', or a root: 'main' (the project's dependencies), 'extra', 'group'."""
    name: str
    """Normalised package name; the extra or group name for those roots; '' for 'main'."""
    version: str | None = None
    marker: str | None = None
    """The package entry's marker as the lock writes it (None: every environment)."""
    index: int = -1
    """Position among the lock's `[[packages]]` (-1 for a root)."""

    @property
    def is_root(self) -> bool:
        return self.kind != "package"

    @property
    def label(self) -> str:
        if self.kind == "package":
            return f"{self.name} v{self.version}" if self.version else self.name
        return f"{self.kind}: {self.name}" if self.name else "main"


@dataclass(frozen=True)
class Edge:
    parent: int
    child: int
    marker: str | None
    """When the child is installed because of this edge (None: whenever the parent is)."""
    requirement: str | None = None
    """The project's requirement text, for an edge from a root."""


@dataclass(frozen=True)
class LockGraph:
    nodes: tuple[Node, ...]
    children: Mapping[int, tuple[Edge, ...]]
    """Node id → its outgoing edges, sorted by child name and version."""
    parents: Mapping[int, tuple[Edge, ...]]
    """Node id → its incoming edges, sorted by parent (roots first)."""
    roots: tuple[int, ...]
    """main, then each extra, then each group (sorted)."""
    exact_roots: bool
    """True when the project's requirements are recorded (`[tool.lockenv]`); otherwise the main
    root points at every package no other package depends on."""

    def named(self, name: str) -> list[Node]:
        want = canonicalize_name(name)
        return [n for n in self.nodes if n.kind == "package" and n.name == want]

    def packages(self) -> list[Node]:
        return [n for n in self.nodes if n.kind == "package"]


# -- markers ------------------------------------------------------------------------------------


def _marker(text: str | None) -> BaseMarker:
    return AnyMarker() if not text else parse_marker(text)


def _text(marker: BaseMarker) -> str | None:
    return None if marker.is_any() else str(marker)


def implies(premise: BaseMarker, conclusion: BaseMarker) -> bool:
    return conclusion.is_any() or premise.is_empty() or (premise & ~conclusion).is_empty()


def given(marker: BaseMarker, known: BaseMarker) -> BaseMarker:
    """`marker` simplified where `known` holds: parts `known` already implies are dropped, parts
    it contradicts too (`known and result` == `known and marker`)."""
    if implies(known, marker):
        return AnyMarker()
    if (marker & known).is_empty():
        return EmptyMarker()
    if isinstance(marker, MultiMarker):
        kept = [m for m in marker.markers if not implies(known, m)]
        return reduce(operator.and_, kept, AnyMarker())
    if isinstance(marker, MarkerUnion):
        parts = [given(m, known) for m in marker.markers]
        return reduce(operator.or_, [p for p in parts if not p.is_empty()], EmptyMarker())
    return marker


def has_context(marker: BaseMarker) -> bool:
    return any(name in str(marker) for name in _CONTEXT)


def substitute(marker: BaseMarker, extras: Collection[str], groups: Collection[str]) -> BaseMarker:
    """`marker` with its `'x' in extras` / `'g' in dependency_groups` terms decided by the
    chosen extras and groups: what is left is a marker pip can evaluate."""
    if isinstance(marker, MultiMarker):
        return reduce(operator.and_, (substitute(m, extras, groups) for m in marker.markers), AnyMarker())
    if isinstance(marker, MarkerUnion):
        return reduce(operator.or_, (substitute(m, extras, groups) for m in marker.markers), EmptyMarker())
    name = getattr(marker, "name", None)
    if name in _CONTEXT:
        chosen = extras if name == "extras" else groups
        inside = canonicalize_name(str(getattr(marker, "value", ""))) in chosen
        wanted = getattr(marker, "op", "in") == "in"
        return AnyMarker() if inside == wanted else EmptyMarker()
    return marker


# -- building -----------------------------------------------------------------------------------


def _version_key(node: Node) -> tuple[str, Any]:
    try:
        return (node.name, (0, Version(node.version or "")))
    except InvalidVersion:
        return (node.name, (1, node.version or ""))


def build(lock: Any, inputs: LockInputs | None) -> LockGraph:
    """The graph of a validated `packaging.pylock.Pylock` and, for a lock lockenv wrote, the
    inputs recorded under `[tool.lockenv]`."""
    nodes: list[Node] = []
    roots = [Node(0, "main", "")]
    if inputs is not None:
        roots += [Node(0, "extra", str(canonicalize_name(x))) for x in sorted(inputs.optional_dependencies)]
        roots += [Node(0, "group", str(canonicalize_name(g))) for g in sorted(inputs.dependency_groups)]
    for i, root in enumerate(roots):
        nodes.append(Node(i, root.kind, root.name))
    for index, pkg in enumerate(lock.packages):
        nodes.append(Node(len(nodes), "package", str(canonicalize_name(pkg.name)),
                          str(pkg.version) if pkg.version is not None else None,
                          str(pkg.marker) if pkg.marker is not None else None, index))
    by_name: dict[str, list[Node]] = {}
    for node in nodes:
        if node.kind == "package":
            by_name.setdefault(node.name, []).append(node)
    for same in by_name.values():
        same.sort(key=_version_key)
    contexts = _contexts(lock)
    edges = _package_edges(lock, nodes, by_name, contexts)
    if inputs is not None:
        edges += _root_edges(nodes, inputs, by_name)
    else:
        depended = {e.child for e in edges}
        edges += [Edge(0, n.id, n.marker) for n in nodes if n.kind == "package" and n.id not in depended]
    return _assemble(nodes, edges, inputs is not None)


def _contexts(lock: Any) -> list[tuple[frozenset[str], frozenset[str]]]:
    """No extra and no group; each extra alone; each group alone."""
    out = [(frozenset[str](), frozenset[str]())]
    out += [(frozenset({str(canonicalize_name(x))}), frozenset[str]()) for x in lock.extras or ()]
    out += [(frozenset[str](), frozenset({str(canonicalize_name(g))})) for g in lock.dependency_groups or ()]
    return out


def _package_edges(lock: Any, nodes: Sequence[Node], by_name: Mapping[str, list[Node]],
                   contexts: Sequence[tuple[frozenset[str], frozenset[str]]]) -> list[Edge]:
    edges: list[Edge] = []
    first = next((n.id for n in nodes if n.kind == "package"), len(nodes))
    for pkg_index, pkg in enumerate(lock.packages):
        parent = nodes[first + pkg_index]
        for dep in pkg.dependencies or ():
            for child in _targets(dep, by_name):
                if child.id == parent.id:
                    continue
                marker = _edge_marker(_marker(parent.marker), _marker(child.marker), contexts)
                if marker is not None and not marker.is_empty():
                    edges.append(Edge(parent.id, child.id, _text(marker)))
    return edges


def _targets(dep: Any, by_name: Mapping[str, list[Node]]) -> list[Node]:
    """The entries a `dependencies` table names: by name, and version when it gives one."""
    if not isinstance(dep, Mapping) or not isinstance(dep.get("name"), str):
        return []
    found = by_name.get(str(canonicalize_name(dep["name"])), [])
    version = dep.get("version")
    if isinstance(version, str):
        found = [n for n in found if n.version == version]
    return found


def _edge_marker(parent: BaseMarker, child: BaseMarker,
                 contexts: Sequence[tuple[frozenset[str], frozenset[str]]]) -> BaseMarker | None:
    """A package's requirements know nothing of the project's extras and groups: decide those
    terms per context (no extra and no group, or one extra or group alone) and, when the child
    comes with the parent in every context the parent appears in, keep what holds in all of
    them. When it does not (the parent's dependency comes from one of its own extras, asked for
    only by some extra or group of the project), the edge keeps those terms: that is the truth."""
    if not (has_context(parent) or has_context(child)):
        return given(child, parent)
    parts = []
    for extras, groups in contexts:
        p = substitute(parent, extras, groups)
        if not p.is_empty():
            parts.append(given(substitute(child, extras, groups), p))
    if not parts or any(part.is_empty() for part in parts):
        return given(child, parent)
    return reduce(operator.and_, parts, AnyMarker())


def _root_edges(nodes: Sequence[Node], inputs: LockInputs,
                by_name: Mapping[str, list[Node]]) -> list[Edge]:
    edges: list[Edge] = []
    for root in (n for n in nodes if n.is_root):
        if root.kind == "main":
            reqs: Iterable[str] = inputs.dependencies
            extras, groups = frozenset[str](), frozenset[str]()
        elif root.kind == "extra":
            reqs = inputs.optional_dependencies.get(root.name, ())
            extras, groups = frozenset({root.name}), frozenset[str]()
        else:
            reqs = inputs.dependency_groups.get(root.name, ())
            extras, groups = frozenset[str](), frozenset({root.name})
        for text in reqs:
            try:
                req = Requirement(text)
            except InvalidRequirement:
                continue
            own = _marker(str(req.marker)) if req.marker is not None else AnyMarker()
            for child in by_name.get(str(canonicalize_name(req.name)), []):
                if child.version and not req.specifier.contains(child.version, prereleases=True):
                    continue
                cm = substitute(_marker(child.marker), extras, groups)
                marker = own & given(cm, own)
                if not marker.is_empty():
                    edges.append(Edge(root.id, child.id, _text(marker), text))
    return edges


def _assemble(nodes: Sequence[Node], edges: Iterable[Edge], exact: bool) -> LockGraph:
    unique: dict[tuple[int, int], Edge] = {}
    for e in edges:
        old = unique.get((e.parent, e.child))
        if old is None:
            unique[(e.parent, e.child)] = e
        elif old.marker is not None:  # two requirements for one child: either one brings it
            merged = _marker(old.marker) | _marker(e.marker)
            unique[(e.parent, e.child)] = Edge(e.parent, e.child, _text(merged),
                                               old.requirement or e.requirement)
    children: dict[int, list[Edge]] = {n.id: [] for n in nodes}
    parents: dict[int, list[Edge]] = {n.id: [] for n in nodes}
    for e in unique.values():
        children[e.parent].append(e)
        parents[e.child].append(e)
    order = {n.id: (n.is_root is False, _version_key(n), n.id) for n in nodes}
    return LockGraph(
        nodes=tuple(nodes),
        children={k: tuple(sorted(v, key=lambda e: order[e.child])) for k, v in children.items()},
        parents={k: tuple(sorted(v, key=lambda e: order[e.parent])) for k, v in parents.items()},
        roots=tuple(n.id for n in nodes if n.is_root),
        exact_roots=exact,
    )


# -- paths --------------------------------------------------------------------------------------


def path_marker(path: Sequence[Edge]) -> BaseMarker:
    """When every edge of a path holds at once (empty: the path can never be taken)."""
    return reduce(operator.and_, (_marker(e.marker) for e in path), AnyMarker())


def root_context(root: Node) -> BaseMarker:
    """What holds on every path from a root: its extra or group is chosen."""
    if root.kind == "extra":
        return parse_marker(f"'{root.name}' in extras")
    if root.kind == "group":
        return parse_marker(f"'{root.name}' in dependency_groups")
    return AnyMarker()


def path_markers(graph: LockGraph, path: Sequence[Edge]) -> tuple[list[str | None], str | None]:
    """Each edge's marker along a path, and the whole path's, leaving out what the root's own
    extra or group already says."""
    known = root_context(graph.nodes[path[0].parent])
    steps = [_text(given(_marker(e.marker), known)) if e.marker else None for e in path]
    return steps, _text(given(path_marker(path), known))


def paths_to(graph: LockGraph, targets: Iterable[int], limit: int = 1000) -> tuple[list[list[Edge]], bool]:
    """Every cycle-free path from a root to one of `targets` whose edges can hold together,
    as edge lists from the root down; at most `limit` (then the flag says some were left out).
    Walked upward from the targets, so the cost follows the paths, not the whole lock."""
    found: list[list[Edge]] = []
    truncated = False

    def walk(node: int, below: list[Edge], on_path: set[int], cond: BaseMarker) -> None:
        nonlocal truncated
        if truncated:
            return
        for edge in graph.parents.get(node, ()):
            if edge.parent in on_path:
                continue
            joined = cond & _marker(edge.marker)
            if joined.is_empty():
                continue
            path = [edge, *below]
            if graph.nodes[edge.parent].is_root:
                if len(found) >= limit:
                    truncated = True
                    return
                found.append(path)
            else:
                walk(edge.parent, path, on_path | {edge.parent}, joined)

    for target in targets:
        walk(target, [], {target}, AnyMarker())
    return found, truncated

"""The universal merge: every target's pins and edges → one marker per package entry.

Targets pick versions; the dependency graph writes the markers (DESIGN.md, "Universal
resolution"). A package's marker is the OR over its incoming edges of (parent's marker AND the
edge's marker), from the roots down; where targets chose different versions, each version also
gets a condition that separates its targets from the others'. `merge` does it in four steps:
collect the graph, narrow edges some targets lack, add fork conditions, propagate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from dep_logic.markers import AnyMarker, BaseMarker, EmptyMarker, parse_marker
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import NormalizedName
from packaging.version import Version

from lockenv.errors import ResolutionError
from lockenv.resolve.markers import partition, separator, to_marker
from lockenv.resolve.normal import CNF_LIMIT, DNF_LIMIT, Algebra, form_size
from lockenv.resolve.requirements import Ident, Req, context_marker, marker_holds
from lockenv.resolve.single import TargetResult
from lockenv.resolve.targets import Target

__all__ = ["PackageKey", "merge"]


class Root(NamedTuple):
    """The project itself, as the parent of its root requirements from one source."""

    source: str


IdentNode = tuple[Ident, str]
"""(identifier, version) of a resolved candidate."""
Node = tuple[Ident | Root, str]
"""A candidate's node, or (root, '') for a root."""
EdgeKey = tuple[Node, IdentNode, str]
"""(parent node, child node, the edge's own marker as text)."""
PackageKey = tuple[NormalizedName, str]
"""(name, version) of a package entry of the lock."""


@dataclass
class _Graph:
    """Where each node and each edge is: the union of every target's resolution."""

    node_targets: dict[Node, set[Target]] = field(default_factory=dict)
    edge_targets: dict[EdgeKey, set[Target]] = field(default_factory=dict)
    edge_marker: dict[EdgeKey, BaseMarker] = field(default_factory=dict)


def merge(results: Sequence[TargetResult]) -> tuple[dict[PackageKey, BaseMarker], dict[PackageKey, set[PackageKey]]]:
    """Markers per package entry, and the dependency edges between package entries."""
    graph = _collect(results)
    _narrow_partial_edges(graph)
    marker = _propagate(graph, _fork_conditions(graph.node_targets))
    package_marker = {
        (node[0].name, node[1]): m
        for node, m in marker.items()
        if isinstance(node[0], Ident) and node[0].extra is None
    }
    return package_marker, _package_dependencies(graph, package_marker)


def _collect(results: Sequence[TargetResult]) -> _Graph:
    """Every target's nodes and edges, each with the targets it appears on."""
    graph = _Graph()
    # Every target repeats most edges, with the same requirement objects: each edge's marker
    # (parsed by dep-logic) and its text are made once (the requirement kept, so no id is reused).
    edge_markers: dict[tuple[bool, int, str | None], tuple[Requirement, BaseMarker, str]] = {}
    for res in results:
        t = res.target
        versions = {ident: str(cand.version) for ident, cand in res.pins.items()}
        for ident, version in versions.items():
            graph.node_targets.setdefault((ident, version), set()).add(t)
        for parent, req in res.edges:
            child = versions.get(req.identifier)
            if child is None:
                continue
            pnode: Node = (Root(req.source or "main"), "") if parent is None else (parent, versions[parent])
            cnode: IdentNode = (req.identifier, child)
            memo = (parent is None, id(req.requirement), req.source)
            known = edge_markers.get(memo)
            if known is None:
                em = _edge_marker(parent, req)
                known = edge_markers[memo] = (req.requirement, em, str(em))
            key = (pnode, cnode, known[2])
            graph.edge_targets.setdefault(key, set()).add(t)
            graph.edge_marker[key] = known[1]
    return graph


def _narrow_partial_edges(graph: _Graph) -> None:
    """Per-platform metadata: an edge present on fewer targets than its parent (and its own
    marker) would allow gets a condition separating those targets."""
    by_parent_child: dict[tuple[Node, str, str], set[Target]] = {}
    for (p, c, mtext), ts in graph.edge_targets.items():
        by_parent_child.setdefault((p, c[0].name, mtext), set()).update(ts)
    for (p, c, mtext) in list(graph.edge_targets):
        if isinstance(p[0], Root):
            continue
        present = by_parent_child[(p, c[0].name, mtext)]
        parent_ts = graph.node_targets.get(p, set())
        em = graph.edge_marker[(p, c, mtext)]
        applicable = {t for t in parent_ts if _marker_true_on(em, t)}
        missing = applicable - present
        if missing:
            sep = separator(sorted(present, key=lambda t: t.name), sorted(missing, key=lambda t: t.name))
            graph.edge_marker[(p, c, mtext)] = em & to_marker(sep)


def _fork_conditions(node_targets: dict[Node, set[Target]]) -> dict[Node, BaseMarker]:
    """Forks: one condition per version of a package chosen by different targets (an extra's
    node shares its base's)."""
    fork_cond: dict[Node, BaseMarker] = {}
    versions_of: dict[Ident, dict[str, set[Target]]] = {}
    for (ident, version), ts in node_targets.items():
        if isinstance(ident, Ident) and ident.extra is None:
            versions_of.setdefault(ident, {})[version] = ts
    for ident, versions in versions_of.items():
        if len(versions) < 2:
            continue
        order = sorted(versions, key=Version)
        groups = [sorted(versions[v], key=lambda t: t.name) for v in order]
        conds = partition(groups)
        for v, cond in zip(order, conds):
            fork_cond[(ident, v)] = to_marker(cond)
    for (node_ident, version) in node_targets:
        if isinstance(node_ident, Ident) and node_ident.extra is not None:
            base: Node = (Ident(node_ident.name), version)
            if base in fork_cond:
                fork_cond[(node_ident, version)] = fork_cond[base]
    return fork_cond


def _same_union(a: BaseMarker, b: BaseMarker) -> bool:
    """Whether two markers are the same OR of the same terms: dep-logic's union may list the
    terms of an unchanged marker in another order, which must not count as a change (the fixed
    point would never be reached)."""
    from dep_logic.markers import MarkerUnion

    if isinstance(a, MarkerUnion) and isinstance(b, MarkerUnion):
        return sorted(map(str, a.markers)) == sorted(map(str, b.markers))
    return str(a) == str(b)


def _canonical(m: BaseMarker) -> str:
    """The marker's text with the terms of every AND and OR sorted, at every depth: dep-logic
    may also reorder the terms of an OR inside an AND (or of an AND inside an OR) on every pass."""
    from dep_logic.markers import MarkerUnion, MultiMarker

    if isinstance(m, MarkerUnion):
        return "(" + " or ".join(sorted(_canonical(x) for x in m.markers)) + ")"
    if isinstance(m, MultiMarker):
        return "(" + " and ".join(sorted(_canonical(x) for x in m.markers)) + ")"
    return str(m)


def _propagate(graph: _Graph, fork_cond: dict[Node, BaseMarker]) -> dict[Node, BaseMarker]:
    """From the roots to a fixed point (the graph may have cycles): a node's marker is the OR of
    (parent's marker AND edge marker AND its fork condition) over its incoming edges."""
    marker: dict[Node, BaseMarker] = {}
    for (p, _c, _m) in graph.edge_targets:
        if isinstance(p[0], Root):
            marker[p] = AnyMarker()
    # In the graph's own order, not the order resolutions found the edges: dep-logic writes a
    # union's terms in the order they were added, so the lock's markers are then a function of
    # the graph alone (whether a target was resolved by resolvelib or reused an earlier pin).
    edges = sorted(graph.edge_marker.items(), key=lambda e: (str(e[0][0]), str(e[0][1]), e[0][2]))
    unsimplified: set[Node] = set()
    # Every form a node's marker has had: a union only adds environments, so coming back to an
    # earlier form means the forms between are the same environments written another way
    # (dep-logic wrote numpy's marker as an AND of ORs, then as an OR of ANDs, on each pass:
    # the lock failed after 100 passes); the marker stays as it is.
    earlier: dict[Node, set[str]] = {}
    algebra = Algebra()  # dep-logic's `&` and `|`, what this propagation computes remembered
    for _ in range(100):
        changed = False
        for (p, c, _m), em in edges:
            pm = marker.get(p)
            if pm is None or pm.is_empty():
                continue
            contrib = algebra.and_(pm, em)
            if c in fork_cond:
                contrib = algebra.and_(contrib, fork_cond[c])
            old = marker.get(c, EmptyMarker())
            new = _union(old, contrib, c, unsimplified, algebra)
            if _same_union(new, old):
                continue
            form, old_form = _canonical(new), _canonical(old)
            if form != old_form and form in earlier.get(c, ()):
                continue
            marker[c] = new
            # Only a change of terms calls for another pass: terms reordered deep inside the
            # marker may flip back and forth forever.
            if form != old_form:
                earlier.setdefault(c, set()).add(old_form)
                changed = True
        if not changed:
            return marker
    raise ResolutionError("the lock's markers did not settle (a bug: please report it)")


_CNF_LIMIT = CNF_LIMIT
"""Most clauses the CNF of a union may have for dep-logic to simplify it (see `_union`)."""
_DNF_LIMIT = DNF_LIMIT
"""Most conjunctions that CNF's DNF may have (see `_union`)."""


def _union(a: BaseMarker, b: BaseMarker, node: Node, unsimplified: set[Node], algebra: Algebra) -> BaseMarker:
    """`a | b` for `node`'s marker. dep-logic simplifies a union through its CNF and then that
    CNF's DNF, each the product of the other's lengths: one OR of two 500-character markers (a
    library on `>=3.8` with test and docs groups, forks by Python and PyPy) took 15 s, and
    its lock 45 s; another such project ran for over ten minutes. Where either form would be
    bigger than its limit, the union is kept as the OR of both sides' conjunctions instead,
    without duplicates and without a conjunction another one's terms already imply: the same
    environments, a longer text. Such a node stays unsimplified for the rest of the propagation
    (in `unsimplified`), so its marker only gains conjunctions and the fixed point is reached
    (a dep-logic rewrite could undo what the last pass added). Below the limits the result is
    dep-logic's own, so locks that were quick before keep their bytes (the largest union of the
    bench projects has 36 clauses; real projects seen: up to 1,296)."""
    if node not in unsimplified:
        simplified = _dep_logic_or(a, b, algebra)
        if simplified is not None:
            return simplified
    if a.is_empty() or b.is_any():
        return b
    if b.is_empty() or a.is_any():
        return a
    unsimplified.add(node)
    from dep_logic.markers import MarkerUnion, MultiMarker

    terms: list[tuple[frozenset[str], BaseMarker]] = []
    for m in [*_disjuncts(a), *_disjuncts(b)]:
        key = frozenset(str(t) for t in (m.markers if isinstance(m, MultiMarker) else [m]))
        if any(k <= key for k, _ in terms):
            continue  # implied by a conjunction already there (or the same one)
        terms = [(k, t) for k, t in terms if not key <= k]
        terms.append((key, m))
    return terms[0][1] if len(terms) == 1 else MarkerUnion(*(t for _, t in terms))


def _dep_logic_or(a: BaseMarker, b: BaseMarker, algebra: Algebra) -> BaseMarker | None:
    """`a | b` as dep-logic computes it, or None where its CNF or DNF would pass the limits.
    Its operators send every union of an AND or an OR to `dep_logic.utils.union`, which is
    followed here step by step with the sizes checked in between."""
    from dep_logic.markers import MarkerUnion, MultiMarker

    if isinstance(a, (MarkerUnion, MultiMarker)):
        return _bounded_union(a, b, algebra)
    if isinstance(b, (MarkerUnion, MultiMarker)) and a.__or__(b) is NotImplemented:
        return _bounded_union(b, a, algebra)  # Python then calls b.__ror__(a): union(b, a)
    return a | b  # neither is an AND or an OR: dep-logic merges them directly


def _bounded_union(a: BaseMarker, b: BaseMarker, algebra: Algebra) -> BaseMarker | None:
    """dep-logic's `union(a, b)` (dep_logic/utils.py), or None past the limits."""
    from dep_logic.markers import MarkerUnion, MultiMarker

    unnormalized: BaseMarker = MarkerUnion(a, b)
    while isinstance(unnormalized, (MultiMarker, MarkerUnion)) and len(unnormalized.markers) == 1:
        unnormalized = unnormalized.markers[0]
    if _clauses(unnormalized) > _CNF_LIMIT:
        return None
    conjunction = algebra.cnf(unnormalized)
    if not isinstance(conjunction, MultiMarker):
        return conjunction
    if _conjunctions(conjunction) > _DNF_LIMIT:
        return None
    disjunction = algebra.dnf(conjunction)
    if not isinstance(disjunction, MarkerUnion):
        return disjunction
    return min(disjunction, conjunction, unnormalized, key=lambda x: x.complexity)


def _disjuncts(m: BaseMarker) -> list[BaseMarker]:
    from dep_logic.markers import MarkerUnion

    return list(m.markers) if isinstance(m, MarkerUnion) else [m]


def _clauses(m: BaseMarker) -> int:
    """How many clauses dep-logic's CNF of `m` has before it simplifies them."""
    from dep_logic.markers import MarkerUnion

    return form_size(m, MarkerUnion)


def _conjunctions(m: BaseMarker) -> int:
    """How many conjunctions dep-logic's DNF of `m` has before it simplifies them."""
    from dep_logic.markers import MultiMarker

    return form_size(m, MultiMarker)


def _package_dependencies(graph: _Graph, packages: dict[PackageKey, BaseMarker]) -> dict[PackageKey, set[PackageKey]]:
    """Package entry → the entries it depends on (an extra's edges count for its base)."""
    deps: dict[PackageKey, set[PackageKey]] = {k: set() for k in packages}
    for (p, c, _m) in graph.edge_targets:
        parent = p[0]
        if isinstance(parent, Root):
            continue
        parent_pkg = (parent.name, p[1])
        child_pkg = (c[0].name, c[1])
        if parent_pkg != child_pkg and parent_pkg in deps:
            deps[parent_pkg].add(child_pkg)
    return deps


def _edge_marker(parent: Ident | None, req: Req) -> BaseMarker:
    """The requirement's own marker (extras dropped: extras are identifiers here), and for a
    root, the marker of its source (`'x' in extras`)."""
    marker = req.requirement.marker
    m: BaseMarker = AnyMarker()
    if marker is not None:
        m = parse_marker(str(marker)).without_extras()
    if parent is None and req.source:
        ctx = context_marker(req.source)
        if ctx:
            m = parse_marker(ctx) & m
    return m


def _marker_true_on(m: BaseMarker, target: Target) -> bool:
    if m.is_any():
        return True
    if m.is_empty():
        return False
    env: dict[str, str | frozenset[str]] = {
        **target.environment, "extra": "", "extras": frozenset(), "dependency_groups": frozenset()
    }
    text = str(m)
    if " in extras" in text or " in dependency_groups" in text:
        return True  # context markers: every extra and group is part of a target's resolution
    return marker_holds(Marker(text), env, text)  # type: ignore[arg-type]

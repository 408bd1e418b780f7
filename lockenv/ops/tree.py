"""The `tree` and `why` use cases: the lock's dependency graph, from `pylock.toml` alone (no
network, no venv), as a tree (or inverted: who needs each package) or as every path to one
package. The graph and its edge markers are `lockenv.graph`'s; this module walks it."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lockenv.errors import LockfileError
from lockenv.project import LOCK_NAME, PYPROJECT

MAX_PATHS = 1000


@dataclass(frozen=True)
class TreeOptions:
    project: Path
    package: str | None = None
    invert: bool = False
    depth: int | None = None
    lockfile: Path | None = None


@dataclass(frozen=True)
class TreeNode:
    """One line of the tree: a package entry reached through one edge, or the project."""

    kind: str
    """'project' or 'package'."""
    name: str
    version: str | None
    marker: str | None
    """The condition of the edge that leads here (None: whenever the line above is there)."""
    source: str | None
    """For the project's own requirements: 'extra: NAME' or 'group: NAME' (None: main)."""
    repeated: bool
    """Shown (with what it needs) earlier in the output; not expanded again."""
    truncated: bool
    """Not expanded because of --depth, though it has children."""
    children: tuple[TreeNode, ...]
    """Its dependencies; with --invert, the packages (or the project) that depend on it."""


@dataclass(frozen=True)
class Tree:
    lockfile: str
    project: str
    project_version: str | None
    inverted: bool
    roots: tuple[TreeNode, ...]
    exact: bool
    """False for a lock lockenv did not write: the project's own requirements are not recorded,
    so the project's children are the packages nothing else depends on."""


@dataclass(frozen=True)
class Step:
    name: str
    version: str | None
    marker: str | None
    """The condition of the edge into this step."""


@dataclass(frozen=True)
class WhyPath:
    source: str | None
    """None for the project's dependencies, 'extra: NAME' or 'group: NAME'."""
    steps: tuple[Step, ...]
    """From the project's requirement down to the package asked about."""
    marker: str | None
    """When the whole path holds (every edge's condition at once)."""


@dataclass(frozen=True)
class Why:
    lockfile: str
    project: str
    package: str
    versions: tuple[str, ...]
    """The package's versions in the lock; empty when it is not there."""
    paths: tuple[WhyPath, ...]
    truncated: bool
    """More than MAX_PATHS paths: the first ones are given."""

    @property
    def found(self) -> bool:
        return bool(self.versions)


# -- loading ------------------------------------------------------------------------------------


def _project_identity(project: Path) -> tuple[str, str | None]:
    """The project's name and version for the tree's first line (the lock does not record
    them): from pyproject.toml when it says, else the directory's name."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib  # type: ignore[import-not-found,no-redef,unused-ignore]
    try:
        table = tomllib.loads((project / PYPROJECT).read_text(encoding="utf-8")).get("project", {})
    except (OSError, ValueError, RecursionError):
        table = {}
    name = table.get("name") if isinstance(table, dict) else None
    version = table.get("version") if isinstance(table, dict) else None
    return (name if isinstance(name, str) and name else project.name,
            version if isinstance(version, str) else None)


def load_graph(project: Path, lockfile: Path | None) -> tuple[Path, Any]:
    """The lock's path and its `LockGraph`."""
    from lockenv import graph
    from lockenv.lockfile import read_inputs

    path = lockfile or project / LOCK_NAME
    lock = read_lock(path)
    try:
        inputs = read_inputs(path)
    except LockfileError:
        inputs = None  # a foreign lock with an odd [tool.lockenv]: treat it as foreign
    return path, graph.build(lock, inputs)


def read_lock(path: Path) -> Any:
    """The validated lock, through the parsed-lock cache when the cache can be used (these
    commands need nothing else from it)."""
    from lockenv.cache import Cache
    from lockenv.errors import CacheError
    from lockenv.sync.selection import load_lock

    try:
        cache: Cache | None = Cache()
    except CacheError:
        cache = None
    return load_lock(path, cache)


def _unknown(name: str, graph: Any, path: Path) -> LockfileError:
    import difflib

    names = sorted({n.name for n in graph.packages()})
    close = difflib.get_close_matches(name, names, n=3)
    return LockfileError(
        f"`{name}` is not in {path.name}",
        hint=("did you mean " + ", ".join(f"`{c}`" for c in close) + "?") if close
        else "`lockenv tree` lists every package of the lock",
        context={"file": str(path), "package": name},
    )


# -- tree ---------------------------------------------------------------------------------------


def tree(options: TreeOptions, *, reporter: Any) -> Tree:
    """The dependency tree (or, with `invert`, the dependents tree) of the lock."""
    path, graph = load_graph(options.project, options.lockfile)
    name, version = _project_identity(options.project)
    walker = _Walker(graph, name, options.invert, options.depth)
    if options.package is not None:
        starts = graph.named(options.package)
        if not starts:
            raise _unknown(options.package, graph, path)
        roots = tuple(walker.expand(n.id, None, None, 0, frozenset()) for n in starts)
    elif options.invert:
        leaves = [n for n in graph.packages() if not graph.children[n.id]]
        roots = tuple(walker.expand(n.id, None, None, 0, frozenset()) for n in leaves)
    else:
        roots = (walker.project_root(version),)
    reporter.debug(f"tree of {len(graph.packages())} packages from {path}")
    return Tree(str(path), name, version, options.invert, roots, graph.exact_roots)


class _Walker:
    """Expands nodes depth-first; a node expanded once is marked `repeated` later on, so the
    output stays linear in the size of the lock."""

    def __init__(self, graph: Any, project: str, invert: bool, depth: int | None) -> None:
        self.graph = graph
        self.project = project
        self.invert = invert
        self.depth = depth
        self.expanded: set[int] = set()

    def project_root(self, version: str | None) -> TreeNode:
        g = self.graph
        children = []
        for root in g.roots:
            for edge in g.children[root]:
                children.append(self.expand(edge.child, edge.marker, _source(g.nodes[root]), 1,
                                            frozenset()))
        return TreeNode("project", self.project, version, None, None, False, False, tuple(children))

    def _next(self, node: int) -> list[tuple[int, str | None]]:
        if self.invert:
            return [(e.parent, e.marker) for e in self.graph.parents[node]]
        return [(e.child, e.marker) for e in self.graph.children[node]]

    def expand(self, node: int, marker: str | None, source: str | None, level: int,
               on_path: frozenset[int]) -> TreeNode:
        n = self.graph.nodes[node]
        if n.is_root:  # only reached inverted: the project, through an extra or group
            return TreeNode("project", self.project, None, marker, _source(n), False, False, ())
        nexts = self._next(node)
        repeated = bool(nexts) and (node in self.expanded or node in on_path)
        truncated = bool(nexts) and not repeated and self.depth is not None and level >= self.depth
        children: tuple[TreeNode, ...] = ()
        if nexts and not repeated and not truncated:
            self.expanded.add(node)
            children = tuple(self.expand(c, m, None, level + 1, on_path | {node}) for c, m in nexts)
        return TreeNode("package", n.name, n.version, marker, source, repeated, truncated, children)


def _source(root: Any) -> str | None:
    return None if root.kind == "main" else f"{root.kind}: {root.name}"


# -- why ----------------------------------------------------------------------------------------


def why(options: TreeOptions, *, reporter: Any) -> Why:
    """Every path from the project (its dependencies, extras and groups) to one package."""
    from lockenv.graph import path_markers, paths_to

    assert options.package is not None
    path, graph = load_graph(options.project, options.lockfile)
    name, _version = _project_identity(options.project)
    targets = graph.named(options.package)
    if not targets:
        reporter.debug(f"{options.package} is not among the {len(graph.packages())} packages of {path}")
        return Why(str(path), name, options.package, (), (), False)
    found, truncated = paths_to(graph, [t.id for t in targets], MAX_PATHS)
    out = []
    for edges in found:
        markers, combined = path_markers(graph, edges)
        steps = tuple(Step(graph.nodes[e.child].name, graph.nodes[e.child].version, m)
                      for e, m in zip(edges, markers))
        out.append(WhyPath(_source(graph.nodes[edges[0].parent]), steps, combined))
    out.sort(key=lambda p: (p.source is not None, p.source or "", len(p.steps),
                            [(s.name, s.version or "") for s in p.steps]))
    return Why(str(path), name, targets[0].name, tuple(t.version or "" for t in targets),
               tuple(out), truncated)

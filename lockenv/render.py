"""Text and JSON renderings of the query commands' results (`tree`, `why`, ...), for the CLI.

Results are the use cases' frozen dataclasses, read by attribute (this module imports no use
case). JSON goes to stdout as one document with the dataclasses' field names as keys (the
README lists them); everything else a command says goes to stderr.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Iterator
from typing import Any, TextIO


def to_json(result: Any, **extra: Any) -> str:
    """One JSON document: the result's fields (nested dataclasses as objects, tuples as
    arrays) plus `extra`, keys in field order, stable from run to run."""
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        data = dataclasses.asdict(result)
    else:
        data = dict(result)
    data.update(extra)
    return json.dumps(data, indent=2, ensure_ascii=False)


def write_json(result: Any, out: TextIO | None = None, **extra: Any) -> None:
    stream = out or sys.stdout
    stream.write(to_json(result, **extra) + "\n")
    stream.flush()


def _fancy(out: TextIO) -> bool:
    try:
        "├└│─→".encode(out.encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def _node_text(node: Any) -> str:
    text = f"{node.name} v{node.version}" if node.version else node.name
    if node.source:
        text += f" ({node.source})"
    if node.repeated:
        text += " (*)"
    if node.marker:
        text += f" ; {node.marker}"
    if node.truncated:
        text += " ..."
    return text


def tree_lines(tree: Any, fancy: bool = True) -> Iterator[str]:
    """The tree drawn as uv draws it: `(*)` marks a package whose dependencies were shown above."""
    tee, last, bar, blank = ("├── ", "└── ", "│   ", "    ") if fancy else ("|-- ", "`-- ", "|   ", "    ")

    def walk(node: Any, prefix: str) -> Iterator[str]:
        for i, child in enumerate(node.children):
            end = i == len(node.children) - 1
            yield prefix + (last if end else tee) + _node_text(child)
            yield from walk(child, prefix + (blank if end else bar))

    for k, root in enumerate(tree.roots):
        if k:
            yield ""
        yield _node_text(root)
        yield from walk(root, "")
    if any(_has_repeats(r) for r in tree.roots):
        yield ""
        yield "(*) shown above with what it needs" if not tree.inverted else "(*) shown above with what needs it"


def _has_repeats(node: Any) -> bool:
    return node.repeated or any(_has_repeats(c) for c in node.children)


def print_tree(tree: Any, out: TextIO | None = None) -> None:
    stream = out or sys.stdout
    for line in tree_lines(tree, _fancy(stream)):
        stream.write(line + "\n")
    stream.flush()


def why_lines(why: Any, fancy: bool = True) -> Iterator[str]:
    arrow = " → " if fancy else " -> "
    versions = ", ".join(f"v{v}" for v in why.versions)
    yield f"{why.package} {versions}: {len(why.paths)} path{'s' if len(why.paths) != 1 else ''}" + (
        " (more not shown)" if why.truncated else "")
    for path in why.paths:
        head = why.project + (f" ({path.source})" if path.source else "")
        steps = [f"{s.name} v{s.version}" + (f" [{s.marker}]" if s.marker else "") for s in path.steps]
        yield arrow.join([head, *steps])


def print_why(why: Any, out: TextIO | None = None) -> None:
    stream = out or sys.stdout
    for line in why_lines(why, _fancy(stream)):
        stream.write(line + "\n")
    stream.flush()


def outdated_document(result: Any) -> dict[str, Any]:
    """`outdated --json`: every locked package, with `outdated` (a newer release exists) and
    `upgradable` (the requirements allow a newer one)."""
    return {
        "lockfile": result.lockfile,
        "index_url": result.index_url,
        "packages": [
            {"name": p.name, "locked": p.locked, "marker": p.marker, "allowed": p.allowed,
             "latest": p.latest, "outdated": p.outdated, "upgradable": p.upgradable}
            for p in result.packages
        ],
    }


def outdated_lines(result: Any) -> Iterator[str]:
    """A table of the packages with a newer release (allowed or not); nothing when none has."""
    forked = {p.name for p in result.packages if sum(q.name == p.name for q in result.packages) > 1}
    rows = [(p.name + (f" ; {p.marker}" if p.marker and p.name in forked else ""), p.locked,
             p.allowed or "-", p.latest or "-")
            for p in result.packages if p.outdated or p.upgradable]
    if not rows:
        return
    head = ("Package", "Locked", "Allowed", "Latest")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(4)]
    for row in [head, *rows]:
        yield "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()

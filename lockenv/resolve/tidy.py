"""Shorter `python_version` terms in the lock's markers.

dep-logic treats versions as a continuum, so a fork's "everything else" condition comes out as
`python_version != "3.10" and python_version > "3.9" and python_version != "3.11"`. But
`python_version` only ever holds MAJOR.MINOR, so that is exactly `python_version >= "3.12"`:
a user reading the lock should see the short form, and uv and pip evaluate both the same way.
"""

from __future__ import annotations

import re
from typing import Any

from packaging._parser import Op, Value, Variable  # the tree Marker keeps (stable since packaging 22)
from packaging.markers import Marker

__all__ = ["tidy_marker"]

_MINOR = re.compile(r"[0-9]+\.[0-9]+")

Minor = tuple[int, int]


def tidy_marker(text: str) -> str:
    """`text` with every AND's `python_version` comparisons rewritten to the fewest that allow
    the same MAJOR.MINOR values; `text` itself when no AND gets shorter (so markers that are
    already short keep the exact spelling earlier locks have)."""
    if text.count("python_version") < 2:
        return text
    try:
        tree = Marker(text)._markers
    except Exception:
        return text
    tidied, changed = _tidy_list(tree)
    return _render(tidied, top=True) if changed else text


def _tidy_list(items: list[Any]) -> tuple[list[Any], bool]:
    """One level of packaging's marker tree: atoms, nested lists and "and"/"or" between them,
    where "and" binds tighter. Each run of "and"s is one conjunction."""
    out: list[Any] = []
    changed = False
    group: list[Any] = []
    for item in [*items, "or"]:
        if item == "or":
            group, did = _tidy_and(group)
            changed |= did
            out.extend(_join(group, "and"))
            out.append("or")
            group = []
        elif item == "and":
            continue
        elif isinstance(item, list):
            inner, did = _tidy_list(item)
            changed |= did
            group.append(inner)
        else:
            group.append(item)
    return out[:-1], changed


def _join(items: list[Any], op: str) -> list[Any]:
    out: list[Any] = []
    for item in items:
        if out:
            out.append(op)
        out.append(item)
    return out


def _python_atom(item: Any) -> tuple[str, Minor] | None:
    if not isinstance(item, tuple) or len(item) != 3:
        return None
    var, op, value = item
    if not isinstance(var, Variable) or var.value != "python_version":
        return None
    if not isinstance(value, Value) or not _MINOR.fullmatch(value.value):
        return None
    if op.value not in ("<", "<=", ">", ">=", "==", "!="):
        return None
    major, minor = value.value.split(".")
    return op.value, (int(major), int(minor))


def _tidy_and(group: list[Any]) -> tuple[list[Any], bool]:
    atoms = [(i, _python_atom(item)) for i, item in enumerate(group)]
    python = [(i, a) for i, a in atoms if a is not None]
    if len(python) < 2:
        return group, False
    short = _shortest([a for _, a in python])
    if short is None or len(short) >= len(python):
        return group, False
    first = python[0][0]
    drop = {i for i, _ in python}
    template = group[first]
    new = [(template[0], Op(op), Value(f"{v[0]}.{v[1]}")) for op, v in short]
    out: list[Any] = []
    for i, item in enumerate(group):
        if i == first:
            out.extend(new)
        elif i not in drop:
            out.append(item)
    return out, True


def _shortest(atoms: list[tuple[str, Minor]]) -> list[tuple[str, Minor]] | None:
    """The fewest comparisons allowing exactly the MAJOR.MINOR values all of `atoms` allow:
    a lower bound (`>=`), an upper bound (`<`), and the values excluded between them (`!=`);
    `==` when one value is left. None when nothing is left (never rewritten)."""
    lo: Minor | None = None
    hi: Minor | None = None
    holes: set[Minor] = set()
    for op, v in atoms:
        nxt = (v[0], v[1] + 1)
        if op in (">=", ">", "=="):
            bound = v if op != ">" else nxt
            lo = bound if lo is None else max(lo, bound)
        if op in ("<", "<=", "=="):
            bound = v if op == "<" else nxt
            hi = bound if hi is None else min(hi, bound)
        if op == "!=":
            holes.add(v)
    while lo is not None and lo in holes:
        holes.discard(lo)
        lo = (lo[0], lo[1] + 1)
    while hi is not None and hi[1] > 0 and (hi[0], hi[1] - 1) in holes:
        holes.discard((hi[0], hi[1] - 1))
        hi = (hi[0], hi[1] - 1)
    if lo is not None and hi is not None and lo >= hi:
        return None
    holes = {h for h in holes if (lo is None or h >= lo) and (hi is None or h < hi)}
    if lo is not None and hi == (lo[0], lo[1] + 1):
        return [("==", lo)]
    out: list[tuple[str, Minor]] = []
    if lo is not None:
        out.append((">=", lo))
    if hi is not None:
        out.append(("<", hi))
    return out + [("!=", h) for h in sorted(holes)]


def _render(items: Any, top: bool = False) -> str:
    if isinstance(items, list):
        inner = " ".join(_render(x) for x in items)
        return inner if top or len(items) == 1 else f"({inner})"
    if isinstance(items, str):
        return items
    return " ".join(_side(x) for x in items)


def _side(x: Any) -> str:
    """A variable bare, a value quoted, an operator as it is (packaging's own spelling)."""
    if not isinstance(x, Value):
        return str(x.value)
    quote = "'" if '"' in x.value else '"'
    return f"{quote}{x.value}{quote}"

"""Conditions that tell target groups apart, for forks and per-platform metadata.

A fork (targets chose different versions of one package) needs, per version, a marker true on
its targets and false on the others. DESIGN.md: look for it among `python_version` bounds first,
then `sys_platform`, then `platform_machine`, then combinations; the largest group takes the
complement, so environments no target enumerates (the next Python, another OS) still select
exactly one version.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache
from itertools import product
from math import prod

from dep_logic.markers import BaseMarker, parse_marker
from packaging.version import Version

from lockenv.resolve.targets import Target

Atom = tuple[str, str, str]
"""(variable, operator, value), e.g. ('python_version', '<', '3.11')."""
Dnf = list[list[Atom]]
"""An OR of ANDs of atoms. [] is false; [[]] is true."""

_MAX_EXPANSION = 20_000
"""Negating an OR of ANDs multiplies out; past this many terms, `partition` decides by a tree."""


class _TooLarge(Exception):
    """A negation would multiply out past _MAX_EXPANSION terms."""

_NEGATE = {"==": "!=", "!=": "==", "<": ">=", ">=": "<"}


def _atom_value(target: Target, var: str) -> str:
    return target.environment[var]


@lru_cache(maxsize=None)
def _version(text: str) -> Version:
    return Version(text)  # a few Python versions, compared for every target and atom


def atom_true(atom: Atom, target: Target) -> bool:
    var, op, value = atom
    actual = _atom_value(target, var)
    if var == "python_version":
        a, b = _version(actual), _version(value)
        return {"==": a == b, "!=": a != b, "<": a < b, ">=": a >= b}[op]
    return (actual == value) if op == "==" else (actual != value)


def dnf_true(dnf: Dnf, target: Target) -> bool:
    return any(all(atom_true(a, target) for a in conj) for conj in dnf)


def negate(dnf: Dnf) -> Dnf:
    """not (A or B) = (not A) and (not B), each a disjunction of negated atoms, expanded."""
    clauses = [[(v, _NEGATE[o], x) for (v, o, x) in conj] for conj in dnf]
    if not clauses:
        return [[]]
    if prod(len(c) for c in clauses) > _MAX_EXPANSION:
        raise _TooLarge
    out: Dnf = []
    for combo in product(*clauses):
        conj = sorted(set(combo))
        if conj not in out:
            out.append(conj)
    return out


def conjoin(a: Dnf, b: Dnf) -> Dnf:
    return [sorted(set(x) | set(y)) for x in a for y in b]


def to_marker(dnf: Dnf) -> BaseMarker:
    """As a dep-logic marker (simplified: ranges merged, contradictions dropped)."""
    if not dnf:
        return parse_marker('python_version < "0"')  # never true; dep-logic makes it empty
    text = " or ".join(
        "(" + " and ".join(f'{v} {o} "{x}"' for (v, o, x) in conj) + ")" if conj else 'python_version >= "0"'
        for conj in dnf
    )
    return parse_marker(text)


def _python_range(inside: set[tuple[int, int]], outside: set[tuple[int, int]]) -> Dnf | None:
    if not inside or inside & outside:
        return None
    lo, hi = min(inside), max(inside)
    if any(lo <= p <= hi for p in outside):
        return None
    below, above = any(p < lo for p in outside), any(p > hi for p in outside)
    if lo == hi and below and above:
        return [[("python_version", "==", f"{lo[0]}.{lo[1]}")]]
    atoms: list[Atom] = []
    if below:
        atoms.append(("python_version", ">=", f"{lo[0]}.{lo[1]}"))
    if above:
        atoms.append(("python_version", "<", f"{hi[0]}.{hi[1] + 1}"))
    return [atoms]


def _value_set(var: str, inside: Iterable[Target], outside: Iterable[Target]) -> Dnf | None:
    ins = {t.environment[var] for t in inside}
    outs = {t.environment[var] for t in outside}
    if ins & outs:
        return None
    return [[(var, "==", v)] for v in sorted(ins)]


_KIND_VARS = ("sys_platform", "platform_machine", "implementation_name", "os_name", "platform_system")


def _by_origin(ins: set[Target], outs: set[Target]) -> Dnf | None:
    """The built-in targets by a Python range (and not any derived target's marker value),
    each derived target (PyPy, FreeBSD…) by its marker value and a Python range among its
    own: short terms when a group mixes built-in and derived targets, e.g. CPython 3.9
    everywhere plus PyPy at the newest Python."""
    origins = sorted({t.origin for t in ins | outs if t.origin is not None})
    if not origins:
        return None
    dnf: Dnf = []
    b_in = {t.python for t in ins if t.origin is None}
    b_out = {t.python for t in outs if t.origin is None}
    if b_in:
        rng = _python_range(b_in, b_out) if b_out else [[]]
        if rng is None:
            return None
        others: list[Atom] = [(var, "!=", value) for var, value in origins]
        dnf.extend(sorted({*conj, *others}) for conj in rng)
    for origin in sorted({t.origin for t in ins if t.origin is not None}):
        o_in = {t.python for t in ins if t.origin == origin}
        o_out = {t.python for t in outs if t.origin == origin}
        rng = _python_range(o_in, o_out) if o_out else [[]]
        if rng is None:
            return None
        dnf.extend(sorted({(origin[0], "==", origin[1]), *conj}) for conj in rng)
    return dnf


def _per_kind(ins: set[Target], outs: set[Target]) -> Dnf | None:
    """Per kind of environment (the non-Python values that tell targets apart: a platform,
    PyPy, a derived FreeBSD), that kind's values and, when the kind also has targets outside,
    a Python range: a few short terms where the exact enumeration would list every target (its
    negation, needed to keep forks exclusive, multiplies out term by term)."""
    varying = [v for v in _KIND_VARS if len({t.environment[v] for t in ins | outs}) > 1]

    def kind(t: Target) -> tuple[Atom, ...]:
        return tuple((v, "==", t.environment[v]) for v in varying)

    dnf: Dnf = []
    for k in sorted({kind(t) for t in ins}):
        in_k = {t.python for t in ins if kind(t) == k}
        out_k = {t.python for t in outs if kind(t) == k}
        if not out_k:
            dnf.append(list(k))
            continue
        rng = _python_range(in_k, out_k)
        if rng is None:
            return None
        dnf.extend(sorted({*k, *conj}) for conj in rng)
    return dnf


def separator(inside: Sequence[Target], outside: Sequence[Target]) -> Dnf:
    """The simplest condition true on every `inside` target and false on every `outside` one."""
    if not outside:
        return [[]]
    ins, outs = set(inside), set(outside)
    candidates: list[Dnf | None] = [
        _python_range({t.python for t in ins}, {t.python for t in outs}),
        _value_set("sys_platform", ins, outs),
        _value_set("platform_machine", ins, outs),
        _value_set("implementation_name", ins, outs),  # targets derived from markers (PyPy)
        _value_set("os_name", ins, outs),
        _value_set("platform_system", ins, outs),
    ]
    # Per platform, a Python range (e.g. Windows on Python < 3.12).
    combo: Dnf = []
    for plat in sorted({t.platform.sys_platform for t in ins}):
        in_p = {t for t in ins if t.platform.sys_platform == plat}
        out_p = {t for t in outs if t.platform.sys_platform == plat}
        if not out_p:
            combo.append([("sys_platform", "==", plat)])
            continue
        rng = _python_range({t.python for t in in_p}, {t.python for t in out_p})
        if rng is None:
            break
        combo.extend(sorted({("sys_platform", "==", plat), *conj}) for conj in rng)
    else:
        candidates.append(combo)
    # Targets derived from the graph's markers (PyPy, FreeBSD...): the built-in ones by a
    # Python range, each derived one by the marker value it stands for.
    derived = sorted({t.origin for t in ins if t.origin is not None})
    if derived and not any(t.origin in derived for t in outs):
        builtin_in = {t for t in ins if t.origin is None}
        builtin_out = {t for t in outs if t.origin is None}
        rng = _python_range({t.python for t in builtin_in}, {t.python for t in builtin_out}) if builtin_in else []
        if rng is not None:
            candidates.append(rng + [[(var, "==", value)] for var, value in derived])
    candidates.append(_by_origin(ins, outs))
    candidates.append(_per_kind(ins, outs))
    # Exact enumeration: always correct, rarely needed.
    exact: Dnf = []
    varying = [v for v in ("implementation_name", "os_name", "platform_system")
               if len({t.environment[v] for t in ins | outs}) > 1]
    for t in sorted(ins, key=lambda t: t.name):
        conj = [
            ("sys_platform", "==", t.environment["sys_platform"]),
            ("platform_machine", "==", t.environment["platform_machine"]),
            ("python_version", "==", t.python_version),
        ] + [(v, "==", t.environment[v]) for v in varying]
        if conj not in exact:
            exact.append(conj)
    candidates.append(exact)
    for cand in candidates:
        if cand is None:
            continue
        if all(dnf_true(cand, t) for t in ins) and not any(dnf_true(cand, t) for t in outs):
            return cand
    raise AssertionError("exact enumeration always separates distinct targets")


def partition(groups: Sequence[Sequence[Target]]) -> list[Dnf]:
    """One condition per group, pairwise exclusive on every environment, the largest group
    taking whatever the others leave (so unknown environments select exactly one)."""
    order = sorted(range(len(groups)), key=lambda i: (len(groups[i]), i))
    conds: dict[int, Dnf] = {}
    taken: list[Dnf] = []
    try:
        for pos, i in enumerate(order):
            if pos == len(order) - 1:
                cond: Dnf = [[]]
            else:
                others = [t for j in order if j != i for t in groups[j]]
                cond = separator(groups[i], others)
            raw = cond
            for prev in taken:
                cond = conjoin(cond, negate(prev))
                if len(cond) > _MAX_EXPANSION:
                    raise _TooLarge
            conds[i] = cond
            taken.append(raw)
    except _TooLarge:
        return _tree_partition(groups, default=order[-1])
    return [conds[i] for i in range(len(groups))]


_TREE_VARS = ("sys_platform", "platform_machine", "implementation_name", "os_name", "platform_system")


def _tree_partition(groups: Sequence[Sequence[Target]], default: int) -> list[Dnf]:
    """`partition` for groups no short separators tell apart (targets interleaved across
    Pythons, platforms and derived environments, where negating the separators multiplies out):
    a decision tree, Python ranges first, then one variable at a time. Its paths are exclusive
    and cover every environment by construction (a value no target has, on each split, goes to
    `default`), and there are about as many as targets."""
    group_of = {t: i for i, g in enumerate(groups) for t in g}
    out: list[Dnf] = [[] for _ in groups]

    def leaf(path: list[Atom], group: int) -> None:
        conj = sorted(set(path))
        if conj not in out[group]:
            out[group].append(conj)

    def walk(targets: list[Target], path: list[Atom]) -> None:
        found = {group_of[t] for t in targets}
        if len(found) == 1:
            leaf(path, found.pop())
            return
        spans = _python_spans(targets, group_of)
        if len(spans) > 1:
            for k, (lo, members) in enumerate(spans):
                atoms = [("python_version", ">=", f"{lo[0]}.{lo[1]}")] if k else []
                if k < len(spans) - 1:
                    nxt = spans[k + 1][0]
                    atoms.append(("python_version", "<", f"{nxt[0]}.{nxt[1]}"))
                walk(members, path + atoms)
            return
        for var in _TREE_VARS:
            values = sorted({t.environment[var] for t in targets})
            if len(values) > 1:
                for value in values:
                    walk([t for t in targets if t.environment[var] == value], path + [(var, "==", value)])
                leaf(path + [(var, "!=", value) for value in values], default)
                return
        raise AssertionError("targets of different groups share every marker value")

    walk(sorted(group_of, key=lambda t: t.name), [])
    return out


def _python_spans(targets: list[Target], group_of: dict[Target, int]) -> list[tuple[tuple[int, int], list[Target]]]:
    """Consecutive Pythons whose targets split the same way, merged: (lowest, targets)."""
    spans: list[tuple[tuple[int, int], list[Target]]] = []
    last = None
    for python in sorted({t.python for t in targets}):
        members = [t for t in targets if t.python == python]
        shape = frozenset((tuple(t.environment[v] for v in _TREE_VARS), group_of[t]) for t in members)
        if spans and shape == last:
            spans[-1][1].extend(members)
        else:
            spans.append((python, members))
        last = shape
    return spans

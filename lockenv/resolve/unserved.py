"""Targets left unserved (issue 9, point 1): no target vetoes a lock. Where no allowed version of
a package has a file some target can install (torch has no macOS x86-64 wheels), the other
targets' choice is locked and the user reads what is left out where, with one concrete fix:
the requires-python bound that avoids those targets (only when it really does), else an
`environments` value that leaves them out, written out as TOML to paste."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence

from packaging.markers import Marker
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName
from packaging.version import Version

from lockenv.resolve.targets import Target

__all__ = ["unserved_warnings", "unserved_by_package"]


def unserved_by_package(chosen: Mapping[Target, Mapping[NormalizedName, str]]) -> dict[str, dict[str, set[Target]]]:
    """name → version → the targets that pinned it without a file to install (input: target →
    {name: version} of its file-less pins)."""
    out: dict[str, dict[str, set[Target]]] = {}
    for target, pins in chosen.items():
        for name, version in pins.items():
            out.setdefault(name, {}).setdefault(version, set()).add(target)
    return out


def unserved_warnings(
    by_package: Mapping[str, Mapping[str, Collection[Target]]], targets: Sequence[Target],
    requires_python: str, environments: Sequence[str],
) -> list[tuple[str, str | None]]:
    """(message, hint) pairs: one message per set of left-out targets, naming every package
    left out exactly there (nvidia-nccl-cu12 and -cu13 on linux-ppc64le: one line), and ONE
    hint, on the last message, that leaves out all of them: two hints would each write its own
    `environments` value, and pasting both gives a file with that key twice."""
    groups: dict[frozenset[Target], list[str]] = {}
    for name in sorted(by_package):
        versions = by_package[name]
        shown = ", ".join(sorted(versions, key=_version_key))
        groups.setdefault(frozenset(t for ts in versions.values() for t in ts), []).append(f"`{name} {shown}`")
    out: list[tuple[str, str | None]] = []
    for left_out, names in groups.items():
        verb = "has" if len(names) == 1 else "have"
        out.append((
            f"{', '.join(names)} {verb} no file (no wheel for it, no sdist) installable on "
            f"{describe(left_out, targets)}: locked anyway for the other environments; "
            "`lockenv sync` there will fail", None))
    if out:
        every = frozenset(t for left_out in groups for t in left_out)
        out[-1] = (out[-1][0], _fix(every, targets, requires_python, environments))
    return out


def _fix(left_out: Collection[Target], targets: Sequence[Target], requires_python: str,
         environments: Sequence[str]) -> str:
    """What to write so that the left-out targets are not locked for at all."""
    bound = _python_bound(left_out, targets)
    if bound is not None:
        new = _with_bound(requires_python, bound)
        fix = f"add `{bound}` to requires-python in pyproject.toml:\n    requires-python = {json.dumps(new)}"
    else:
        values = environments_excluding(left_out, targets, environments)
        fix = (
            "leave them out in pyproject.toml:\n    [tool.lockenv]\n"
            f"    environments = [{', '.join(json.dumps(v) for v in values)}]"
        )
    return fix + "\nor, if they must be served, list them in `[tool.lockenv] required-environments` to make this an error"


def _split(left_out: Collection[Target], targets: Sequence[Target]) -> tuple[int | None, set[Target]]:
    """(X, rest): every target on Python 3.X and later is left out (on every platform), and
    the left-out targets below it. X is None when there is no such cut (or it takes all)."""
    minors = sorted({t.python[1] for t in targets})
    out = set(left_out)
    cut = None
    for m in reversed(minors[1:]):
        if all(t in out for t in targets if t.python[1] >= m):
            cut = m
        else:
            break
    if cut is None:
        return None, out
    return cut, {t for t in out if t.python[1] < cut}


def _with_bound(requires_python: str, bound: str) -> str:
    """requires-python with `bound` in place of its looser clauses on that side."""
    side = ("<", "<=") if bound.startswith("<") else (">", ">=")
    kept = [sp for sp in SpecifierSet(requires_python or "") if sp.operator not in side]
    return str(SpecifierSet(",".join([str(sp) for sp in kept] + [bound])))


def describe(left_out: Collection[Target], targets: Sequence[Target]) -> str:
    """`macos-x86_64 (Python 3.10-3.12)`, or `every platform (Python 3.14+)`."""
    minors_all = sorted({t.python[1] for t in targets})
    cut, rest = _split(left_out, targets)
    head = [f"every platform (Python 3.{cut}+)"] if cut is not None else []
    if cut is not None:
        minors_all = [m for m in minors_all if m < cut]
    per_platform: dict[str, list[int]] = {}
    for t in rest:
        per_platform.setdefault(t.place, []).append(t.python[1])
    platforms_all = sorted({t.place for t in targets})
    by_minors: dict[tuple[int, ...], list[str]] = {}
    for key, ms in per_platform.items():
        by_minors.setdefault(tuple(sorted(ms)), []).append(key)
    parts = []
    for group, keys in sorted(by_minors.items(), key=lambda kv: sorted(kv[1])):
        where = "every platform" if sorted(keys) == platforms_all else ", ".join(sorted(keys))
        parts.append(f"{where} ({_minors_text(list(group), minors_all)})")
    return "; ".join(head + parts)


def _minors_text(minors: list[int], minors_all: list[int]) -> str:
    if len(minors) == 1:
        return f"Python 3.{minors[0]}"
    span = [m for m in minors_all if minors[0] <= m <= minors[-1]]
    if span == minors:
        if minors[-1] == minors_all[-1] and minors[0] != minors_all[0]:
            return f"Python 3.{minors[0]}+"
        return f"Python 3.{minors[0]}-3.{minors[-1]}"
    return "Python " + ", ".join(f"3.{m}" for m in minors)


def _python_bound(left_out: Collection[Target], targets: Sequence[Target]) -> str | None:
    """`<3.X` or `>=3.Y` when excluding exactly those Pythons (on every platform) avoids every
    left-out target; None otherwise."""
    minors = {t.python[1] for t in left_out}
    whole = {t for t in targets if t.python[1] in minors}
    if whole != set(left_out) or len(whole) == len(targets):
        return None
    kept = {t.python[1] for t in targets} - minors
    if min(minors) > max(kept):
        return f"<3.{min(minors)}"
    if max(minors) < min(kept):
        return f">=3.{max(minors) + 1}"
    return None


def environments_excluding(
    left_out: Collection[Target], targets: Sequence[Target], environments: Sequence[str]
) -> list[str]:
    """An `environments` value that keeps every target but the left-out ones: per platform a
    negated condition (the whole platform, or a Python range on it), ANDed with what
    `environments` says already. Checked on the targets; an exact enumeration if the short
    form would not fit."""
    out = set(left_out)
    for clause in (_short_clause(out, targets), _exact_clause(out, targets)):
        wrapped = f"({clause})" if " or " in clause and " and " not in clause else clause
        values = [f"({e}) and {wrapped}" for e in environments] if environments else [clause]
        markers = [Marker(v) for v in values]
        kept = {t for t in targets if any(m.evaluate(t.environment) for m in markers)}
        if kept == set(targets) - out:
            return values
    return values


def _short_clause(left_out: set[Target], targets: Sequence[Target]) -> str:
    cut, rest = _split(left_out, targets)
    head = [f"python_version < '3.{cut}'"] if cut is not None else []
    if cut is not None:
        targets = [t for t in targets if t.python[1] < cut]
    per_platform: dict[str, set[int]] = {}
    for t in rest:
        per_platform.setdefault(t.place, set()).add(t.python[1])
    minors_of: dict[str, set[int]] = {}
    platform_of = {}
    impl_of = {}
    for t in targets:
        minors_of.setdefault(t.place, set()).add(t.python[1])
        platform_of[t.place] = t.platform
        impl_of[t.place] = t.implementation
    whole = {k for k, ms in per_platform.items() if ms == minors_of[k]}
    clauses: list[str] = []
    # a whole sys_platform left out: one `!=`
    by_sys: dict[str, set[str]] = {}
    for key, p in platform_of.items():
        by_sys.setdefault(p.sys_platform, set()).add(key)
    for sys_platform, keys in sorted(by_sys.items()):
        if keys <= whole:
            clauses.append(f"sys_platform != '{sys_platform}'")
            whole -= keys
    for key in sorted(per_platform):
        p = platform_of[key]
        if key not in minors_of or (key not in whole and per_platform[key] == minors_of[key]):
            continue
        neg = f"sys_platform != '{p.sys_platform}' or platform_machine != '{p.machine}'"
        if impl_of[key] != "cpython":
            neg += f" or implementation_name != '{impl_of[key]}'"
        ms = sorted(per_platform[key])
        all_ms = sorted(minors_of[key])
        if key in whole:
            clauses.append(f"({neg})")
        elif ms == [m for m in all_ms if m >= ms[0]]:
            clauses.append(f"({neg} or python_version < '3.{ms[0]}')")
        elif ms == [m for m in all_ms if m <= ms[-1]]:
            clauses.append(f"({neg} or python_version >= '3.{ms[-1] + 1}')")
        else:
            clauses.extend(f"({neg} or python_version != '3.{m}')" for m in ms)
    return _join(head + clauses)


def _exact_clause(left_out: set[Target], targets: Sequence[Target]) -> str:
    names = ["sys_platform", "platform_machine", "python_version"] + [
        v for v in ("implementation_name", "os_name", "platform_system")
        if len({t.environment[v] for t in targets}) > 1
    ]
    return _join([
        "(" + " or ".join(f"{v} != '{t.environment[v]}'" for v in names) + ")"
        for t in sorted(left_out, key=lambda t: t.name)
    ])


def _join(clauses: list[str]) -> str:
    if len(clauses) == 1 and clauses[0].startswith("(") and clauses[0].endswith(")"):
        return clauses[0][1:-1]
    return " and ".join(clauses)


def _version_key(text: str) -> Version:
    return Version(text)

"""Targets derived from the graph's own markers (issue 9, point 6): every environment the markers
tell apart is served. A requirement under `implementation_name == 'pypy'`, `sys_platform ==
'freebsd'` or any other value no built-in target has would otherwise never be resolved, and the
lock would leave it out (PyPy would get an incomplete environment). So each such value gets
targets of its own, on Linux x86-64 unless the value says otherwise, at every Python the
built-in targets have, resolved like them (most reuse an earlier target's pins). Only the newest
and the oldest were once enough by design, but the lock's fork conditions then split the
Pythons between them at some point, and a version whose requires-python excluded one of them
was selected there (mixfork 0.5, `<3.9`, for PyPy 3.9-3.14; xgboost 3.4.1, `>=3.12`, for
ppc64le 3.11)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from packaging.markers import Marker

from lockenv.resolve.targets import IMPLEMENTATIONS, Platform, Target

__all__ = ["VARIABLES", "derive_targets", "marker_values"]

VARIABLES = ("sys_platform", "platform_machine", "os_name", "platform_system", "implementation_name",
             "platform_python_implementation")
"""The environment markers a derived target can come from."""

_MAX_DERIVED = 12
"""At most this many values get targets (each costs a resolution and a serve-check)."""

_MACHINE_ALIASES = {"amd64", "AMD64", "arm64", "ARM64", "aarch64", "x86_64", "win32", "WIN32", "x86", "i386",
                    "i686"}
"""Spellings of the built-in targets' machines on other systems, and 32-bit x86 (no targets)."""

_SYSTEMS = {"freebsd": "FreeBSD", "openbsd": "OpenBSD", "netbsd": "NetBSD", "cygwin": "CYGWIN_NT-10.0",
            "aix": "AIX", "sunos5": "SunOS", "emscripten": "Emscripten", "wasi": "WASI",
            "android": "Android", "ios": "iOS", "java": "Java"}


def marker_values(markers: Iterable[Marker]) -> set[tuple[str, str]]:
    """(variable, value) of every `==` comparison of the variables above: an environment
    a requirement is added for. (A `!=` only takes requirements away there: the built-in
    targets' packages, minus those, still form a consistent set.)"""
    out: set[tuple[str, str]] = set()
    for marker in markers:
        _walk(getattr(marker, "_markers", []), out)
    return out


def _walk(node: object, out: set[tuple[str, str]]) -> None:
    if isinstance(node, list):
        for item in node:
            _walk(item, out)
        return
    if not isinstance(node, tuple) or len(node) != 3:
        return
    lhs, op, rhs = node
    if str(getattr(op, "value", "")) != "==":
        return
    for var, val in ((lhs, rhs), (rhs, lhs)):
        if type(var).__name__ == "Variable" and type(val).__name__ == "Value":
            name = str(var.value)
            if name in VARIABLES:
                out.add((name, str(val.value)))


def derive_targets(
    values: Iterable[tuple[str, str]], targets: Sequence[Target], environments: Sequence[str]
) -> list[Target]:
    """New targets for the values no target has yet (within `environments`, if given)."""
    known = {var: {t.environment[var] for t in targets} for var in VARIABLES}
    known["platform_machine"] |= _MACHINE_ALIASES
    names = {t.name for t in targets}
    picks = sorted({(t.python, t.python_full) for t in targets}, reverse=True)
    env_markers = [Marker(e) for e in environments]
    out: list[Target] = []
    fresh = sorted((var, value) for var, value in values if value not in known.get(var, ()))
    for var, value in fresh[:_MAX_DERIVED]:
        platform, implementation = _environment_for(var, value)
        for python, full in picks:
            target = Target(python, full, platform, implementation, origin=(var, value))
            if target.name in names:
                continue
            if env_markers and not any(m.evaluate(dict(target.environment)) for m in env_markers):
                continue
            names.add(target.name)
            out.append(target)
    return out


def _environment_for(var: str, value: str) -> tuple[Platform, str]:
    """The platform and implementation a marker value stands for (Linux x86-64 CPython, with
    that one value and the ones that go with it)."""
    linux = Platform("linux-x86_64", "linux", "Linux", "posix", "x86_64")
    if var == "implementation_name":
        return linux, value
    if var == "platform_python_implementation":
        by_display = {v: k for k, v in IMPLEMENTATIONS.items()}
        return linux, by_display.get(value, value.lower())
    if var == "sys_platform":
        system = next((s for k, s in _SYSTEMS.items() if value.startswith(k)), value.capitalize())
        machine = "amd64" if value.startswith("freebsd") else "x86_64"
        return Platform(f"{value}-{machine}", value, system, "posix", machine), "cpython"
    if var == "platform_system":
        sys_platform = next((k for k, s in _SYSTEMS.items() if s == value), value.lower())
        machine = "amd64" if value == "FreeBSD" else "x86_64"
        return Platform(f"{sys_platform}-{machine}", sys_platform, value, "posix", machine), "cpython"
    if var == "os_name":
        return Platform(f"linux-x86_64-os-{value}", "linux", "Linux", value, "x86_64"), "cpython"
    # platform_machine: Windows spells its machines in capitals (AMD64, ARM64, x86 aside)
    if value.isupper():
        return Platform(f"windows-{value.lower()}", "win32", "Windows", "nt", value), "cpython"
    return Platform(f"linux-{value}", "linux", "Linux", "posix", value), "cpython"

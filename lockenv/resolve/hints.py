"""Hints that name the concrete value that would fix a failed resolution (issue 9, point 10):
a person should not have to work out the bound themselves."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version

from lockenv.models import DistFile
from lockenv.resolve.targets import NEWEST_PYTHON_MINOR


def python_floor(versions: Mapping[Version, Sequence[DistFile]], specifier: SpecifierSet,
                 python_full: str) -> str | None:
    """The lowest Python above `python_full` on which some non-yanked version that `specifier`
    allows has a file whose requires-python accepts it: a later patch of the same minor when
    a file excludes patches by name (cryptography >= 44 says `!=3.9.0,!=3.9.1`: `3.9.2`), else
    `3.N` for the lowest minor whose `3.N.0` it accepts; None when there is none (then raising
    requires-python would not help). `!=3.13`, two components, excludes 3.13.0 by PEP 440 but
    means the whole minor (apache-airflow 2): it is not read as an invitation to `3.13.1`."""
    allowed = [fs for v, fs in versions.items()
               if specifier.contains(v, prereleases=True) and not all(f.yanked for f in fs)]
    current = Version(python_full)
    for patch in range(current.micro + 1, 40):
        probe = f"{current.major}.{current.minor}.{patch}"
        if any(_accepts_patch(f.requires_python, probe) for files in allowed for f in files):
            return probe
    for minor in range(current.minor + 1, NEWEST_PYTHON_MINOR + 1):
        probe = f"{current.major}.{minor}.0"
        if any(_accepts(f.requires_python, probe) for files in allowed for f in files):
            return f"{current.major}.{minor}"
    return None


def python_ceiling(versions: Mapping[Version, Sequence[DistFile]], specifier: SpecifierSet,
                   python_full: str, requires_python: str) -> str | None:
    """`3.N` when Pythons below `python_full` down to 3.N-1 are refused by none of the versions
    `specifier` allows but 3.N is (airflow 2 says `!=3.13,!=3.14,>=3.10`): capping requires-python
    below 3.N is then the fix that keeps the project's older Pythons. None when there is none."""
    allowed = [fs for v, fs in versions.items()
               if specifier.contains(v, prereleases=True) and not all(f.yanked for f in fs)]
    try:
        project = SpecifierSet(requires_python)
    except InvalidSpecifier:
        return None
    current = Version(python_full)
    for minor in range(current.minor - 1, 0, -1):
        probe = f"{current.major}.{minor}.0"
        if not any(project.contains(f"{current.major}.{minor}.{p}", prereleases=True) for p in range(40)):
            return None
        if any(_accepts(f.requires_python, probe) for files in allowed for f in files):
            return f"{current.major}.{minor + 1}"
    return None


def wheel_floor(minors: Sequence[int], python_version: str) -> str | None:
    """`3.N` when a package's wheels for a platform start above the Python that found none
    (so the fix is a higher requires-python floor, not an upper bound); else None."""
    current = int(python_version.split(".")[1])
    if minors and current < min(minors):
        return f"3.{min(minors)}"
    return None


def _accepts(requires_python: str | None, python: str) -> bool:
    if not requires_python:
        return True
    try:
        return SpecifierSet(requires_python).contains(python, prereleases=True)
    except InvalidSpecifier:
        return True


def _accepts_patch(requires_python: str | None, python: str) -> bool:
    """`_accepts`, with `!=X.Y` read as `!=X.Y.*` (see `python_floor`)."""
    if not requires_python:
        return True
    try:
        specs = SpecifierSet(requires_python)
    except InvalidSpecifier:
        return True
    minor = python.rsplit(".", 1)[0]
    return all(minor != sp.version if sp.operator == "!=" and sp.version.count(".") == 1
               else sp.contains(python, prereleases=True) for sp in specs)


def requires_python_hint(floor: str | None, ceiling: str | None = None, requires_python: str = "") -> str:
    if ceiling is not None:
        hint = f"cap requires-python with `{requires_python},<{ceiling}` in pyproject.toml"
        if floor is not None:
            hint += f" (or raise it to `>={floor}`)"
        return hint + f", or add the marker `; python_version < \"{ceiling}\"` to the requirement"
    if floor is None:
        return ("raise requires-python in pyproject.toml, or add a marker such as "
                "`; python_version >= \"3.X\"` to the requirement")
    variable = "python_full_version" if floor.count(".") == 2 else "python_version"
    return (f"raise requires-python to `>={floor}` in pyproject.toml, or add the marker "
            f"`; {variable} >= \"{floor}\"` to the requirement")

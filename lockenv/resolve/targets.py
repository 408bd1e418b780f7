"""The environments a universal lock is resolved for: each Python minor × five platforms.

A target is a complete PEP 508 marker environment plus the wheel tags an interpreter there
accepts. Targets choose versions; they do not fence the lock (DESIGN.md, "The lockfile").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from packaging.markers import InvalidMarker, Marker
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.tags import Tag, compatible_tags, cpython_tags, generic_tags, mac_platforms

from lockenv.errors import ManifestError

NEWEST_PYTHON_MINOR = 15
"""The newest released CPython 3 minor; targets stop here (bump on each October release)."""

OLDEST_PYTHON_MINOR = 8
"""Targets never go below this even when requires-python allows it (older Pythons are EOL)."""

_MANYLINUX_GLIBC_MAX = 39

IMPLEMENTATIONS = {"cpython": "CPython", "pypy": "PyPy", "graalpy": "GraalVM", "ironpython": "IronPython",
                   "jython": "Jython"}
"""implementation_name → platform_python_implementation."""


@dataclass(frozen=True)
class Platform:
    """One operating system × machine the lock is verified for."""

    key: str
    sys_platform: str
    platform_system: str
    os_name: str
    machine: str

    def wheel_platforms(self) -> list[str]:
        """Platform tags, most specific first, as an interpreter there would list them."""
        if self.sys_platform == "linux":
            plats = [f"manylinux_2_{minor}_{self.machine}" for minor in range(_MANYLINUX_GLIBC_MAX, 16, -1)]
            plats.append(f"manylinux2014_{self.machine}")
            if self.machine == "x86_64":
                for minor, legacy in ((12, "manylinux2010"), (5, "manylinux1")):
                    plats.append(f"manylinux_2_{minor}_{self.machine}")
                    plats.append(f"{legacy}_{self.machine}")
            plats.append(f"linux_{self.machine}")
            return plats
        if self.sys_platform == "darwin":
            arch = "arm64" if self.machine == "arm64" else "x86_64"
            return list(mac_platforms((15, 0), arch))
        if self.sys_platform == "win32":
            return [{"ARM64": "win_arm64", "x86": "win32"}.get(self.machine, "win_amd64")]
        return []  # another OS (a target derived from a marker): pure wheels and sdists


PLATFORMS: tuple[Platform, ...] = (
    Platform("linux-x86_64", "linux", "Linux", "posix", "x86_64"),
    Platform("linux-aarch64", "linux", "Linux", "posix", "aarch64"),
    Platform("macos-x86_64", "darwin", "Darwin", "posix", "x86_64"),
    Platform("macos-arm64", "darwin", "Darwin", "posix", "arm64"),
    Platform("windows-amd64", "win32", "Windows", "nt", "AMD64"),
)


_SHARED_TAGS: dict[Tag, Tag] = {}
"""One Tag object per tag, shared by every target that accepts it: 34 targets list ~32,000
tags, 7,200 distinct (each Tag with its three strings ~250 bytes; 6 MB saved on `data`)."""


@dataclass(frozen=True)
class Target:
    """A (Python version, platform) pair to resolve for."""

    python: tuple[int, int]
    python_full: str
    """The lowest patch release requires-python allows in this minor (e.g. '3.10.0')."""
    platform: Platform
    implementation: str = "cpython"
    """`implementation_name`: derived targets may be another implementation (PyPy)."""
    origin: tuple[str, str] | None = field(default=None, compare=False, hash=False)
    """For a target derived from the graph's markers: the (variable, value) it stands for."""
    environment: dict[str, str] = field(init=False, repr=False, compare=False, hash=False)
    """A complete PEP 508 environment (packaging's `select()` needs every key)."""
    tags: list[Tag] = field(init=False, repr=False, compare=False, hash=False)
    """Wheel tags in priority order, like `packaging.tags.sys_tags()` on that machine."""
    tag_priority: dict[Tag, int] = field(init=False, repr=False, compare=False, hash=False)
    _hash: int = field(init=False, repr=False, compare=False, hash=False)

    @property
    def name(self) -> str:
        impl = "cp" if self.implementation == "cpython" else self.implementation
        return f"{impl}3{self.python[1]}-{self.platform.key}"

    @property
    def place(self) -> str:
        """The platform as messages name it, with the implementation when not CPython."""
        return self.platform.key if self.implementation == "cpython" else f"{self.platform.key}-{self.implementation}"

    @property
    def python_version(self) -> str:
        return f"{self.python[0]}.{self.python[1]}"

    @property
    def label(self) -> str:
        """How messages name the target: `Python 3.12 on linux-x86_64`."""
        impl = "Python" if self.implementation == "cpython" else IMPLEMENTATIONS.get(self.implementation, self.implementation)
        return f"{impl} {self.python_version} on {self.platform.key}"

    def __post_init__(self) -> None:
        # Computed once, stored plainly: functools.cached_property takes a lock on every
        # access before 3.12, and the resolver reads these from many threads.
        object.__setattr__(self, "environment", self._environment())
        object.__setattr__(self, "tags", [_SHARED_TAGS.setdefault(t, t) for t in self._tags()])
        object.__setattr__(self, "tag_priority", {tag: i for i, tag in enumerate(self.tags)})
        object.__setattr__(self, "_hash", hash((self.python, self.python_full, self.platform, self.implementation)))

    def __hash__(self) -> int:
        """Computed once: targets fill the sets of the universal merge (a generated hash
        would hash every field, the platform's too, each time)."""
        return self._hash

    def _environment(self) -> dict[str, str]:
        """A complete PEP 508 environment (packaging's `select()` needs every key)."""
        p = self.platform
        return {
            "implementation_name": self.implementation,
            "implementation_version": self.python_full,
            "os_name": p.os_name,
            "platform_machine": p.machine,
            "platform_python_implementation": IMPLEMENTATIONS.get(self.implementation, self.implementation.capitalize()),
            "platform_release": "",
            "platform_system": p.platform_system,
            "platform_version": "",
            "python_full_version": self.python_full,
            "python_version": self.python_version,
            "sys_platform": p.sys_platform,
        }

    def _tags(self) -> list[Tag]:
        """Wheel tags in priority order, like `packaging.tags.sys_tags()` on that machine."""
        major, minor = self.python
        if self.implementation != "cpython":
            short = "pp" if self.implementation == "pypy" else self.implementation
            other = f"{short}{major}{minor}"
            abis = [f"pypy{major}{minor}_pp73", "none"] if short == "pp" else ["none"]
            plats = self.platform.wheel_platforms()
            return list(generic_tags(other, abis, plats)) + list(compatible_tags((major, minor), other, plats))
        interp = f"cp{major}{minor}"
        abis = [interp, "abi3", "none"] if minor >= 8 else [f"{interp}m", "abi3", "none"]
        plats = self.platform.wheel_platforms()
        tags = list(cpython_tags((major, minor), abis, plats))
        tags.extend(compatible_tags((major, minor), interp, plats))
        return tags



def _lowest_patch(minor: int, spec: SpecifierSet) -> str | None:
    for patch in range(0, 40):
        version = f"3.{minor}.{patch}"
        if spec.contains(version, prereleases=True):
            return version
    return None


def make_targets(requires_python: str, environments: Sequence[str] = ()) -> list[Target]:
    """Targets allowed by requires-python and narrowed by `[tool.lockenv] environments`,
    newest Python first (its choices are preferred where older Pythons can follow)."""
    try:
        spec = SpecifierSet(requires_python)
    except InvalidSpecifier as exc:
        raise ManifestError(f"invalid requires-python `{requires_python}`: {exc}") from None
    markers: list[Marker] = []
    for text in environments:
        try:
            markers.append(Marker(text))
        except InvalidMarker as exc:
            raise ManifestError(f"invalid environment marker `{text}`: {exc}") from None
    targets: list[Target] = []
    for minor in range(NEWEST_PYTHON_MINOR, OLDEST_PYTHON_MINOR - 1, -1):
        full = _lowest_patch(minor, spec)
        if full is None:
            continue
        for platform in PLATFORMS:
            target = Target((3, minor), full, platform)
            if markers and not any(m.evaluate(target.environment) for m in markers):
                continue
            targets.append(target)
    return targets

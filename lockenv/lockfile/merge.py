"""Pins out of a lock that does not parse: git merge conflicts in `pylock.toml`, or a file damaged
some other way. `lock` takes what this reads as preferences and relocks, so a merge that went
wrong never silently upgrades every package (issue 10).

A conflicted lock is split into its two sides (the text outside the markers plus the `<<<<<<<`
side, or plus the `>>>>>>>` side; a diff3 base section is dropped), and each side is read on its
own: markers may cut a `[[packages]]` table in half, and each side is then whole again. A side
(or any lock) that still does not parse gives every package entry that parses alone, then every
entry whose `name` and `version` lines can still be read.

Stdlib only (tomllib and the version check of packaging): the damaged path stays cheap.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from lockenv.lockfile.common import tomllib

__all__ = ["ConflictSides", "MergedPins", "Salvage", "has_conflict_markers", "merge_pins", "salvage_pins",
           "split_conflict"]

Pins = dict[str, list[tuple[str, str | None]]]

_MARKER = re.compile(r"^(<{7,}|\|{7,}|={7,}|>{7,})(?:[ \t]+(.*?))?[ \t]*$")
_HEADER = re.compile(r"^\[\[?\s*([A-Za-z0-9_.\"' -]+?)\s*\]\]?\s*(?:#.*)?$")
"""A table header at the start of a line (array items and values are indented or inline)."""


def has_conflict_markers(text: str) -> bool:
    """True when some line is a git conflict marker that opens a conflict."""
    return any(m and m.group(1)[0] == "<" for m in map(_MARKER.match, text.splitlines()))


@dataclass(frozen=True)
class ConflictSides:
    """The two sides of a conflicted file, whole, with git's names for them."""

    ours: str
    theirs: str
    ours_label: str
    theirs_label: str
    regions: int


def split_conflict(text: str) -> ConflictSides | None:
    """The file as each side of the merge wrote it; None when there is no complete conflict
    (an opening marker without its `=======` and `>>>>>>>` is not one: the text stays)."""
    ours: list[str] = []
    theirs: list[str] = []
    state = "both"  # both, ours, base, theirs
    labels = ["", ""]
    regions = 0
    pending: list[str] = []  # an open region's raw lines, given back if it never closes
    for line in text.splitlines(keepends=True):
        m = _MARKER.match(line.rstrip("\r\n"))
        kind = m.group(1)[0] if m else ""
        if state == "both":
            if m is not None and kind == "<":
                state, pending = "ours", [line]
                labels[0] = labels[0] or (m.group(2) or "").strip()
                continue
            ours.append(line)
            theirs.append(line)
            continue
        pending.append(line)
        if state in ("ours", "base") and kind == "|":
            state = "base"
        elif state in ("ours", "base") and kind == "=" and m and m.group(2) is None:
            state = "theirs"
        elif state == "theirs" and kind == ">":
            labels[1] = labels[1] or (m.group(2) or "").strip() if m is not None else labels[1]
            state, pending = "both", []
            regions += 1
        elif state == "ours":
            ours.append(line)
        elif state == "theirs":
            theirs.append(line)
    if state != "both":  # unterminated: what is left is text, on both sides
        return None if regions == 0 else _close(ours, theirs, pending, labels, regions)
    if regions == 0:
        return None
    return ConflictSides("".join(ours), "".join(theirs), labels[0] or "ours", labels[1] or "theirs",
                         regions)


def _close(ours: list[str], theirs: list[str], pending: list[str], labels: list[str],
           regions: int) -> ConflictSides:
    return ConflictSides("".join(ours + pending), "".join(theirs + pending), labels[0] or "ours",
                         labels[1] or "theirs", regions)


@dataclass
class Salvage:
    """The pins read from a damaged lock, and how many package entries could not be read."""

    pins: Pins = field(default_factory=dict)
    lost: int = 0
    whole: bool = True
    """The file parsed as TOML: nothing was guessed."""


def salvage_pins(text: str) -> Salvage:
    """Every pin that can still be read from `text` (no conflict markers in it)."""
    try:
        data = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, RecursionError):
        data = None
    if data is not None:
        out = Salvage()
        packages = data.get("packages")
        for entry in packages if isinstance(packages, list) else ():
            if not _add(out.pins, entry):
                out.lost += 1
        return out
    out = Salvage(whole=False)
    for chunk in _package_chunks(text):
        entry = _parse_chunk(chunk)
        if entry is None or not _add(out.pins, entry):
            out.lost += 1
    return out


def _package_chunks(text: str) -> list[list[str]]:
    """The lines of each `[[packages]]` table, with its sub-tables, up to the next table."""
    chunks: list[list[str]] = []
    current: list[str] | None = None
    for line in text.splitlines():
        header = _HEADER.match(line)
        if header and header.group(1).replace(" ", "") == "packages" and line.startswith("[["):
            current = []
            chunks.append(current)
            continue
        if header and not header.group(1).replace(" ", "").startswith("packages."):
            current = None
            continue
        if current is not None:
            current.append(line)
    return chunks


def _parse_chunk(lines: list[str]) -> dict[str, Any] | None:
    """One package table: parsed whole, else its top-level `name`/`version`/`marker` lines."""
    try:
        return tomllib.loads("\n".join(lines))
    except (tomllib.TOMLDecodeError, RecursionError):
        pass
    entry: dict[str, Any] = {}
    for line in lines:
        m = re.match(r"^(name|version|marker)\s*=", line)
        if m is None or m.group(1) in entry:
            continue
        try:
            entry.update(tomllib.loads(line))
        except tomllib.TOMLDecodeError:
            continue
    return entry or None


def _add(pins: Pins, entry: Any) -> bool:
    """Add one package entry's pin; False when it has no usable name and version."""
    if not isinstance(entry, dict):
        return False
    name, version, marker = entry.get("name"), entry.get("version"), entry.get("marker")
    if not isinstance(name, str) or not isinstance(version, str):
        return False
    try:
        version = str(Version(version))
    except InvalidVersion:
        return False
    pin = (version, marker if isinstance(marker, str) else None)
    versions = pins.setdefault(canonicalize_name(name), [])
    if pin not in versions:
        versions.append(pin)
    return True


@dataclass(frozen=True)
class MergedPins:
    """Each side's pins and their union (the preferences of the relock: where the sides differ,
    the resolver prefers the newer of the two versions that still fits)."""

    ours_label: str
    theirs_label: str
    ours: Pins
    theirs: Pins
    pins: Pins
    ours_lost: int
    theirs_lost: int


def merge_pins(sides: ConflictSides) -> MergedPins:
    ours, theirs = salvage_pins(sides.ours), salvage_pins(sides.theirs)
    union = {name: list(dict.fromkeys([*ours.pins.get(name, []), *theirs.pins.get(name, [])]))
             for name in sorted(set(ours.pins) | set(theirs.pins))}
    return MergedPins(sides.ours_label, sides.theirs_label, ours.pins, theirs.pins, union,
                      ours.lost, theirs.lost)

"""The `export` use case: the lock as a hashed requirements file for tools that only read
`requirements.txt`.

One `name==version ; marker` line per package entry the chosen extras and groups select
somewhere, with a `--hash=sha256:` for every file of the entry, so that `pip install
--require-hashes --no-deps -r FILE` installs, on any environment, the set `lockenv sync`
installs there. The lock's `'x' in extras` / `'g' in dependency_groups` terms are decided by the
options (pip cannot evaluate them); what remains is a marker pip evaluates per environment.
`--only-group` follows the lock's edges from the groups' requirements, as sync does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lockenv.errors import LockfileError, SyncError
from lockenv.ops.wanted import Selection, lock_path
from lockenv.ui import counted

FORMATS = ("requirements.txt",)


@dataclass(frozen=True)
class ExportOptions(Selection):
    """sync's selection options (ops/wanted.py), plus the format and where to write."""

    format: str = "requirements.txt"
    output: Path | None = None


@dataclass(frozen=True)
class ExportedPackage:
    name: str
    version: str
    marker: str | None
    hashes: tuple[str, ...]
    """`sha256:<hex>` of every wheel and the sdist, sorted."""


@dataclass(frozen=True)
class Export:
    text: str
    """The requirements file."""
    packages: tuple[ExportedPackage, ...]
    output: str | None
    """Where it was written (None: the CLI prints `text`)."""
    skipped: tuple[str, ...]
    """Entries a requirements file cannot carry with a hash (directories, VCS checkouts)."""


def export(options: ExportOptions, *, reporter: Any) -> Export:
    if options.format not in FORMATS:
        raise SyncError(f"unknown export format `{options.format}`",
                        hint="the formats are: " + ", ".join(FORMATS))
    if options.only_groups and (options.extras or options.all_extras):
        raise SyncError("--only-group leaves out the project's dependencies, and with them its "
                        "extras: --extra/--all-extras would do nothing",
                        hint="pass either --only-group or the extras")
    from lockenv.lockfile import read_inputs
    from lockenv.ops.tree import read_lock
    from lockenv.sync.selection import build_request

    path = lock_path(options)
    lock = read_lock(path)
    request = build_request(lock, extras=options.extras, all_extras=options.all_extras,
                            groups=options.groups, only_groups=options.only_groups,
                            no_default_groups=options.no_default_groups,
                            all_groups=options.all_groups)
    if request.only_groups:
        try:
            inputs = read_inputs(path)
        except LockfileError:
            inputs = None
        if inputs is None:
            raise SyncError("`--only-group` needs a lock written by lockenv (it records each "
                            "group's requirements under [tool.lockenv])",
                            hint="use `--group` instead, or relock with `lockenv lock`")
        markers = _only_group_markers(lock, inputs, request.groups)
    else:
        markers = _selected_markers(lock, request.extras, request.groups)
    packages, skipped = _packages(lock, markers)
    for entry in skipped:
        reporter.warn(f"`{entry}` is not an index package with hashes; it is left out of the export")
    text = _render(packages, _indexes(lock), options, path)
    if options.output is not None:
        from lockenv.cache import write_atomic

        try:
            write_atomic(options.output, text.encode("utf-8"))
        except OSError as exc:
            raise SyncError(f"cannot write {options.output}: {exc.strerror or exc}",
                            context={"file": str(options.output)}) from None
        reporter.status(f"Exported {counted(len(packages), 'package')} to {options.output}")
    return Export(text, tuple(packages), str(options.output) if options.output else None,
                  tuple(skipped))


def _selected_markers(lock: Any, extras: frozenset[str], groups: frozenset[str]) -> dict[int, Any]:
    """Entry index → where the entry is installed with these extras and groups (absent: never)."""
    from lockenv.graph import substitute
    from dep_logic.markers import AnyMarker, parse_marker

    out: dict[int, Any] = {}
    for i, pkg in enumerate(lock.packages):
        marker = AnyMarker() if pkg.marker is None else substitute(parse_marker(str(pkg.marker)), extras, groups)
        if not marker.is_empty():
            out[i] = marker
    return out


def _only_group_markers(lock: Any, inputs: Any, groups: frozenset[str]) -> dict[int, Any]:
    """`--only-group`: an entry is installed where the groups select it *and* a chain of
    selected entries leads to it from one of the groups' requirements (sync's reachability),
    propagated as markers to a fixed point."""
    from dep_logic.markers import AnyMarker, EmptyMarker, parse_marker
    from packaging.requirements import Requirement

    from lockenv import graph as lockgraph

    g = lockgraph.build(lock, inputs)
    own: dict[int, Any] = {}
    for node in g.packages():
        base = AnyMarker() if node.marker is None else parse_marker(node.marker)
        own[node.id] = lockgraph.substitute(base, frozenset(), groups)
    reach: dict[int, Any] = {}
    todo: list[int] = []

    def offer(node: int, cond: Any) -> None:
        new = reach.get(node, EmptyMarker()) | (cond & own[node])
        if not new.is_empty() and str(new) != str(reach.get(node)):
            reach[node] = new
            todo.append(node)

    for root in g.roots:
        if g.nodes[root].kind != "group" or g.nodes[root].name not in groups:
            continue
        for edge in g.children[root]:
            req = Requirement(edge.requirement or g.nodes[edge.child].name)
            offer(edge.child, parse_marker(str(req.marker)) if req.marker is not None else AnyMarker())
    for _ in range(100 * (len(own) + 1)):
        if not todo:
            break
        current = todo.pop()
        for edge in g.children[current]:
            offer(edge.child, reach[current])
    return {g.nodes[n].index: m for n, m in reach.items()}


def _packages(lock: Any, markers: dict[int, Any]) -> tuple[list[ExportedPackage], list[str]]:
    packages: list[ExportedPackage] = []
    skipped: list[str] = []
    for i, pkg in enumerate(lock.packages):
        if i not in markers:
            continue
        files = [*(pkg.wheels or ()), *([pkg.sdist] if pkg.sdist is not None else [])]
        hashes = sorted({f"sha256:{f.hashes['sha256'].lower()}" for f in files if f.hashes.get("sha256")})
        if pkg.version is None or not files or len(hashes) < len(files):
            skipped.append(f"{pkg.name}" + (f" {pkg.version}" if pkg.version else ""))
            continue
        m = markers[i]
        packages.append(ExportedPackage(str(pkg.name), str(pkg.version),
                                        None if m.is_any() else str(m), tuple(hashes)))
    packages.sort(key=lambda p: (p.name, _version_key(p.version), p.marker or ""))
    return packages, skipped


def _version_key(version: str) -> Any:
    from packaging.version import InvalidVersion, Version

    try:
        return (0, Version(version))
    except InvalidVersion:
        return (1, version)


def _indexes(lock: Any) -> list[str]:
    """The simple-API URLs the lock's packages come from, without credentials, the main one
    first (`--index-url`, then `--extra-index-url`): none when every package comes from the
    default index (pip's own default); else the default index first when it is one of them,
    then by how many packages come from each."""
    from collections import Counter

    from lockenv.urls import DEFAULT_INDEX_URL, redact_url

    default = DEFAULT_INDEX_URL.rsplit("/pypi", 1)[0] + "/simple/"
    found = Counter(redact_url(p.index).rstrip("/") + "/" for p in lock.packages if p.index)
    if set(found) <= {default}:
        return []
    return sorted(found, key=lambda u: (u != default, -found[u], u))


def _command(options: ExportOptions) -> str:
    parts = ["lockenv export"]
    parts += [f"--extra {e}" for e in sorted(options.extras)]
    parts += ["--all-extras"] if options.all_extras else []
    parts += [f"--group {g}" for g in sorted(options.groups)]
    parts += [f"--only-group {g}" for g in sorted(options.only_groups)]
    parts += ["--no-default-groups"] if options.no_default_groups else []
    parts += ["--all-groups"] if options.all_groups else []
    return " ".join(parts)


def _render(packages: list[ExportedPackage], indexes: list[str], options: ExportOptions,
            path: Path) -> str:
    lines = [
        f"# Exported by lockenv from {path.name}; do not edit. Regenerate with:",
        f"#    {_command(options)}",
        "# Install exactly this set (no resolver) with:",
        "#    pip install --require-hashes --no-deps -r FILE",
    ]
    if indexes:
        lines.append(f"--index-url {indexes[0]}")
        lines += [f"--extra-index-url {u}" for u in indexes[1:]]
    for p in packages:
        head = f"{p.name}=={p.version}" + (f" ; {p.marker}" if p.marker else "")
        lines.append(head + " \\")
        for k, h in enumerate(p.hashes):
            lines.append(f"    --hash={h}" + (" \\" if k < len(p.hashes) - 1 else ""))
    return "\n".join(lines) + "\n"

"""`pylock.toml` (PEP 751), end to end: `write` turns a Resolution into the lock's bytes (sorted,
byte-stable, atomic), `read` loads and selects from any PEP 751 file, `fresh` says why a lock no
longer matches pyproject.toml and what moved between two locks, and `check` proves a lock serves
the environments it was resolved for.

Modules, bottom up: common (canonical inputs, timestamps) → read, write → fresh, check. Importing
the package is cheap (the no-op path does): packaging.pylock, tomlkit and httpx are not loaded.
"""

from __future__ import annotations

from lockenv.lockfile.check import OutsideExpectation, TargetExpectation, check_serves
from lockenv.lockfile.common import CREATED_BY, LOCK_VERSION, canonical_inputs, format_timestamp
from lockenv.lockfile.fresh import PinChange, StaleReason, diff_inputs, diff_pins, inputs_from_spec, stale_reasons
from lockenv.lockfile.read import edited_line, is_edited, load, load_cached, read_inputs, read_pins, select
from lockenv.lockfile.write import dumps, to_pylock, write
from lockenv.project import LOCK_NAME

__all__ = [
    "CREATED_BY",
    "LOCK_NAME",
    "LOCK_VERSION",
    "OutsideExpectation",
    "PinChange",
    "StaleReason",
    "TargetExpectation",
    "canonical_inputs",
    "check_serves",
    "diff_inputs",
    "diff_pins",
    "dumps",
    "format_timestamp",
    "inputs_from_spec",
    "edited_line",
    "is_edited",
    "load",
    "load_cached",
    "read_inputs",
    "read_pins",
    "select",
    "stale_reasons",
    "to_pylock",
    "write",
]

"""Where an error happened (`ErrorContext`), apart from the error classes.

Why its own module: `ErrorContext` is a frozen dataclass, and importing `dataclasses` (with the
`inspect`, `ast` and `tokenize` it imports) is ~40 M instructions, ~10% of a warm sync that
raises nothing. `lockenv.errors` is imported by every command; this module only when an error is
made (`LockenvError.__init__`) or a caller names the class.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import TypedDict

ContextFields = TypedDict("ContextFields", {
    "file": "str | None", "line": "int | None", "column": "int | None", "key": "str | None",
    "url": "str | None", "host": "str | None", "index": "str | None", "package": "str | None",
    "requirement": "str | None", "group": "str | None", "groups": "Sequence[str] | None",
    "environment": "str | None", "variable": "str | None", "status": "int | None",
    "lock-version": object,
}, total=False)
"""`context={...}` as a literal: mypy checks its keys and value types against ErrorContext's."""


@dataclass(frozen=True)
class ErrorContext:
    """Where an error happened, one typed field per kind of place (None: not known).

    Typed so a misspelt key is a bug caught where the error is made (`ErrorContext.of`
    refuses unknown keys), not a line silently missing from the message; the CLI shows the
    known fields in this order, as `key: value` lines under the message."""

    file: str | None = None
    line: int | None = None
    column: int | None = None
    key: str | None = None
    """A dotted TOML key (`project.dependencies[2]`)."""
    url: str | None = None
    """Already redacted (`lockenv.urls.redact_url` / `SafeUrl`)."""
    host: str | None = None
    index: str | None = None
    """The configured index's name."""
    package: str | None = None
    requirement: str | None = None
    group: str | None = None
    groups: tuple[str, ...] | None = None
    environment: str | None = None
    variable: str | None = None
    """An environment variable's name, never its value."""
    status: int | None = None
    """An HTTP status code."""
    lock_version: str | None = None

    @classmethod
    def of(cls, context: ContextFields | Mapping[str, object] | ErrorContext | None) -> ErrorContext:
        """The context from a mapping whose keys are field names (`lock-version` spelt either
        way); values are converted to the field's type, and an unknown key is a TypeError."""
        if context is None:
            return _EMPTY
        if isinstance(context, ErrorContext):
            return context
        values: dict[str, object] = {}
        for name, value in context.items():
            field = name.replace("-", "_")
            if field not in _FIELDS:
                raise TypeError(f"unknown error context key {name!r}; one of {sorted(_FIELDS)}")
            values[field] = _convert(field, value)
        return cls(**values)  # type: ignore[arg-type]

    def merged(self, other: ErrorContext) -> ErrorContext:
        """This context with every field `other` knows (other's win)."""
        return replace(self, **dict(other._known()))  # type: ignore[arg-type]

    def _known(self) -> Iterator[tuple[str, object]]:
        for field in fields(self):
            value = getattr(self, field.name)
            if value is not None:
                yield field.name, value

    def items(self) -> Iterator[tuple[str, object]]:
        """The known fields as (shown key, value), in field order: what the CLI renders."""
        for name, value in self._known():
            shown = ", ".join(value) if isinstance(value, tuple) else value
            yield name.replace("_", "-"), shown

    def as_dict(self) -> dict[str, object]:
        """The known fields by field name (for pickling and tests)."""
        return dict(self._known())

    def __bool__(self) -> bool:
        return any(True for _ in self._known())


_FIELDS = {f.name: f for f in fields(ErrorContext)}
_INT_FIELDS = frozenset({"line", "column", "status"})
_EMPTY = ErrorContext()


def _convert(field: str, value: object) -> object:
    """A value as its field's type: ints stay ints, sequences of names become tuples, anything
    else becomes its str() (so a `SafeUrl` is stored redacted)."""
    if value is None:
        return None
    if field in _INT_FIELDS:
        return int(value)  # type: ignore[call-overload]
    if field == "groups":
        return (value,) if isinstance(value, str) else tuple(str(v) for v in value)  # type: ignore[attr-defined]
    return str(value)
